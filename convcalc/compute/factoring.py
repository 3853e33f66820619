"""Exact separable factoring: rank-1 kernels as a column times a row.

A KHxKW kernel is rank 1 when its second singular value is at most ``rtol`` times
its largest; cross-correlating with it then equals cross-correlating with a KHx1
column and then a 1xKW row. This module is the one home of that rule: for one
kernel (:func:`separable_factors`) and for a KH x KW x 1 x F bank
(:func:`rank1_factors`, which the direct method and AUTO's choice use).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from convcalc.compute.arrays import Array

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


def rank1_factors(w: Array) -> tuple[Array, Array] | None:
    """(u, v), F x KH and F x KW with ``w[:, :, 0, o] = outer(u[o], v[o])``, or None.

    Parameters
    ----------
    w
        A KH x KW x depth x F bank of kernels, float32 or float64.

    Returns
    -------
    (u, v) or None
        In ``w``'s dtype. None unless the kernels have depth 1, are at least 2x2 and
        not 2x2 (else two 1-D passes save nothing), and are each rank 1 by
        :func:`separable_factors` (``s1 <= 1e-10·s0``, or 4 eps·s0 for float32),
        whose factors are exact for integer and dyadic kernels (gauss5).

    Examples
    --------
    >>> import numpy as np
    >>> u, v = rank1_factors(np.outer([1, 2, 1], [1, 0, -1])[:, :, None, None] * 1.0)
    >>> u, v
    (array([[1., 2., 1.]]), array([[ 1.,  0., -1.]]))
    """
    kh, kw, cg, f = w.shape
    if cg != 1 or min(kh, kw) < 2 or kh * kw <= kh + kw:
        return None
    # a float32 kernel is rank 1 to float32's precision only: its rounding alone
    # makes s1 up to eps/2·s0, and two passes in float32 round no worse than that
    rtol = max(1e-10, 4 * float(np.finfo(w.dtype).eps))
    factors = [separable_factors(w[:, :, 0, o], rtol=rtol) for o in range(f)]
    if any(pair is None for pair in factors):
        return None
    u = np.stack([pair[0] for pair in factors if pair is not None])
    v = np.stack([pair[1] for pair in factors if pair is not None])
    return u.astype(w.dtype), v.astype(w.dtype)


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
