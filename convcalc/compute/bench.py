"""Time the four convolution methods on the user's data, against a float64 reference."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray

from convcalc.calc.choices import Method
from convcalc.errors import ConvcalcError

METHODS = (Method.DIRECT, Method.IM2COL, Method.FFT, Method.WINOGRAD)
"""The methods compared, in the order the texts present them."""


@dataclass(frozen=True)
class Timing:
    """One method's best time over the repeats and its largest error, or why it can't run."""

    method: Method
    seconds: float | None
    max_error: float | None
    reason: str | None = None


def compare_methods(
    compute: Callable[[Method, Any], NDArray[Any]],
    x: NDArray[Any],
    *,
    repeats: int = 3,
) -> list[Timing]:
    """Time ``compute(method, x)`` for each method; errors against ``compute(DIRECT, float64 x)``.

    ``compute`` runs one convolution of the HxWxC input with a given method; the
    reference runs the direct method in float64. A method that does not apply
    (Winograd on a 5x5 kernel) is reported with its reason instead of a time.
    """
    reference = compute(Method.DIRECT, np.asarray(x, dtype=np.float64))
    timings = []
    for method in METHODS:
        try:
            best, result = _best_of(repeats, partial(compute, method, x))
        except ConvcalcError as exc:
            timings.append(Timing(method, None, None, str(exc)))
            continue
        error = float(np.max(np.abs(result.astype(np.float64) - reference), initial=0.0))
        timings.append(Timing(method, best, error))
    return timings


def _best_of(repeats: int, fn: Callable[[], NDArray[Any]]) -> tuple[float, NDArray[Any]]:
    best = float("inf")
    result = fn()  # warm-up, and the error check's result
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best, result
