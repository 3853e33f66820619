"""The arithmetic behind each input gradient value of one pooling layer, any rank.

With dL/dY the upstream gradient of the pooled output, an input cell's gradient is a
sum over the windows that contain it:

* max pooling: ``dL/dX[i, j] = Σ_o dL/dY[o] · [(i, j) is window o's max]``: each
  window sends its dL/dY to its largest cell and 0 to its other cells; which cell
  that is (on a tie the first in row-major order, a NaN before any number: PyTorch's
  rule) is `convcalc.compute.gradients.pool_winners`'s answer, the one the gradient
  itself routes to;
* average pooling: ``dL/dX[i, j] = Σ_o dL/dY[o] / count_o``, count_o being what
  window o's sum is divided by (`convcalc.compute.windows.avg_divisors`: padding
  counted or not, ceil mode's short windows).

Global pooling is one window, the whole map. The windows are those of the forward
steps (`convcalc.compute.trace_layouts.layout`); a signal's cells are (i,), a
volume's (slice, row, column).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import product
from typing import Any

import numpy as np
from numpy.typing import NDArray

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
from convcalc.compute.gradients import pool_winners
from convcalc.compute.pipeline import Settings, Stage
from convcalc.compute.trace_layouts import layout
from convcalc.compute.traces import Position, all_whole
from convcalc.compute.windows import avg_divisors
from convcalc.errors import ConvcalcError


def pool_trace(
    xa: Array,
    stage: Stage,
    settings: Settings,
    upstream: Upstream,
    at: Sequence[Position],
    limit: int | None,
) -> BackwardTrace:
    """The input gradient steps of one max or average pooling stage (global too).

    Parameters
    ----------
    xa : array, HxWxC (L x C, DxHxWxC at ``settings.rank`` 1 and 3)
        The stage's input.
    stage : Stage
        A max or average pooling (``maxpool``, ``avgpool``, ``gmp``, ``gap``; their
        1-D and 3-D forms).
    settings : Settings
        ``exclude_pad`` and ``convention`` decide the average's divisors.
    upstream : Upstream
        dL/dY of the stage's output (Ho x Wo x C; (*O) x C) and where it came from.
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
    spatial, channels = tuple(xa.shape[:-1]), xa.shape[-1]
    refuse_outside(at, [("input", spatial)])
    cells = chosen(at, limit, spatial)
    found = layout(xa, stage, settings)
    assert found is not None
    windows = _Windows(xa, found.axes, layer.kind, settings)
    g = np.asarray(upstream.grad, dtype=np.float64)
    steps = [windows.cell_step(cell, c, g) for cell in cells for c in range(channels)]
    total = math.prod(spatial)
    return BackwardTrace(
        layer_text=stage.spec.text,
        input_shape=tuple(xa.shape),
        output_shape=found.output_shape,
        kernel_size=tuple(a.kernel for a in found.axes),
        axes=found.axes,
        filters=0,
        steps=tuple(steps),
        kernel_total=0,
        kernel_omitted=0,
        input_total=total,
        input_omitted=total - len(cells),
        pad_mode=settings.pad_mode,
        activation=stage.activation,
        flip=False,
        integral=all_whole(xa) and all_whole(g),
        upstream=upstream,
        kind=TraceKind.GLOBAL_POOL if isinstance(layer, GlobalPool) else TraceKind.POOL,
        pool=layer.kind,
    )


class _Windows:
    """The pooling windows of one input: their geometry and ``found``, for max pooling
    each window's winning tap (`pool_winners`, (*O) x C), for average pooling each
    one's divisor (`avg_divisors`, (*O))."""

    def __init__(self, xa: Array, axes: tuple[Axis, ...], kind: PoolKind, settings: Settings):
        self.xa = xa
        self.axes = axes
        self.kind = kind
        self.found: NDArray[Any]
        if kind == PoolKind.MAX:
            self.found = pool_winners(xa, axes)
        else:
            self.found = avg_divisors(
                axes, exclude_pad=settings.exclude_pad, convention=settings.convention
            )

    def containing(self, cell: Position) -> list[Position]:
        """The output positions of the windows that contain input ``cell``, row-major."""
        return list(product(*(_outputs(cell[k] + a.pad_lo, a) for k, a in enumerate(self.axes))))

    def winner(self, out: Position, channel: int) -> tuple[Position, float]:
        """The input cell window ``out`` sends its dL/dY to (in the padding: outside
        the input) and its value (−inf in the padding)."""
        size = tuple(a.kernel for a in self.axes)
        where = (*out, channel)
        tap = np.unravel_index(int(self.found[where]), size)
        cell = tuple(
            o * a.stride + int(t) * a.dilation - a.pad_lo
            for o, t, a in zip(out, tap, self.axes, strict=True)
        )
        inside = all(0 <= i < a.n for i, a in zip(cell, self.axes, strict=True))
        index = (*cell, channel)
        return cell, float(self.xa[index]) if inside else -math.inf

    def cell_step(self, cell: Position, channel: int, g: Array) -> GradStep:
        """dL/dX of one input cell and channel, one term per window that contains it."""
        terms, windows, shares = [], [], []
        for out in self.containing(cell):
            where = (*out, channel)
            dy = float(g[where])
            if self.kind == PoolKind.MAX:
                winner, best = self.winner(out, channel)
                terms.append((dy, 1.0 if winner == cell else 0.0))
                windows.append(PoolWindow(out, winner, best))
                shares.append(dy if winner == cell else 0.0)
            else:
                count = int(self.found[out])
                terms.append((dy, 1.0 / count))
                windows.append(PoolWindow(out, count=count))
                shares.append(dy / count)  # as the forward divides, not × 1/count
        array = np.array(terms, np.float64).reshape(-1, 2)
        return GradStep("input", None, channel, cell, array, math.fsum(shares), tuple(windows))


def _outputs(padded: int, axis: Axis) -> list[int]:
    """Along one axis, the outputs whose windows read padded position ``padded``."""
    found = (output_at(padded, t, axis) for t in range(axis.kernel))
    return sorted({o for o in found if o is not None})
