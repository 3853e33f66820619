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
* ``fft``: products of real 2-D FFTs, cropped to the valid part, then subsampled;
* ``winograd``: F(2x2, 3x3) minimal filtering, 3x3 kernels with stride and dilation 1.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray

from convcalc.choices import Method
from convcalc.errors import ConvcalcError
from convcalc.geometry import conv_axis, effective_kernel
from convcalc.padding import PaddedInput

Array = NDArray[np.floating[Any]]
"""A float32 or float64 array."""

Pair = tuple[int, int]
"""A per-axis value: (rows, columns)."""

TILE_BYTES = 512 * 2**10
"""Bytes of output per strip of the direct method, so its working set stays in cache.

Measured on the 2-core build machine, 4096x4096 float32, 2 threads, best of 3 (ms)
for strips of 256 KiB, 512 KiB, 1 MiB and 4 MiB of output:
1 channel 3x3: 64, 49, 49, 53;  7x7: 213, 173, 202, 243;
3 channels (depthwise) 3x3: 219, 165, 182, 220;  5x5: 430, 302, 354, 449.
"""

WORKERS = min(4, os.cpu_count() or 1)
"""Threads the direct method runs its strips on (numpy releases the GIL)."""

CHUNK_BYTES = 64 * 2**20
"""Largest intermediate (im2col patch matrix, FFT spectra, Winograd tiles) in bytes."""

SEPARABLE_MIN_PIXELS = 128 * 128
"""Output pixels from which direct runs rank-1 kernels as two 1-D passes (below it the
plain sum stays exact on integers; the factored one may differ in the last bit)."""

# AUTO's rules come from measurements on the 2-core build machine (numpy 2.4), best of
# 3-5 runs, stride 1, direct vs FFT in ms. One channel, after the strip and threaded
# FFT work (FFT cost is nearly the same for float32 and float64 here):
#   512x512 float64:   5x5 3 vs 5,    7x7 6 vs 5,     9x9 9 vs 5
#   1024x1024 float64: 5x5 11 vs 18,  7x7 20 vs 18,   9x9 33 vs 17
#   1024x1024 float32: 5x5 6 vs 11,   7x7 11 vs 11,   9x9 16 vs 12
#   2048x2048 float32: 7x7 43 vs 69,  9x9 61 vs 61,   11x11 94 vs 67
#   4096x4096 float32: 9x9 282 vs 375, 11x11 385 vs 352, 15x15 686 vs 391
# Several channels (512x512 float64, before that work):
#   depth 2 (2 to 4 channels): 5x5 10 vs 25,  7x7 20 vs 24,  9x9 31 vs 24
#   depth 3 (3 to 8 channels): 7x7 51 vs 66,  9x9 83 vs 65,  11x11 122 vs 67
#   depth 16 (16 to 16):       15x15 533 vs 752,  17x17 674 vs 759,  19x19 831 vs 766
#   separable, depthwise 3 channels, 1024x1024: 9x9 52 vs 85, 15x15 75 vs 88,
#   21x21 100 vs 86
# So FFT pays off from about max(36, 25·depth) taps (depth = C/groups) at a million
# pixels, and later on larger images, whose FFT costs more per pixel: the threshold
# grows by (pixels/2**20)**0.4. im2col never beat direct (3x3, 16 to 16: 126 vs 23;
# 64 to 64 on 128x128: 35 vs 16), nor did Winograd (16 to 16: 133 vs 23): AUTO picks
# neither.
FFT_MIN_TAPS = 36
"""AUTO picks FFT from ``max(FFT_MIN_TAPS, FFT_TAPS_PER_DEPTH·depth)`` taps (scaled)."""

FFT_TAPS_PER_DEPTH = 25
"""See `FFT_MIN_TAPS`."""

FFT_SEPARABLE_TAPS = 36
"""AUTO picks FFT for a separable kernel when ``(KH + KW)/(s_h·s_w)`` reaches this."""

DIRECT_MAX_MACS = 2**22
"""Below this many multiply-accumulates AUTO keeps direct: fast, and exact on integers."""

_WINOGRAD_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])


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
    xa, wa, _, _ = _prepare(x, w, stride, dilation, groups)
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
    ``KH·KW/(s_h·s_w)``, reach ``max(FFT_MIN_TAPS, FFT_TAPS_PER_DEPTH · C/groups)``, or, for a
    ``separable`` kernel (see `is_separable`) that direct runs in two passes,
    when ``(KH + KW)/(s_h·s_w)`` reaches `FFT_SEPARABLE_TAPS`; direct otherwise.
    Both thresholds grow with the image (``(P/2**20)**0.4``). ``itemsize`` is
    accepted for callers that know the dtype; it does not change the answer.
    FFT's cost hardly depends on the kernel size but grows with every channel
    pair, and with a stride it still computes every position. im2col and
    Winograd are never chosen: neither beat direct here.

    Examples
    --------
    >>> str(choose_method((512, 512, 1), (15, 15, 1, 1)))
    'fft'
    >>> str(choose_method((512, 512, 64), (15, 15, 64, 64)))
    'direct'
    """
    del dilation, groups  # the kernel depth already says what groups do
    kh, kw, depth, filters = kernel_shape[:4]
    strides = stride[0] * stride[1]
    pixels = in_shape[0] * in_shape[1] / strides
    if pixels * kh * kw * depth * filters < DIRECT_MAX_MACS:
        return Method.DIRECT
    del itemsize  # measured: float32 and float64 cross over at about the same size
    scale = max(1.0, (pixels / 2**20) ** 0.4)
    if separable and depth == 1 and pixels >= SEPARABLE_MIN_PIXELS:
        fft = (kh + kw) / strides >= FFT_SEPARABLE_TAPS * scale
    else:
        fft = kh * kw / strides >= max(FFT_MIN_TAPS, FFT_TAPS_PER_DEPTH * depth) * scale
    return Method.FFT if fft else Method.DIRECT


def is_separable(w: ArrayLike) -> bool:
    """True when direct runs every kernel of the KH x KW x 1 x F bank as two 1-D passes.

    That is: depth 1, larger than 2x2 (at least 2 on each side), and rank 1 by the
    SVD (``s1 <= 1e-10·s0``), as Gaussian, box and Sobel kernels are.

    Examples
    --------
    >>> is_separable(np.outer([1, 2, 1], [1, 0, -1])[:, :, None, None])
    True
    """
    return _rank1_factors(working_array(w)) is not None


def correlate_direct(
    x: ArrayLike | PaddedInput, w: ArrayLike, *, stride: Pair = (1, 1),
    dilation: Pair = (1, 1), groups: int = 1, tile_rows: int | None = None,
    workers: int = WORKERS, separable: bool = True,
) -> Array:
    """Shift-and-add over the KH·KW taps: ``y += x[tap view] @ w[i, j]`` per tap.

    Output rows are computed in strips of ``tile_rows`` (default: `TILE_BYTES` of
    output, at least 4 rows) on ``workers`` threads. ``x`` may be a `PaddedInput`,
    whose padded rows are then built strip by strip, never as a whole.
    Kernels of depth 1 (depthwise) run channels-first; when they are also rank 1
    (``s1 <= 1e-10·s0``), larger than 2x2 and the output has `SEPARABLE_MIN_PIXELS`
    pixels, as a row pass then a column pass (unless ``separable=False``).
    Shapes as in `correlate_padded`.
    """
    if isinstance(x, PaddedInput):
        bands: PaddedInput | None = x
        xa = np.empty((0, 0, 0), x.dtype)  # unused: the strips come from the bands
        wa = working_array(w).astype(x.dtype, copy=False)
        ho, wo = _output_size(x.shape, wa.shape, stride, dilation, groups)
    else:
        bands = None
        xa, wa, ho, wo = _prepare(x, w, stride, dilation, groups)
    dtype = xa.dtype
    sh = stride[0]
    span = effective_kernel(wa.shape[0], dilation[0])
    f = wa.shape[3]
    depthwise = wa.shape[2] == 1
    if tile_rows is None:
        tile_rows = max(4, TILE_BYTES // max(1, wo * f * wa.dtype.itemsize))
    factors = _rank1_factors(wa) if separable and ho * wo >= SEPARABLE_MIN_PIXELS else None
    out = np.empty((ho, wo, f), dtype=dtype)

    def strip(r0: int) -> None:
        r1 = min(r0 + tile_rows, ho)
        start, stop = r0 * sh, (r1 - 1) * sh + span
        xs = bands.rows(start, stop) if bands is not None else xa[start:stop]
        if not depthwise:
            _shift_add(xs, wa, stride, dilation, groups, out[r0:r1])
            return
        # channels first within the strip, so the inner loops run along a row, not
        # over C; the strip's transposes stay in cache and run on the thread pool
        xs = np.ascontiguousarray(xs.transpose(2, 0, 1))
        if f == 1:  # one map: write straight into the output
            local = out[r0:r1, :, 0][None, None]
        else:
            local = np.empty((groups, f // groups, r1 - r0, wo), dtype=dtype)
        if factors is None:
            _shift_add_depthwise(xs, wa, stride, dilation, local)
        else:
            _separable(xs, factors, stride, dilation, local)
        if f > 1:
            out[r0:r1] = local.reshape(f, r1 - r0, wo).transpose(1, 2, 0)

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
    xa, wa, ho, wo = _prepare(x, w, stride, dilation, groups)
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


def correlate_fft(
    x: ArrayLike, w: ArrayLike, *, stride: Pair = (1, 1), dilation: Pair = (1, 1),
    groups: int = 1, chunk_bytes: int = CHUNK_BYTES,
) -> Array:
    """Correlation as ``irfft2(rfft2(x) · conj(rfft2(w)))`` on 5-smooth FFT sizes.

    The kernel is dilated by inserting zeros. With FFT sizes at least H x W the
    circular wrap never reaches the valid part, which is cropped and subsampled by
    the stride. Products are summed over each group's input channels; filters are
    taken in blocks so the kernel spectra fit in ``chunk_bytes``. On float64
    integer-valued input and kernels the result is rounded to the exact integers.
    Shapes as in `correlate_padded`.
    """
    xa, wa, ho, wo = _prepare(x, w, stride, dilation, groups)
    kh, kw, cg, f = wa.shape
    fg = f // groups
    size = (_next_smooth(xa.shape[0]), _next_smooth(xa.shape[1]))
    # channels first, so that every product below runs over contiguous spectra
    spectra = _rfft2(xa.transpose(2, 0, 1), size)
    spectra = spectra.reshape(groups, cg, 1, *spectra.shape[1:])
    kernels = np.zeros(
        (cg, groups, fg, effective_kernel(kh, dilation[0]), effective_kernel(kw, dilation[1])),
        xa.dtype,
    )
    kernels[..., :: dilation[0], :: dilation[1]] = np.moveaxis(
        wa.reshape(kh, kw, cg, groups, fg), (0, 1), (3, 4))
    block = max(1, chunk_bytes // spectra.nbytes)
    out = np.empty((ho, wo, groups, fg), dtype=xa.dtype)
    for f0 in range(0, fg, block):
        f1 = min(f0 + block, fg)
        # rfft2 of the zero-padded kernels, the row pass on their KH nonzero rows only
        kspec = _rfft2(kernels[:, :, f0:f1], size)
        np.conjugate(kspec, out=kspec)
        total = spectra[:, 0] * kspec[0]
        for c in range(1, cg):
            np.multiply(spectra[:, c], kspec[c], out=kspec[c])
            np.add(total, kspec[c], out=total)
        full = _irfft2(total, size)
        out[..., f0:f1] = full[..., : (ho - 1) * stride[0] + 1 : stride[0],
                               : (wo - 1) * stride[1] + 1 : stride[1]].transpose(2, 3, 0, 1)
    if xa.dtype == np.float64 and _integer_valued(xa, wa):
        np.rint(out, out=out)  # the exact sum is an integer; FFT misses it by ~1e-12
    return out.reshape(ho, wo, f)


def correlate_winograd(
    x: ArrayLike, w: ArrayLike, *, stride: Pair = (1, 1), dilation: Pair = (1, 1),
    groups: int = 1, chunk_bytes: int = CHUNK_BYTES,
) -> Array:
    """Winograd minimal filtering F(2x2, 3x3): ``Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A`` per tile.

    Each 2x2 output tile comes from a 4x4 input tile with 16 multiplications per
    channel pair instead of 36. Odd output sizes are padded with zeros to whole
    tiles and cropped. Needs 3x3 kernels, stride 1 and dilation 1. Shapes as in
    `correlate_padded`.

    Raises
    ------
    ConvcalcError
        Any other kernel size, stride or dilation.
    """
    xa, wa, ho, wo = _prepare(x, w, stride, dilation, groups)
    kh, kw, _, f = wa.shape
    if (kh, kw) != (3, 3) or tuple(stride) != (1, 1) or tuple(dilation) != (1, 1):
        got = f"{kh}x{kw}" + "".join(
            f" with {name} {v[0]}x{v[1]}"
            for name, v in (("stride", stride), ("dilation", dilation)) if tuple(v) != (1, 1)
        )
        raise ConvcalcError(
            f"winograd needs a 3x3 kernel with stride 1 and dilation 1; got {got}; "
            "valid: another method (direct, im2col, fft)"
        )
    th, tw = -(-ho // 2), -(-wo // 2)
    xp = np.pad(xa, ((0, 2 * th + 2 - xa.shape[0]), (0, 2 * tw + 2 - xa.shape[1]), (0, 0)))
    gm = _WINOGRAD_G.astype(xa.dtype)
    u = np.einsum("ai,ijcf,bj->abcf", gm, wa, gm)
    out = np.empty((2 * th, 2 * tw, f), dtype=xa.dtype)
    rows = max(1, chunk_bytes // (16 * tw * (xa.shape[2] + f) * xa.itemsize))
    for t0 in range(0, th, rows):
        n = min(t0 + rows, th) - t0
        v = _winograd_input(xp[2 * t0 : 2 * (t0 + n) + 2], n, tw)
        m = np.empty((4, 4, n * tw, f), dtype=xa.dtype)
        for i in range(4):
            for j in range(4):
                tap_product(v[i, j].reshape(n * tw, -1), u[i, j], groups, m[i, j])
        # Aᵀ M A with Aᵀ = [[1, 1, 1, 0], [0, 1, -1, -1]], rows then columns
        s = (m[0] + m[1] + m[2], m[1] - m[2] - m[3])
        for i in range(2):
            y = (s[i][0] + s[i][1] + s[i][2], s[i][1] - s[i][2] - s[i][3])
            for j in range(2):
                out[2 * t0 + i : 2 * (t0 + n) : 2, j::2] = y[j].reshape(n, tw, f)
    return out[:ho, :wo]


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


def _working_pair(x: ArrayLike, w: ArrayLike) -> tuple[Array, Array]:
    xa = working_array(x)
    return xa, working_array(w).astype(xa.dtype, copy=False)


def _prepare(
    x: ArrayLike, w: ArrayLike, stride: Pair, dilation: Pair, groups: int
) -> tuple[Array, Array, int, int]:
    """Working-dtype arrays and the output size, after checking that the shapes fit."""
    xa, wa = _working_pair(x, w)
    ho, wo = _output_size(xa.shape, wa.shape, stride, dilation, groups)
    return xa, wa, ho, wo


def _output_size(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: Pair, dilation: Pair,
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
    nothing). Rank 1 is judged by the SVD, ``s1 <= 1e-10·s0``; the factors are a
    column and a row of the kernel through its largest entry, exact for integers.
    """
    kh, kw, cg, f = w.shape
    if cg != 1 or min(kh, kw) < 2 or kh * kw <= kh + kw:
        return None
    k = w[:, :, 0, :].transpose(2, 0, 1).astype(np.float64)
    s = np.linalg.svd(k, compute_uv=False)
    if np.any(s[:, 1] > 1e-10 * s[:, 0]):
        return None
    flat = np.abs(k).reshape(f, -1).argmax(axis=1)
    p, q = np.divmod(flat, kw)
    o = np.arange(f)
    pivot = k[o, p, q]
    safe = np.where(pivot == 0, 1.0, pivot)
    u = k[o, :, q]
    v = k[o, p, :] / safe[:, None]
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


def _winograd_input(xp: Array, n: int, tw: int) -> Array:
    """Bᵀ d B for n x tw tiles of 4x4 (stride 2) of xp: 4 x 4 x n x tw x C.

    Bᵀ = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], applied to
    strided views (rows, then columns) rather than to copied tiles.
    """
    d = [xp[i : i + 2 * n : 2] for i in range(4)]
    r = (d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3])
    v = np.empty((4, 4, n, tw, xp.shape[2]), dtype=xp.dtype)
    for i in range(4):
        c = [r[i][:, j : j + 2 * tw : 2] for j in range(4)]
        np.subtract(c[0], c[2], out=v[i, 0])
        np.add(c[1], c[2], out=v[i, 1])
        np.subtract(c[2], c[1], out=v[i, 2])
        np.subtract(c[1], c[3], out=v[i, 3])
    return v


def _integer_valued(x: Array, w: Array) -> bool:
    """Both hold integers, small enough (sums under 2^40) that FFT's error is far below 1/2."""
    bound = np.abs(x).max(initial=0) * np.abs(w).sum(axis=(0, 1, 2)).max(initial=0)
    return bool(bound < 2**40 and np.all(x == np.rint(x)) and np.all(w == np.rint(w)))


def _rfft2(a: Array, size: Pair) -> NDArray[Any]:
    """``rfft2`` over the last two axes, zero-padded to ``size``, on the thread pool.

    The row pass runs only on the rows that hold data; each pass is split in
    blocks across `WORKERS` threads (numpy's FFT releases the GIL), each writing
    its block of one preallocated result.
    """
    rows = _fft_blocks(np.fft.rfft, a, size[1], -1, size[1] // 2 + 1, complex)
    return _fft_blocks(np.fft.fft, rows, size[0], -2, size[0], complex)


def _irfft2(spectrum: NDArray[Any], size: Pair) -> Array:
    """The inverse of `_rfft2`: real arrays of ``size`` over the last two axes."""
    cols = _fft_blocks(np.fft.ifft, spectrum, size[0], -2, size[0], complex)
    return _fft_blocks(np.fft.irfft, cols, size[1], -1, size[1], float)


def _fft_blocks(fn: Any, a: NDArray[Any], n: int, axis: int, length: int,
                kind: type[complex] | type[float]) -> NDArray[Any]:
    """``fn(a, n=n, axis=axis)`` (a numpy FFT giving ``length`` values along ``axis``),
    computed in blocks split along the other of the last two axes, in threads."""
    single = a.dtype in (np.float32, np.complex64)
    dtype = (np.complex64 if single else np.complex128) if kind is complex else (
        np.float32 if single else np.float64)
    shape = list(a.shape)
    shape[axis] = length
    out = np.empty(shape, dtype=dtype)
    split = -1 if axis == -2 else -2
    count = a.shape[split]
    if WORKERS < 2 or count < 2 * WORKERS or out.size < 2**16:
        fn(a, n=n, axis=axis, out=out)
        return out
    bounds = np.linspace(0, count, WORKERS + 1).astype(int)

    def block(bound: tuple[int, int]) -> None:
        index = [slice(None)] * a.ndim
        index[split] = slice(*bound)
        fn(a[tuple(index)], n=n, axis=axis, out=out[tuple(index)])

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(block, pairwise(bounds)))
    return out


def _next_smooth(n: int) -> int:
    """The smallest m >= n whose only prime factors are 2, 3 and 5."""
    m = n
    while True:
        rest = m
        for p in (2, 3, 5):
            while rest % p == 0:
                rest //= p
        if rest == 1:
            return m
        m += 1
