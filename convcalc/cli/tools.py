"""`convcalc kernels`, `convcalc bench` and `convcalc animate`: the named kernels, the
four methods timed on the user's data, and GIFs of the sliding window.

Like `convcalc.cli.apply`, loaded only when one of its commands runs.
"""

from __future__ import annotations

from typing import Any

import click

from convcalc.calc.choices import ChannelMode, Method, PadMode
from convcalc.calc.grammar import parse_counts, parse_dims, parse_padding
from convcalc.calc.layers import Conv
from convcalc.calc.network import two_axes
from convcalc.cli.apply import BUSY_SIZE, busy, choice_of, read_kernels, say
from convcalc.errors import ConvcalcError


@click.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def kernels(name: str | None, as_json: bool) -> None:
    """The named kernels, or the values of one (a preset or gauss:sigma=S,size=N).

    \b
    Examples:
      convcalc kernels
      convcalc kernels sobel-x
      convcalc kernels gauss:sigma=1.5,size=7
    """
    from convcalc.cli.main import emit_json, print_rich
    from convcalc.compute import kernels as presets
    from convcalc.present.tables import kernel_list_table, matrix_table

    if name is None:
        rows = [(n, presets.describe(n), presets.get_preset(n).shape) for n in
                presets.preset_names()]
        if as_json:
            emit_json({"kernels": [{"name": n, "description": d, "shape": list(s)}
                                   for n, d, s in rows],
                       "parameterised": [{"syntax": s, "description": d}
                                         for s, d in presets.parameterised_kernels()]})
            return
        print_rich(kernel_list_table(rows, presets.parameterised_kernels()))
        return
    values = presets.parse_kernel(name)
    separable = values.ndim == 2 and presets.separable_factors(values) is not None
    if as_json:
        emit_json({"name": name, "shape": list(values.shape), "values": values.tolist(),
                   "separable": separable})
        return
    title = f"{name}  ({'x'.join(map(str, values.shape))}" + (", separable)" if separable else ")")
    print_rich(matrix_table(values, title))


@click.command()
@click.argument("input_path", metavar="INPUT")
@click.option("-k", "--kernel", "kernels", multiple=True, required=True,
              help="Kernel: a preset, a matrix or a file; repeat for several filters.")
@click.option("-s", "--stride", help="Stride: N or SHxSW.")
@click.option("-p", "--padding", help="Padding: N, HxW, same, valid or full.")
@click.option("-d", "--dilation", help="Dilation: N or per axis.")
@click.option("--pad-mode", type=choice_of(PadMode), default="zero", show_default=True)
@click.option("--channels", type=choice_of(ChannelMode), default="each", show_default=True)
@click.option("--gray", is_flag=True, help="Convert a colour image to one channel first.")
@click.option("--repeat", type=click.IntRange(1, 100), default=3, show_default=True,
              help="Timed runs per method (the best is kept).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def bench(input_path: str, kernels: tuple[str, ...], stride: str | None, padding: str | None,
          dilation: str | None, pad_mode: str, channels: str, gray: bool, repeat: int,
          as_json: bool) -> None:
    """Time the four convolution methods on your data, with their errors.

    Sliding window (direct), im2col + GEMM, FFT and Winograd F(2x2,3x3), each
    against a float64 direct reference.

    \b
    Examples:
      convcalc bench samples/photo.png -k sobel-x
      convcalc bench samples/photo.png -k gauss:sigma=4 --gray
    """
    from convcalc.cli.main import emit_json, print_rich
    from convcalc.compute import ops
    from convcalc.compute.bench import compare_methods
    from convcalc.compute.pipeline import kernel_bank
    from convcalc.io.reading import read_input
    from convcalc.present.tables import bench_table

    loaded = read_input(input_path, gray=gray)
    bank, groups, _ = kernel_bank(read_kernels(kernels), loaded.data.shape[2],
                                  ChannelMode(channels))
    layer = Conv(None, None, parse_dims(stride or "1", "stride"),
                 parse_padding(padding or "0"), parse_dims(dilation or "1", "dilation"))
    settings: dict[str, Any] = {
        "stride": two_axes(layer.stride, "stride"), "padding": two_axes(layer.padding, "padding"),
        "dilation": two_axes(layer.dilation, "dilation"), "pad_mode": PadMode(pad_mode),
        "groups": groups,
    }

    def compute(method: Method, x: Any) -> Any:
        return ops.correlate(x, bank, method=method, **settings)

    with busy("timing direct, im2col, fft and winograd", size=BUSY_SIZE):
        timings = compare_methods(compute, loaded.data, repeats=repeat)
    shape = "x".join(map(str, loaded.data.shape))
    if as_json:
        emit_json({"input_shape": list(loaded.data.shape), "kernel_shape": list(bank.shape),
                   "methods": [{"method": t.method.value, "seconds": t.seconds,
                                "max_error": t.max_error, "reason": t.reason}
                               for t in timings]})
        return
    print_rich(bench_table(timings, f"{input_path} ({shape}), kernel bank "
                                    f"{'x'.join(map(str, bank.shape))}"))


@click.command()
@click.argument("input_path", metavar="INPUT")
@click.option("-k", "--kernel", required=True,
              help="Kernel: a preset, a matrix or a file (2-D). With --pool: the window size.")
@click.option("-s", "--stride", help="Stride: N or SHxSW (pooling: the window size).")
@click.option("-p", "--padding", help="Padding: N, HxW, same, valid or full.")
@click.option("-d", "--dilation", help="Dilation: N or per axis.")
@click.option("--pool", type=click.Choice(["max", "avg"]), help="Animate pooling instead.")
@click.option("--transposed", is_flag=True, help="Animate a transposed convolution.")
@click.option("--output-padding", default="0", show_default=True,
              help="Transposed convolution: extra rows/columns after.")
@click.option("--pad-mode", type=choice_of(PadMode), default="zero", show_default=True)
@click.option("-o", "--output", required=True, help="The GIF to write (or - for stdout).")
@click.option("--cell", type=int, default=32, show_default=True, help="Cell size in pixels.")
@click.option("--duration", type=int, default=400, show_default=True,
              help="Milliseconds per frame (the last is held 3x longer).")
@click.option("--max-frames", type=int, default=400, show_default=True,
              help="At most this many frames: big outputs show every n-th position.")
@click.option("--force", is_flag=True, help="Allow writing over an input file.")
@click.option("--json", "as_json", is_flag=True,
              help="Describe what was written as one JSON document on stdout.")
def animate(input_path: str, kernel: str, stride: str | None, padding: str | None,
            dilation: str | None, pool: str | None, transposed: bool, output_padding: str,
            pad_mode: str, output: str, cell: int, duration: int, max_frames: int,
            force: bool, as_json: bool) -> None:
    """A GIF of the window sliding over the padded input, filling the output.

    \b
    Examples:
      convcalc animate samples/ufldl_5x5.txt -k "1,0,1;0,1,0;1,0,1" -o slide.gif
      convcalc animate samples/edge_6x6.txt -k edge-v -p 1 -s 2 -o edge.gif
      convcalc animate samples/maxpool_4x4.txt --pool max -k 2 -o pool.gif
      convcalc animate samples/maxpool_4x4.txt --transposed -k "1,1;1,1" -s 2 -o up.gif
    """
    from convcalc.io.reading import read_input
    from convcalc.io.writing import output_format, write_bytes
    from convcalc.present.animate import AnimationRequest, AnimKind, frames, gif_bytes

    if as_json and output == "-":
        raise ConvcalcError("--json and -o - both want stdout; give -o a file name")
    if output != "-" and not output.lower().endswith(".gif"):
        output_format(output)  # names the formats for an unknown extension
        raise ConvcalcError(f"animate writes a GIF; '{output}' does not end in .gif")
    loaded = read_input(input_path)
    if pool:
        kind = AnimKind.POOL_MAX if pool == "max" else AnimKind.POOL_AVG
        weights: Any = two_axes(parse_dims(kernel, "pool size"), "kernel")
    else:
        kind = AnimKind.TRANSPOSED if transposed else AnimKind.CONV
        (weights,) = read_kernels((kernel,))
        if weights.ndim != 2:
            raise ConvcalcError(f"animate takes a 2-D kernel; '{kernel}' has depth "
                                f"{weights.shape[2]}")
    request = AnimationRequest(
        loaded.data, weights, kind,
        None if stride is None else two_axes(parse_dims(stride, "stride"), "stride"),
        two_axes(parse_padding(padding or "0"), "padding"),
        two_axes(parse_dims(dilation or "1", "dilation"), "dilation"),
        two_axes(parse_counts(output_padding, "output padding"), "output padding"),
        PadMode(pad_mode),
    )
    with busy("drawing frames", size=BUSY_SIZE):
        pictures, notes = frames(request, cell=cell, max_frames=max_frames)
    write_bytes(output, gif_bytes(pictures, duration_ms=duration), inputs=[input_path],
                force=force)
    where = "GIF to stdout" if output == "-" else output
    size = f"{pictures[0].width}x{pictures[0].height}"
    say([*loaded.notes, *notes, f"wrote {where} ({len(pictures)} frames, {size})"])
    if as_json:
        from convcalc.cli.main import emit_json

        emit_json({"output": output, "frames": len(pictures), "width": pictures[0].width,
                   "height": pictures[0].height, "duration_ms": duration,
                   "notes": [*loaded.notes, *notes]})
