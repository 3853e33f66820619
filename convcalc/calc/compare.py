"""Weights of one convolution with and without weight sharing, against dense layers.

For an input H·W·C_in, a kernel KH·KW, ``groups`` g and an output
H_out·W_out·C_out (P = H_out·W_out output positions, F = KH·KW·C_in/g):

* convolution, weights shared: ``F·C_out`` weights + ``C_out`` biases;
* locally connected, nothing shared: ``P·C_out·F`` weights + ``P·C_out`` biases;
* fully connected to the same output volume: ``(H·W·C_in)·(P·C_out)`` + ``P·C_out``;
* fully connected to N units: ``(H·W·C_in)·N`` + ``N``.

MACs: the convolution and the locally connected layer both do ``P·C_out·F``;
a dense layer does one per weight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from convcalc.calc.layers import Conv, DepthwiseConv, Shape
from convcalc.calc.network import conv_fan_in, per_axis


@dataclass(frozen=True)
class Count:
    """Weights, biases and multiply-accumulates of one way of building a layer."""

    weights: int
    biases: int
    macs: int

    @property
    def params(self) -> int:
        """Weights plus biases."""
        return self.weights + self.biases


@dataclass(frozen=True)
class Comparison:
    """One convolution layer counted four ways."""

    input: Shape
    output: Shape
    kernel: tuple[int, ...]
    groups: int
    conv: Count
    local: Count
    dense: Count
    units: Count | None = None
    unit_count: int | None = None


def compare(
    layer: Conv | DepthwiseConv,
    input_shape: Shape,
    output_shape: Shape,
    *,
    units: int | None = None,
) -> Comparison:
    """Count a convolution (input HxWxC to output HxWxC) with and without sharing.

    Examples
    --------
    >>> c = compare(Conv(10, (5,), padding=(2,)), Shape((32, 32), 3), Shape((32, 32), 10))
    >>> c.conv.params, c.local.params
    (760, 778240)
    """
    groups = input_shape.c if isinstance(layer, DepthwiseConv) else layer.groups
    assert layer.kernel is not None
    kernel = per_axis(layer.kernel, len(input_shape.spatial), "kernel")
    bias = 1 if layer.bias else 0
    fan_in = conv_fan_in(kernel, input_shape.c, groups)
    positions = output_shape.volume // output_shape.c
    c_out = output_shape.c
    n_in, n_out = input_shape.volume, output_shape.volume
    macs = positions * c_out * fan_in
    return Comparison(
        input_shape,
        output_shape,
        kernel,
        groups,
        conv=Count(fan_in * c_out, c_out * bias, macs),
        local=Count(positions * c_out * fan_in, n_out * bias, macs),
        dense=Count(n_in * n_out, n_out * bias, n_in * n_out),
        units=None if units is None else Count(n_in * units, units * bias, n_in * units),
        unit_count=units,
    )


@dataclass(frozen=True)
class Totals:
    """Every compared convolution of a network, each way of building it added up."""

    layers: int
    conv: Count
    local: Count
    dense: Count
    units: Count | None = None


def totals(comparisons: Sequence[Comparison]) -> Totals:
    """Add up the comparisons of a network's convolutions, way by way.

    Examples
    --------
    >>> c = compare(Conv(10, (5,), padding=(2,)), Shape((32, 32), 3), Shape((32, 32), 10))
    >>> totals([c, c]).conv.params
    1520
    """
    units = [c.units for c in comparisons if c.units is not None]
    return Totals(
        len(comparisons),
        _added([c.conv for c in comparisons]),
        _added([c.local for c in comparisons]),
        _added([c.dense for c in comparisons]),
        _added(units) if units else None,
    )


def reading(comparison: Comparison) -> str:
    """One plain sentence saying what the ratios mean."""
    c = comparison
    positions = c.output.volume // c.output.c
    kernel = "x".join(map(str, c.kernel))
    sentence = (
        f"Weight sharing reuses each {kernel}x{c.input.c // c.groups} filter at all "
        f"{positions:,} output positions, so the convolution needs {c.conv.params:,} "
        f"parameters where a locally connected layer needs {_times(c.local, c.conv)} as "
        f"many and a fully connected layer to the same {c.output} output "
        f"{_times(c.dense, c.conv)} as many"
    )
    if c.units is not None:
        sentence += f" ({_times(c.units, c.conv)} for {c.unit_count:,} units)"
    return sentence + "."


def ratio(count: Count, base: Count) -> float:
    """How many times ``base``'s parameters ``count`` needs."""
    return count.params / base.params if base.params else float("inf")


def ratio_text(value: float) -> str:
    """A ratio as people read it: whole above 100, three significant digits below."""
    return f"{value:,.0f}" if value >= 100 else f"{value:,.3g}"


def _added(items: Sequence[Count]) -> Count:
    return Count(
        sum(c.weights for c in items), sum(c.biases for c in items), sum(c.macs for c in items)
    )


def _times(count: Count, base: Count) -> str:
    return ratio_text(ratio(count, base)) + "×"
