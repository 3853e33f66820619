"""Convolution by FFT: overlap-save tiles of real 2-D FFTs, the tiles threaded."""

from __future__ import annotations

import math
from functools import partial
from itertools import product
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from convcalc.calc.geometry import effective_kernel
from convcalc.compute.arrays import CHUNK_BYTES, Array, Pair, prepare, thread_map

TILE_BYTES = 2 * 2**20
"""Bytes of a tile's own spectra, the C input channels' and twice the F filters' (their
products), so that a tile stays in cache: the FFT size per axis is the 5-smooth one at
which they fill it.

That is up to 432 for one float32 channel and filter, 300 in float64, 75 for 16
float64 channels and filters. Measurements: benchmarks/README.md.
"""


def correlate_fft(
    x: ArrayLike,
    w: ArrayLike,
    *,
    stride: Pair = (1, 1),
    dilation: Pair = (1, 1),
    groups: int = 1,
    chunk_bytes: int = CHUNK_BYTES,
) -> Array:
    """Cross-correlation by FFT, tile by tile (overlap-save), in bounded memory.

    The input is cut into overlapping tiles of a 5-smooth FFT size (see
    `TILE_BYTES`; more for a dilated kernel spanning over half of it). In a tile,
    ``irfft2(rfft2(tile) · conj(rfft2(w)))`` is the correlation wherever its
    circular wrap does not reach: at the outputs whose kernel window lies in the
    tile. Taken at the stride, those fill one block of the output; tiles run on
    `convcalc.compute.arrays.thread_map`. Products are summed over each group's input channels;
    filters are taken in blocks so that their spectra fit in ``chunk_bytes``.

    Parameters
    ----------
    x, w, stride, dilation, groups
        As in `convcalc.compute.methods.correlate_padded`: the padded HxWxC input,
        the KH x KW x (C/groups) x F kernels, per-axis stride and dilation, groups.
    chunk_bytes : int
        Most bytes of kernel spectra (at the tile's FFT size) held at once.

    Returns
    -------
    array, Ho x Wo x F
        float32 for float32 input, float64 otherwise; rounded to the exact
        integers when the input and kernels are float64 integer values.
    """
    xa, wa, ho, wo = prepare(x, w, stride, dilation, groups)
    kh, kw, cg, f = wa.shape
    fg = f // groups
    span = (effective_kernel(kh, dilation[0]), effective_kernel(kw, dilation[1]))
    complex_size = 2 * xa.dtype.itemsize
    edge = math.isqrt(2 * TILE_BYTES // ((xa.shape[2] + 2 * f) * complex_size))
    size = (_tile_size(ho, span[0], stride[0], edge), _tile_size(wo, span[1], stride[1], edge))
    # a tile's outputs; the next tile starts on a strided position again
    step = ((size[0] - span[0]) // stride[0] + 1, (size[1] - span[1]) // stride[1] + 1)
    kernels = np.zeros((cg, groups, fg, *span), xa.dtype)
    kernels[..., :: dilation[0], :: dilation[1]] = np.moveaxis(
        wa.reshape(kh, kw, cg, groups, fg), (0, 1), (3, 4)
    )
    exact = xa.dtype == np.float64 and _integer_valued(xa, wa)
    out = np.empty((ho, wo, groups, fg), dtype=xa.dtype)
    block = max(1, chunk_bytes // (xa.shape[2] * size[0] * (size[1] // 2 + 1) * complex_size))
    origins = list(product(range(0, ho, step[0]), range(0, wo, step[1])))
    for f0 in range(0, fg, block):
        kspec = _kernel_spectra(kernels[:, :, f0 : f0 + block], size)
        tile = partial(
            _correlate_tile,
            x=xa,
            kspec=kspec,
            size=size,
            stride=stride,
            step=step,
            out=out[..., f0 : f0 + block],
            exact=exact,
        )
        thread_map(tile, origins)
    return out.reshape(ho, wo, f)


# -- helpers -------------------------------------------------------------


def _correlate_tile(
    origin: Pair,
    *,
    x: Array,
    kspec: NDArray[Any],
    size: Pair,
    stride: Pair,
    step: Pair,
    out: Array,
    exact: bool,
) -> None:
    """The outputs of one tile: ``out[r : r + step[0], c : c + step[1]]`` for ``origin``
    (r, c), ``out`` Ho x Wo x groups x filters, from the HxWxC input ``x`` and
    `_kernel_spectra` ``kspec`` at the tile's FFT ``size``."""
    cg, groups = kspec.shape[:2]
    (r, c), (sh, sw) = origin, stride
    target = out[r : r + step[0], c : c + step[1]]
    rows, cols = target.shape[:2]
    piece = x[r * sh : r * sh + size[0], c * sw : c * sw + size[1]].transpose(2, 0, 1)
    # norm="ortho": numpy 2.4 runs unscaled forward transforms of float32 in complex128
    # (their scale is the Python scalar 1), about 6x slower than complex64
    spectra = np.fft.rfft2(piece, size, norm="ortho")
    spectra = spectra.reshape(groups, cg, 1, *spectra.shape[1:])
    total = spectra[:, 0] * kspec[0]
    if cg > 1:
        term = np.empty_like(total)
        for k in range(1, cg):
            np.multiply(spectra[:, k], kspec[k], out=term)
            total += term
    # the row pass only on the rows the stride keeps
    columns = np.fft.ifft(total, axis=-2, norm="ortho")[..., : rows * sh : sh, :]
    full = np.fft.irfft(columns, size[1], axis=-1, norm="ortho")
    target[...] = full[..., : cols * sw : sw].transpose(2, 3, 0, 1)
    if exact:
        np.rint(target, out=target)  # the exact sum is an integer; FFT misses it by ~1e-12


def _kernel_spectra(kernels: Array, size: Pair) -> NDArray[Any]:
    """``conj(rfft2(kernels))`` zero-padded to ``size``, scaled by sqrt(size) so that
    with the tiles' orthonormal transforms the product is the correlation."""
    spectra = np.fft.rfft2(kernels, size, norm="ortho")
    np.conjugate(spectra, out=spectra)
    spectra *= math.sqrt(size[0] * size[1])
    return spectra


def _tile_size(out: int, span: int, stride: int, edge: int) -> int:
    """The FFT size of a tile along an axis of ``out`` outputs: ``edge``, at least twice
    the kernel's ``span``, then the least 5-smooth size that keeps the number of tiles
    (otherwise the last tile is mostly empty; one tile if it holds all outputs)."""
    size = _next_smooth(max(edge, 2 * span))
    tiles = -(-out // ((size - span) // stride + 1))
    return _next_smooth((-(-out // tiles) - 1) * stride + span)


def _integer_valued(x: Array, w: Array) -> bool:
    """Both hold integers, small enough (sums under 2^40) that FFT's error is far below 1/2."""
    largest = max(x.max(initial=0), -x.min(initial=0))
    if not (
        largest * np.abs(w).sum(axis=(0, 1, 2)).max(initial=0) < 2**40
        and np.array_equal(w, np.rint(w))
    ):
        return False
    # in bands of rows: rint of the whole image would be an image-sized temporary
    rows = max(1, TILE_BYTES // max(1, x[0].nbytes))
    return all(
        np.array_equal(x[r : r + rows], np.rint(x[r : r + rows])) for r in range(0, len(x), rows)
    )


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
