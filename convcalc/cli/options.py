"""Click options several commands share, each written once (as decorators)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from convcalc.calc.choices import ChannelMode, Format, PadMode
from convcalc.cli.output import choice_of
from convcalc.errors import ConvcalcError

F = TypeVar("F", bound=Callable[..., Any])

stride_option = click.option(
    "-s", "--stride", help="Stride: N or per axis SHxSW (pooling: the window size)."
)
padding_option = click.option("-p", "--padding", help="Padding: N, HxW, same, valid or full.")
dilation_option = click.option("-d", "--dilation", help="Dilation: N or per axis.")
output_padding_option = click.option(
    "--output-padding",
    default="0",
    show_default=True,
    help="Transposed convolution: extra rows/columns after.",
)
pad_mode_option = click.option(
    "--pad-mode",
    type=choice_of(PadMode),
    default="zero",
    show_default=True,
    help="What fills the padding.",
)
channels_option = click.option(
    "--channels",
    type=choice_of(ChannelMode),
    default="each",
    show_default=True,
    help="A 2-D kernel on a colour image: filter each channel, or sum them.",
)
groups_option = click.option(
    "--groups",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Grouped convolution (PyTorch's groups=G): the input's C channels and the -k filters "
    "split into G groups; each filter is C/G deep and sees its group's channels.",
)
gray_option = click.option(
    "--gray", is_flag=True, help="Convert a colour image to one channel first."
)
max_pixels_option = click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    metavar="N",
    help="Decode images of up to N pixels (default: Pillow's limit, 89,478,485).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
format_option = click.option(
    "--format", "fmt", type=choice_of(Format), default="table", show_default=True,
    help="table, json (= --json), csv (plain integers), markdown or latex.",
)  # fmt: skip


def output_format(kwargs: dict[str, Any]) -> Format:
    """The format asked for by --format and --json (popped from ``kwargs``)."""
    fmt, as_json = Format(kwargs.pop("fmt")), kwargs.pop("as_json")
    if as_json and fmt not in (Format.TABLE, Format.JSON):
        raise ConvcalcError(f"--json and --format {fmt} ask for two formats; give one of them")
    return Format.JSON if as_json else fmt


def window_options(fn: F) -> F:
    """-s, -p and -d: a window's stride, padding and dilation."""
    return stride_option(padding_option(dilation_option(fn)))


def parse_numbers(text: str, what: str) -> tuple[float, ...]:
    """Finite numbers separated by commas (or semicolons), as ``--bias`` takes them."""
    values = []
    for part in text.replace(";", ",").split(","):
        try:
            value = float(part)
        except ValueError:
            raise ConvcalcError(f"{what} value '{part.strip()}' is not a number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ConvcalcError(f"{what} value '{part.strip()}' is not finite")
        values.append(value)
    return tuple(values)
