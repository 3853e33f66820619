"""Four ways to compute a 2-D cross-correlation of an already padded input.

Each takes an input ``x``, HxWxC with the padding applied, and a kernel bank ``w``,
KH x KW x (C/groups) x F, and returns Ho x Wo x F: per axis (input n, kernel f,
stride s, dilation d; sizes from `convcalc.calc.geometry`)::

    out = floor((n - d(f-1) - 1)/s) + 1
    y[r, c, o] = sum_{i, j, k} x[r·s + i·d, c·s + j·d, g·C/groups + k] · w[i, j, k, o]

where ``g = o // (F/groups)`` is the group of output channel o (PyTorch's rule). The
kernel is not flipped. dtype policy: float32 and 8-bit input (images, bool)
compute and return float32; any other real input (wider integers, float64)
computes in float64, exact for small integer examples. The four methods agree to
floating-point tolerance:

* ``direct``: the KH·KW taps added up over strided views, or for kernels of depth 1
  row products (one matrix product per output row, then KW shifted adds), in row
  strips run on a small thread pool (`convcalc.compute.direct`);
* ``im2col``: a patch matrix times the weight matrix, chunked over output rows;
* ``fft``: products of real 2-D FFTs, cropped to the valid part, then subsampled
  (`convcalc.compute.fftconv`);
* ``winograd``: F(2x2, 3x3) minimal filtering, 3x3 kernels with stride and dilation 1
  (`convcalc.compute.winograd`).

This module picks among them (`choose_method`) and holds im2col; direct is in
`convcalc.compute.direct`, the shared dtype policy and shape checks in `convcalc.compute.arrays`.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike

from convcalc.calc.choices import Method
from convcalc.calc.geometry import effective_kernel
from convcalc.compute.arrays import CHUNK_BYTES, Array, Pair, prepare
from convcalc.compute.arrays import working_array as working_array
from convcalc.compute.arrays import working_dtype as working_dtype
from convcalc.compute.direct import correlate_direct as correlate_direct
from convcalc.compute.fftconv import correlate_fft as correlate_fft
from convcalc.compute.winograd import correlate_winograd as correlate_winograd
from convcalc.errors import ConvcalcError

# AUTO's rules: direct and FFT cost about the same per pixel at every image size and
# dtype, so the rules count taps only; im2col and Winograd never beat direct, so AUTO
# picks neither. Measurements: benchmarks/README.md.
FFT_MIN_TAPS = 256
"""AUTO picks FFT for a kernel of depth 1 from this many taps per output pixel (16x16:
direct's row products run 15x15 faster than FFT on 256² to 4096² images, 17x17 on
4096² twice as slow)."""

FFT_MIN_TAPS_DEEP = 64
"""AUTO picks FFT for a kernel of depth 2 or more from this many taps per output pixel."""

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
        method = choose_method(xa.shape, wa.shape, stride=stride)
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
) -> Method:
    """The method AUTO uses for an HxWxC input and a KH x KW x (C/groups) x F bank.

    A cost rule on shapes, never an error: with ``P = H·W/(s_h·s_w)`` output pixels
    (about; padded or not), direct below `DIRECT_MAX_MACS` multiply-accumulates
    ``P·KH·KW·C/groups·F``; otherwise FFT when the taps per output pixel,
    ``KH·KW/(s_h·s_w)``, reach `FFT_MIN_TAPS` (depth C/groups of 1) or
    `FFT_MIN_TAPS_DEEP` (deeper); direct otherwise. With a stride FFT still
    computes every position. Dilation and groups do not enter (the kernel depth
    already says what groups do), nor does the dtype (float32 and float64 cross
    over at about the same size). im2col and Winograd are never chosen: neither
    beat direct here.

    Examples
    --------
    >>> str(choose_method((512, 512, 1), (17, 17, 1, 1)))
    'fft'
    >>> str(choose_method((512, 512, 64), (5, 5, 64, 64)))
    'direct'
    """
    kh, kw, depth, filters = kernel_shape[:4]
    strides = stride[0] * stride[1]
    pixels = in_shape[0] * in_shape[1] / strides
    if pixels * kh * kw * depth * filters < DIRECT_MAX_MACS:
        return Method.DIRECT
    fft = kh * kw / strides >= (FFT_MIN_TAPS if depth == 1 else FFT_MIN_TAPS_DEEP)
    return Method.FFT if fft else Method.DIRECT


def correlate_im2col(
    x: ArrayLike,
    w: ArrayLike,
    *,
    stride: Pair = (1, 1),
    dilation: Pair = (1, 1),
    groups: int = 1,
    chunk_bytes: int = CHUNK_BYTES,
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
    weights = wa.reshape(kh, kw, cg, groups, fg).transpose(3, 2, 0, 1, 4).reshape(groups, -1, fg)
    out = np.empty((ho, wo, f), dtype=xa.dtype)
    rows = max(1, chunk_bytes // (wo * kh * kw * xa.shape[2] * xa.itemsize))
    for r0 in range(0, ho, rows):
        r1 = min(r0 + rows, ho)
        patches = windows[r0:r1, :wo].reshape(r1 - r0, wo, groups, cg, kh, kw)
        patches = patches.transpose(2, 0, 1, 3, 4, 5).reshape(groups, (r1 - r0) * wo, -1)
        product = np.matmul(patches, weights)
        out[r0:r1] = (
            product.reshape(groups, r1 - r0, wo, fg).transpose(1, 2, 0, 3).reshape(r1 - r0, wo, f)
        )
    return out
