"""Layer specs as users type them (``conv:6,5,s=2``): read into layers, and layers
written back as their canonical specs (a round trip).

A spec is ``op`` or ``op:arg,arg,...``; positional arguments come first, then
``key=value`` pairs or bare flags. What each op accepts is `convcalc.calc.layer_table`;
its sizes and padding are read as `convcalc.calc.sizes` reads them. A network file
holds specs, one or more a line, with ``#`` comments and groups
(`convcalc.calc.sequence`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from convcalc.calc.choices import PoolKind
from convcalc.calc.geometry import Padding
from convcalc.calc.layer_table import ALIASES, OPS, did_you_mean
from convcalc.calc.layers import (
    AdaptivePool,
    BatchNorm,
    Conv,
    Deconv,
    Dense,
    DepthwiseConv,
    Flatten,
    GlobalPool,
    Group,
    InvertedResidual,
    Layer,
    LayerNorm,
    Mark,
    Merge,
    Pad,
    Pointwise,
    Pool,
    ResBlock,
    Scale,
    Spec,
    Upsample,
)
from convcalc.calc.sizes import format_dims, format_padding
from convcalc.errors import ConvcalcError


def parse_spec(text: str, where: str = "") -> Spec:
    """Read one layer spec such as ``conv:64,3,s=2,p=same`` or ``maxpool:2``."""
    op, _, rest = text.strip().partition(":")
    op = op.strip().lower()
    grammar = OPS.get(op)
    if grammar is None:
        raise ConvcalcError(
            f"{_at(where)}unknown layer '{op}' in '{_shown(text)}'"
            f"{did_you_mean(op, OPS)}; valid: {', '.join(sorted(OPS))}"
        )
    try:
        values = grammar.read(_split_args(rest, grammar.keys) if rest.strip() else [])
        layer = grammar.build(op, values)
    except ConvcalcError as exc:
        raise ConvcalcError(f"{_at(where)}{_shown(text)}: {exc}", grammar.usage(op)) from None
    return Spec(text.strip(), layer, where)


def looks_like_spec(token: str) -> bool:
    """True when a command-line word is a layer spec (``relu``, ``conv:k=sobel-x``)."""
    return token.partition(":")[0].strip().lower() in OPS


def format_layer(layer: Layer) -> str:
    """A layer written back as its canonical spec, the inverse of `parse_spec`.

    Defaults are left out (``conv:64,3`` rather than ``conv:64,3,s=1,p=0``); an
    unset filter count is ``_``; kernels given by their values are one ``k=`` each.

    Examples
    --------
    >>> format_layer(parse_spec("conv:64,3,stride=2,padding=1").layer)
    'conv:64,3,s=2,p=1'
    >>> parse_spec(format_layer(Pool(PoolKind.MAX, (3,), (2,)))).layer
    Pool(kind=<PoolKind.MAX: 'max'>, kernel=(3,), stride=(2,), padding=(0,), dilation=(1,), \
ceil=False, rank=None)
    """
    if isinstance(layer, Group):
        return format_group(layer)
    if isinstance(layer, Mark):
        return f"@{layer.name}"
    op, args = _WRITERS[type(layer)](layer)
    return f"{op}:{','.join(args)}" if args else op


def _split_args(rest: str, keys: Iterable[str]) -> list[str]:
    """Split on commas; a ``k=`` value (a kernel) runs on to the next of the layer's
    ``keys`` (so ``k=gauss:sigma=2,size=5,s=2`` keeps the generator's own ``size=``)."""
    layer_keys = set(keys) | set(ALIASES)
    args: list[str] = []
    in_kernel = False
    for part in rest.split(","):
        key = re.match(r"\s*([A-Za-z_]+)\s*=", part)
        starts_key = key is not None and key.group(1).lower() in layer_keys
        if in_kernel and not starts_key:
            args[-1] += "," + part
            continue
        in_kernel = re.match(r"\s*k\s*=", part) is not None
        args.append(part)
    for arg in args:
        if not arg.strip():
            raise ConvcalcError("an empty argument (two commas in a row?)")
    return args


def _shown(text: str) -> str:
    """A spec as an error message quotes it: long ones cut, so the message stays a line."""
    text = text.strip()
    return text if len(text) <= 60 else f"{text[:57]}…"


def _at(where: str) -> str:
    return f"{where}: " if where else ""


# -- writing specs back -----------------------------------------------------

Written = tuple[str, list[str]]
"""An op name and its arguments, as `format_layer` joins them."""


def _window_args(
    stride: Sequence[int] | None,
    padding: Sequence[Padding],
    dilation: Sequence[int],
    default_stride: Sequence[int] | None,
) -> list[str]:
    args = []
    if stride is not None and tuple(stride) != default_stride:
        args.append(f"s={format_dims(stride)}")
    if tuple(padding) != (0,):
        args.append(f"p={format_padding(padding)}")
    if tuple(dilation) != (1,):
        args.append(f"d={format_dims(dilation)}")
    return args


def _head(out: int | None, kernel: Sequence[int] | None, source: Sequence[str] | None) -> list[str]:
    if kernel is None:
        return ([] if out is None else [str(out)]) + [f"k={text}" for text in source or ()]
    return ["_" if out is None else str(out), format_dims(kernel)]


def _tail(groups: int, bias: bool) -> list[str]:
    return ([f"g={groups}"] if groups != 1 else []) + ([] if bias else ["bias=no"])


def _write_conv(layer: Any) -> Written:
    op = {1: "conv1d", 3: "conv3d"}.get(layer.rank, "conv")
    return op, [
        *_head(layer.out, layer.kernel, layer.source),
        *_window_args(layer.stride, layer.padding, layer.dilation, (1,)),
        *_tail(layer.groups, layer.bias),
    ]


def _write_deconv(layer: Any) -> Written:
    extra = (
        [] if tuple(layer.output_padding) == (0,) else [f"op={format_dims(layer.output_padding)}"]
    )
    return {1: "deconv1d", 3: "deconv3d"}.get(layer.rank, "deconv"), [
        *_head(layer.out, layer.kernel, layer.source),
        *_window_args(layer.stride, layer.padding, layer.dilation, (1,)),
        *extra,
        *_tail(layer.groups, layer.bias),
    ]


def _write_dwconv(layer: Any) -> Written:
    multiplier = [f"m={layer.multiplier}"] if layer.multiplier != 1 else []
    return "dwconv", [
        format_dims(layer.kernel),
        *multiplier,
        *_window_args(layer.stride, layer.padding, layer.dilation, (1,)),
        *_tail(1, layer.bias),
    ]


def _write_pool(layer: Any) -> Written:
    rank = "" if layer.rank is None else f"{layer.rank}d"
    return f"{layer.kind.value}pool{rank}", [
        format_dims(layer.kernel),
        *_window_args(layer.stride, layer.padding, layer.dilation, None),
        *(["ceil"] if layer.ceil else []),
    ]


def _write_block(layer: Any) -> Written:
    return layer.kind, [str(layer.width), *([f"s={layer.stride}"] if layer.stride != 1 else [])]


def _write_invres(layer: Any) -> Written:
    return "invres", [
        str(layer.out),
        *([f"t={layer.expand}"] if layer.expand != 6 else []),
        *([f"s={layer.stride}"] if layer.stride != 1 else []),
    ]


_WRITERS: dict[type, Callable[[Any], Written]] = {
    Conv: _write_conv,
    Deconv: _write_deconv,
    DepthwiseConv: _write_dwconv,
    Pool: _write_pool,
    GlobalPool: lambda layer: ("gap" if layer.kind == PoolKind.AVG else "gmp", []),
    AdaptivePool: lambda layer: ("adaptiveavgpool", [format_dims(layer.size)]),
    Dense: lambda layer: ("fc", [str(layer.units), *([] if layer.bias else ["bias=no"])]),
    Flatten: lambda layer: ("flatten", []),
    Pointwise: lambda layer: (layer.name, []),
    BatchNorm: lambda layer: ("bn", []),
    ResBlock: _write_block,
    InvertedResidual: _write_invres,
    Upsample: lambda layer: (
        "upsample",
        [format_dims(layer.scale), *([f"mode={layer.mode}"] if layer.mode != "nearest" else [])],
    ),
    Pad: lambda layer: ("pad", [format_dims(layer.padding)]),
    LayerNorm: lambda layer: ("ln", []),
    Scale: lambda layer: ("scale", []),
    Merge: lambda layer: (layer.kind, [*layer.names, *(["crop"] if layer.crop else [])]),
}


def format_group(group: Group) -> str:
    """A group written out whole: ``( conv:64,1 | conv:96,1 conv:128,3,p=1 ) concat``."""
    branches = [" ".join(format_layer(spec.layer) for spec in branch) for branch in group.branches]
    return "( " + " | ".join(branches).replace("  ", " ").strip() + f" ) {group.merge}"
