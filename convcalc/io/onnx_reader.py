"""Networks read from ONNX files: the operators real exports hold, as convcalc's layers.

`read_onnx` needs the ``onnx`` package (``pip install 'convcalc[onnx]'``), imported only
here. Nodes that do not lead to the file's first output are dropped; the others are
read in the file's order (ONNX keeps it topological) in three passes:

1. which tensors carry activations: those computed from the graph's input. Weights
   (initializers), constants, and what is computed from them or from a tensor's shape
   alone (``Shape``, ``Gather``, ``Concat`` …: the ``x.view(x.size(0), -1)`` chain; the
   random mask of stochastic depth) carry none and make no layer.
2. nodes that together are one layer: ``x * Sigmoid(x)`` is silu, ``x * HardSigmoid(x)``
   hardswish, ``MatMul`` then ``Add`` of a bias one fully connected layer with a bias,
   and an asymmetric ``Pad`` before a convolution or pooling becomes that layer's
   (before, after) padding.
3. every other node on activations becomes a layer (the table `_OPERATORS`), a merge
   (``Add`` and ``Mul`` of two activations, ``Concat`` along the channels), or passes
   its input on unchanged (``Identity``, ``Cast``, arithmetic with a constant).

Concatenations the exporter flattened (Inception-v3's nested ones, DenseNet's
concatenation of every earlier output) are then nested again (`_nested_concats`), and
`convcalc.calc.dag.graph_specs` turns the nodes into specs with groups.

Notes
-----
Parameters are counted from the layers, so they are the file's weights: an export in
eval mode has batch norm folded into the convolutions (which gain biases), one with
``do_constant_folding=False`` keeps ``BatchNormalization`` (2·C parameters, and its
running statistics 2·C buffers). A ``Mul`` by a per-channel initializer is a learnable
scale (C parameters); other arithmetic with constants (input normalisation, a scalar,
the ``Div`` of stochastic depth) holds no parameters and passes its input on.
``SAME_UPPER`` and ``SAME_LOWER`` both become ``same`` (same sizes; LOWER puts the odd
padding before) and make the file's convention ``tf``. Weights kept in external data
files are not read: only their shapes count.

The module runs past 400 lines: the reader, the operator table with its handlers, and
the patterns of several nodes read each other's records and belong together.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from convcalc.calc.choices import Convention, PadRule, PoolKind
from convcalc.calc.dag import Node, graph_specs
from convcalc.calc.geometry import Padding
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
    Shape,
    Upsample,
)
from convcalc.errors import ConvcalcError, RuntimeFailure
from convcalc.io.network_files import ImportedNetwork

if TYPE_CHECKING:
    from onnx import GraphProto, ModelProto, NodeProto, TensorProto

MISSING_ONNX = "reading .onnx files needs the onnx package: pip install 'convcalc[onnx]'"


def read_onnx(path: str) -> ImportedNetwork:
    """The network in an ONNX file: its layers and groups, its input, its convention.

    Parameters
    ----------
    path : str
        An ``.onnx`` file, as ``torch.onnx.export`` writes it.

    Returns
    -------
    ImportedNetwork
        The specs (each one's ``where`` names its node), the input as HxWxC (from
        NCHW; None when the file leaves a spatial size or the channels open) and the
        convention: ``tf`` when a node pads ``SAME_UPPER``/``SAME_LOWER``, else ``torch``.

    Raises
    ------
    RuntimeFailure
        The onnx package is missing, or the file cannot be read.
    ConvcalcError
        The file is no ONNX model, a node is an operator convcalc cannot size (named
        with its node), or the graph is not made of forks and joins.
    """
    model = _load(path)
    source = os.path.basename(path)
    reader = _Reader(model, source)
    nodes, output = reader.nodes()
    specs = graph_specs(nodes, source, output)
    return ImportedNetwork(specs, reader.input_shape(), reader.convention)


def _load(path: str) -> ModelProto:
    """The model in the file, with the shapes ONNX's inference finds added."""
    try:
        import onnx
    except ImportError:
        raise RuntimeFailure(MISSING_ONNX) from None
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise RuntimeFailure(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        model = onnx.load_model_from_string(data)
    except Exception:  # protobuf's DecodeError, or worse: the bytes are not a model
        model = None
    if model is None or not model.graph.node:
        raise ConvcalcError(f"{path} is not an ONNX model (no graph of nodes in it)")
    try:
        return onnx.shape_inference.infer_shapes(model)
    except Exception:  # inference is a help, not a need: sizes come from the layers
        return model


class _Refused(Exception):
    """A node convcalc cannot size; the message says why and what would be valid."""


class _Made(NamedTuple):
    """What a node becomes: layers in a row, a merge, or (neither) its input unchanged."""

    layers: tuple[Layer, ...] = ()
    merge: str = ""


_PASS = _Made()

SHAPE_ONLY = frozenset({"Shape", "Size", "RandomUniformLike", "RandomNormalLike"})
"""Operators whose output depends on their input's shape alone, not its values."""

WINDOWED = frozenset({"Conv", "MaxPool", "AveragePool", "LpPool"})
"""Operators an asymmetric Pad before them is folded into."""


class _Reader:
    """One graph's nodes read into convcalc's `Node` records."""

    def __init__(self, model: ModelProto, source: str) -> None:
        graph = model.graph
        self.source = source
        self.opsets = list(model.opset_import)
        self.tensors: dict[str, TensorProto] = {t.name: t for t in graph.initializer}
        self.weights = set(self.tensors)
        inputs = [i.name for i in graph.input if i.name not in self.weights]
        if len(inputs) != 1 or not graph.output:
            raise ConvcalcError(
                f"{source} has {len(inputs)} inputs ({', '.join(inputs) or 'none'}) and "
                f"{len(graph.output)} outputs; valid: a network of one input"
            )
        self.input, self.output = inputs[0], graph.output[0].name
        self.shapes = _shapes(graph)
        self.onnx_nodes = _leading_to(graph.node, self.output)
        self.producer = {out: node for node in self.onnx_nodes for out in node.output}
        self.consumers: dict[str, list[NodeProto]] = {}
        for node in self.onnx_nodes:
            for tensor in dict.fromkeys(node.input):
                self.consumers.setdefault(tensor, []).append(node)
        same = ("SAME_UPPER", "SAME_LOWER")
        tf = any(self.attr(node, "auto_pad", "NOTSET") in same for node in self.onnx_nodes)
        self.convention = Convention.TF if tf else Convention.TORCH
        self.alias: dict[str, str] = {}
        self.fused: dict[str, tuple[Layer, str]] = {}
        self.dropped: set[str] = set()
        self.extra_pads: dict[str, tuple[tuple[int, int], ...]] = {}
        self.data = self._activations()
        for node in self.onnx_nodes:
            fuse = _FUSIONS.get(node.op_type)
            if fuse is not None and node.output[0] in self.data:
                fuse(self, node)

    def nodes(self) -> tuple[list[Node], str]:
        """The nodes on activations, as layers and merges, and the output tensor."""
        made: list[Node] = []
        for index, node in enumerate(self.onnx_nodes):
            out = node.output[0]
            name = node.name or f"{node.op_type}_{index}"
            if out in self.fused:
                layer, tensor = self.fused[out]
                made.append(Node(name, layer, (self.resolve(tensor),), out))
            elif out in self.data and out not in self.dropped:
                made += self._convert(node, name)
        output = self.resolve(self.output)
        if output not in self.data:
            raise ConvcalcError(f"{self.source}: its output '{self.output}' is a constant")
        return _nested_concats(made), output

    def input_shape(self) -> Shape | None:
        """The input as HxWxC (NCHW in the file), or None when a size is left open."""
        dims = self.shapes.get(self.input)
        if dims is None or len(dims) < 2 or None in dims[1:]:
            return None
        return Shape(tuple(d for d in dims[2:] if d is not None), dims[1])

    def resolve(self, tensor: str) -> str:
        """The tensor that carries ``tensor``'s values (through passed-on nodes)."""
        while tensor in self.alias:
            tensor = self.alias[tensor]
        return tensor

    # -- what handlers read --------------------------------------------------

    def attr(self, node: NodeProto, name: str, default: Any = None) -> Any:
        """A node's attribute (strings decoded), or ``default``."""
        from onnx import helper

        for attribute in node.attribute:
            if attribute.name == name:
                value = helper.get_attribute_value(attribute)
                return value.decode() if isinstance(value, bytes) else value
        return default

    def values(self, tensor: str) -> list[float] | None:
        """A constant's values, flat (computed when nodes on constants make it); None
        when it depends on activations or their shape, or its values are not stored."""
        from onnx import numpy_helper

        proto = self.tensors.get(tensor)
        if proto is None:
            proto = self._computed(tensor)
        if proto is None:
            return None
        try:
            return [float(v) for v in numpy_helper.to_array(proto).ravel().tolist()]
        except Exception:  # the values live in an external file that is not read
            return None

    def _computed(self, tensor: str) -> TensorProto | None:
        """A tensor that nodes compute from constants alone (torch.onnx writes F.pad's
        pads so), computed by ONNX's reference evaluator; None when it cannot be."""
        from onnx import TensorProto, helper, numpy_helper
        from onnx.reference import ReferenceEvaluator

        needed, chain = {tensor}, []
        for node in reversed(self.onnx_nodes):
            if not needed.intersection(node.output):
                continue
            if node.op_type in SHAPE_ONLY or any(t in self.data for t in node.input):
                return None
            chain.append(node)
            needed.update(t for t in node.input if t and t not in self.tensors)
        known = []
        for name in dict.fromkeys(t for node in chain for t in node.input if t in self.tensors):
            known.append(TensorProto())
            known[-1].CopyFrom(self.tensors[name])
            known[-1].name = name
        outputs = [helper.make_empty_tensor_value_info(tensor)]
        graph = helper.make_graph(chain[::-1], "constants", [], outputs, known)
        try:
            model = helper.make_model(graph, opset_imports=self.opsets)
            results: Any = ReferenceEvaluator(model).run(None, {})
            value = results[0]
        except Exception:  # an operator the evaluator lacks, values not stored …
            return None
        self.tensors[tensor] = numpy_helper.from_array(value, tensor)
        return self.tensors[tensor]

    def input_values(self, node: NodeProto, index: int, name: str) -> list[float] | None:
        """Input ``index`` of a node as constant values, or its attribute ``name``
        (older opsets); None when neither is given; refused when not a constant."""
        if len(node.input) > index and node.input[index]:
            values = self.values(node.input[index])
            if values is None:
                raise _Refused(f"has a {name} computed in the graph; valid: a constant")
            return values
        value = self.attr(node, name)
        return None if value is None else [float(v) for v in _listed(value)]

    def dims(self, tensor: str) -> tuple[int, ...] | None:
        """A tensor's full shape, when the file or shape inference fixes it."""
        if tensor in self.tensors:
            return tuple(self.tensors[tensor].dims)
        shape = self.shapes.get(tensor)
        if shape is None or None in shape:
            return None
        return tuple(d for d in shape if d is not None)

    def rank(self, tensor: str) -> int | None:
        shape = self.shapes.get(tensor)
        return None if shape is None else len(shape)

    def weight_dims(self, node: NodeProto, index: int) -> tuple[int, ...]:
        """The shape of a node's weight (input ``index``), refused when it is computed
        from activations or its shape is unknown."""
        tensor = node.input[index] if len(node.input) > index else ""
        if tensor in self.data:
            raise _Refused("takes its weight from an activation; valid: a constant weight")
        dims = self.dims(tensor)
        if dims is None:
            raise _Refused(f"has a weight '{tensor}' of unknown shape")
        return dims

    def activation_input(self, node: NodeProto) -> str:
        return str(next(t for t in node.input if t in self.data))

    # -- the passes ------------------------------------------------------------

    def _activations(self) -> set[str]:
        """The tensors computed from the input; constants are recorded on the way."""
        data = {self.input}
        for node in self.onnx_nodes:
            if node.op_type not in SHAPE_ONLY and any(t in data for t in node.input):
                data.update(node.output)
            elif node.op_type == "Constant":
                self._constant(node)
            elif node.op_type == "Identity" and node.input[0] in self.tensors:
                self.tensors[node.output[0]] = self.tensors[node.input[0]]
                if node.input[0] in self.weights:
                    self.weights.add(node.output[0])
        return data

    def _constant(self, node: NodeProto) -> None:
        from onnx import TensorProto, helper

        value = self.attr(node, "value")
        if value is None:
            listed = next((self.attr(node, k) for k in _CONSTANT_KEYS if self.attr(node, k)), None)
            if listed is None:
                return
            values = _listed(listed)
            kind = TensorProto.FLOAT if isinstance(values[0], float) else TensorProto.INT64
            value = helper.make_tensor(node.output[0], kind, [len(values)], values)
        self.tensors[node.output[0]] = value

    def _convert(self, node: NodeProto, name: str) -> list[Node]:
        op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
        handler = _OPERATORS.get(op)
        if handler is None:
            raise ConvcalcError(
                f"{self.source}: node '{name}' is an ONNX {op} operator, which convcalc "
                "cannot size",
                f"Operators convcalc reads: {', '.join(sorted(_OPERATORS))}.",
            )
        try:
            made = handler(self, node)
        except _Refused as exc:
            raise ConvcalcError(f"{self.source}: node '{name}' ({op}) {exc}") from None
        inputs = list(dict.fromkeys(self.resolve(t) for t in node.input if t in self.data))
        out = node.output[0]
        if made.merge and len(inputs) > 1:
            return [Node(name, None, tuple(inputs), out, made.merge)]
        if len(inputs) != 1:
            raise ConvcalcError(f"{self.source}: node '{name}' ({op}) reads several activations")
        if not made.layers:
            self.alias[out] = inputs[0]
            return []
        tensors = [inputs[0], *(f"{out}#{i}" for i in range(len(made.layers) - 1)), out]
        return [
            Node(name, layer, (tensors[i],), tensors[i + 1]) for i, layer in enumerate(made.layers)
        ]

    def padding(self, node: NodeProto, rank: int) -> tuple[Padding, ...]:
        """A windowed node's padding per axis: an int, (before, after), or same."""
        auto = self.attr(node, "auto_pad", "NOTSET")
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            return (PadRule.SAME,)
        pads = [0] * 2 * rank if auto == "VALID" else self.attr(node, "pads", [0] * 2 * rank)
        pairs = [(pads[i], pads[i + rank]) for i in range(rank)]
        extra = self.extra_pads.get(node.output[0], ((0, 0),) * rank)
        pairs = [(lo + a, hi + b) for (lo, hi), (a, b) in zip(pairs, extra, strict=True)]
        return _compact([lo if lo == hi else (lo, hi) for lo, hi in pairs])

    def pads(self, node: NodeProto) -> tuple[tuple[int, int], ...]:
        """A Pad node's (before, after) per spatial axis; refused on batch or channels."""
        pads = self.input_values(node, 1, "pads")
        axes = self.input_values(node, 3, "axes") if len(node.input) > 3 else None
        rank = self.rank(node.input[0]) or (len(pads) // 2 if pads and axes is None else None)
        if pads is None or rank is None:
            raise _Refused("has pads convcalc cannot read")
        where = [int(a) % rank for a in axes] if axes else list(range(rank))
        per_axis = dict.fromkeys(range(rank), (0, 0))
        for i, axis in enumerate(where):
            per_axis[axis] = (int(pads[i]), int(pads[i + len(where)]))
        if per_axis[0] != (0, 0) or per_axis[1] != (0, 0):
            raise _Refused("pads the batch or channel axis; valid: padding of H and W")
        if any(v < 0 for pair in per_axis.values() for v in pair):
            raise _Refused("crops (negative pads); valid: padding of 0 or more")
        return tuple(per_axis[axis] for axis in range(2, rank))

    def matmul_units(self, node: NodeProto) -> int:
        dims = self.weight_dims(node, 1)
        rank = self.rank(node.input[0])
        if len(dims) != 2:
            raise _Refused(f"has a weight of shape {dims}; valid: a K x N matrix")
        if rank is not None and rank > 2:
            raise _Refused(
                f"multiplies a rank-{rank} tensor along its last axis; valid: a flat vector "
                "(N, K), as after Flatten"
            )
        return dims[1]


# -- the operators ---------------------------------------------------------

_Handler = Callable[[_Reader, "NodeProto"], _Made]


def _conv(r: _Reader, node: NodeProto) -> _Made:
    weight = r.weight_dims(node, 1)  # (C_out, C_in/groups, k...)
    kernel = tuple(r.attr(node, "kernel_shape", weight[2:]))
    rank = len(kernel)
    stride, dilation = _window(r, node, rank)
    padding = r.padding(node, rank)
    groups = r.attr(node, "group", 1)
    bias = len(node.input) > 2 and bool(node.input[2])
    if groups > 1 and weight[1] == 1:  # each input channel filtered on its own
        layer: Layer = DepthwiseConv(
            _compact(kernel), weight[0] // groups, stride, padding, dilation, bias, rank
        )
    else:
        layer = Conv(weight[0], _compact(kernel), stride, padding, dilation, groups, bias, rank)
    return _Made((layer,))


def _deconv(r: _Reader, node: NodeProto) -> _Made:
    weight = r.weight_dims(node, 1)  # (C_in, C_out/groups, k...)
    if r.attr(node, "output_shape"):
        raise _Refused("gives output_shape; valid: pads and output_padding")
    kernel = tuple(r.attr(node, "kernel_shape", weight[2:]))
    rank = len(kernel)
    stride, dilation = _window(r, node, rank)
    groups = r.attr(node, "group", 1)
    output_padding = _compact(r.attr(node, "output_padding", [0] * rank))
    bias = len(node.input) > 2 and bool(node.input[2])
    layer = Deconv(
        weight[1] * groups,
        _compact(kernel),
        stride,
        r.padding(node, rank),
        dilation,
        output_padding,
        groups,
        bias,
        rank,
    )
    return _Made((layer,))


def _pool(r: _Reader, node: NodeProto) -> _Made:
    if node.op_type == "LpPool" and r.attr(node, "p", 2) != 2:
        raise _Refused(f"pools with p={r.attr(node, 'p')}; valid: p=2 (L2 pooling)")
    kernel = tuple(r.attr(node, "kernel_shape"))
    stride, dilation = _window(r, node, len(kernel))
    kind = {"MaxPool": PoolKind.MAX, "AveragePool": PoolKind.AVG}.get(node.op_type, PoolKind.L2)
    layer = Pool(
        kind,
        _compact(kernel),
        None if stride == _compact(kernel) else stride,
        r.padding(node, len(kernel)),
        dilation,
        bool(r.attr(node, "ceil_mode", 0)),
    )
    return _Made((layer,))


def _window(r: _Reader, node: NodeProto, rank: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A windowed node's strides and dilations (ONNX's default 1)."""
    if rank not in (1, 2, 3):
        raise _Refused(f"has a {rank}-D window; valid: 1-D, 2-D or 3-D")
    ones = [1] * rank
    return _compact(r.attr(node, "strides", ones)), _compact(r.attr(node, "dilations", ones))


def _gemm(r: _Reader, node: NodeProto) -> _Made:
    if r.attr(node, "transA", 0):
        raise _Refused("transposes its input (transA=1); valid: a batch of flat vectors")
    weight = r.weight_dims(node, 1)
    units = weight[0] if r.attr(node, "transB", 0) else weight[1]
    return _Made((Dense(units, len(node.input) > 2 and bool(node.input[2])),))


def _clip(r: _Reader, node: NodeProto) -> _Made:
    low, high = r.input_values(node, 1, "min"), r.input_values(node, 2, "max")
    bounds = (low[0] if low else None, high[0] if high else None)
    if bounds in ((0, 6), (0, None)):
        return _Made((Pointwise("relu6" if bounds[1] else "relu"),))
    raise _Refused(f"clips to {bounds}; valid: (0, 6), ReLU6, or (0, None), ReLU")


def _arithmetic(r: _Reader, node: NodeProto) -> _Made:
    """Add, Sub, Mul, Div: a merge of two activations, a per-channel scale, or none."""
    activations = set(t for t in node.input if t in r.data)
    if len(activations) > 1:
        if node.op_type in ("Add", "Mul"):
            return _Made(merge=node.op_type.lower())
        raise _Refused("combines two activations; valid: Add, Mul or Concat of activations")
    others = [t for t in node.input if t not in r.data]
    if node.op_type == "Mul" and others and _per_channel(r, others[0], node.input):
        return _Made((Scale(),))
    return _PASS


def _per_channel(r: _Reader, tensor: str, inputs: Iterable[str]) -> bool:
    """True for a weight of one value per channel (C, 1, 1), broadcast over HxW."""
    dims = r.dims(tensor)
    if tensor not in r.weights or dims is None:
        return False
    rank = max((r.rank(t) or 4) for t in inputs if t in r.data)
    big = [len(dims) - 1 - i for i, d in enumerate(dims) if d > 1]
    return big == [rank - 2]


def _concat(r: _Reader, node: NodeProto) -> _Made:
    axis, rank = r.attr(node, "axis"), r.rank(node.input[0])
    if not (axis == 1 or (rank is not None and axis % rank == 1)):
        raise _Refused(f"concatenates along axis {axis}; valid: the channels (axis 1)")
    if any(t not in r.data for t in node.input):
        raise _Refused("concatenates a constant to an activation; valid: activations")
    return _Made(merge="concat")


def _flatten(r: _Reader, node: NodeProto) -> _Made:
    axis, rank = r.attr(node, "axis", 1), r.rank(node.input[0])
    if not (axis == 1 or (rank is not None and axis % rank == 1)):
        raise _Refused(f"flattens from axis {axis}; valid: axis 1 (keeping the batch)")
    return _Made((Flatten(),))


def _reshape(r: _Reader, node: NodeProto) -> _Made:
    """A reshape to (N, K) is a flatten; the target's rank is read from the inferred
    output shape, the constant target, or the length of the computed target."""
    target = r.shapes.get(node.output[0])
    values = r.values(node.input[1]) if len(node.input) > 1 else None
    given = r.dims(node.input[1]) if len(node.input) > 1 else None
    rank = len(target) if target else len(values) if values else given[0] if given else None
    if rank != 2:
        raise _Refused(
            f"reshapes to rank {rank}; valid: a flat vector (N, -1), as x.view(x.size(0), -1)"
        )
    return _PASS if r.rank(node.input[0]) == 2 else _Made((Flatten(),))


def _squeeze(r: _Reader, node: NodeProto) -> _Made:
    before, after = r.rank(node.input[0]), r.rank(node.output[0])
    if after == 2 and before is not None and before > 2:
        return _Made((Flatten(),))
    raise _Refused(f"squeezes rank {before} to rank {after}; valid: a 1x1 map to (N, C)")


def _pad(r: _Reader, node: NodeProto) -> _Made:
    pads = r.pads(node)
    if all(lo == hi for lo, hi in pads):
        return _Made((Pad(_compact([lo for lo, _ in pads])),))
    raise _Refused(
        f"pads asymmetrically {pads} and no convolution or pooling follows to take it; "
        "valid: the same padding before and after"
    )


def _resize(r: _Reader, node: NodeProto) -> _Made:
    mode = {"nearest": "nearest", "linear": "bilinear", "bilinear": "bilinear"}.get(
        r.attr(node, "mode", "nearest")
    )
    if mode is None:
        raise _Refused(f"resizes by {r.attr(node, 'mode')}; valid: nearest, linear")
    index = 1 if node.op_type == "Upsample" or len(node.input) == 2 else 2
    scales = r.input_values(node, index, "scales")
    if not scales:  # target sizes instead: inferred, or the constant input
        before = r.dims(node.input[0])
        sizes = node.input[3] if len(node.input) > 3 else ""
        after = r.dims(node.output[0]) or (r.values(sizes) if sizes else None)
        if before and after and len(before) == len(after):
            scales = [b / a for a, b in zip(before, after, strict=True)]
    if not scales or scales[:2] != [1, 1] or any(not s.is_integer() or s < 1 for s in scales):
        raise _Refused(f"scales by {scales}; valid: whole factors of the spatial axes")
    return _Made((Upsample(_compact([int(s) for s in scales[2:]]), mode),))


def _reduce(r: _Reader, node: NodeProto) -> _Made:
    axes = r.input_values(node, 1, "axes")
    rank = r.rank(node.input[0]) or 4
    if axes is None or sorted(int(a) % rank for a in axes) != list(range(2, rank)):
        raise _Refused(f"reduces axes {axes}; valid: every spatial axis, a global pooling")
    pool = GlobalPool(PoolKind.AVG if node.op_type == "ReduceMean" else PoolKind.MAX)
    return _Made((pool,) if r.attr(node, "keepdims", 1) else (pool, Flatten()))


def _pointwise(name: str) -> _Handler:
    return lambda r, node: _Made((Pointwise(name),))


_OPERATORS: dict[str, _Handler] = {
    "Conv": _conv,
    "ConvTranspose": _deconv,
    "Gemm": _gemm,
    "MatMul": lambda r, node: _Made((Dense(r.matmul_units(node), False),)),
    "BatchNormalization": lambda r, node: _Made((BatchNorm(),)),
    "MaxPool": _pool,
    "AveragePool": _pool,
    "LpPool": _pool,
    "GlobalAveragePool": lambda r, node: _Made((GlobalPool(PoolKind.AVG),)),
    "GlobalMaxPool": lambda r, node: _Made((GlobalPool(PoolKind.MAX),)),
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


def _fuse_gate(r: _Reader, node: NodeProto) -> None:
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


def _fuse_bias(r: _Reader, node: NodeProto) -> None:
    """``MatMul`` by a constant then ``Add`` of a constant of N values: ``fc:N``."""
    for product, bias in zip(node.input, reversed(node.input), strict=True):
        maker = r.producer.get(product)
        if maker is None or maker.op_type != "MatMul" or r.consumers[product] != [node]:
            continue
        try:
            units = r.matmul_units(maker)
        except _Refused:
            return
        dims = r.dims(bias)
        if bias not in r.data and dims is not None and _size(dims) == units:
            r.fused[node.output[0]] = (Dense(units, True), r.activation_input(maker))
            r.dropped.add(product)
            return


def _fuse_pad(r: _Reader, node: NodeProto) -> None:
    """An asymmetric Pad whose one reader is a convolution or pooling: its padding."""
    users = r.consumers.get(node.output[0], [])
    if len(users) != 1 or users[0].op_type not in WINDOWED or users[0].input[0] != node.output[0]:
        return
    if r.attr(users[0], "auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        return
    try:
        pads = r.pads(node)
    except _Refused:
        return
    if all(lo == hi for lo, hi in pads):
        return
    r.extra_pads[users[0].output[0]] = pads
    r.alias[node.output[0]] = node.input[0]
    r.dropped.add(node.output[0])


_FUSIONS: dict[str, Callable[[_Reader, NodeProto], None]] = {
    "Mul": _fuse_gate,
    "Add": _fuse_bias,
    "Pad": _fuse_pad,
}


# -- concatenations the exporter flattened -------------------------------------


def _nested_concats(nodes: list[Node]) -> list[Node]:
    """Concatenations as forks and joins: the exporter writes ``cat(a, cat(b, c), d)``
    as one ``Concat(a, b, c, d)`` (Inception-v3), and DenseNet's running concatenation
    as ``Concat(x0, …, xk)`` anew in every layer. A concat that starts with all the
    inputs of an earlier one reads that one instead (``Concat(C, xk)``); inputs that
    share ancestors the others do not (the branches of a nested fork) are concatenated
    first, in a node of their own. Sizes do not depend on the order of the channels."""
    ancestors: dict[str, set[str]] = {}
    earlier: dict[tuple[str, ...], str] = {}
    nested: list[Node] = []
    for node in nodes:
        start = len(nested)
        if node.merge == "concat":
            original = node.inputs
            for prefix in sorted(earlier, key=len, reverse=True):
                if len(prefix) < len(original) and original[: len(prefix)] == prefix:
                    node = node._replace(inputs=(earlier[prefix], *original[len(prefix) :]))
                    break
            earlier.setdefault(original, node.output)
            nested += _split_concat(node, ancestors)
        else:
            nested.append(node)
        for made in nested[start:]:
            ancestors[made.output] = _reach(made.inputs, ancestors)
    return nested


def _split_concat(node: Node, ancestors: dict[str, set[str]]) -> list[Node]:
    """A concat, after the concats of its inputs that share private ancestors."""
    reach = {t: ancestors.get(t, set()) | {t} for t in node.inputs}
    common = set.intersection(*reach.values())
    groups: list[list[str]] = []
    for tensor in node.inputs:
        own = reach[tensor] - common
        joined = [g for g in groups if any(own & (reach[t] - common) for t in g)]
        groups = [g for g in groups if g not in joined]
        groups.append([t for g in joined for t in g] + [tensor])
    if len(groups) in (1, len(node.inputs)):
        return [node]
    made, inputs = [], []
    for i, group in enumerate(groups):
        if len(group) == 1:
            inputs.append(group[0])
            continue
        inner = Node(node.name, None, tuple(group), f"{node.output}#{i}", "concat")
        made += _split_concat(inner, ancestors)
        ancestors[inner.output] = _reach(inner.inputs, ancestors)
        inputs.append(inner.output)
    return [*made, node._replace(inputs=tuple(inputs))]


def _reach(inputs: Sequence[str], ancestors: dict[str, set[str]]) -> set[str]:
    """The tensors a node's output depends on."""
    return set().union(*({t} | ancestors.get(t, set()) for t in inputs))


# -- helpers ---------------------------------------------------------------

_CONSTANT_KEYS = ("value_float", "value_floats", "value_int", "value_ints")


def _shapes(graph: GraphProto) -> dict[str, tuple[int | None, ...]]:
    """Every tensor shape the file states or inference found (None: a symbolic size)."""
    found: dict[str, tuple[int | None, ...]] = {}
    for info in (*graph.input, *graph.value_info, *graph.output):
        tensor = info.type.tensor_type
        if tensor.HasField("shape"):
            found[info.name] = tuple(
                d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim
            )
    return found


def _leading_to(nodes: Sequence[NodeProto], output: str) -> list[NodeProto]:
    """The nodes the output depends on, in order (dead ends and extra outputs dropped)."""
    needed, kept = {output}, []
    for node in reversed(nodes):
        if needed.intersection(node.output):
            kept.append(node)
            needed.update(t for t in node.input if t)
    return kept[::-1]


def _compact(values: Sequence[Any]) -> tuple[Any, ...]:
    """Per-axis values as a layer holds them: one entry when every axis has the same."""
    values = tuple(values)
    return values[:1] if values and all(v == values[0] for v in values) else values


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _size(dims: Sequence[int]) -> int:
    total = 1
    for d in dims:
        total *= d
    return total
