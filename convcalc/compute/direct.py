"""The direct method: shift-and-add of the KH·KW taps over strided views of an
already padded HxWxC input, in row strips on a thread pool.

Depthwise kernels run channels-first, or on the HxWxC rows as they are when every
channel has the same kernel; rank-1 kernels run as a row pass and a column pass.
Shapes and the dtype policy are those of `convcalc.compute.methods`.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from convcalc.calc.geometry import effective_kernel
from convcalc.compute.arrays import (
    Array,
    Pair,
    output_size,
    prepare,
    saturate_into,
    tap_product,
    threads,
    working_array,
)
from convcalc.compute.factoring import rank1_factors
from convcalc.compute.padding import PaddedInput

TILE_BYTES = 512 * 2**10
"""Bytes of output per strip of the direct method, so its working set stays in cache.

Measurements: benchmarks/README.md.
"""

TILE_MIN_ROWS_PER_SPAN = 8
"""A strip has at least this many output rows per extra kernel row (KH - 1).

A strip reads KH - 1 rows beyond its own, and the separable row pass computes
them too, so short strips waste work. Measurements: benchmarks/README.md.
"""

SEPARABLE_MIN_PIXELS = 128 * 128
"""Output pixels from which direct runs rank-1 kernels as two 1-D passes (below it the
plain sum stays exact on integers; the factored one may differ in the last bit)."""


def correlate_direct(
    x: ArrayLike | PaddedInput,
    w: ArrayLike,
    *,
    stride: Pair = (1, 1),
    dilation: Pair = (1, 1),
    groups: int = 1,
    tile_rows: int | None = None,
    workers: int | None = None,
    separable: bool = True,
    out_dtype: DTypeLike | None = None,
) -> NDArray[Any]:
    """Shift-and-add over the KH·KW taps: ``y += x[tap view] @ w[i, j]`` per tap.

    Output rows are computed in strips of ``tile_rows`` (default: `TILE_BYTES` of
    output, at least 4 rows and `TILE_MIN_ROWS_PER_SPAN` per extra kernel row) on
    ``workers`` threads (default `convcalc.compute.arrays.threads`). ``x`` may be a
    `PaddedInput`, whose padded rows are then built strip by strip, never as a whole.
    Kernels of depth 1 (depthwise) run channels-first, or, when every channel has
    the same kernel and the column stride is 1, on the HxWxC layout as it is;
    when they are also rank 1 (see `convcalc.compute.factoring.rank1_factors`),
    larger than 2x2 and the output has `SEPARABLE_MIN_PIXELS` pixels, as a row pass
    then a column pass (unless ``separable=False``). An integer ``out_dtype`` (e.g.
    uint8) returns the result rounded to nearest and saturated to that type's range,
    strip by strip, as OpenCV's ``saturate_cast`` does: no float copy of the whole
    result is made.
    Shapes as in `convcalc.compute.methods.correlate_padded`.
    """
    if isinstance(x, PaddedInput):
        bands: PaddedInput | None = x
        xa = np.empty((0, 0, 0), x.dtype)  # unused: the strips come from the bands
        wa = working_array(w).astype(x.dtype, copy=False)
        ho, wo = output_size(x.shape, wa.shape, stride, dilation, groups)
    else:
        bands = None
        xa, wa, ho, wo = prepare(x, w, stride, dilation, groups)
    dtype = xa.dtype
    span = effective_kernel(wa.shape[0], dilation[0])
    f = wa.shape[3]
    if tile_rows is None:
        tile_rows = max(
            4, TILE_BYTES // max(1, wo * f * wa.dtype.itemsize), TILE_MIN_ROWS_PER_SPAN * (span - 1)
        )
    factors = rank1_factors(wa) if separable and ho * wo >= SEPARABLE_MIN_PIXELS else None
    product = _strip_product(wa, stride, dilation, groups, factors)
    out = np.empty((ho, wo, f), dtype=dtype if out_dtype is None else out_dtype)
    saturate = out.dtype != dtype

    def strip(r0: int) -> None:
        r1 = min(r0 + tile_rows, ho)
        start, stop = r0 * stride[0], (r1 - 1) * stride[0] + span
        xs = bands.rows(start, stop) if bands is not None else xa[start:stop]
        target = np.empty((r1 - r0, wo, f), dtype) if saturate else out[r0:r1]
        product(xs, target)
        if saturate:
            saturate_into(target, out[r0:r1])

    starts = range(0, ho, max(1, tile_rows))
    workers = threads() if workers is None else workers
    if len(starts) > 1 and workers > 1:
        with ThreadPoolExecutor(min(workers, len(starts))) as pool:
            list(pool.map(strip, starts))
    else:
        for r0 in starts:
            strip(r0)
    return out


# -- helpers ---------------------------------------------------------------


def _strip_product(
    w: Array, stride: Pair, dilation: Pair, groups: int, factors: tuple[Array, Array] | None
) -> Callable[[Array, Array], None]:
    """The function that fills an output strip (Ho' x Wo x F) from its input rows."""
    if w.shape[2] != 1:
        return lambda xs, out: _shift_add(xs, w, stride, dilation, groups, out)
    if stride[1] == 1 and w.shape[3] == groups and np.all(w == w[..., :1]):
        # one kernel for every channel: its taps are scalars, and along a row the
        # channels interleave into one contiguous run, so no transposes are needed
        shared = (w[:, :, 0, 0], None if factors is None else (factors[0][0], factors[1][0]))
        return lambda xs, out: _shared(xs, *shared, stride, dilation, out)
    f = w.shape[3]

    def channels_first(xs: Array, out: Array) -> None:
        # channels first within the strip, so the inner loops run along a row, not
        # over C; the strip's transposes stay in cache and run on the thread pool
        xs = np.ascontiguousarray(xs.transpose(2, 0, 1))
        rows, wo = out.shape[:2]
        if f == 1:  # one map: write straight into the output
            local = out[:, :, 0][None, None]
        else:
            local = np.empty((groups, f // groups, rows, wo), dtype=out.dtype)
        if factors is None:
            _shift_add_depthwise(xs, w, stride, dilation, local)
        else:
            _separable(xs, factors, stride, dilation, local)
        if f > 1:
            out[...] = local.reshape(f, rows, wo).transpose(1, 2, 0)

    return channels_first


def _shared(
    xs: Array,
    k: Array,
    factors: tuple[Array, Array] | None,
    stride: Pair,
    dilation: Pair,
    out: Array,
) -> None:
    """One KH x KW kernel on every channel of xs (R x W x C) at column stride 1."""
    (sh, _), (dh, dw) = stride, dilation
    wo = out.shape[1]
    if factors is None:
        taps = [(i * dh, j * dw, k[i, j]) for i in range(k.shape[0]) for j in range(k.shape[1])]
        _add_taps(xs, taps, sh, out)
        return
    u, v = factors
    rows = np.empty((xs.shape[0], wo, xs.shape[2]), dtype=out.dtype)
    _add_taps(xs, [(0, j * dw, v[j]) for j in range(v.size)], 1, rows)
    _add_taps(rows, [(i * dh, 0, u[i]) for i in range(u.size)], sh, out)


def _add_taps(xs: Array, taps: list[tuple[int, int, Any]], sh: int, out: Array) -> None:
    """``out = sum of weight · xs[r0 + sh·r, c0 + c]`` over the taps ``(r0, c0, weight)``."""
    ho, wo = out.shape[:2]
    tmp = np.empty_like(out)
    for n, (r0, c0, weight) in enumerate(taps):
        view = xs[r0 : r0 + (ho - 1) * sh + 1 : sh, c0 : c0 + wo]
        np.multiply(view, weight, out=tmp if n else out)
        if n:
            np.add(out, tmp, out=out)


def _shift_add(xs: Array, w: Array, stride: Pair, dilation: Pair, groups: int, out: Array) -> None:
    """``out = sum over taps (i, j) of tap_product(xs[i·d:…:s, j·d:…:s], w[i, j])``."""
    (sh, sw), (dh, dw) = stride, dilation
    ho, wo = out.shape[:2]
    tmp = np.empty_like(out)
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            view = xs[
                i * dh : i * dh + (ho - 1) * sh + 1 : sh, j * dw : j * dw + (wo - 1) * sw + 1 : sw
            ]
            if i == j == 0:
                tap_product(view, w[0, 0], groups, out)
            else:
                tap_product(view, w[i, j], groups, tmp)
                np.add(out, tmp, out=out)


def _shift_add_depthwise(xs: Array, w: Array, stride: Pair, dilation: Pair, out: Array) -> None:
    """Depth-1 kernels, channels first: xs is G x H x W, out G x M x Ho x Wo (F = G·M)."""
    (sh, sw), (dh, dw) = stride, dilation
    groups, mult, ho, wo = out.shape
    wt = w[:, :, 0, :].reshape(*w.shape[:2], groups, mult, 1, 1)
    tmp = np.empty_like(out)
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            view = xs[
                :,
                None,
                i * dh : i * dh + (ho - 1) * sh + 1 : sh,
                j * dw : j * dw + (wo - 1) * sw + 1 : sw,
            ]
            if i == j == 0:
                np.multiply(view, wt[0, 0], out=out)
            else:
                np.multiply(view, wt[i, j], out=tmp)
                np.add(out, tmp, out=out)


def _separable(
    xs: Array, factors: tuple[Array, Array], stride: Pair, dilation: Pair, out: Array
) -> None:
    """A row pass with v, then a column pass with u; layout as `_shift_add_depthwise`."""
    (sh, sw), (dh, dw) = stride, dilation
    groups, mult, ho, wo = out.shape
    u = factors[0].reshape(groups, mult, -1, 1, 1)
    v = factors[1].reshape(groups, mult, -1, 1, 1)
    rows = np.empty((groups, mult, xs.shape[1], wo), dtype=out.dtype)
    tmp = np.empty_like(rows)
    for j in range(v.shape[2]):
        view = xs[:, None, :, j * dw : j * dw + (wo - 1) * sw + 1 : sw]
        np.multiply(view, v[:, :, j], out=rows if j == 0 else tmp)
        if j:
            np.add(rows, tmp, out=rows)
    part = tmp[:, :, :ho]
    for i in range(u.shape[2]):
        view = rows[:, :, i * dh : i * dh + (ho - 1) * sh + 1 : sh]
        np.multiply(view, u[:, :, i], out=out if i == 0 else part)
        if i:
            np.add(out, part, out=out)
