"""Exact separable factoring: rank-1 kernels as a column times a row.

A KHxKW kernel is rank 1 when its second singular value is at most ``rtol`` times
its largest; cross-correlating with it then equals cross-correlating with a KHx1
column and then a 1xKW row. This module is the one home of that rule
(:func:`separable_factors`), which `convcalc kernels` reports.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


def separable_factors(
    kernel: NDArray[Any], *, rtol: float = 1e-10
) -> tuple[FloatArray, FloatArray] | None:
    """The column and row vectors whose outer product is a rank-1 kernel.

    A KHxKW kernel is separable when its second singular value is at most
    ``rtol`` times its largest. Cross-correlating with it then equals
    cross-correlating with the KHx1 column and then the 1xKW row, which costs
    KH + KW instead of KH·KW multiplications per output value.

    The factors are read off the kernel at its largest-magnitude entry
    ``p = k[i, j]``. When the kernel is integers times one power of two (sobel,
    or gauss5, which is integers/256), the column is ``k[:, j]`` over the
    greatest common divisor of its integers, signed so that its entry i is
    positive, and the row what remains: both are exact, so ``np.outer(column,
    row)`` is the kernel itself (sobel-x: ``[1, 2, 1]`` and ``[-1, 0, 1]``;
    gauss5: ``[1, 4, 6, 4, 1]`` and that over 256). Otherwise ``column =
    sign(p)·k[:, j]`` and ``row = k[i, :] / |p|``, whose outer product
    reproduces the kernel to a few units in the last place of its largest entry.

    Parameters
    ----------
    kernel
        KHxKW.
    rtol
        Largest ratio of the second to the first singular value still counted
        as rank 1.

    Returns
    -------
    (column, row) or None
        Float64 vectors of lengths KH and KW; None when the kernel is not rank 1,
        not 2-D, or not finite. An all-zero kernel gives zero vectors.

    Examples
    --------
    >>> import numpy as np
    >>> sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    >>> column, row = separable_factors(sobel_x)
    >>> column, row
    (array([1., 2., 1.]), array([-1.,  0.,  1.]))
    >>> separable_factors(np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]])) is None
    True
    """
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2 or k.size == 0 or not np.isfinite(k).all():
        return None
    i, j = np.unravel_index(int(np.argmax(np.abs(k))), k.shape)
    pivot = k[i, j]
    if pivot == 0:
        return np.zeros(k.shape[0]), np.zeros(k.shape[1])
    singular = np.linalg.svd(k, compute_uv=False)
    if singular.size > 1 and singular[1] > rtol * singular[0]:
        return None
    exact = _dyadic_factors(k, i, j)
    if exact is not None:
        return exact
    sign = 1.0 if pivot > 0 else -1.0
    # Adding 0.0 turns the -0.0 of a sign flip into 0.0.
    return k[:, j] * sign + 0.0, k[i, :] / abs(pivot) + 0.0


# -- helpers ---------------------------------------------------------------


def _dyadic_factors(k: FloatArray, i: Any, j: Any) -> tuple[FloatArray, FloatArray] | None:
    """Exact factors of a rank-1 kernel of integers times 2**-m, or None (see
    :func:`separable_factors`)."""
    for m in range(_DYADIC_MAX_SHIFT + 1):
        scaled = k * 2.0**m
        if np.array_equal(scaled, np.rint(scaled)):
            break
    else:
        return None
    if np.abs(scaled).max() >= 2**24:  # past float32's exact integers
        return None
    whole = scaled.astype(np.int64)
    column = whole[:, j] // np.gcd.reduce(whole[:, j])
    column = column if column[i] > 0 else -column
    row, rest = np.divmod(whole[i, :], column[i])
    if rest.any() or not np.array_equal(np.outer(column, row), whole):
        return None
    return column.astype(np.float64), row / 2.0**m + 0.0


_DYADIC_MAX_SHIFT = 30
"""Kernels are tried as integers over 2**0 … 2**30."""
