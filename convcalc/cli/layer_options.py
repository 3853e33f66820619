"""The options `shape` and `params` share: one layer (-k, -s, -p …) or a stack (--net)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, NamedTuple, TypeVar

import click

from convcalc.calc.choices import Convention, PoolKind
from convcalc.calc.grammar import format_layer
from convcalc.calc.layers import Conv, Deconv, Layer, Pool, Shape, Spec, network_rank
from convcalc.calc.presets import PRESETS
from convcalc.calc.sequence import parse_specs
from convcalc.calc.sizes import (
    channels_first_hint,
    parse_counts,
    parse_dims,
    parse_padding,
    parse_shape,
)
from convcalc.cli.options import (
    dilation_option,
    format_option,
    json_option,
    output_padding_option,
    padding_option,
    stride_option,
)
from convcalc.cli.output import choice_of, say
from convcalc.errors import ConvcalcError

F = TypeVar("F", bound=Callable[..., Any])


def layer_options(fn: F) -> F:
    """Decorate a command with the options describing one layer or a stack."""
    options = [
        click.option("-k", "--kernel", help="Kernel size: N or per axis KHxKW."),
        stride_option,
        padding_option,
        dilation_option,
        click.option("--filters", type=int, help="Number of filters (output channels)."),
        click.option(
            "--groups",
            type=int,
            default=1,
            show_default=True,
            help="Grouped convolution: groups dividing both channel counts.",
        ),
        click.option("--no-bias", is_flag=True, help="Layers without bias terms."),
        click.option(
            "--pool", type=choice_of(PoolKind), help="A pooling layer instead of a convolution."
        ),
        click.option("--ceil", is_flag=True, help="Pooling rounds up (PyTorch ceil_mode)."),
        click.option("--transposed", is_flag=True, help="A transposed convolution."),
        output_padding_option,
        click.option("--net", help="A network: " + ", ".join(PRESETS) + ", or a file of specs."),
        click.option(
            "--convention",
            type=choice_of(Convention),
            default="torch",
            show_default=True,
            help="Whose rules where frameworks differ (pool rounding, SAME).",
        ),
        click.option(
            "--strict", is_flag=True, help="Fail when a window does not fit its input exactly."
        ),
        json_option,
        format_option,
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


class LayerOptions(NamedTuple):
    """The layer options of `shape` and `params`, as typed."""

    kernel: str | None
    stride: str | None
    padding: str | None
    dilation: str | None
    filters: int | None
    groups: int
    no_bias: bool
    pool: str | None
    ceil: bool
    transposed: bool
    output_padding: str
    net: str | None
    convention: str
    strict: bool

    @property
    def single(self) -> bool:
        """True when the options describe one layer (-k) rather than a stack."""
        return self.kernel is not None


class Network(NamedTuple):
    """What `shape` and `params` compute: the input, the layers, whose rules apply."""

    input: Shape
    specs: list[Spec]
    convention: Convention


def network_of(input_text: str | None, spec_texts: tuple[str, ...], opts: LayerOptions) -> Network:
    """The input shape and the layers to run on it, from arguments, options or a file."""
    if opts.net and _is_network_file(opts.net):
        return _imported(input_text, spec_texts, opts)
    if input_text is None:
        raise ConvcalcError(
            "no INPUT shape; valid: HxWxC such as 224x224x3 (or --net FILE.onnx|.keras, "
            "whose file gives it)"
        )
    convention = Convention(opts.convention)
    if opts.single and (spec_texts or opts.net):
        raise ConvcalcError("give either -k (one layer) or layer specs/--net, not both")
    if opts.single:
        return Network(*_single_network(input_text, opts), convention)
    from convcalc.calc.presets import load_network

    ignored = [
        name
        for name, given in (
            ("-s", opts.stride),
            ("-p", opts.padding),
            ("-d", opts.dilation),
            ("--filters", opts.filters is not None),
            ("--groups", opts.groups != 1),
            ("--pool", opts.pool),
            ("--ceil", opts.ceil),
            ("--transposed", opts.transposed),
        )
        if given
    ]
    if ignored:
        raise ConvcalcError(
            f"{', '.join(ignored)} describe one layer given with -k; with layer specs or "
            "--net, write them into the spec instead (e.g. conv:6,5,s=2,p=1)"
        )
    specs = load_network(opts.net) if opts.net else []
    specs += parse_specs(spec_texts)
    if not specs:
        raise ConvcalcError(
            "nothing to compute: give a kernel with -k, layer specs such as conv:6,5, or --net NAME"
        )
    return Network(
        _input_shape(input_text, network_rank([s.layer for s in specs])), specs, convention
    )


def _imported(input_text: str | None, spec_texts: tuple[str, ...], opts: LayerOptions) -> Network:
    """A network read from an ONNX or Keras file; a given INPUT overrides the file's."""
    from convcalc.io.network_files import read_network_file

    assert opts.net is not None
    if spec_texts or opts.single:
        raise ConvcalcError("--net FILE takes no layer specs or -k beside it")
    imported = read_network_file(opts.net)
    rank = network_rank([spec.layer for spec in imported.specs])
    if input_text is not None:
        shape = _input_shape(input_text, rank)
    elif imported.input_shape is not None:
        shape = imported.input_shape
    else:
        raise ConvcalcError(
            f"{opts.net} leaves its input size open; give it as INPUT, e.g. 224x224x3"
        )
    say([f"note: {note}" for note in imported.notes])
    return Network(shape, imported.specs, imported.convention)


def _single_network(input_text: str, opts: LayerOptions) -> tuple[Shape, list[Spec]]:
    layer = _single_layer(opts)
    text = format_layer(layer)
    kernel_axes = len(parse_dims(str(opts.kernel), "kernel"))
    shape = _input_shape(input_text, kernel_axes if kernel_axes > 1 else None)
    if isinstance(layer, Conv | Deconv):
        layer = replace(layer, rank=len(shape.spatial))
    return shape, [Spec(text=text, layer=layer)]


def _input_shape(text: str, rank: int | None) -> Shape:
    """INPUT as `parse_shape` reads it, with a note on stderr when it looks channels-first."""
    shape = parse_shape(text, rank)
    hint = channels_first_hint(shape)
    if hint is not None:
        say([f"note: {hint}"])
    return shape


def _single_layer(opts: LayerOptions) -> Layer:
    """The one layer that -k/-s/-p/… describe."""
    kernel = parse_dims(str(opts.kernel), "kernel")
    stride = None if opts.stride is None else parse_dims(opts.stride, "stride")
    padding = parse_padding(opts.padding or "0")
    dilation = parse_dims(opts.dilation or "1", "dilation")
    if opts.pool:
        return Pool(
            kind=PoolKind(opts.pool),
            kernel=kernel,
            stride=stride,
            padding=padding,
            dilation=dilation,
            ceil=opts.ceil,
        )
    if opts.transposed:
        return Deconv(
            out=opts.filters,
            kernel=kernel,
            stride=stride or (1,),
            padding=padding,
            dilation=dilation,
            output_padding=parse_counts(opts.output_padding, "output padding"),
            groups=opts.groups,
            bias=not opts.no_bias,
        )
    return Conv(
        out=opts.filters,
        kernel=kernel,
        stride=stride or (1,),
        padding=padding,
        dilation=dilation,
        groups=opts.groups,
        bias=not opts.no_bias,
    )


def _is_network_file(name: str) -> bool:
    from convcalc.io.network_files import is_network_file

    return is_network_file(name)
