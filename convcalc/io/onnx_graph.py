"""One ONNX graph as the operator table reads it: tensors, constants, shapes, attributes.

`GraphReader` finds which tensors carry activations (those computed from the graph's
input; weights, constants and what is computed from them or from a shape alone carry
none), records the constants' values, and answers the questions the operators of
`convcalc.io.onnx_operators` ask of a node: an attribute, a constant input's values, a
weight's shape, a tensor's rank, a windowed node's padding. It also holds what those
operators record on the way (aliases, fused and dropped nodes, padding folded into the
next window). The ``onnx`` package is imported only when a model is read
(`convcalc.io.onnx_reader`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from convcalc.calc.choices import Convention, PadRule
from convcalc.calc.geometry import Padding
from convcalc.calc.layers import Layer, Shape
from convcalc.errors import ConvcalcError

if TYPE_CHECKING:
    from onnx import GraphProto, ModelProto, NodeProto, TensorProto


class Refused(Exception):
    """A node convcalc cannot size; the message says why and what would be valid."""


SHAPE_ONLY = frozenset({"Shape", "Size", "RandomUniformLike", "RandomNormalLike"})
"""Operators whose output depends on their input's shape alone, not its values."""


class GraphReader:
    """One graph's tensors and nodes, as the operators ask about them
    (`convcalc.io.onnx_reader.read_onnx` runs the fusions and the operator table)."""

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
                raise Refused(f"has a {name} computed in the graph; valid: a constant")
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
            raise Refused("takes its weight from an activation; valid: a constant weight")
        dims = self.dims(tensor)
        if dims is None:
            raise Refused(f"has a weight '{tensor}' of unknown shape")
        return dims

    def activation_input(self, node: NodeProto) -> str:
        return str(next(t for t in node.input if t in self.data))

    # -- the first pass: activations and constants ---------------------------

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

    # -- what windowed, Pad and MatMul nodes read ---------------------------

    def padding(self, node: NodeProto, rank: int) -> tuple[Padding, ...]:
        """A windowed node's padding per axis: an int, (before, after), or same."""
        auto = self.attr(node, "auto_pad", "NOTSET")
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            return (PadRule.SAME,)
        pads = [0] * 2 * rank if auto == "VALID" else self.attr(node, "pads", [0] * 2 * rank)
        pairs = [(pads[i], pads[i + rank]) for i in range(rank)]
        extra = self.extra_pads.get(node.output[0], ((0, 0),) * rank)
        pairs = [(lo + a, hi + b) for (lo, hi), (a, b) in zip(pairs, extra, strict=True)]
        return compact([lo if lo == hi else (lo, hi) for lo, hi in pairs])

    def pads(self, node: NodeProto) -> tuple[tuple[int, int], ...]:
        """A Pad node's (before, after) per spatial axis; refused on batch or channels."""
        pads = self.input_values(node, 1, "pads")
        axes = self.input_values(node, 3, "axes") if len(node.input) > 3 else None
        rank = self.rank(node.input[0]) or (len(pads) // 2 if pads and axes is None else None)
        if pads is None or rank is None:
            raise Refused("has pads convcalc cannot read")
        where = [int(a) % rank for a in axes] if axes else list(range(rank))
        per_axis = dict.fromkeys(range(rank), (0, 0))
        for i, axis in enumerate(where):
            per_axis[axis] = (int(pads[i]), int(pads[i + len(where)]))
        if per_axis[0] != (0, 0) or per_axis[1] != (0, 0):
            raise Refused("pads the batch or channel axis; valid: padding of H and W")
        if any(v < 0 for pair in per_axis.values() for v in pair):
            raise Refused("crops (negative pads); valid: padding of 0 or more")
        return tuple(per_axis[axis] for axis in range(2, rank))

    def matmul_units(self, node: NodeProto) -> int:
        dims = self.weight_dims(node, 1)
        rank = self.rank(node.input[0])
        if len(dims) != 2:
            raise Refused(f"has a weight of shape {dims}; valid: a K x N matrix")
        if rank is not None and rank > 2:
            raise Refused(
                f"multiplies a rank-{rank} tensor along its last axis; valid: a flat vector "
                "(N, K), as after Flatten"
            )
        return dims[1]


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


def compact(values: Sequence[Any]) -> tuple[Any, ...]:
    """Per-axis values as a layer holds them: one entry when every axis has the same."""
    values = tuple(values)
    return values[:1] if values and all(v == values[0] for v in values) else values


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]
