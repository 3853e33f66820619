"""The layer table: what each op of a layer spec accepts and the layer it builds.

`OPS` maps each op (``conv``, ``maxpool``, ``relu`` …) to its grammar: its positional
arguments, its ``key=value`` keys with the reader of each value, its bare flags, and
the builder that makes the `convcalc.calc.layers` record. `ALIASES` are the long key
names (``stride`` for ``s``). `convcalc.calc.grammar.parse_spec` splits a spec and
reads it by this table; values are sizes as `convcalc.calc.sizes` reads them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from convcalc.calc.choices import PoolKind
from convcalc.calc.layers import (
    AdaptivePool,
    BatchNorm,
    Conv,
    Deconv,
    Dense,
    DepthwiseConv,
    Flatten,
    GlobalPool,
    InvertedResidual,
    Layer,
    LayerNorm,
    Merge,
    Pad,
    Pointwise,
    Pool,
    ResBlock,
    Scale,
    Upsample,
)
from convcalc.calc.sizes import MAX_DIGITS, MAX_SIZE, parse_counts, parse_dims, parse_padding
from convcalc.errors import ConvcalcError

Reader = Callable[[str], Any]


def _int(text: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", text.strip()):
        raise ConvcalcError(f"'{text}' is not an integer")
    if len(text.strip().lstrip("+-")) > MAX_DIGITS:
        raise ConvcalcError(f"'{text[:20]}…' is not valid: it must be at most {MAX_SIZE:,}")
    return int(text)


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
            key = ALIASES.get(key.strip().lower(), key.strip().lower())
            if eq:
                if key not in self.keys:
                    known = [*self.keys, *(a for a, k in ALIASES.items() if k in self.keys)]
                    raise ConvcalcError(f"unknown key '{key}'{did_you_mean(key, known)}")
                read = _reader(self.keys[key], key)(value.strip())
                if key == "k":  # one k= per filter: conv:k=A,k=B
                    values[key] = (*values.get(key, ()), read)
                    continue
                if key in values:
                    raise ConvcalcError(f"'{key}' given twice")
                values[key] = read
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
ALIASES = {
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


def _kernel_and_source(
    v: dict[str, Any],
) -> tuple[tuple[int, ...] | None, tuple[str, ...] | None]:
    """The kernel size, and the kernels' values as written with ``k=``, one per filter
    (one ``k=`` that is a size, ``k=3x3``, is a size)."""
    kernel, source = v.get("kernel"), v.get("k")
    if source is None:
        return kernel, None
    if kernel is None and len(source) == 1 and re.fullmatch(r"\d+(x\d+)*", source[0]):
        return _dims(source[0]), None
    return kernel, source


def _build_dwconv(op: str, v: dict[str, Any]) -> Layer:
    kernel, source = _kernel_and_source(v)
    if kernel is None:
        values = ",".join(f"k={text}" for text in source or ())
        raise ConvcalcError(
            f"takes a kernel size, not kernel values ({values}); in apply, "
            f"conv:{values} filters each channel on its own (--channels each)"
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
OPS: dict[str, _Grammar] = {
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
    OPS[_name] = _Grammar(
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
    OPS[_name] = _Grammar(builder=lambda op, v: Pointwise("silu" if op == "swish" else op))
OPS["ln"] = _Grammar(builder=lambda op, v: LayerNorm())
OPS["scale"] = _Grammar(builder=lambda op, v: Scale())
OPS["upsample"] = _Grammar(
    ("s",),
    1,
    {"s": _dims, "mode": _upsample_mode},
    (),
    lambda op, v: Upsample(v["s"], v.get("mode", "nearest")),
    "upsample:S[,mode=nearest|bilinear]",
)
OPS["pad"] = _Grammar(("p",), 1, {"p": _count}, (), lambda op, v: Pad(v["p"]), "pad:P (or HxW)")
for _name in MERGES:
    OPS[_name] = _Grammar(
        ("n1", "n2", "n3", "n4"),
        0,
        dict.fromkeys(("n1", "n2", "n3", "n4"), _tensor_name),
        ("crop",),
        _build_merge,
        f"{_name}:NAME[,NAME...][,crop]",
    )


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'conv'?)`` for the closest of ``choices``, or nothing."""
    import difflib  # only on this error path: difflib costs start-up time

    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
