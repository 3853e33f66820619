"""What evaluating a stack of layers gives: for each layer its output shape,
parameters, buffers, MACs, memory and receptive field (`LayerResult`), and the totals
(`NetworkResult`).

`convcalc.calc.evaluation.evaluate` computes them, a layer at a time, by the counting
rules of `convcalc.calc.layer_steps`. The rules the steps and the compute layer share
live here: a per-axis value spread over the axes (`per_axis`), a convolution's fan-in,
and the input's own receptive field.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from convcalc.calc.geometry import Axis
from convcalc.calc.layers import Layer, Shape
from convcalc.calc.merging import ReceptiveField
from convcalc.errors import ConvcalcError

BYTES_PER_VALUE = 4
"""Activation memory is counted in float32."""


class LayerResult(NamedTuple):
    """One layer of a stack, computed."""

    spec: str
    output: Shape
    params: int
    buffers: int
    macs: int
    receptive_field: ReceptiveField | None
    axes: tuple[Axis, ...] = ()
    notes: tuple[str, ...] = ()
    exact: bool = True
    inner: tuple[Placed, ...] = ()
    """A block's or group's own layers, in order (a block's shortcut last)."""
    merges: bool = False
    """True when the block's output is a new tensor (the sum of its paths)."""
    branches: tuple[tuple[Placed, ...], ...] = ()
    """A group's branches, each its layers in order (an empty one: the identity)."""
    merge: str = ""
    """A group's merge: concat, add or mul."""
    merged_fields: tuple[ReceptiveField | None, ...] = ()
    """The receptive fields a group's branches end with, united by the merge."""

    @property
    def op(self) -> str:
        """The operation's name as written (``conv``, ``maxpool`` …; a group's merge)."""
        return self.merge or self.spec.split(":", 1)[0]

    @property
    def memory(self) -> int:
        """Bytes of the activations the layer produces (float32): its output, or for a
        block every tensor inside it (expanded ones included) and the sum it ends in."""
        if not self.inner:
            return self.output.volume * BYTES_PER_VALUE
        own = self.output.volume * BYTES_PER_VALUE if self.merges else 0
        return own + sum(placed.result.memory for placed in self.inner)


class Placed(NamedTuple):
    """A layer where it sits in a network: as written, its input, its result."""

    text: str
    layer: Layer
    input: Shape
    result: LayerResult


class NetworkResult(NamedTuple):
    """A whole stack computed: the input and one result per layer spec."""

    input: Shape
    layers: tuple[LayerResult, ...]

    @property
    def output(self) -> Shape:
        """The stack's final output shape."""
        return self.layers[-1].output if self.layers else self.input

    @property
    def total_params(self) -> int:
        """Trainable parameters, summed over layers."""
        return sum(layer.params for layer in self.layers)

    @property
    def total_buffers(self) -> int:
        """Non-trainable running statistics (batch normalisation), summed."""
        return sum(layer.buffers for layer in self.layers)

    @property
    def total_macs(self) -> int:
        """Multiply-accumulates of one forward pass; FLOPs are twice this."""
        return sum(layer.macs for layer in self.layers)

    @property
    def total_memory(self) -> int:
        """Bytes of every layer's output activations (float32), summed."""
        return sum(layer.memory for layer in self.layers)


def per_axis(values: tuple[Any, ...], rank: int, what: str) -> tuple[Any, ...]:
    """A per-axis value spread over ``rank`` axes (one entry means every axis)."""
    if len(values) == 1:
        return values * rank
    if len(values) != rank:
        shown = "x".join(str(v) for v in values)
        raise ConvcalcError(
            f"{what} {shown} has {len(values)} axes but the input has {rank} spatial "
            f"axes; valid: one value or {rank} separated by x"
        )
    return values


def two_axes(values: tuple[Any, ...], what: str) -> tuple[Any, Any]:
    """A per-axis value spread over the two axes of an image: (rows, columns)."""
    rows, columns = per_axis(values, 2, what)
    return rows, columns


def conv_fan_in(kernel: Sequence[int], channels: int, groups: int = 1) -> int:
    """The inputs one output value of a convolution reads: ``KH·KW·C_in/groups``.

    Also the weights of one filter, and the MACs of one output value.

    Parameters
    ----------
    kernel : sequence of int
        The kernel's size per spatial axis (KH, KW; one entry for 1-D).
    channels : int
        C_in, the input's channel count.
    groups : int
        Grouped convolution; it divides ``channels``.

    Examples
    --------
    >>> conv_fan_in((5, 5), 3)
    75
    >>> conv_fan_in((3, 3), 32, groups=32)
    9
    """
    return math.prod(kernel) * channels // groups


def initial_field(rank: int) -> ReceptiveField | None:
    """The receptive field of the input itself: size 1, jump 1, start 0 per axis."""
    if rank == 0:
        return None
    return ReceptiveField((1,) * rank, (1,) * rank, (0.0,) * rank)
