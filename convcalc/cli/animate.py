"""`convcalc animate`: a GIF of the window sliding over the padded input."""

from __future__ import annotations

from typing import Any

import click
from click.core import ParameterSource

from convcalc.calc.choices import AnimKind, ChannelMode, PadMode
from convcalc.calc.network import two_axes
from convcalc.calc.sizes import parse_counts, parse_dims, parse_padding
from convcalc.cli.command import ConvcalcCommand
from convcalc.cli.kernels import refuse_size_kernel
from convcalc.cli.options import (
    channels_option,
    groups_option,
    max_pixels_option,
    output_padding_option,
    pad_mode_option,
    parse_numbers,
    window_options,
)
from convcalc.cli.output import BUSY_SIZE, busy, emit_json, say
from convcalc.errors import ConvcalcError


@click.command(cls=ConvcalcCommand)
@click.argument("input_path", metavar="INPUT")
@click.option(
    "-k",
    "--kernel",
    "kernels",
    required=True,
    multiple=True,
    help="Kernel: a preset, a matrix or a file (KHxKW or KHxKWxC; a 1x1 kernel is written "
    "3.0); repeat for several filters. With --pool: the window size.",
)
@click.option("--bias", help="One bias per filter, comma-separated.")
@channels_option
@groups_option
@click.option(
    "--region",
    help="ROW,COL,H,W: animate this part of the input (default on an input over "
    "64 a side: 8x8 at its centre).",
)
@window_options
@click.option("--pool", type=click.Choice(["max", "avg"]), help="Animate pooling instead.")
@click.option("--transposed", is_flag=True, help="Animate a transposed convolution.")
@output_padding_option
@pad_mode_option
@click.option("-o", "--output", required=True, help="The GIF to write (or - for stdout).")
@click.option("--cell", type=int, default=32, show_default=True, help="Cell size in pixels.")
@click.option(
    "--duration",
    type=int,
    default=400,
    show_default=True,
    help="Milliseconds per frame (the last is held 3x longer).",
)
@click.option(
    "--max-frames",
    type=int,
    default=400,
    show_default=True,
    help="At most this many frames: big outputs show every n-th position.",
)
@click.option("--force", is_flag=True, help="Allow writing over an input file.")
@max_pixels_option
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Describe what was written as one JSON document on stdout.",
)
def animate(
    input_path: str,
    kernels: tuple[str, ...],
    bias: str | None,
    channels: str,
    groups: int,
    region: str | None,
    stride: str | None,
    padding: str | None,
    dilation: str | None,
    pool: str | None,
    transposed: bool,
    output_padding: str,
    pad_mode: str,
    output: str,
    cell: int,
    duration: int,
    max_frames: int,
    force: bool,
    max_pixels: int | None,
    as_json: bool,
) -> None:
    """A GIF of the window sliding over the padded input, filling the output.

    \b
    Examples:
      convcalc animate samples/ufldl_5x5.txt -k "1,0,1;0,1,0;1,0,1" -o slide.gif
      convcalc animate samples/edge_6x6.txt -k edge-v -p 1 -s 2 -o edge.gif
      convcalc animate samples/maxpool_4x4.txt --pool max -k 2 -o pool.gif
      convcalc animate samples/maxpool_4x4.txt --transposed -k "1,1;1,1" -s 2 -o up.gif
      convcalc animate samples/cs231n_5x5x3.txt --transposed -k samples/cs231n_w0.txt \\
          -s 2 -p 1 --bias 1 -o up3.gif
      convcalc animate samples/cs231n_5x5x3.txt -k samples/cs231n_w0.txt \\
          -k samples/cs231n_w1.txt --bias 1,0 -p 1 -s 2 -o cs231n.gif
      convcalc animate samples/photo.png -k sobel-x --region 40,40,8,8 -o crop.gif
      convcalc animate samples/grouped_4x4x4.txt -k "1,0;0,1|0,1;1,0" \\
          -k "1,1;0,0|0,0;1,1" -k "1,0;1,0|0,-1;0,-1" -k "0,1;1,0|1,0;0,1" \\
          --groups 2 -o grouped.gif
    """
    from convcalc.io.kernels import read_kernels
    from convcalc.io.reading import read_input
    from convcalc.io.writing import output_format, write_bytes
    from convcalc.present.frames import MAX_FRAMES_RANGE, AnimationRequest, check_range
    from convcalc.present.gif import CELL_RANGE, DURATION_RANGE, frames, gif_bytes

    check_range("--cell", cell, *CELL_RANGE, " pixels")
    check_range("--duration", duration, *DURATION_RANGE, " ms")
    check_range("--max-frames", max_frames, *MAX_FRAMES_RANGE, "")
    if pool and transposed:
        raise ConvcalcError("--transposed and --pool ask for two different layers; give one")
    given = click.get_current_context().get_parameter_source("output_padding")
    if not transposed and given not in (ParameterSource.DEFAULT, None):
        raise ConvcalcError("--output-padding needs --transposed")
    if as_json and output == "-":
        raise ConvcalcError("--json and -o - both want stdout; give -o a file name")
    if output != "-" and not output.lower().endswith(".gif"):
        output_format(output)  # names the formats for an unknown extension
        raise ConvcalcError(f"animate writes a GIF; '{output}' does not end in .gif")
    loaded = read_input(input_path, max_pixels=max_pixels)
    if groups != 1 and (pool or transposed):
        raise ConvcalcError(
            f"--groups animates a grouped convolution; drop --groups with "
            f"{'--pool' if pool else '--transposed'} (apply runs neither grouped)"
        )
    source = click.get_current_context().get_parameter_source("channels")
    if groups != 1 and source not in (ParameterSource.DEFAULT, None):
        raise ConvcalcError(
            "--channels has no effect with --groups: each filter sees the channels of its group"
        )
    if pool and (len(kernels) > 1 or bias is not None):
        raise ConvcalcError(
            "--pool animates one -k and no --bias; several filters are for conv and --transposed"
        )
    if pool:
        kind = AnimKind.POOL_MAX if pool == "max" else AnimKind.POOL_AVG
        weights: Any = two_axes(parse_dims(kernels[0], "pool size"), "kernel")
    else:
        kind = AnimKind.TRANSPOSED if transposed else AnimKind.CONV
        for kernel in kernels:
            refuse_size_kernel(kernel, f"-k {kernel}")
        read = tuple(read_kernels(kernels))
        weights = read[0] if len(read) == 1 else read
    request = AnimationRequest(
        loaded.data,
        weights,
        kind,
        None if stride is None else two_axes(parse_dims(stride, "stride"), "stride"),
        two_axes(parse_padding(padding or "0"), "padding"),
        two_axes(parse_dims(dilation or "1", "dilation"), "dilation"),
        two_axes(parse_counts(output_padding, "output padding"), "output padding"),
        PadMode(pad_mode),
        bias=None if bias is None else parse_numbers(bias, "--bias"),
        channels=ChannelMode(channels),
        region=None if region is None else _region(region),
        groups=groups,
    )
    with busy("drawing frames", size=BUSY_SIZE):
        pictures, notes = frames(request, cell=cell, max_frames=max_frames)
    write_bytes(output, gif_bytes(pictures, duration_ms=duration), inputs=[input_path], force=force)
    where = "GIF to stdout" if output == "-" else output
    size = f"{pictures[0].width}x{pictures[0].height}"
    say([*loaded.notes, *notes, f"wrote {where} ({len(pictures)} frames, {size})"])
    if as_json:
        emit_json(
            {
                "output": output,
                "frames": len(pictures),
                "width": pictures[0].width,
                "height": pictures[0].height,
                "duration_ms": duration,
                "notes": [*loaded.notes, *notes],
            }
        )


def _region(text: str) -> tuple[int, int, int, int]:
    """``ROW,COL,H,W`` as four counts."""
    parts = text.split(",")
    if len(parts) != 4 or not all(p.strip().isdigit() for p in parts):
        raise ConvcalcError(
            f"--region '{text}' is not valid; valid: ROW,COL,H,W (four counts, e.g. 40,40,8,8)"
        )
    top, left, rows, cols = (int(p) for p in parts)
    return top, left, rows, cols
