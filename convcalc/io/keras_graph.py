"""The nodes a Keras model becomes, as the layer converters write them.

Tensors are named ``[model/]layer``. `GraphWriter` records their ranks and aliases and
holds a layer pending until something reads its output: a ZeroPadding2D's Pad (which a
``valid`` convolution after it takes as its own padding instead) and the Flatten after
a global pool (which a Reshape to 1x1xC undoes). `Call` is one call of a Keras layer,
as `convcalc.io.keras_layers` reads it and `convcalc.io.keras_reader` walks the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from convcalc.calc.dag import Node
from convcalc.calc.layers import Layer
from convcalc.errors import ConvcalcError

Config = dict[str, Any]


class Call(NamedTuple):
    """One call of a Keras layer: its name (nested models' names before it), class,
    configuration, the tensors it reads and the tensor it writes."""

    name: str
    kind: str
    config: Config
    inputs: tuple[str, ...]
    output: str
    input_shape: Any = None
    """Keras 3's ``build_config`` input shape (batch first), when the file has it."""


class Pending(NamedTuple):
    """A tensor not yet written: ``layer`` applied to ``source`` (a ZeroPadding2D's
    Pad, None when asymmetric; the Flatten after a global pool), written when read."""

    source: str
    layer: Layer | None
    call: Call
    pads: tuple[tuple[int, int], ...] = ()


class GraphWriter:
    """The nodes written so far, and the tensors' ranks, aliases and pending layers."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.nodes: list[Node] = []
        self.alias: dict[str, str] = {}
        self.rank: dict[str, int | None] = {}
        self.pending: dict[str, Pending] = {}
        self.notes: list[str] = []

    def take(self, tensor: str, reader: str) -> str:
        """The tensor to read for ``tensor``: a pending one is written now."""
        tensor = self.resolve(tensor)
        pending = self.pending.get(tensor)
        if pending is None:
            return tensor
        if pending.layer is None:
            raise ConvcalcError(
                f"{self.source}: {pending.call.kind} '{pending.call.name}' pads "
                f"asymmetrically {pending.pads}, and {reader} reads it; valid: asymmetric "
                "padding read by a convolution with padding='valid' (or pad both sides alike)"
            )
        del self.pending[tensor]
        self.nodes.append(Node(pending.call.name, pending.layer, (pending.source,), tensor))
        return tensor

    def peek(self, tensor: str) -> Pending | None:
        """The pending layer that writes ``tensor``, left pending."""
        return self.pending.get(self.resolve(tensor))

    def resolve(self, tensor: str) -> str:
        while tensor in self.alias:
            tensor = self.alias[tensor]
        return tensor

    def read(self, call: Call, position: int = 0) -> str:
        """The tensor ``call`` reads (its first input by default), written if pending."""
        return self.take(call.inputs[position], f"layer '{call.name}'")

    def rank_of(self, call: Call) -> int | None:
        return self.rank.get(self.resolve(call.inputs[0]))

    def emit(
        self, call: Call, layers: Sequence[Layer], tensor: str | None = None, *, flat: bool = False
    ) -> None:
        """``layers`` in a row from ``tensor`` (the call's input) to the call's output,
        which has the input's rank (a vector's with ``flat``)."""
        tensor = self.read(call) if tensor is None else tensor
        rank = 1 if flat else self.rank.get(tensor)
        for i, layer in enumerate(layers):
            out = call.output if i == len(layers) - 1 else f"{call.output}#{i + 1}"
            self.nodes.append(Node(call.name, layer, (tensor,), out))
            tensor = out
        self.rank[call.output] = rank
        if not layers:
            self.alias[call.output] = tensor

    def refuse(self, call: Call, problem: str, valid: str) -> ConvcalcError:
        return ConvcalcError(
            f"{self.source}: layer '{call.name}' ({call.kind}) {problem}; valid: {valid}"
        )
