"""Convolution by FFT: products of real 2-D FFTs, the passes threaded."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from convcalc.arrays import CHUNK_BYTES, WORKERS, Array, Pair, prepare
from convcalc.geometry import effective_kernel


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
    xa, wa, ho, wo = prepare(x, w, stride, dilation, groups)
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


# -- helpers -------------------------------------------------------------


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
