"""What every convolution method shares: the dtype policy, shape checks, the thread
count and the memory budget of intermediates.

dtype policy: float32 and 8-bit input (images, bool) compute in float32; any
other real input (wider integers, float64) in float64, exact for small integer
examples.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from convcalc.calc.geometry import conv_axis
from convcalc.errors import ConvcalcError

Array = NDArray[np.floating[Any]]
"""A float32 or float64 array."""

Pair = tuple[int, int]
"""A per-axis pair: (rows, columns)."""

WORKERS = min(4, os.cpu_count() or 1)
"""Threads the direct method, the FFT passes and the PNG encoder run on by default
(numpy and zlib release the GIL); see `threads`."""

_threads = WORKERS


def threads() -> int:
    """The threads one operation runs on now: `WORKERS`, unless `set_threads` said less
    (a batch's worker processes share the cores: threads on top would only contend)."""
    return _threads


def set_threads(count: int) -> None:
    """Run each operation of this process on ``count`` threads (at least 1)."""
    global _threads
    _threads = max(1, count)


_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


def thread_map(
    work: Callable[[_Item], _Result], items: Sequence[_Item], workers: int | None = None
) -> list[_Result]:
    """``[work(item) for item in items]`` on up to ``workers`` threads (default
    `threads`), this one among them, each taking the next item as it finishes one.

    The first exception a call raises (an interruption in this thread too) stops the
    others from starting items, and is raised once they have finished theirs.
    concurrent.futures would do the same, but importing it (with logging) costs every
    command 4 ms.
    """
    count = min(threads() if workers is None else workers, len(items))
    if count <= 1:
        return [work(item) for item in items]
    results: list[Any] = [None] * len(items)
    errors: list[BaseException] = []
    order = itertools.count()  # next() on it is atomic: one item per call

    def take_items() -> None:
        for index in order:
            if index >= len(items) or errors:
                return
            try:
                results[index] = work(items[index])
            except BaseException as exc:
                errors.append(exc)
                return

    helpers = [threading.Thread(target=take_items, daemon=True) for _ in range(count - 1)]
    for helper in helpers:
        helper.start()
    try:
        take_items()
    finally:
        for helper in helpers:
            helper.join()
    if errors:
        raise errors[0]
    return results


CHUNK_BYTES = 64 * 2**20
"""Largest intermediate (im2col patch matrix, FFT spectra, Winograd tiles) in bytes."""


def working_array(x: ArrayLike) -> Array:
    """``x`` as the dtype it computes in: float32 for float32 and 8-bit input (images,
    bool), float64 for every other real type.

    8-bit sums stay exact in float32 with integer kernels (below 2**24), and halve
    the memory traffic of a photo; text matrices are float64 and stay exact.

    Raises
    ------
    ConvcalcError
        A complex, string or object array.
    """
    arr = np.asarray(x)
    return arr.astype(working_dtype(arr.dtype), copy=False)


def working_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The dtype values of ``dtype`` compute in (see `working_array`)."""
    if dtype.kind not in "biuf":
        raise ConvcalcError(f"values of type {dtype} are not valid; valid: real numbers")
    return np.dtype(np.float32 if dtype == np.float32 or dtype.itemsize == 1 else np.float64)


def working_pair(x: ArrayLike, w: ArrayLike) -> tuple[Array, Array]:
    xa = working_array(x)
    return xa, working_array(w).astype(xa.dtype, copy=False)


def prepare(
    x: ArrayLike, w: ArrayLike, stride: Pair, dilation: Pair, groups: int
) -> tuple[Array, Array, int, int]:
    """Working-dtype arrays and the output size, after checking that the shapes fit."""
    xa, wa = working_pair(x, w)
    ho, wo = output_size(xa.shape, wa.shape, stride, dilation, groups)
    return xa, wa, ho, wo


def output_size(
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    stride: Pair,
    dilation: Pair,
    groups: int,
) -> tuple[int, int]:
    """Ho, Wo of an HxWxC input and a KH x KW x (C/groups) x F bank that fit."""
    if len(x_shape) != 3 or len(w_shape) != 4:
        raise ConvcalcError(
            f"input {'x'.join(map(str, x_shape))} and kernel bank "
            f"{'x'.join(map(str, w_shape))} do not fit; valid: an HxWxC input and a "
            "KHxKWx(C/groups)xF kernel bank"
        )
    c, (kh, kw, cg, f) = x_shape[2], w_shape
    if groups < 1 or c % groups or f % groups:
        raise ConvcalcError(
            f"groups {groups} does not divide both the {c} input channels and the "
            f"{f} filters; valid: a common divisor of {c} and {f}"
        )
    if cg * groups != c:
        raise ConvcalcError(
            f"kernel depth {cg} does not fit {c} input channels in {groups} group(s); "
            f"valid: depth {c // groups}"
        )
    ho = conv_axis(x_shape[0], kh, stride=stride[0], dilation=dilation[0]).size
    wo = conv_axis(x_shape[1], kw, stride=stride[1], dilation=dilation[1]).size
    return ho, wo


def saturate_into(values: Array, out: NDArray[Any]) -> None:
    """``out[...] = values`` rounded to nearest and clipped to the range of out's
    integer dtype (OpenCV's ``saturate_cast``); ``values`` is overwritten."""
    info = np.iinfo(out.dtype)
    np.rint(values, out=values)
    np.clip(values, info.min, info.max, out=values)
    np.copyto(out, values, casting="unsafe")


def saturated(values: Array, dtype: Any, *, overwrite: bool = False) -> NDArray[Any]:
    """A new array of integer ``dtype``: `saturate_into` of ``values``, which are left
    as they were unless ``overwrite``."""
    out = np.empty(values.shape, dtype=dtype)
    saturate_into(values if overwrite else values.copy(), out)
    return out


def tap_product(a: Array, wt: Array, groups: int, out: Array) -> None:
    """``out[..., o] = sum_k a[..., g·C/groups + k] · wt[k, o]``, g the group of o.

    ``a`` is ... x C, ``wt`` is (C/groups) x F, ``out`` a C-contiguous ... x F array.
    Depthwise (C/groups = 1) is one broadcast multiply over all channels.
    """
    cg, f = wt.shape
    fg = f // groups
    if cg == 1:
        if fg == 1:
            np.multiply(a, wt[0], out=out)
        else:
            out4 = out.reshape(*out.shape[:-1], groups, fg)
            np.multiply(a[..., None], wt[0].reshape(groups, fg), out=out4)
    elif groups == 1:
        np.matmul(a, wt, out=out)
    else:
        for g in range(groups):
            ins, outs = slice(g * cg, (g + 1) * cg), slice(g * fg, (g + 1) * fg)
            np.matmul(a[..., ins], wt[:, outs], out=out[..., outs])


# -- helpers ---------------------------------------------------------------


def sum_is_finite(x: NDArray[Any]) -> bool:
    """True when the sum of ``x`` (a real array) is finite, and so every value is.

    False says only that some value may not be: a sum of finite values overflows past
    float32's 3.4e38. The rows are summed by a matrix-vector product with ones, which
    runs at memory speed where ``np.add.reduce`` takes five times as long (a 64 MiB
    array: 2 ms against 9); a NaN or an infinity carries through either.
    """
    if x.dtype.kind not in "fc":
        return True
    with np.errstate(over="ignore", invalid="ignore"):
        if x.flags.c_contiguous and x.dtype in (np.float32, np.float64):
            flat = x.reshape(-1)
            whole = flat.size - flat.size % _SUM_ROW
            rows = flat[:whole].reshape(-1, _SUM_ROW)
            total = np.add.reduce(rows @ np.ones(_SUM_ROW, x.dtype)) + np.add.reduce(flat[whole:])
            return bool(np.isfinite(total))
        return bool(np.isfinite(np.add.reduce(x, axis=None)))


_SUM_ROW = 4096
"""Values per row of `sum_is_finite`'s matrix-vector product, whatever x's shape."""
