"""`convcalc bench`: the four convolution methods timed on the user's data."""

from __future__ import annotations

from typing import Any

import click

from convcalc.calc.choices import ChannelMode, Method, PadMode
from convcalc.calc.layers import Conv
from convcalc.calc.network import two_axes
from convcalc.calc.sizes import parse_dims, parse_padding
from convcalc.cli.command import ConvcalcCommand
from convcalc.cli.kernels import refuse_size_kernel
from convcalc.cli.options import (
    gray_option,
    json_option,
    max_pixels_option,
    pad_mode_option,
    window_options,
)
from convcalc.cli.output import BUSY_SIZE, busy, choice_of, emit_json, print_rich


@click.command(cls=ConvcalcCommand)
@click.argument("input_path", metavar="INPUT")
@click.option(
    "-k",
    "--kernel",
    "kernels",
    multiple=True,
    required=True,
    help="Kernel: a preset, a matrix or a file (a 1x1 kernel is written 3.0); repeat for "
    "several filters.",
)
@window_options
@pad_mode_option
@click.option("--channels", type=choice_of(ChannelMode), default="each", show_default=True)
@gray_option
@max_pixels_option
@click.option(
    "--repeat",
    type=click.IntRange(1, 100),
    default=3,
    show_default=True,
    help="Timed runs per method (the best is kept).",
)
@json_option
def bench(
    input_path: str,
    kernels: tuple[str, ...],
    stride: str | None,
    padding: str | None,
    dilation: str | None,
    pad_mode: str,
    channels: str,
    gray: bool,
    max_pixels: int | None,
    repeat: int,
    as_json: bool,
) -> None:
    """Time the four convolution methods on your data, with their errors.

    Sliding window (direct), im2col + GEMM, FFT and Winograd F(2x2,3x3), each
    against a float64 direct reference.

    \b
    Examples:
      convcalc bench samples/photo.png -k sobel-x
      convcalc bench samples/photo.png -k gauss:sigma=4 --gray
    """
    from convcalc.compute import ops
    from convcalc.compute.bench import compare_methods
    from convcalc.compute.pipeline import kernel_bank, quiet_overflow
    from convcalc.io.kernels import read_kernels
    from convcalc.io.reading import read_input
    from convcalc.present.tables import bench_table

    for text in kernels:
        refuse_size_kernel(text, f"-k {text}")
    loaded = read_input(input_path, gray=gray, max_pixels=max_pixels)
    bank, groups, _ = kernel_bank(
        read_kernels(kernels), loaded.data.shape[2], ChannelMode(channels)
    )
    layer = Conv(
        None,
        None,
        parse_dims(stride or "1", "stride"),
        parse_padding(padding or "0"),
        parse_dims(dilation or "1", "dilation"),
    )
    settings: dict[str, Any] = {
        "stride": two_axes(layer.stride, "stride"),
        "padding": two_axes(layer.padding, "padding"),
        "dilation": two_axes(layer.dilation, "dilation"),
        "pad_mode": PadMode(pad_mode),
        "groups": groups,
    }

    def compute(method: Method, x: Any) -> Any:
        return ops.correlate(x, bank, method=method, **settings)

    with busy("timing direct, im2col, fft and winograd", size=BUSY_SIZE), quiet_overflow():
        timings = compare_methods(compute, loaded.data, repeats=repeat)
    shape = "x".join(map(str, loaded.data.shape))
    if as_json:
        emit_json(
            {
                "input_shape": list(loaded.data.shape),
                "kernel_shape": list(bank.shape),
                "methods": [
                    {
                        "method": t.method.value,
                        "seconds": t.seconds,
                        "max_error": t.max_error,
                        "reason": t.reason,
                    }
                    for t in timings
                ],
            }
        )
        return
    print_rich(
        bench_table(
            timings, f"{input_path} ({shape}), kernel bank {'x'.join(map(str, bank.shape))}"
        )
    )
