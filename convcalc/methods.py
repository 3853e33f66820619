"""Four ways to compute a 2-D cross-correlation of an already padded input.

Each takes an input ``x``, HxWxC with the padding applied, and a kernel bank ``w``,
KH x KW x (C/groups) x F, and returns Ho x Wo x F: per axis (input n, kernel f,
stride s, dilation d; sizes from `convcalc.geometry`)::

    out = floor((n - d(f-1) - 1)/s) + 1
    y[r, c, o] = sum_{i, j, k} x[r·s + i·d, c·s + j·d, g·C/groups + k] · w[i, j, k, o]

where ``g = o // (F/groups)`` is the group of output channel o (PyTorch's rule). The
kernel is not flipped. dtype policy: float32 and 8-bit input (images, bool)
compute and return float32; any other real input (wider integers, float64)
computes in float64, exact for small integer examples. The four methods agree to
floating-point tolerance:

* ``direct``: shift-and-add over the KH·KW taps on strided views, in row strips
  run on a small thread pool, with a two-pass path for rank-1 (separable) kernels;
* ``im2col``: a patch matrix times the weight matrix, chunked over output rows;
* ``fft``: products of real 2-D FFTs, cropped to the valid part, then subsampled
  (`convcalc.fftconv`);
* ``winograd``: F(2x2, 3x3) minimal filtering, 3x3 kernels with stride and dilation 1
  (`convcalc.winograd`).

This module picks among them (`choose_method`) and holds direct and im2col; the
shared dtype policy and shape checks are in `convcalc.arrays`.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, DTypeLike, NDArray

from convcalc.arrays import (
    CHUNK_BYTES,
    WORKERS,
    Array,
    Pair,
    output_size,
    prepare,
    saturate_into,
    tap_product,
)
from convcalc.arrays import working_array as working_array
from convcalc.arrays import working_dtype as working_dtype
from convcalc.choices import Method
from convcalc.errors import ConvcalcError
from convcalc.fftconv import correlate_fft as correlate_fft
from convcalc.geometry import effective_kernel
from convcalc.kernels import separable_factors
from convcalc.padding import PaddedInput
from convcalc.winograd import correlate_winograd as correlate_winograd

TILE_BYTES = 512 * 2**10
"""Bytes of output per strip of the direct method, so its working set stays in cache.

Measured on the 2-core build machine, 4096x4096 float32, 2 threads, best of 3 (ms)
for strips of 256 KiB, 512 KiB, 1 MiB and 4 MiB of output:
1 channel 3x3: 64, 49, 49, 53;  7x7: 213, 173, 202, 243;
3 channels (depthwise) 3x3: 219, 165, 182, 220;  5x5: 430, 302, 354, 449.
"""

TILE_MIN_ROWS_PER_SPAN = 8
"""A strip has at least this many output rows per extra kernel row (KH - 1).

A strip reads KH - 1 rows beyond its own, and the separable row pass computes
them too, so short strips waste work: 4096x4096, 2 threads, best of 3 (ms) for
strips of 8, 16, 32, 64 and 128 rows: 1 channel, separable 9x9: 538, 418, 292,
226, 217; dense 7x7: 229, 205, 174, 154, 150; separable 5x5: 85, 52, 39, 33, 56;
3 channels, one shared 5x5 Gaussian, uint8 to uint8: 221, 107, 86, 106 (no 128).
"""

SEPARABLE_MIN_PIXELS = 128 * 128
"""Output pixels from which direct runs rank-1 kernels as two 1-D passes (below it the
plain sum stays exact on integers; the factored one may differ in the last bit)."""

# AUTO's rules come from measurements on the 2-core build machine (numpy 2.4), best of
# 3 runs, stride 1, direct vs FFT (overlap-save tiles) in ms, 2026-11-23. One channel:
#   512x512 float64:   5x5 4 vs 5,    7x7 7 vs 5,    9x9 14 vs 5
#   1024x1024 float64: 5x5 14 vs 14,  7x7 27 vs 13,  9x9 45 vs 15
#   1024x1024 float32: 5x5 8 vs 10,   7x7 14 vs 10,  9x9 24 vs 9
#   2048x2048 float32: 5x5 26 vs 23,  7x7 47 vs 24,  9x9 76 vs 24
#   4096x4096 float32: 5x5 85 vs 78,  7x7 170 vs 70, 9x9 230 vs 90
# Several channels, float64 (C to F channels):
#   512x512, 3 to 8:    5x5 17 vs 20,   7x7 23 vs 21,   9x9 44 vs 26
#   512x512, 16 to 16:  5x5 52 vs 138,  7x7 95 vs 123,  9x9 212 vs 122
#   256x256, 64 to 64:  5x5 321 vs 368, 7x7 638 vs 470, 9x9 1282 vs 424
# Separable kernels (two passes), float32, depthwise:
#   1024x1024:          9x9 6 vs 8,     15x15 8 vs 9,    21x21 10 vs 10,  31x31 14 vs 8
#   1024x1024x3:        9x9 12 vs 27,   15x15 18 vs 28,  21x21 29 vs 28,  31x31 42 vs 25
#   4096x4096:          9x9 58 vs 78,   15x15 88 vs 101, 21x21 143 vs 90
# Both methods cost about the same per pixel at every image size, so the rules do not
# depend on it: FFT pays off from about 36 taps for one channel and 64 for several.
# im2col never beat direct (3x3, 16 to 16: 126 vs 23; 64 to 64 on 128x128: 35 vs 16),
# nor did Winograd (16 to 16: 133 vs 23): AUTO picks neither.
FFT_MIN_TAPS = 36
"""AUTO picks FFT for a kernel of depth 1 from this many taps per output pixel."""

FFT_MIN_TAPS_DEEP = 64
"""AUTO picks FFT for a kernel of depth 2 or more from this many taps per output pixel."""

FFT_SEPARABLE_TAPS = 36
"""AUTO picks FFT for a separable kernel when ``(KH + KW)/(s_h·s_w)`` reaches this."""

DIRECT_MAX_MACS = 2**22
"""Below this many multiply-accumulates AUTO keeps direct: fast, and exact on integers."""

def correlate_padded(
    x: ArrayLike,
    w: ArrayLike,
    *,
    stride: Pair = (1, 1),
    dilation: Pair = (1, 1),
    groups: int = 1,
    method: Method = Method.AUTO,
) -> Array:
    """Cross-correlate an already padded HxWxC input with a bank of F kernels.

    Parameters
    ----------
    x : array, HxWxC
        The padded input.
    w : array, KH x KW x (C/groups) x F
        The kernels; F must be divisible by ``groups``.
    stride, dilation : (int, int)
        Per axis (rows, columns).
    groups : int
        Output channel o sees input channels of group ``o // (F/groups)`` only.
    method : Method
        ``auto`` (see `choose_method`), ``direct``, ``im2col``, ``fft`` or ``winograd``.

    Returns
    -------
    array, Ho x Wo x F
        ``Ho = (H - d(KH-1) - 1)//s + 1``, likewise Wo; float32 for float32 input,
        float64 otherwise.

    Raises
    ------
    ConvcalcError
        Shapes that do not fit, a kernel larger than the input, winograd out of reach.

    Examples
    --------
    >>> x = np.arange(16).reshape(4, 4, 1)
    >>> correlate_padded(x, np.ones((3, 3, 1, 1)))[..., 0]
    array([[45., 54.],
           [81., 90.]])
    """
    xa, wa, _, _ = prepare(x, w, stride, dilation, groups)
    if method == Method.AUTO:
        method = choose_method(
            xa.shape, wa.shape, stride=stride, dilation=dilation, groups=groups,
            separable=is_separable(wa), itemsize=xa.dtype.itemsize,
        )
    if method == Method.DIRECT:
        return correlate_direct(xa, wa, stride=stride, dilation=dilation, groups=groups)
    if method == Method.IM2COL:
        return correlate_im2col(xa, wa, stride=stride, dilation=dilation, groups=groups)
    if method == Method.FFT:
        return correlate_fft(xa, wa, stride=stride, dilation=dilation, groups=groups)
    if method == Method.WINOGRAD:
        return correlate_winograd(xa, wa, stride=stride, dilation=dilation, groups=groups)
    raise ConvcalcError(f"method {method!r} is not valid; valid: {', '.join(Method)}")


def choose_method(
    in_shape: tuple[int, ...],
    kernel_shape: tuple[int, ...],
    *,
    stride: Pair = (1, 1),
    dilation: Pair = (1, 1),
    groups: int = 1,
    separable: bool = False,
    itemsize: int = 8,
) -> Method:
    """The method AUTO uses for an HxWxC input and a KH x KW x (C/groups) x F bank.

    A cost rule on shapes, never an error: with ``P = H·W/(s_h·s_w)`` output pixels
    (about; padded or not), direct below `DIRECT_MAX_MACS` multiply-accumulates
    ``P·KH·KW·C/groups·F``; otherwise FFT when the taps per output pixel,
    ``KH·KW/(s_h·s_w)``, reach `FFT_MIN_TAPS` (depth C/groups of 1) or
    `FFT_MIN_TAPS_DEEP` (deeper), or, for a ``separable`` kernel (see
    `is_separable`) that direct runs in two passes, when ``(KH + KW)/(s_h·s_w)``
    reaches `FFT_SEPARABLE_TAPS`; direct otherwise. With a stride FFT still
    computes every position. ``itemsize`` is accepted for callers that know the
    dtype; it does not change the answer. im2col and Winograd are never chosen:
    neither beat direct here.

    Examples
    --------
    >>> str(choose_method((512, 512, 1), (15, 15, 1, 1)))
    'fft'
    >>> str(choose_method((512, 512, 64), (5, 5, 64, 64)))
    'direct'
    """
    del dilation, groups  # the kernel depth already says what groups do
    del itemsize  # measured: float32 and float64 cross over at about the same size
    kh, kw, depth, filters = kernel_shape[:4]
    strides = stride[0] * stride[1]
    pixels = in_shape[0] * in_shape[1] / strides
    if pixels * kh * kw * depth * filters < DIRECT_MAX_MACS:
        return Method.DIRECT
    if separable and depth == 1 and pixels >= SEPARABLE_MIN_PIXELS:
        fft = (kh + kw) / strides >= FFT_SEPARABLE_TAPS
    else:
        fft = kh * kw / strides >= (FFT_MIN_TAPS if depth == 1 else FFT_MIN_TAPS_DEEP)
    return Method.FFT if fft else Method.DIRECT


def is_separable(w: ArrayLike) -> bool:
    """True when direct runs every kernel of the KH x KW x 1 x F bank as two 1-D passes.

    That is: depth 1, larger than 2x2 (at least 2 on each side), and rank 1 by the
    SVD (``s1 <= 1e-10·s0``; 4 eps·s0 in float32), as Gaussian, box and Sobel kernels are.

    Examples
    --------
    >>> is_separable(np.outer([1, 2, 1], [1, 0, -1])[:, :, None, None])
    True
    """
    return _rank1_factors(working_array(w)) is not None


def correlate_direct(
    x: ArrayLike | PaddedInput, w: ArrayLike, *, stride: Pair = (1, 1),
    dilation: Pair = (1, 1), groups: int = 1, tile_rows: int | None = None,
    workers: int = WORKERS, separable: bool = True, out_dtype: DTypeLike | None = None,
) -> NDArray[Any]:
    """Shift-and-add over the KH·KW taps: ``y += x[tap view] @ w[i, j]`` per tap.

    Output rows are computed in strips of ``tile_rows`` (default: `TILE_BYTES` of
    output, at least 4 rows and `TILE_MIN_ROWS_PER_SPAN` per extra kernel row) on
    ``workers`` threads. ``x`` may be a `PaddedInput`, whose padded rows are then
    built strip by strip, never as a whole.
    Kernels of depth 1 (depthwise) run channels-first, or, when every channel has
    the same kernel and the column stride is 1, on the HxWxC layout as it is;
    when they are also rank 1 (see `is_separable`), larger than 2x2 and the output
    has `SEPARABLE_MIN_PIXELS` pixels, as a row pass then a column pass (unless
    ``separable=False``). An integer ``out_dtype`` (e.g. uint8) returns the result
    rounded to nearest and saturated to that type's range, strip by strip, as
    OpenCV's ``saturate_cast`` does: no float copy of the whole result is made.
    Shapes as in `correlate_padded`.
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
        tile_rows = max(4, TILE_BYTES // max(1, wo * f * wa.dtype.itemsize),
                        TILE_MIN_ROWS_PER_SPAN * (span - 1))
    factors = _rank1_factors(wa) if separable and ho * wo >= SEPARABLE_MIN_PIXELS else None
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
    if len(starts) > 1 and workers > 1:
        with ThreadPoolExecutor(min(workers, len(starts))) as pool:
            list(pool.map(strip, starts))
    else:
        for r0 in starts:
            strip(r0)
    return out


def correlate_im2col(
    x: ArrayLike, w: ArrayLike, *, stride: Pair = (1, 1), dilation: Pair = (1, 1),
    groups: int = 1, chunk_bytes: int = CHUNK_BYTES,
) -> Array:
    """Patch matrix @ weight matrix, per group, over chunks of output rows.

    A chunk of r output rows makes a patch matrix of ``r·Wo`` rows and
    ``C/groups·KH·KW`` columns per group; r is chosen so that all groups' patches
    fit in ``chunk_bytes`` (at least one row). Shapes as in `correlate_padded`.
    """
    xa, wa, ho, wo = prepare(x, w, stride, dilation, groups)
    kh, kw, cg, f = wa.shape
    fg = f // groups
    windows = sliding_window_view(
        xa, (effective_kernel(kh, dilation[0]), effective_kernel(kw, dilation[1])), axis=(0, 1)
    )[:: stride[0], :: stride[1], :, :: dilation[0], :: dilation[1]]
    weights = (
        wa.reshape(kh, kw, cg, groups, fg).transpose(3, 2, 0, 1, 4).reshape(groups, -1, fg)
    )
    out = np.empty((ho, wo, f), dtype=xa.dtype)
    rows = max(1, chunk_bytes // (wo * kh * kw * xa.shape[2] * xa.itemsize))
    for r0 in range(0, ho, rows):
        r1 = min(r0 + rows, ho)
        patches = windows[r0:r1, :wo].reshape(r1 - r0, wo, groups, cg, kh, kw)
        patches = patches.transpose(2, 0, 1, 3, 4, 5).reshape(groups, (r1 - r0) * wo, -1)
        product = np.matmul(patches, weights)
        out[r0:r1] = product.reshape(groups, r1 - r0, wo, fg).transpose(1, 2, 0, 3).reshape(
            r1 - r0, wo, f
        )
    return out


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


def _shared(xs: Array, k: Array, factors: tuple[Array, Array] | None, stride: Pair,
            dilation: Pair, out: Array) -> None:
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


def _shift_add(
    xs: Array, w: Array, stride: Pair, dilation: Pair, groups: int, out: Array
) -> None:
    """``out = sum over taps (i, j) of tap_product(xs[i·d:…:s, j·d:…:s], w[i, j])``."""
    (sh, sw), (dh, dw) = stride, dilation
    ho, wo = out.shape[:2]
    tmp = np.empty_like(out)
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            view = xs[i * dh : i * dh + (ho - 1) * sh + 1 : sh,
                      j * dw : j * dw + (wo - 1) * sw + 1 : sw]
            if i == j == 0:
                tap_product(view, w[0, 0], groups, out)
            else:
                tap_product(view, w[i, j], groups, tmp)
                np.add(out, tmp, out=out)


def _rank1_factors(w: Array) -> tuple[Array, Array] | None:
    """(u, v), F x KH and F x KW with ``w[:, :, 0, o] = outer(u[o], v[o])``, or None.

    Only for kernels of depth 1, at least 2x2 and not 2x2 (else two passes save
    nothing), each rank 1 by `convcalc.kernels.separable_factors` (``s1 <=
    1e-10·s0``, or 4 eps·s0 for float32), whose factors are exact for integer and
    dyadic kernels (gauss5).
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


def _shift_add_depthwise(
    xs: Array, w: Array, stride: Pair, dilation: Pair, out: Array
) -> None:
    """Depth-1 kernels, channels first: xs is G x H x W, out G x M x Ho x Wo (F = G·M)."""
    (sh, sw), (dh, dw) = stride, dilation
    groups, mult, ho, wo = out.shape
    wt = w[:, :, 0, :].reshape(*w.shape[:2], groups, mult, 1, 1)
    tmp = np.empty_like(out)
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            view = xs[:, None, i * dh : i * dh + (ho - 1) * sh + 1 : sh,
                      j * dw : j * dw + (wo - 1) * sw + 1 : sw]
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
