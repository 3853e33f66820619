"""The text forms users type: shapes (``32x32x3``) and layer specs (``conv:6,5,s=2``).

A spec is ``op`` or ``op:arg,arg,...``; positional arguments come first, then
``key=value`` pairs or bare flags. Sizes are ``N`` or per axis ``HxW``; padding
is a count, ``HxW``, ``same``, ``valid`` or ``full``. A network file holds specs,
one or more a line, with ``#`` comments.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

from convcalc.calc.choices import PadRule, PoolKind
from convcalc.calc.geometry import Padding
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
    Shape,
    Spec,
    Upsample,
)
from convcalc.errors import ConvcalcError

MAX_SIZE = 10**9
"""Sizes above this are refused: no real tensor axis is that long."""


def parse_shape(text: str, rank: int | None = None) -> Shape:
    """Read ``32x32x3`` (HxWxC), ``32x32`` (HxW), ``7`` or ``16x32x32x3`` (DxHxWxC).

    With ``rank`` (the number of spatial axes the layers work on), a shape of
    ``rank`` numbers has no channel count and one of ``rank + 1`` ends with the
    channels. Without it, 1-2 numbers are spatial, 3 are HxWxC and 4 are DxHxWxC.
    A single number is always one axis (a signal, or a flat vector for ``fc``):
    never silently a square.

    Examples
    --------
    >>> str(parse_shape("224x224x3"))
    '224x224x3'
    >>> parse_shape("100x16", rank=1)
    Shape(spatial=(100,), channels=16)
    """
    numbers = parse_dims(text, "input shape")
    if rank is None:
        rank = len(numbers) if len(numbers) <= 2 else len(numbers) - 1
    if len(numbers) == 1 and rank > 1:
        square = "x".join([text.strip()] * rank)
        raise ConvcalcError(
            f"input shape '{text}' is one axis but the layers work on {rank} spatial axes; "
            f"valid: {square} or {square}xC (channels last), or {rank}-D layers replaced "
            "by 1-D ones (conv1d)"
        )
    if len(numbers) == rank:
        return Shape(numbers)
    if len(numbers) == rank + 1:
        return Shape(numbers[:-1], numbers[-1])
    axes = "axis" if rank == 1 else "axes"
    raise ConvcalcError(
        f"input shape '{text}' has {len(numbers)} numbers but the layers work on {rank} "
        f"spatial {axes}; valid: {rank} or {rank + 1} numbers (the last being channels)"
    )


def channels_first_hint(shape: Shape) -> str | None:
    """A note when a channels-last shape reads like a channels-first one, else None.

    ``3x224x224`` (PyTorch's CxHxW) is read as HxWxC: 3 rows, 224 columns and 224
    channels. The pattern is a first axis of at most 4 (an image's channel count)
    and a last spatial axis of 8 or more equal to the channel count (a square
    image); a real 3x3x512 feature map does not match it.

    Examples
    --------
    >>> channels_first_hint(parse_shape("224x224x3")) is None
    True
    >>> channels_first_hint(parse_shape("1x28x28"))
    'input 1x28x28 is read as HxWxC (1x28, 28 channels); channels go last: 28x28x1'
    """
    if shape.channels is None or len(shape.spatial) < 2:
        return None
    first, last = shape.spatial[0], shape.spatial[-1]
    if first > 4 or last != shape.channels or last < 8:
        return None
    given = format_dims([*shape.spatial, shape.channels])
    spatial = format_dims(shape.spatial)
    meant = format_dims([*shape.spatial[1:], shape.channels, first])
    return (
        f"input {given} is read as {'DxHxWxC' if len(shape.spatial) == 3 else 'HxWxC'} "
        f"({spatial}, {shape.channels} channels); channels go last: {meant}"
    )


def parse_dims(text: str, what: str) -> tuple[int, ...]:
    """Read a positive size, or one per axis separated by ``x``: ``3`` or ``3x5``."""
    parts = text.strip().lower().split("x")
    if not 1 <= len(parts) <= 4 or not all(re.fullmatch(r"\+?\d+", p) for p in parts):
        raise ConvcalcError(
            f"{what} '{text}' is not a size; valid: a positive integer or one per axis "
            "separated by x, such as 3 or 3x5"
        )
    values = tuple(_bounded(p, what, text, lowest=1) for p in parts)
    return values


def parse_counts(text: str, what: str) -> tuple[int, ...]:
    """Read a count of 0 or more, or one per axis separated by ``x``: ``0`` or ``1x0``."""
    if not re.fullmatch(r"\+?\d+(x\+?\d+){0,3}", text.strip().lower()):
        raise ConvcalcError(
            f"{what} '{text}' is not valid; valid: a count of 0 or more, or one per axis "
            "such as 1x0"
        )
    return tuple(_bounded(p, what, text, lowest=0) for p in text.strip().lower().split("x"))


def parse_padding(text: str) -> tuple[Padding, ...]:
    """Read padding: ``N``, ``HxW``, ``same``, ``valid`` or ``full``; an axis padded
    unevenly is ``BEFORE+AFTER`` (``0+1x0+1``: one row after, one column after)."""
    word = text.strip().lower()
    if word in {rule.value for rule in PadRule}:
        return (PadRule(word),)
    if re.fullmatch(r"\+?\d+(x\+?\d+){0,3}", word):
        return parse_counts(word, "padding")
    if not re.fullmatch(r"\d+(\+\d+)?(x\d+(\+\d+)?){0,3}", word):
        raise ConvcalcError(
            f"padding '{text}' is not valid; valid: a count of 0 or more, HxW, BEFORE+AFTER "
            "per axis (0+1), same, valid or full"
        )
    return tuple(_uneven(part, text) for part in word.split("x"))


def _uneven(part: str, text: str) -> Padding:
    before, _, after = part.partition("+")
    lo = _bounded(before, "padding", text, lowest=0)
    return lo if not after else (lo, _bounded(after, "padding", text, lowest=0))


def parse_spec(text: str, where: str = "") -> Spec:
    """Read one layer spec such as ``conv:64,3,s=2,p=same`` or ``maxpool:2``."""
    op, _, rest = text.strip().partition(":")
    op = op.strip().lower()
    grammar = _OPS.get(op)
    if grammar is None:
        raise ConvcalcError(
            f"{_at(where)}unknown layer '{op}' in '{_shown(text)}'"
            f"{_did_you_mean(op, _OPS)}; valid: {', '.join(sorted(_OPS))}"
        )
    try:
        values = grammar.read(_split_args(rest, grammar.keys) if rest.strip() else [])
        layer = grammar.build(op, values)
    except ConvcalcError as exc:
        raise ConvcalcError(f"{_at(where)}{_shown(text)}: {exc}", grammar.usage(op)) from None
    return Spec(text.strip(), layer, where)


def looks_like_spec(token: str) -> bool:
    """True when a command-line word is a layer spec (``relu``, ``conv:k=sobel-x``)."""
    return token.partition(":")[0].strip().lower() in _OPS


def format_layer(layer: Layer, sources: Sequence[str] | None = None) -> str:
    """A layer written back as its canonical spec, the inverse of `parse_spec`.

    Defaults are left out (``conv:64,3`` rather than ``conv:64,3,s=1,p=0``); an
    unset filter count is ``_``. ``sources`` writes one ``k=`` per kernel, for
    apply's option form with several ``-k`` (otherwise the layer's own ``source``).

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
    if sources is not None:
        own = [a for a in args if a != "_" and not a.startswith("k=")]
        args = [f"k={source}" for source in sources] + own
    return f"{op}:{','.join(args)}" if args else op


def format_dims(values: Sequence[int]) -> str:
    """Per-axis sizes as typed: ``3`` or ``3x5``."""
    return "x".join(str(v) for v in values)


def format_padding(padding: Sequence[Padding]) -> str:
    """Padding as typed: ``1``, ``1x2``, ``0+1`` (before+after), ``same``."""
    return "x".join(
        p.value if isinstance(p, PadRule) else f"{p[0]}+{p[1]}" if isinstance(p, tuple) else str(p)
        for p in padding
    )


# -- the grammar of each op -------------------------------------------------

Reader = Callable[[str], Any]


def _int(text: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", text.strip()):
        raise ConvcalcError(f"'{text}' is not an integer")
    if len(text.strip().lstrip("+-")) > _MAX_DIGITS:
        raise ConvcalcError(f"'{text[:20]}…' is not valid: it must be at most {MAX_SIZE:,}")
    return int(text)


_MAX_DIGITS = len(str(MAX_SIZE))


def _bounded(digits: str, what: str, text: str, *, lowest: int) -> int:
    """One axis's value, from ``lowest`` to MAX_SIZE; the digits are counted before
    they are converted, so a 5,000-digit number is a bad value, not a crash."""
    shown = text if len(text) <= 24 else f"{text[:20]}…"
    value = int(digits) if len(digits.lstrip("+0")) <= _MAX_DIGITS else MAX_SIZE + 1
    if not lowest <= value <= MAX_SIZE:
        raise ConvcalcError(
            f"{what} '{shown}' is not valid: each value must be between {lowest} and {MAX_SIZE:,}"
        )
    return value


def _positive(text: str) -> int:
    value = _int(text)
    if value < 1 or value > MAX_SIZE:
        raise ConvcalcError(f"'{text}' is not valid: it must be between 1 and {MAX_SIZE:,}")
    return value


def _count(text: str) -> tuple[int, ...]:
    return parse_counts(text, "value")


def _yes_no(text: str) -> bool:
    word = text.strip().lower()
    if word in {"yes", "true", "1", "on"}:
        return True
    if word in {"no", "false", "0", "off"}:
        return False
    raise ConvcalcError(f"'{text}' is not yes or no")


def _dims(text: str) -> tuple[int, ...]:
    return parse_dims(text, "size")


def _text(text: str) -> str:
    if not text:
        raise ConvcalcError("an empty value")
    return text


class _Grammar(NamedTuple):
    """What one op accepts: positional names, keys with their readers, flags."""

    positional: tuple[str, ...] = ()
    required: int = 0
    keys: Mapping[str, Reader] = MappingProxyType({})
    flags: tuple[str, ...] = ()
    builder: Callable[[str, dict[str, Any]], Layer] | None = None
    form: str = ""

    def read(self, args: list[str]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        positional = 0
        for arg in args:
            key, eq, value = arg.partition("=")
            key = _ALIASES.get(key.strip().lower(), key.strip().lower())
            if eq:
                if key not in self.keys:
                    known = [*self.keys, *(a for a, k in _ALIASES.items() if k in self.keys)]
                    raise ConvcalcError(f"unknown key '{key}'{_did_you_mean(key, known)}")
                if key in values:
                    raise ConvcalcError(f"'{key}' given twice")
                values[key] = _reader(self.keys[key], key)(value.strip())
            elif key in self.flags:
                values[key] = True
            elif positional < len(self.positional):
                name = self.positional[positional]
                values[name] = _reader(self.keys[name], name)(arg.strip())
                positional += 1
            else:
                raise ConvcalcError(f"too many arguments at '{arg}'")
        missing = [n for n in self.positional[: self.required] if n not in values]
        if missing and "k" not in values:
            raise ConvcalcError(f"missing {' and '.join(missing)}")
        return values

    def build(self, op: str, values: dict[str, Any]) -> Layer:
        assert self.builder is not None
        return self.builder(op, values)

    def usage(self, op: str) -> str:
        return f"Write it as {self.form or op}." if self.form else f"Write it as {op}."


def _reader(reader: Reader, name: str) -> Reader:
    def read(text: str) -> Any:
        try:
            return reader(text)
        except ConvcalcError as exc:
            raise ConvcalcError(f"{name} {exc}") from None

    return read


_WINDOW_KEYS: dict[str, Reader] = {
    "s": _dims,
    "p": parse_padding,
    "d": _dims,
}


def _filters(text: str) -> int | None:
    """A filter count, or ``_`` for "as many as the input has channels"."""
    return None if text.strip() == "_" else _positive(text)


_CONV_KEYS: dict[str, Reader] = {
    **_WINDOW_KEYS,
    "out": _filters,
    "kernel": _dims,
    "g": _positive,
    "bias": _yes_no,
    "k": _text,
}
_ALIASES = {
    "stride": "s",
    "padding": "p",
    "pad": "p",
    "dilation": "d",
    "groups": "g",
    "filters": "out",
    "output_padding": "op",
    "multiplier": "m",
    "expand": "t",
}


def _build_conv(op: str, v: dict[str, Any]) -> Layer:
    rank = {"conv1d": 1, "conv3d": 3}.get(op, 2)
    kernel, source = _kernel_and_source(v)
    return Conv(
        v.get("out"),
        kernel,
        v.get("s", (1,)),
        v.get("p", (0,)),
        v.get("d", (1,)),
        v.get("g", 1),
        v.get("bias", True),
        rank,
        source,
    )


def _kernel_and_source(v: dict[str, Any]) -> tuple[tuple[int, ...] | None, str | None]:
    """The kernel size, and the kernel's values as written with ``k=`` (a size is a size)."""
    kernel, source = v.get("kernel"), v.get("k")
    if source is not None and kernel is None and re.fullmatch(r"\d+(x\d+)*", source):
        return _dims(source), None
    return kernel, source


def _build_dwconv(op: str, v: dict[str, Any]) -> Layer:
    kernel, source = _kernel_and_source(v)
    if kernel is None:
        raise ConvcalcError(
            f"takes a kernel size, not kernel values (k={source}); in apply, "
            f"conv:k={source} filters each channel on its own (--channels each)"
        )
    return DepthwiseConv(
        kernel,
        v.get("m", 1),
        v.get("s", (1,)),
        v.get("p", (0,)),
        v.get("d", (1,)),
        v.get("bias", True),
    )


def _build_deconv(op: str, v: dict[str, Any]) -> Layer:
    kernel, source = _kernel_and_source(v)
    rank = {"deconv1d": 1, "deconv3d": 3}.get(op, 2)
    return Deconv(
        v.get("out"),
        kernel,
        v.get("s", (1,)),
        v.get("p", (0,)),
        v.get("d", (1,)),
        v.get("op", (0,)),
        v.get("g", 1),
        v.get("bias", True),
        rank,
        source,
    )


def _build_pool(op: str, v: dict[str, Any]) -> Layer:
    name, rank = (op[:-2], int(op[-2])) if op.endswith(("1d", "3d")) else (op, None)
    kind = PoolKind(name.removesuffix("pool"))
    return Pool(
        kind,
        v["kernel"],
        v.get("s"),
        v.get("p", (0,)),
        v.get("d", (1,)),
        v.get("ceil", False),
        rank,
    )


def _upsample_mode(text: str) -> str:
    if text.strip().lower() not in ("nearest", "bilinear"):
        raise ConvcalcError(f"'{text}' is not a mode; valid: nearest or bilinear")
    return text.strip().lower()


def _tensor_name(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text.strip()):
        raise ConvcalcError(f"'{text}' is not a name; valid: letters, digits and _, such as a1")
    return text.strip()


def _build_merge(op: str, v: dict[str, Any]) -> Layer:
    names = tuple(v[key] for key in ("n1", "n2", "n3", "n4") if key in v)
    if not names:
        raise ConvcalcError(
            f"{op} needs the name of a tensor ({op}:NAME, after @NAME), or closes a group: "
            f"( A | B ) {op}"
        )
    return Merge(op, names, v.get("crop", False))


def _build_block(op: str, v: dict[str, Any]) -> Layer:
    stride = v.get("s", (1,))
    if len(stride) != 1:
        raise ConvcalcError(f"s {'x'.join(map(str, stride))} must be one number")
    return ResBlock(op, v["out"], stride[0])


def _build_invres(op: str, v: dict[str, Any]) -> Layer:
    stride = v.get("s", (1,))
    if len(stride) != 1:
        raise ConvcalcError(f"s {'x'.join(map(str, stride))} must be one number")
    return InvertedResidual(v["out"], v.get("t", 6), stride[0])


_CONV = _Grammar(
    ("out", "kernel", "s", "p"),
    2,
    _CONV_KEYS,
    (),
    _build_conv,
    "conv:OUT,K[,s=S][,p=P][,d=D][,g=G][,bias=no]",
)
_POOL = _Grammar(
    ("kernel", "s", "p"),
    1,
    {**_WINDOW_KEYS, "kernel": _dims},
    ("ceil",),
    _build_pool,
    "maxpool:K[,s=S][,p=P][,d=D][,ceil]",
)
_DECONV = _Grammar(
    ("out", "kernel", "s", "p"),
    2,
    {**_CONV_KEYS, "op": _count},
    (),
    _build_deconv,
    "deconv:OUT,K[,s=S][,p=P][,op=OP]",
)
_OPS: dict[str, _Grammar] = {
    "conv": _CONV,
    "conv1d": _CONV,
    "conv3d": _CONV,
    "dwconv": _Grammar(
        ("kernel",),
        1,
        {**_CONV_KEYS, "m": _positive},
        (),
        _build_dwconv,
        "dwconv:K[,m=M][,s=S][,p=P][,d=D][,bias=no]",
    ),
    "deconv": _DECONV,
    "deconv1d": _DECONV,
    "deconv3d": _DECONV,
    "maxpool": _POOL,
    "avgpool": _POOL,
    "l2pool": _POOL,
    "maxpool1d": _POOL,
    "maxpool3d": _POOL,
    "avgpool1d": _POOL,
    "avgpool3d": _POOL,
    "gap": _Grammar(builder=lambda op, v: GlobalPool(PoolKind.AVG)),
    "adaptiveavgpool": _Grammar(
        ("size",),
        1,
        {"size": _dims},
        (),
        lambda op, v: AdaptivePool(v["size"]),
        "adaptiveavgpool:S (S or HxW, the output size)",
    ),
    "gmp": _Grammar(builder=lambda op, v: GlobalPool(PoolKind.MAX)),
    "flatten": _Grammar(builder=lambda op, v: Flatten()),
    "bn": _Grammar(builder=lambda op, v: BatchNorm()),
    "basic": _Grammar(
        ("out",), 1, {"out": _positive, "s": _dims}, (), _build_block, "basic:OUT[,s=S]"
    ),
    "bottleneck": _Grammar(
        ("out",), 1, {"out": _positive, "s": _dims}, (), _build_block, "bottleneck:MID[,s=S]"
    ),
    "invres": _Grammar(
        ("out",),
        1,
        {"out": _positive, "s": _dims, "t": _positive},
        (),
        _build_invres,
        "invres:OUT[,t=T][,s=S]",
    ),
}
for _name in ("fc", "linear", "dense"):
    _OPS[_name] = _Grammar(
        ("units",),
        1,
        {"units": _positive, "bias": _yes_no},
        (),
        lambda op, v: Dense(v["units"], v.get("bias", True)),
        f"{_name}:N[,bias=no]",
    )
POINTWISE = (
    "relu", "lrelu", "relu6", "sigmoid", "tanh", "softmax", "dropout", "lrn", "gelu", "silu",
    "swish", "hardswish", "hsigmoid", "identity",
)  # fmt: skip
"""Layers that keep the shape and hold no parameters (``swish`` is ``silu``)."""

MERGES = ("concat", "add", "mul")
"""How branches or named tensors are merged."""

for _name in POINTWISE:
    _OPS[_name] = _Grammar(builder=lambda op, v: Pointwise("silu" if op == "swish" else op))
_OPS["ln"] = _Grammar(builder=lambda op, v: LayerNorm())
_OPS["scale"] = _Grammar(builder=lambda op, v: Scale())
_OPS["upsample"] = _Grammar(
    ("s",),
    1,
    {"s": _dims, "mode": _upsample_mode},
    (),
    lambda op, v: Upsample(v["s"], v.get("mode", "nearest")),
    "upsample:S[,mode=nearest|bilinear]",
)
_OPS["pad"] = _Grammar(("p",), 1, {"p": _count}, (), lambda op, v: Pad(v["p"]), "pad:P (or HxW)")
for _name in MERGES:
    _OPS[_name] = _Grammar(
        ("n1", "n2", "n3", "n4"),
        0,
        dict.fromkeys(("n1", "n2", "n3", "n4"), _tensor_name),
        ("crop",),
        _build_merge,
        f"{_name}:NAME[,NAME...][,crop]",
    )


def _split_args(rest: str, keys: Iterable[str]) -> list[str]:
    """Split on commas; a ``k=`` value (a kernel) runs on to the next of the layer's
    ``keys`` (so ``k=gauss:sigma=2,size=5,s=2`` keeps the generator's own ``size=``)."""
    layer_keys = set(keys) | set(_ALIASES)
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


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    import difflib  # only on this error path: difflib costs start-up time

    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


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


def _head(out: int | None, kernel: Sequence[int] | None, source: str | None) -> list[str]:
    if kernel is None:
        return ([] if out is None else [str(out)]) + ([f"k={source}"] if source else [])
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
