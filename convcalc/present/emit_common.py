"""What the code emitters share: the network as nodes, paddings, names, refusals.

`convcalc.present.emit_pytorch` and `convcalc.present.emit_keras` write Python source
text from an evaluated network. Every size, padding and count they write is read from
the `NetworkResult` (an axis's ``pad_lo``/``pad_hi`` decide the padding, so that
TensorFlow's SAME split is written as it is, never made symmetric); the little
arithmetic they do re-expresses those sizes in a framework's terms (a transposed
convolution's output_padding, a crop). A layer the target framework cannot express
exactly is refused with a `ConvcalcError` naming it.
"""

from __future__ import annotations

import keyword
import re
import textwrap
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from convcalc.calc.axes import axis_names
from convcalc.calc.geometry import Axis
from convcalc.calc.layers import (
    BatchNorm,
    Group,
    InvertedResidual,
    Layer,
    Mark,
    Merge,
    Pointwise,
    ResBlock,
    Shape,
    Spec,
)
from convcalc.calc.network import LayerResult, NetworkResult
from convcalc.errors import ConvcalcError

LAYER_NORM_EPS = 1e-6
"""Layer norm's epsilon in both targets (torchvision's ConvNeXt uses 1e-6)."""

LAYER_SCALE_INIT = 1e-6
"""The layer scale's starting value (ConvNeXt's)."""

DROPOUT_RATE = 0.5
"""A dropout spec gives no rate: both targets write PyTorch's default."""

LRELU_SLOPE = 0.01
"""Leaky ReLU's slope below zero: PyTorch's default, as convcalc's own (compute.ops)."""


class Node(NamedTuple):
    """One layer where it sits: as written, where, its input and its result (None for
    ``@NAME``, which names the current tensor and makes no layer)."""

    text: str
    where: str
    layer: Layer
    input: Shape
    result: LayerResult | None

    @property
    def output(self) -> Shape:
        """The shape the layer gives (a name keeps its input)."""
        return self.input if self.result is None else self.result.output

    @property
    def rank(self) -> int:
        """The number of spatial axes of the layer's input (0 for a flat vector)."""
        return len(self.input.spatial)

    @property
    def axes(self) -> tuple[Axis, ...]:
        """The layer's per-axis windows (empty for layers without one)."""
        return () if self.result is None else self.result.axes

    @property
    def comment(self) -> str:
        """``conv:6,5 -> 28x28x6``: the spec and the shape it gives."""
        return f"{self.text} -> {self.output}"


def network_nodes(specs: Sequence[Spec], result: NetworkResult) -> list[Node]:
    """The top-level layers of an evaluated network, names (``@NAME``) included."""
    return _walk(specs, result.input, iter(result.layers))


def branch_nodes(node: Node) -> list[list[Node]]:
    """A group's branches, each as its nodes (an empty one is the identity)."""
    assert isinstance(node.layer, Group) and node.result is not None
    return [
        _walk(specs, node.input, (placed.result for placed in placed_branch))
        for specs, placed_branch in zip(node.layer.branches, node.result.branches, strict=True)
    ]


class Block(NamedTuple):
    """A ResNet or MobileNet block opened: its main path (activations included), its
    shortcut (empty: the identity; None: no sum) and what follows the sum."""

    main: list[Node]
    shortcut: list[Node] | None
    after: list[Node]


def block_parts(node: Node) -> Block:
    """The layers of ``basic``, ``bottleneck`` or ``invres`` as `convcalc.calc.evaluation`
    opens them, with the activations of the block they stand for: ReLU (ReLU6 in an
    inverted residual) after every batch norm of the main path but the last, and a
    ReLU after a ResNet block's sum. Activations hold no parameters and keep the shape."""
    assert node.result is not None
    activation = "relu" if isinstance(node.layer, ResBlock) else "relu6"
    main: list[Node] = []
    shortcut: list[Node] = []
    for placed in node.result.inner:
        path = shortcut if placed.text.startswith("shortcut ") else main
        path.append(
            Node(
                f"{node.text} › {placed.text}",
                node.where,
                placed.layer,
                placed.input,
                placed.result,
            )
        )
    norms = [i for i, n in enumerate(main) if isinstance(n.layer, BatchNorm)]
    for i in reversed(norms[:-1]):
        main.insert(i + 1, _activation(node, activation, main[i].output))
    after = [_activation(node, "relu", node.output)] if isinstance(node.layer, ResBlock) else []
    return Block(main, shortcut if node.result.merges else None, after)


def block_note(node: Node) -> str:
    """What an emitted block adds to convcalc's layers (the activations), for the notes."""
    if isinstance(node.layer, ResBlock):
        return (
            "basic, bottleneck: ReLU after each batch norm but the last and after the sum, "
            "as in ResNet (convcalc's block lists only the layers with weights)"
        )
    return (
        "invres: ReLU6 after each batch norm but the last, as in MobileNetV2 (convcalc's "
        "block lists only the layers with weights)"
    )


def is_block(node: Node) -> bool:
    """True for a ResNet or MobileNet block (``basic``, ``bottleneck``, ``invres``)."""
    return isinstance(node.layer, ResBlock | InvertedResidual)


def uses_names(layer: Layer) -> bool:
    """True when a group names a tensor or merges with a named one, at any depth: its
    branches then need a forward written out rather than one module per branch."""
    if isinstance(layer, Mark | Merge):
        return True
    if isinstance(layer, Group):
        return any(uses_names(spec.layer) for branch in layer.branches for spec in branch)
    return False


def variable_names(specs: Sequence[Spec], reserved: set[str]) -> dict[str, str]:
    """Every ``@NAME`` of a network as a Python variable: the name itself, or with a
    trailing ``_`` where it would shadow a keyword, one of ``reserved`` or a variable
    the emitters write (``x``, ``x_1``, ``x_2_1``)."""
    taken = set(reserved)
    names: dict[str, str] = {}
    for name in _marks(specs):
        if name in names:
            continue
        safe = name
        while keyword.iskeyword(safe) or safe in taken or re.fullmatch(r"x(_\d+)*", safe):
            safe += "_"
        names[name] = safe
        taken.add(safe)
    return names


def pads(node: Node) -> list[tuple[int, int]]:
    """The padding (before, after) of each spatial axis, as the result gives it."""
    return [(ax.pad_lo, ax.pad_hi) for ax in node.axes]


def overhang(ax: Axis) -> int:
    """How far a pooling window rounded up (``ceil``) runs past the padded input."""
    return max(0, (ax.size - 1) * ax.stride + ax.span - (ax.n + ax.pad_lo + ax.pad_hi))


def crop_pairs(named: Shape, current: Shape) -> list[tuple[int, int]]:
    """What ``concat:NAME,crop`` takes off each spatial axis of the named tensor
    (before, after): the difference split, the odd one after."""
    return [
        ((n - m) // 2, n - m - (n - m) // 2)
        for n, m in zip(named.spatial, current.spatial, strict=True)
    ]


def dims(values: Sequence[int]) -> str:
    """A per-axis value as Python: ``3`` when every axis has it, else ``(3, 1)``."""
    if len(set(values)) == 1:
        return str(values[0])
    return "(" + ", ".join(str(v) for v in values) + ")"


def padding_text(pairs: Sequence[tuple[int, int]]) -> str:
    """``rows 0+1, columns 0+1``: a padding per axis, for a comment."""
    names = axis_names(len(pairs))
    return ", ".join(f"{name} {lo}+{hi}" for name, (lo, hi) in zip(names, pairs, strict=True))


def refusal(node: Node, framework: str, why: str, valid: str) -> ConvcalcError:
    """The error for a layer ``framework`` cannot express: names the layer, says why."""
    where = node.where or "layer"
    return ConvcalcError(
        f"{where} ({node.text}): {framework} cannot express it: {why}; valid: {valid}"
    )


def docstring(
    framework: str, command: str, input_text: str, output_text: str, params: int, notes: list[str]
) -> str:
    """The emitted module's docstring: what it is, how it was made, what running it shows."""
    lines = [f'"""A {framework} network sized by convcalc.', ""]
    if command:
        lines += [f"    {command}", ""]
    lines += [
        f"Input {input_text}; output {output_text}; {params:,} trainable parameters.",
        "Running this file builds the network, runs a zero input and prints both.",
    ]
    if notes:
        lines += ["", *(textwrap.fill(note, 88, initial_indent="- ", subsequent_indent="  ")
                        for note in notes)]  # fmt: skip
    return "\n".join(lines) + '\n"""'


# -- helpers ---------------------------------------------------------------


def _walk(specs: Sequence[Spec], shape: Shape, results: Iterator[LayerResult]) -> list[Node]:
    nodes = []
    for spec in specs:
        if isinstance(spec.layer, Mark):
            nodes.append(Node(spec.text, spec.where, spec.layer, shape, None))
            continue
        result = next(results)
        nodes.append(Node(spec.text, spec.where, spec.layer, shape, result))
        shape = result.output
    return nodes


def _marks(specs: Sequence[Spec]) -> Iterator[str]:
    for spec in specs:
        if isinstance(spec.layer, Mark):
            yield spec.layer.name
        elif isinstance(spec.layer, Group):
            for branch in spec.layer.branches:
                yield from _marks(branch)


def _activation(block: Node, name: str, shape: Shape) -> Node:
    result = LayerResult(name, shape, 0, 0, 0, None)
    return Node(f"{block.text} › {name}", block.where, Pointwise(name), shape, result)
