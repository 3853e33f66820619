"""How many paths lead from one output unit back to each input pixel.

A unit of a layer reads a window of the tensor before it; each value there reads a
window of the tensor before that, and so on to the input. Counting the paths is
running the network backwards with all-ones weights from a one-hot at the unit: each
convolution or pooling window spreads the count it receives to every cell it reads
(the transpose of the layer, padding dropped), so the count of an input pixel is the
number of distinct chains of window taps joining it to the unit. Channels are not
told apart: the count is spatial, as if every layer had one channel.

The pixels with a count are the unit's effective support: inside its receptive field
box (`convcalc.calc.layer_steps`), and the whole box for a stack of undilated windows. The
counts are bell-shaped, which is why the centre of a receptive field matters most.

Branches (groups, blocks with a shortcut, ``concat:NAME``/``add:NAME`` skips) add
their counts; a ``mul`` gate of 1x1 (squeeze-and-excitation) sums the counts over the
map it scales; a global pool reads every pixel. A transposed convolution or a
bilinear upsample is not propagated (the receptive field is not tracked through it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from convcalc.calc.geometry import Axis
from convcalc.calc.layers import (
    AdaptivePool,
    BatchNorm,
    Conv,
    Deconv,
    DepthwiseConv,
    GlobalPool,
    Group,
    InvertedResidual,
    LayerNorm,
    Mark,
    Merge,
    Pad,
    Pointwise,
    Pool,
    ResBlock,
    Scale,
    Spec,
    Upsample,
)
from convcalc.calc.network import NetworkResult, Placed
from convcalc.errors import ConvcalcError

Counts = NDArray[np.float64]
"""Path counts over a tensor's spatial grid (HxW), float64: exact up to 2**53."""


def path_counts(
    specs: Sequence[Spec], result: NetworkResult, layer: int, unit: Sequence[int]
) -> Counts:
    """The number of paths from one output unit of ``layer`` to each input pixel.

    Parameters
    ----------
    specs : sequence of Spec
        The network as parsed (``@NAME`` marks included), as evaluated into ``result``.
    result : NetworkResult
        ``evaluate(specs, input)``; its input is HxW or HxWxC.
    layer : int
        1-based index into ``result.layers`` (a group or block counts as one layer).
    unit : sequence of int
        The unit's position in that layer's output, one index per spatial axis.

    Returns
    -------
    ndarray of float64
        The input's spatial shape (HxW); zero where no path reaches.

    Raises
    ------
    ConvcalcError
        ``layer`` or ``unit`` out of range, a layer without a spatial output, or a
        layer the counts cannot pass back through (a transposed convolution, a
        bilinear upsample, a skip inside a group).

    Examples
    --------
    >>> from convcalc.calc.layers import Shape
    >>> from convcalc.calc.evaluation import evaluate
    >>> from convcalc.calc.sequence import parse_specs
    >>> specs = parse_specs(["conv:1,3", "conv:1,3"])
    >>> result = evaluate(specs, Shape((5, 5), 1))
    >>> path_counts(specs, result, 2, (0, 0))[0].astype(int).tolist()
    [1, 2, 3, 2, 1]
    """
    if not 1 <= layer <= len(result.layers):
        raise ConvcalcError(
            f"layer {layer} is not in the network; valid: 1 to {len(result.layers)}"
        )
    output = result.layers[layer - 1].output
    if output.flat or not output.spatial:
        raise ConvcalcError(
            f"layer {layer} ({result.layers[layer - 1].spec}) has no spatial output "
            f"({output}); valid: a convolution, pooling or other layer before flatten/fc"
        )
    grid = output.spatial
    if len(unit) != len(grid) or not all(0 <= i < n for i, n in zip(unit, grid, strict=True)):
        at = ",".join(map(str, unit))
        last = ",".join(str(n - 1) for n in grid)
        raise ConvcalcError(
            f"unit {at} is outside layer {layer}'s output {output}; valid: 0,0 to {last}"
        )
    counts = np.zeros(grid, dtype=np.float64)
    counts[tuple(unit)] = 1.0
    return _back_sequence(specs, result, layer, counts)


# -- walking back --------------------------------------------------------------


def _back_sequence(
    specs: Sequence[Spec], result: NetworkResult, layer: int, counts: Counts
) -> Counts:
    """Back through the first ``layer`` layers of the top level, marks and skips included."""
    inputs = [result.input] + [r.output for r in result.layers[:-1]]
    placed: list[Placed | str] = []
    index = 0
    for spec in specs:
        if index == layer:
            break
        if isinstance(spec.layer, Mark):
            placed.append(spec.layer.name)
            continue
        step = result.layers[index]
        placed.append(Placed(spec.text, spec.layer, inputs[index], step))
        index += 1
    pending: dict[str, Counts] = {}
    for item in reversed(placed):
        if isinstance(item, str):
            if item in pending:
                counts = counts + _uncropped(pending.pop(item), counts.shape)
            continue
        if isinstance(item.layer, Merge):
            for name in item.layer.names:
                pending[name] = pending[name] + counts if name in pending else counts
            counts = _broadcast_back(counts, item.layer.kind, item.input.spatial)
            continue
        counts = _back(item, counts)
    if pending:  # a name marked inside a group, out of reach of the top level
        names = ", ".join(f"@{name}" for name in pending)
        raise ConvcalcError(
            f"cannot follow the skip from {names} back: it is marked inside a group; "
            "valid: skips between top-level layers"
        )
    return counts


def _back(placed: Placed, counts: Counts) -> Counts:
    """The counts at a layer's input from the counts at its output."""
    back = _BACK.get(type(placed.layer))
    if back is None:
        raise ConvcalcError(
            f"{placed.text}: cannot count paths back through this layer; valid: "
            "convolution, pooling, padding, nearest upsampling, pointwise layers, groups"
        )
    return back(placed, counts)


def _windows(placed: Placed, counts: Counts) -> Counts:
    if not placed.result.axes:
        return _adaptive(placed, counts)
    for axis, ax in enumerate(placed.result.axes):
        counts = _spread_axis(counts, axis, ax)
    return counts


def _spread_axis(counts: Counts, axis: int, ax: Axis) -> Counts:
    """One axis of a window layer transposed: output o sends its count to the input
    cells ``o·s + t·d − p_lo`` of its taps t that lie inside the input."""
    moved = np.moveaxis(counts, axis, 0)
    spread = np.zeros((ax.n, *moved.shape[1:]), dtype=np.float64)
    for tap in range(ax.kernel):
        offset = tap * ax.dilation - ax.pad_lo
        first = max(0, -(offset // ax.stride))  # ceil(-offset / s): the first inside
        last = min(ax.size - 1, (ax.n - 1 - offset) // ax.stride)
        if first > last:
            continue
        cells = slice(first * ax.stride + offset, last * ax.stride + offset + 1, ax.stride)
        spread[cells] += moved[first : last + 1]
    return np.moveaxis(spread, 0, axis)


def _adaptive(placed: Placed, counts: Counts) -> Counts:
    """PyTorch's adaptive windows: output i of n -> inputs floor(i·n/m) .. ceil((i+1)·n/m)-1."""
    for axis, n in enumerate(placed.input.spatial):
        moved = np.moveaxis(counts, axis, 0)
        m = moved.shape[0]
        spread = np.zeros((n, *moved.shape[1:]), dtype=np.float64)
        for i in range(m):
            spread[i * n // m : -(-(i + 1) * n // m)] += moved[i]
        counts = np.moveaxis(spread, 0, axis)
    return counts


def _global(placed: Placed, counts: Counts) -> Counts:
    return np.full(placed.input.spatial, counts.sum(), dtype=np.float64)


def _same(placed: Placed, counts: Counts) -> Counts:
    return counts


def _pad(placed: Placed, counts: Counts) -> Counts:
    assert isinstance(placed.layer, Pad)
    inner = tuple(
        slice(p, p + n)
        for p, n in zip(_per_axis(placed.layer.padding, counts.ndim), placed.input.spatial,
                        strict=True)
    )  # fmt: skip
    return counts[inner]


def _upsample(placed: Placed, counts: Counts) -> Counts:
    assert isinstance(placed.layer, Upsample)
    if placed.layer.mode != "nearest":
        raise ConvcalcError(
            f"{placed.text}: cannot count paths back through {placed.layer.mode} "
            "upsampling; valid: mode=nearest"
        )
    for axis, scale in enumerate(_per_axis(placed.layer.scale, counts.ndim)):
        moved = np.moveaxis(counts, axis, 0)
        summed = moved.reshape(moved.shape[0] // scale, scale, *moved.shape[1:]).sum(axis=1)
        counts = np.moveaxis(summed, 0, axis)
    return counts


def _untracked(placed: Placed, counts: Counts) -> Counts:
    raise ConvcalcError(
        f"{placed.text}: the receptive field is not tracked through a transposed "
        "convolution; valid: a layer before it (--layer)"
    )


def _group(placed: Placed, counts: Counts) -> Counts:
    """Every branch from the group's output back to its input, summed."""
    total = np.zeros(placed.input.spatial, dtype=np.float64)
    for branch in placed.result.branches:
        part = _broadcast_back(counts, placed.result.merge, _output_of(branch, placed))
        for inner in reversed(branch):
            if isinstance(inner.layer, Merge):
                raise ConvcalcError(
                    f"{placed.text}: cannot count paths through {inner.text} inside a "
                    "group; valid: skips between top-level layers"
                )
            part = _back(inner, part)
        total += part
    return total


def _block(placed: Placed, counts: Counts) -> Counts:
    """A block's main path, plus its shortcut when the block sums the two."""
    main = [p for p in placed.result.inner if not p.text.startswith("shortcut")]
    side = [p for p in placed.result.inner if p.text.startswith("shortcut")]
    total = counts
    for inner in reversed(main):
        total = _back(inner, total)
    if placed.result.merges:
        part = counts
        for inner in reversed(side):
            part = _back(inner, part)
        total = total + part
    return total


# -- helpers -----------------------------------------------------------------


def _output_of(branch: Sequence[Placed], group: Placed) -> tuple[int, ...]:
    return branch[-1].result.output.spatial if branch else group.input.spatial


def _broadcast_back(counts: Counts, merge: str, shape: tuple[int, ...] | None = None) -> Counts:
    """The counts a merge's input receives: the same, or their sum for a 1x1 gate."""
    if shape is not None and shape != counts.shape and merge == "mul":
        return np.full(shape, counts.sum(), dtype=np.float64)
    return counts


def _uncropped(counts: Counts, shape: tuple[int, ...]) -> Counts:
    """Counts of a centre crop placed back in the tensor it was cropped from (or of
    the map a 1x1 gate scaled, summed)."""
    if counts.shape == shape:
        return counts
    if all(n == 1 for n in shape):
        return np.full(shape, counts.sum(), dtype=np.float64)
    full = np.zeros(shape, dtype=np.float64)
    full[tuple(slice((n - m) // 2, (n - m) // 2 + m) for n, m in
               zip(shape, counts.shape, strict=True))] = counts  # fmt: skip
    return full


def _per_axis(values: tuple[int, ...], rank: int) -> tuple[int, ...]:
    return values * rank if len(values) == 1 else values


_BACK: dict[type, Callable[[Placed, Counts], Counts]] = {
    Conv: _windows,
    DepthwiseConv: _windows,
    Pool: _windows,
    AdaptivePool: _windows,
    GlobalPool: _global,
    Deconv: _untracked,
    Pad: _pad,
    Upsample: _upsample,
    Group: _group,
    ResBlock: _block,
    InvertedResidual: _block,
    Pointwise: _same,
    BatchNorm: _same,
    LayerNorm: _same,
    Scale: _same,
}
"""How counts pass back through each kind of layer."""
