"""Running an apply pipeline strip by strip, as planned by `convcalc.compute.strips`.

`StripRunner` computes a strip layer by layer with `convcalc.compute.pipeline.run`
(each layer as the strip's layer, `convcalc.compute.strips.strip_stage`), cutting
each layer's rows to what the next one reads; every convolution runs the method the
whole input would, so that a strip equals the same rows of the whole result.
`StripStats` gathers the statistics of a result given a strip at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from convcalc.calc.choices import Method
from convcalc.calc.layers import Conv
from convcalc.compute.pipeline import (
    Settings,
    conv_method,
    in_layer,
    method_note,
    not_finite,
    run,
)
from convcalc.compute.strips import Rows, StageRows, Strip, strip_stage
from convcalc.errors import ConvcalcError

Array = NDArray[Any]


class StripRunner:
    """Computes strips of a pipeline, as `convcalc.compute.pipeline.run` computes the whole.

    Each convolution runs the method the whole input would (auto picks it once, for
    the whole stage input's shape and dtype, and ``notes`` says so as `run` does);
    ``missing`` and ``values`` count the output values that are not finite, and all.
    """

    def __init__(self, geometry: Sequence[StageRows], settings: Settings) -> None:
        self.geometry = tuple(geometry)
        self.settings = settings
        self.methods: list[Method | None] = [None] * len(self.geometry)
        self.notes: list[str] = []
        self.missing = 0
        self.values = 0

    def run(self, strip: Strip, read: Callable[[Rows], Array]) -> Array:
        """The strip's final output rows, HoxWoxF; ``read`` gives input rows (HxWxC)."""
        first = strip.spans[0].rows_in
        parts = [read(rows) for rows in first]
        x = parts[0] if len(parts) == 1 else np.concatenate(parts)
        del parts
        have = first
        count = len(self.geometry)
        for position, (g, span) in enumerate(zip(self.geometry, strip.spans, strict=True), 1):
            x = _cut(x, have, span.rows_in)
            settings = self._settings(position - 1, x)
            stage = strip_stage(g, span)
            try:
                x = run(x, [stage], settings).output
            except ConvcalcError as exc:
                raise in_layer(exc, position, g.stage, count) from None
            have = span.rows_out
        x = _cut(x, have, (Rows(strip.lo, strip.hi),))
        self.missing += not_finite(x)
        self.values += x.size
        return x

    def _settings(self, index: int, x: Array) -> Settings:
        """The settings stage ``index`` runs with: its convolution's method pinned to the
        whole input's (chosen at the first strip, where ``x`` gives the dtype)."""
        g = self.geometry[index]
        if not isinstance(g.stage.spec.layer, Conv):
            return self.settings
        method = self.methods[index]
        if method is None:
            whole = np.broadcast_to(np.zeros((), dtype=x.dtype), g.in_shape)  # no memory
            method = self.methods[index] = conv_method(whole, g.stage, self.settings)
            if self.settings.method == Method.AUTO:
                self.notes.append(method_note(g.stage, method))
        return replace(self.settings, method=method)


class StripStats:
    """The minimum, maximum and mean of an array given a strip at a time, as
    ``float(a.min())``, ``float(a.max())`` and ``float(a.mean(dtype=float64))`` give
    them for the whole: min and max exactly (NaN wins, as in numpy), the mean from
    each strip's float64 sum, added exactly (`math.fsum`), so within a rounding or
    two of numpy's pairwise sum."""

    def __init__(self) -> None:
        self.low = math.inf
        self.high = -math.inf
        self.sums: list[float] = []
        self.count = 0

    def add(self, values: Array) -> None:
        """Count one strip's values."""
        with np.errstate(over="ignore", invalid="ignore"):
            self.low = float(np.minimum(self.low, values.min()))
            self.high = float(np.maximum(self.high, values.max()))
            self.sums.append(float(values.sum(dtype=np.float64)))
        self.count += values.size

    def stats(self) -> dict[str, float]:
        """``min``, ``max`` and ``mean``, as the whole array's."""
        finite = all(math.isfinite(s) for s in self.sums)
        total = math.fsum(self.sums) if finite else sum(self.sums)
        return {"min": self.low, "max": self.high, "mean": total / self.count}


# -- helpers ---------------------------------------------------------------


def _cut(x: Array, have: tuple[Rows, ...], want: tuple[Rows, ...]) -> Array:
    """The rows ``want`` of ``x``, which holds the rows ``have``."""
    if have == want:
        return x
    ((have_lo, have_hi, _),), ((lo, hi, _),) = have, want
    assert have_lo <= lo and hi <= have_hi, (have, want)
    return x[lo - have_lo : hi - have_lo]
