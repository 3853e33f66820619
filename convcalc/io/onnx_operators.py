"""The ONNX operator table: what each operator on activations becomes in convcalc.

One handler per operator (`OPERATORS`) turns a node into layers in a row, a merge of
activations, or nothing (its input passed on unchanged), reading the node through
`convcalc.io.onnx_graph.GraphReader`; a node it cannot size is `Refused` with why and
what would be valid. `FUSIONS` reads patterns of several nodes that together are one
layer: ``x * Sigmoid(x)`` is silu, ``x * HardSigmoid(x)`` hardswish, ``MatMul`` then
``Add`` of a bias one fully connected layer with a bias, and an asymmetric ``Pad``
before a convolution or pooling becomes that layer's (before, after) padding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from convcalc.calc.choices import PoolKind
from convcalc.calc.layers import (
    BatchNorm,
    Conv,
    Deconv,
    Dense,
    DepthwiseConv,
    Flatten,
    GlobalPool,
    Layer,
    Pad,
    Pointwise,
    Pool,
    Scale,
    Upsample,
)
from convcalc.io.onnx_graph import GraphReader, Refused, compact

if TYPE_CHECKING:
    from onnx import NodeProto


class Made(NamedTuple):
    """What a node becomes: layers in a row, a merge, or (neither) its input unchanged."""

    layers: tuple[Layer, ...] = ()
    merge: str = ""


_PASS = Made()

WINDOWED = frozenset({"Conv", "MaxPool", "AveragePool", "LpPool"})
"""Operators an asymmetric Pad before them is folded into."""


# -- the operators ---------------------------------------------------------

_Handler = Callable[[GraphReader, "NodeProto"], Made]


def _conv(r: GraphReader, node: NodeProto) -> Made:
    weight = r.weight_dims(node, 1)  # (C_out, C_in/groups, k...)
    kernel = tuple(r.attr(node, "kernel_shape", weight[2:]))
    rank = len(kernel)
    stride, dilation = _window(r, node, rank)
    padding = r.padding(node, rank)
    groups = r.attr(node, "group", 1)
    bias = len(node.input) > 2 and bool(node.input[2])
    if groups > 1 and weight[1] == 1:  # each input channel filtered on its own
        layer: Layer = DepthwiseConv(
            compact(kernel), weight[0] // groups, stride, padding, dilation, bias, rank
        )
    else:
        layer = Conv(weight[0], compact(kernel), stride, padding, dilation, groups, bias, rank)
    return Made((layer,))


def _deconv(r: GraphReader, node: NodeProto) -> Made:
    weight = r.weight_dims(node, 1)  # (C_in, C_out/groups, k...)
    if r.attr(node, "output_shape"):
        raise Refused("gives output_shape; valid: pads and output_padding")
    kernel = tuple(r.attr(node, "kernel_shape", weight[2:]))
    rank = len(kernel)
    stride, dilation = _window(r, node, rank)
    groups = r.attr(node, "group", 1)
    output_padding = compact(r.attr(node, "output_padding", [0] * rank))
    bias = len(node.input) > 2 and bool(node.input[2])
    layer = Deconv(
        weight[1] * groups,
        compact(kernel),
        stride,
        r.padding(node, rank),
        dilation,
        output_padding,
        groups,
        bias,
        rank,
    )
    return Made((layer,))


def _pool(r: GraphReader, node: NodeProto) -> Made:
    if node.op_type == "LpPool" and r.attr(node, "p", 2) != 2:
        raise Refused(f"pools with p={r.attr(node, 'p')}; valid: p=2 (L2 pooling)")
    kernel = tuple(r.attr(node, "kernel_shape"))
    stride, dilation = _window(r, node, len(kernel))
    kind = {"MaxPool": PoolKind.MAX, "AveragePool": PoolKind.AVG}.get(node.op_type, PoolKind.L2)
    layer = Pool(
        kind,
        compact(kernel),
        None if stride == compact(kernel) else stride,
        r.padding(node, len(kernel)),
        dilation,
        bool(r.attr(node, "ceil_mode", 0)),
    )
    return Made((layer,))


def _window(r: GraphReader, node: NodeProto, rank: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A windowed node's strides and dilations (ONNX's default 1)."""
    if rank not in (1, 2, 3):
        raise Refused(f"has a {rank}-D window; valid: 1-D, 2-D or 3-D")
    ones = [1] * rank
    return compact(r.attr(node, "strides", ones)), compact(r.attr(node, "dilations", ones))


def _gemm(r: GraphReader, node: NodeProto) -> Made:
    if r.attr(node, "transA", 0):
        raise Refused("transposes its input (transA=1); valid: a batch of flat vectors")
    weight = r.weight_dims(node, 1)
    units = weight[0] if r.attr(node, "transB", 0) else weight[1]
    return Made((Dense(units, len(node.input) > 2 and bool(node.input[2])),))


def _clip(r: GraphReader, node: NodeProto) -> Made:
    low, high = r.input_values(node, 1, "min"), r.input_values(node, 2, "max")
    bounds = (low[0] if low else None, high[0] if high else None)
    if bounds in ((0, 6), (0, None)):
        return Made((Pointwise("relu6" if bounds[1] else "relu"),))
    raise Refused(f"clips to {bounds}; valid: (0, 6), ReLU6, or (0, None), ReLU")


def _arithmetic(r: GraphReader, node: NodeProto) -> Made:
    """Add, Sub, Mul, Div: a merge of two activations, a per-channel scale, or none."""
    activations = set(t for t in node.input if t in r.data)
    if len(activations) > 1:
        if node.op_type in ("Add", "Mul"):
            return Made(merge=node.op_type.lower())
        raise Refused("combines two activations; valid: Add, Mul or Concat of activations")
    others = [t for t in node.input if t not in r.data]
    if node.op_type == "Mul" and others and _per_channel(r, others[0], node.input):
        return Made((Scale(),))
    return _PASS


def _per_channel(r: GraphReader, tensor: str, inputs: Iterable[str]) -> bool:
    """True for a weight of one value per channel (C, 1, 1), broadcast over HxW."""
    dims = r.dims(tensor)
    if tensor not in r.weights or dims is None:
        return False
    rank = max((r.rank(t) or 4) for t in inputs if t in r.data)
    big = [len(dims) - 1 - i for i, d in enumerate(dims) if d > 1]
    return big == [rank - 2]


def _concat(r: GraphReader, node: NodeProto) -> Made:
    axis, rank = r.attr(node, "axis"), r.rank(node.input[0])
    if not (axis == 1 or (rank is not None and axis % rank == 1)):
        raise Refused(f"concatenates along axis {axis}; valid: the channels (axis 1)")
    if any(t not in r.data for t in node.input):
        raise Refused("concatenates a constant to an activation; valid: activations")
    return Made(merge="concat")


def _flatten(r: GraphReader, node: NodeProto) -> Made:
    axis, rank = r.attr(node, "axis", 1), r.rank(node.input[0])
    if not (axis == 1 or (rank is not None and axis % rank == 1)):
        raise Refused(f"flattens from axis {axis}; valid: axis 1 (keeping the batch)")
    return Made((Flatten(),))


def _reshape(r: GraphReader, node: NodeProto) -> Made:
    """A reshape to (N, K) is a flatten; the target's rank is read from the inferred
    output shape, the constant target, or the length of the computed target."""
    target = r.shapes.get(node.output[0])
    values = r.values(node.input[1]) if len(node.input) > 1 else None
    given = r.dims(node.input[1]) if len(node.input) > 1 else None
    rank = len(target) if target else len(values) if values else given[0] if given else None
    if rank != 2:
        raise Refused(
            f"reshapes to rank {rank}; valid: a flat vector (N, -1), as x.view(x.size(0), -1)"
        )
    return _PASS if r.rank(node.input[0]) == 2 else Made((Flatten(),))


def _squeeze(r: GraphReader, node: NodeProto) -> Made:
    before, after = r.rank(node.input[0]), r.rank(node.output[0])
    if after == 2 and before is not None and before > 2:
        return Made((Flatten(),))
    raise Refused(f"squeezes rank {before} to rank {after}; valid: a 1x1 map to (N, C)")


def _pad(r: GraphReader, node: NodeProto) -> Made:
    pads = r.pads(node)
    if all(lo == hi for lo, hi in pads):
        return Made((Pad(compact([lo for lo, _ in pads])),))
    raise Refused(
        f"pads asymmetrically {pads} and no convolution or pooling follows to take it; "
        "valid: the same padding before and after"
    )


def _resize(r: GraphReader, node: NodeProto) -> Made:
    mode = {"nearest": "nearest", "linear": "bilinear", "bilinear": "bilinear"}.get(
        r.attr(node, "mode", "nearest")
    )
    if mode is None:
        raise Refused(f"resizes by {r.attr(node, 'mode')}; valid: nearest, linear")
    index = 1 if node.op_type == "Upsample" or len(node.input) == 2 else 2
    scales = r.input_values(node, index, "scales")
    if not scales:  # target sizes instead: inferred, or the constant input
        before = r.dims(node.input[0])
        sizes = node.input[3] if len(node.input) > 3 else ""
        after = r.dims(node.output[0]) or (r.values(sizes) if sizes else None)
        if before and after and len(before) == len(after):
            scales = [b / a for a, b in zip(before, after, strict=True)]
    if not scales or scales[:2] != [1, 1] or any(not s.is_integer() or s < 1 for s in scales):
        raise Refused(f"scales by {scales}; valid: whole factors of the spatial axes")
    return Made((Upsample(compact([int(s) for s in scales[2:]]), mode),))


def _reduce(r: GraphReader, node: NodeProto) -> Made:
    axes = r.input_values(node, 1, "axes")
    rank = r.rank(node.input[0]) or 4
    if axes is None or sorted(int(a) % rank for a in axes) != list(range(2, rank)):
        raise Refused(f"reduces axes {axes}; valid: every spatial axis, a global pooling")
    pool = GlobalPool(PoolKind.AVG if node.op_type == "ReduceMean" else PoolKind.MAX)
    return Made((pool,) if r.attr(node, "keepdims", 1) else (pool, Flatten()))


def _pointwise(name: str) -> _Handler:
    return lambda r, node: Made((Pointwise(name),))


OPERATORS: dict[str, _Handler] = {
    "Conv": _conv,
    "ConvTranspose": _deconv,
    "Gemm": _gemm,
    "MatMul": lambda r, node: Made((Dense(r.matmul_units(node), False),)),
    "BatchNormalization": lambda r, node: Made((BatchNorm(),)),
    "MaxPool": _pool,
    "AveragePool": _pool,
    "LpPool": _pool,
    "GlobalAveragePool": lambda r, node: Made((GlobalPool(PoolKind.AVG),)),
    "GlobalMaxPool": lambda r, node: Made((GlobalPool(PoolKind.MAX),)),
    "ReduceMean": _reduce,
    "ReduceMax": _reduce,
    "Relu": _pointwise("relu"),
    "LeakyRelu": _pointwise("lrelu"),
    "Clip": _clip,
    "Sigmoid": _pointwise("sigmoid"),
    "Tanh": _pointwise("tanh"),
    "HardSigmoid": _pointwise("hsigmoid"),
    "HardSwish": _pointwise("hardswish"),
    "Gelu": _pointwise("gelu"),
    "Softmax": _pointwise("softmax"),
    "LRN": _pointwise("lrn"),
    "Dropout": _pointwise("dropout"),
    "Add": _arithmetic,
    "Sub": _arithmetic,
    "Mul": _arithmetic,
    "Div": _arithmetic,
    "Concat": _concat,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Squeeze": _squeeze,
    "Pad": _pad,
    "Resize": _resize,
    "Upsample": _resize,
    "Identity": lambda r, node: _PASS,
    "Cast": lambda r, node: _PASS,
}
"""What each operator on activations becomes (Constant, Shape and the other operators
on constants and shapes make nothing)."""


# -- nodes that together are one layer ---------------------------------------


def _fuse_gate(r: GraphReader, node: NodeProto) -> None:
    """``x * Sigmoid(x)`` is silu and ``x * HardSigmoid(x)`` hardswish, when the gate
    feeds nothing else."""
    for gate, tensor in zip(node.input, reversed(node.input), strict=True):
        maker = r.producer.get(gate)
        if maker is None or maker.input[0] != tensor or r.consumers[gate] != [node]:
            continue
        hard = abs(r.attr(maker, "alpha", 0.2) - 1 / 6) < 1e-6 and r.attr(maker, "beta", 0.5) == 0.5
        kind = {"Sigmoid": "silu", "HardSigmoid": "hardswish" if hard else ""}.get(maker.op_type)
        if kind:
            r.fused[node.output[0]] = (Pointwise(kind), tensor)
            r.dropped.add(gate)
            return


def _fuse_bias(r: GraphReader, node: NodeProto) -> None:
    """``MatMul`` by a constant then ``Add`` of a constant of N values: ``fc:N``."""
    for product, bias in zip(node.input, reversed(node.input), strict=True):
        maker = r.producer.get(product)
        if maker is None or maker.op_type != "MatMul" or r.consumers[product] != [node]:
            continue
        try:
            units = r.matmul_units(maker)
        except Refused:
            return
        dims = r.dims(bias)
        if bias not in r.data and dims is not None and _size(dims) == units:
            r.fused[node.output[0]] = (Dense(units, True), r.activation_input(maker))
            r.dropped.add(product)
            return


def _fuse_pad(r: GraphReader, node: NodeProto) -> None:
    """An asymmetric Pad whose one reader is a convolution or pooling: its padding."""
    users = r.consumers.get(node.output[0], [])
    if len(users) != 1 or users[0].op_type not in WINDOWED or users[0].input[0] != node.output[0]:
        return
    if r.attr(users[0], "auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        return
    try:
        pads = r.pads(node)
    except Refused:
        return
    if all(lo == hi for lo, hi in pads):
        return
    r.extra_pads[users[0].output[0]] = pads
    r.alias[node.output[0]] = node.input[0]
    r.dropped.add(node.output[0])


FUSIONS: dict[str, Callable[[GraphReader, NodeProto], None]] = {
    "Mul": _fuse_gate,
    "Add": _fuse_bias,
    "Pad": _fuse_pad,
}
"""The operators that end a pattern of nodes, and what records the pattern as one layer."""


def _size(dims: Sequence[int]) -> int:
    total = 1
    for d in dims:
        total *= d
    return total
