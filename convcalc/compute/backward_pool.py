"""The arithmetic behind each input gradient value of one 2-D pooling layer.

With dL/dY the upstream gradient of the pooled output, an input cell's gradient is a
sum over the windows that contain it:

* max pooling: ``dL/dX[i, j] = Σ_o dL/dY[o] · [(i, j) is window o's max]``: each
  window sends its dL/dY to its largest cell (on a tie the first in row-major
  order, a NaN before any number: PyTorch's rule, as
  `convcalc.compute.gradients.pool_backward` routes it) and 0 to its other cells;
* average pooling: ``dL/dX[i, j] = Σ_o dL/dY[o] / count_o``, count_o being what
  window o's sum is divided by (`convcalc.compute.windows.avg_counts`: padding
  counted or not, ceil mode's short windows).

Global pooling is one window, the whole map. The windows, their winners and their
divisors are those of the forward steps (`convcalc.compute.traces.trace`), so the
backward steps name the same max the forward steps mark.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import product

import numpy as np

from convcalc.calc.choices import PoolKind, TraceKind
from convcalc.calc.geometry import Axis
from convcalc.calc.layers import GlobalPool, Pool
from convcalc.compute.arrays import Array
from convcalc.compute.backward_records import (
    BackwardTrace,
    GradStep,
    PoolWindow,
    Upstream,
    chosen,
    output_at,
    refuse_outside,
)
from convcalc.compute.pipeline import Settings, Stage
from convcalc.compute.traces import PoolStep, all_whole, trace
from convcalc.errors import ConvcalcError


def pool_trace(
    xa: Array,
    stage: Stage,
    settings: Settings,
    upstream: Upstream,
    at: Sequence[tuple[int, int]],
    limit: int | None,
) -> BackwardTrace:
    """The input gradient steps of one max or average pooling stage (global too).

    Parameters
    ----------
    xa : array, HxWxC
        The stage's input.
    stage : Stage
        A max or average pooling (``maxpool``, ``avgpool``, ``gmp``, ``gap``).
    settings : Settings
        ``exclude_pad`` and ``convention`` decide the average's divisors.
    upstream : Upstream
        dL/dY of the stage's output (Ho x Wo x C) and where it came from.
    at, limit
        Input cells to show, and at most how many.

    Returns
    -------
    BackwardTrace
        Input steps cell by cell row-major, channels within a cell; each step's
        terms and windows follow the windows row-major.
    """
    layer = stage.spec.layer
    assert isinstance(layer, Pool | GlobalPool)
    if layer.kind not in (PoolKind.MAX, PoolKind.AVG):
        raise ConvcalcError(f"the gradient of {layer.kind} pooling is not traced; valid: max, avg")
    height, width, channels = xa.shape
    refuse_outside(at, [("input", height, width)])
    cells = chosen(at, limit, height, width)
    forward = trace(xa, [stage], settings, at=[(0, 0)])
    axes = (forward.axes[0], forward.axes[1])  # a 2-D trace: rows, columns
    reach = {cell: _windows(cell, axes) for cell in cells}
    needed = sorted({o for found in reach.values() for o in found})
    pooled = trace(xa, [stage], settings, at=needed).steps if needed else ()
    by_window = {(s.position, s.channel): s for s in pooled if isinstance(s, PoolStep)}
    g = np.asarray(upstream.grad, dtype=np.float64)
    steps = [
        _cell_step(cell, c, [by_window[(o, c)] for o in reach[cell]], g, axes)
        for cell in cells
        for c in range(channels)
    ]
    global_pool = isinstance(layer, GlobalPool)
    return BackwardTrace(
        layer_text=stage.spec.text,
        input_shape=(height, width, channels),
        output_shape=(forward.output_shape[0], forward.output_shape[1], forward.output_shape[2]),
        kernel_size=(axes[0].kernel, axes[1].kernel),
        axes=axes,
        filters=0,
        steps=tuple(steps),
        kernel_total=0,
        kernel_omitted=0,
        input_total=height * width,
        input_omitted=height * width - len(cells),
        pad_mode=settings.pad_mode,
        activation=stage.activation,
        flip=False,
        integral=all_whole(xa) and all_whole(g),
        upstream=upstream,
        kind=TraceKind.GLOBAL_POOL if global_pool else TraceKind.POOL,
        pool=layer.kind,
    )


def _windows(cell: tuple[int, int], axes: tuple[Axis, Axis]) -> list[tuple[int, int]]:
    """The output positions of the windows that contain input ``cell``, row-major."""
    rows, cols = (_outputs(cell[k] + a.pad_lo, a) for k, a in enumerate(axes))
    return list(product(rows, cols))


def _cell(position: tuple[int, ...]) -> tuple[int, int]:
    """A 2-D trace's position as (row, column)."""
    return position[0], position[1]


def _outputs(padded: int, axis: Axis) -> list[int]:
    """Along one axis, the outputs whose windows read padded position ``padded``."""
    found = (output_at(padded, t, axis) for t in range(axis.kernel))
    return sorted({o for o in found if o is not None})


def _cell_step(
    cell: tuple[int, int],
    channel: int,
    pooled: Sequence[PoolStep],
    g: Array,
    axes: tuple[Axis, Axis],
) -> GradStep:
    """dL/dX of one input cell and channel from the forward steps of its windows."""
    terms, windows, shares = [], [], []
    for step in pooled:
        dy = float(g[step.position[0], step.position[1], channel])
        if step.op == PoolKind.MAX:
            assert step.argmax is not None
            # the forward step's origin is the input cell of its first tap
            winner = (
                step.origin[0] + step.argmax[0] * axes[0].dilation,
                step.origin[1] + step.argmax[1] * axes[1].dilation,
            )
            terms.append((dy, 1.0 if winner == cell else 0.0))
            windows.append(PoolWindow(_cell(step.position), winner, step.value))
            shares.append(dy if winner == cell else 0.0)
        else:
            assert step.divisor is not None
            terms.append((dy, 1.0 / step.divisor))
            windows.append(PoolWindow(_cell(step.position), count=step.divisor))
            shares.append(dy / step.divisor)  # as the forward divides, not × 1/count
    value = math.fsum(shares)
    array = np.array(terms, np.float64).reshape(-1, 2)
    return GradStep("input", None, channel, cell, array, value, tuple(windows))
