"""How many windows of a layer read each input cell (``shape --coverage``).

Along one axis, output window o reads the input cells ``o·s + t·d − p_lo`` for the
taps t = 0 … f−1 (those inside the input; the rest is padding). A border cell is read
by fewer windows than a central one unless the padding makes up for it, and a stride
larger than the span skips cells entirely. For a 2-D layer the count of cell (r, c)
is the product of its row's and its column's counts: every pair of windows, one per
axis, is one window of the layer.
"""

from __future__ import annotations

from collections.abc import Sequence

from convcalc.calc.geometry import Axis

MAX_CELLS = 10**6
"""A coverage grid of more cells than this is not written out cell by cell."""

MAX_TAPS = 10**7
"""At most this many window taps are counted along one axis."""


def axis_coverage(axis: Axis) -> list[int]:
    """For each input position along ``axis``, how many windows read it.

    Examples
    --------
    >>> from convcalc.calc.geometry import conv_axis
    >>> axis_coverage(conv_axis(5, 3))
    [1, 2, 3, 2, 1]
    >>> axis_coverage(conv_axis(7, 2, stride=3))  # the stride skips cells 2 and 5
    [1, 1, 0, 1, 1, 0, 0]
    """
    if axis.size * axis.kernel > MAX_TAPS or axis.n > MAX_CELLS:
        raise ValueError(f"more than {MAX_TAPS:,} window taps or {MAX_CELLS:,} cells")
    counts = [0] * axis.n
    for window in range(axis.size):
        for tap in range(axis.kernel):
            cell = window * axis.stride + tap * axis.dilation - axis.pad_lo
            if 0 <= cell < axis.n:
                counts[cell] += 1
    return counts


def coverage_grid(axes: Sequence[Axis]) -> list[list[int]] | list[int]:
    """The coverage of every input cell: a list for one axis, rows of a HxW grid for
    two (the product of the two axes' counts). Raises ValueError over `MAX_CELLS`."""
    per_axis = [axis_coverage(axis) for axis in axes]
    if len(per_axis) == 1:
        return per_axis[0]
    if len(per_axis) != 2:
        raise ValueError("coverage is drawn for one or two axes")
    rows, cols = per_axis
    if len(rows) * len(cols) > MAX_CELLS:
        raise ValueError(f"more than {MAX_CELLS:,} cells")
    return [[r * c for c in cols] for r in rows]
