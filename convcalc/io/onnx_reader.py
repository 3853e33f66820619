"""Networks read from ONNX files: the operators real exports hold, as convcalc's layers.

`read_onnx` needs the ``onnx`` package (``pip install 'convcalc[onnx]'``), imported only
when a file is read. Nodes that do not lead to the file's first output are dropped; the others are
read in the file's order (ONNX keeps it topological) in three passes:

1. which tensors carry activations: those computed from the graph's input. Weights
   (initializers), constants, and what is computed from them or from a tensor's shape
   alone (``Shape``, ``Gather``, ``Concat`` …: the ``x.view(x.size(0), -1)`` chain; the
   random mask of stochastic depth) carry none and make no layer
   (`convcalc.io.onnx_graph`).
2. nodes that together are one layer: ``x * Sigmoid(x)`` is silu, ``x * HardSigmoid(x)``
   hardswish, ``MatMul`` then ``Add`` of a bias one fully connected layer with a bias,
   and an asymmetric ``Pad`` before a convolution or pooling becomes that layer's
   (before, after) padding (`convcalc.io.onnx_operators.FUSIONS`).
3. every other node on activations becomes a layer (the table
   `convcalc.io.onnx_operators.OPERATORS`), a merge
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
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from convcalc.calc.dag import Node, graph_specs
from convcalc.errors import ConvcalcError, RuntimeFailure
from convcalc.io.network_files import ImportedNetwork
from convcalc.io.onnx_graph import GraphReader, Refused
from convcalc.io.onnx_operators import FUSIONS, OPERATORS

if TYPE_CHECKING:
    from onnx import ModelProto, NodeProto

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
    reader = GraphReader(model, source)
    _fuse(reader)
    nodes, output = _nodes(reader)
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


# -- the walk --------------------------------------------------------------


def _fuse(r: GraphReader) -> None:
    """Record the patterns of several nodes that together are one layer."""
    for node in r.onnx_nodes:
        fuse = FUSIONS.get(node.op_type)
        if fuse is not None and node.output[0] in r.data:
            fuse(r, node)


def _nodes(r: GraphReader) -> tuple[list[Node], str]:
    """The nodes on activations, as layers and merges, and the output tensor."""
    made: list[Node] = []
    for index, node in enumerate(r.onnx_nodes):
        out = node.output[0]
        name = node.name or f"{node.op_type}_{index}"
        if out in r.fused:
            layer, tensor = r.fused[out]
            made.append(Node(name, layer, (r.resolve(tensor),), out))
        elif out in r.data and out not in r.dropped:
            made += _convert(r, node, name)
    output = r.resolve(r.output)
    if output not in r.data:
        raise ConvcalcError(f"{r.source}: its output '{r.output}' is a constant")
    return _nested_concats(made), output


def _convert(r: GraphReader, node: NodeProto, name: str) -> list[Node]:
    """The nodes one ONNX node on activations becomes, by the operator table."""
    op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
    handler = OPERATORS.get(op)
    if handler is None:
        raise ConvcalcError(
            f"{r.source}: node '{name}' is an ONNX {op} operator, which convcalc cannot size",
            f"Operators convcalc reads: {', '.join(sorted(OPERATORS))}.",
        )
    try:
        made = handler(r, node)
    except Refused as exc:
        raise ConvcalcError(f"{r.source}: node '{name}' ({op}) {exc}") from None
    inputs = list(dict.fromkeys(r.resolve(t) for t in node.input if t in r.data))
    out = node.output[0]
    if made.merge and len(inputs) > 1:
        return [Node(name, None, tuple(inputs), out, made.merge)]
    if len(inputs) != 1:
        raise ConvcalcError(f"{r.source}: node '{name}' ({op}) reads several activations")
    if not made.layers:
        r.alias[out] = inputs[0]
        return []
    tensors = [inputs[0], *(f"{out}#{i}" for i in range(len(made.layers) - 1)), out]
    return [Node(name, layer, (tensors[i],), tensors[i + 1]) for i, layer in enumerate(made.layers)]


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
