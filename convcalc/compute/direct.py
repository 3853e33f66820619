"""The direct method on an already padded HxWxC input, in row strips on a thread pool.

Kernels of depth 2 or more add up their KH·KW taps over strided views, each tap a
matrix product over the channels. Kernels of depth 1 (one channel each: a grayscale
image, a depthwise layer, one kernel for every channel of a photo) run channels-first,
or on the HxWxC rows as they are when every channel has the same kernel, as row
products: for each output row one matrix product of the kernel's columns with the KH
input rows it covers (KW x KH times KH x W), then KW shifted adds. Shapes and the
dtype policy are those of
`convcalc.compute.methods`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided
from numpy.typing import ArrayLike, DTypeLike, NDArray

from convcalc.calc.geometry import effective_kernel
from convcalc.compute.arrays import (
    Array,
    Pair,
    output_size,
    prepare,
    saturate_into,
    tap_product,
    thread_map,
    working_array,
)
from convcalc.compute.padding import PaddedInput

TILE_BYTES = 512 * 2**10
"""Bytes of output per strip of the direct method, so its working set stays in cache.

Measurements: benchmarks/README.md.
"""

TILE_MIN_ROWS_PER_SPAN = 8
"""A strip has at least this many output rows per extra kernel row (KH - 1): it reads
KH - 1 rows beyond its own. Measurements: benchmarks/README.md.
"""

ROW_PRODUCT_BYTES = 2 * 2**20
"""Bytes of a strip's row products (KW partial sums per input value, see
`_row_products`): a depth-1 kernel's strips are as many output rows as fit. Smaller
strips copy their KH - 1 extra input rows more often and pay numpy's per-call cost
more often; larger ones leave the cache between the product and the shifted adds.
Measurements: benchmarks/README.md.
"""


def correlate_direct(
    x: ArrayLike | PaddedInput,
    w: ArrayLike,
    *,
    stride: Pair = (1, 1),
    dilation: Pair = (1, 1),
    groups: int = 1,
    tile_rows: int | None = None,
    workers: int | None = None,
    out_dtype: DTypeLike | None = None,
) -> NDArray[Any]:
    """The direct sum, ``y += x[tap view] @ w[i, j]`` over the KH·KW taps (depth 1:
    `_row_products`).

    Output rows are computed in strips of ``tile_rows`` (default: `_tile_rows`) on
    ``workers`` threads (default `convcalc.compute.arrays.threads`). ``x`` may be a
    `PaddedInput`, whose padded rows are then built strip by strip, never as a whole.
    Kernels of depth 1 (depthwise) run as row products, channels-first, or, when every
    channel has the same kernel and the column stride is 1, on the HxWxC layout as it
    is. An integer ``out_dtype`` (e.g.
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
        width = (bands if bands is not None else xa).shape[1]
        tile_rows = _tile_rows(wa.shape, wo, width, span, dtype.itemsize)
    product = _strip_product(wa, stride, dilation, groups)
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

    thread_map(strip, range(0, ho, max(1, tile_rows)), workers)
    return out


# -- helpers ---------------------------------------------------------------


def _tile_rows(kernel_shape: tuple[int, ...], wo: int, width: int, span: int, itemsize: int) -> int:
    """Output rows per strip: `ROW_PRODUCT_BYTES` of row products for depth-1 kernels
    (`_row_products`), otherwise `TILE_BYTES` of output, at least 4 rows and
    `TILE_MIN_ROWS_PER_SPAN` per extra kernel row; ``width`` is the padded input's."""
    kw, depth, f = kernel_shape[1:4]
    if depth == 1:
        return max(1, ROW_PRODUCT_BYTES // (kw * f * width * itemsize))
    return max(4, TILE_BYTES // max(1, wo * f * itemsize), TILE_MIN_ROWS_PER_SPAN * (span - 1))


def _strip_product(
    w: Array, stride: Pair, dilation: Pair, groups: int
) -> Callable[[Array, Array], None]:
    """The function that fills an output strip (Ho' x Wo x F) from its input rows."""
    if w.shape[2] != 1:
        return lambda xs, out: _shift_add(xs, w, stride, dilation, groups, out)
    if stride[1] == 1 and w.shape[3] == groups and np.all(w == w[..., :1]):
        # one kernel for every channel: along a row the channels interleave into one
        # contiguous run, so the HxWxC rows serve as they are, with no transposes
        return lambda xs, out: _shared(xs, w[:, :, 0, 0], stride, dilation, out)
    f = w.shape[3]
    kernels = _row_kernels(w[:, :, 0, :], groups)

    def channels_first(xs: Array, out: Array) -> None:
        # channels first within the strip, so that each channel's rows are contiguous;
        # the strip's transposes stay in cache and run on the thread pool
        xs = np.ascontiguousarray(xs.transpose(2, 0, 1))
        rows, wo = out.shape[:2]
        if f == 1:  # one map: write straight into the output
            local = out[:, :, 0][None, None]
        else:
            local = np.empty((groups, f // groups, rows, wo), dtype=out.dtype)
        _row_products(xs, kernels, stride, dilation, local)
        if f > 1:
            out[...] = local.reshape(f, rows, wo).transpose(1, 2, 0)

    return channels_first


def _shared(xs: Array, k: Array, stride: Pair, dilation: Pair, out: Array) -> None:
    """One KH x KW kernel on every channel of xs (R x W x C) at column stride 1."""
    (sh, _), (dh, dw) = stride, dilation
    rows, wo, channels = out.shape
    # a row of C interleaved channels is one plane row; a tap moves dw·C along it
    plane = np.ascontiguousarray(xs).reshape(1, xs.shape[0], -1)
    target = out.reshape(1, 1, rows, wo * channels)
    kernel = np.ascontiguousarray(k.T)[None]
    _row_products(plane, kernel, (sh, 1), (dh, dw * channels), target)


def _row_kernels(w: Array, groups: int) -> Array:
    """The KH x KW x F depth-1 kernels as `_row_products` takes them: G x (M·KW) x KH,
    entry ``[g, m·KW + j, i] = w[i, j, g·M + m]`` (M = F/G filters per group)."""
    kh, kw, f = w.shape
    by_group = w.reshape(kh, kw, groups, f // groups).transpose(2, 3, 1, 0)
    return np.ascontiguousarray(by_group.reshape(groups, -1, kh))


def _row_products(planes: Array, kernels: Array, stride: Pair, dilation: Pair, out: Array) -> None:
    """``out[g, m, r, c] = Σ_ij kernels[g, m·KW + j, i] · planes[g, r·sh + i·dh, c·sw + j·dw]``.

    planes is G x H x W (rows contiguous), kernels G x (M·KW) x KH (`_row_kernels`),
    out G x M x Ho' x Wo. Per output row, one matrix product of the kernels' columns
    with the KH input rows under them gives every column's partial sums; KW shifted
    adds finish the row. The product runs in BLAS, two passes over the output per
    kernel column where adding up the KH·KW taps one by one takes two per tap.
    """
    (sh, sw), (dh, dw) = stride, dilation
    groups, mult, rows, wo = out.shape
    kh = kernels.shape[2]
    kw = kernels.shape[1] // mult
    assert planes.shape[1] >= (rows - 1) * sh + (kh - 1) * dh + 1, "too few input rows"
    g_step, r_step, c_step = planes.strides
    windows = as_strided(
        planes,
        (groups, rows, kh, planes.shape[2]),
        (g_step, sh * r_step, dh * r_step, c_step),
        writeable=False,
    )
    products = np.matmul(kernels[:, None], windows).reshape(groups, rows, mult, kw, -1)
    # column j of the kernel is read j·dw further along the row: as one view, the KW
    # shifted parts add up in one reduction (in order, as KW - 1 adds would)
    g_step, r_step, m_step, j_step, c_step = products.strides
    parts = as_strided(
        products,
        (groups, mult, rows, kw, wo),
        (g_step, m_step, r_step, j_step + dw * c_step, sw * c_step),
        writeable=False,
    )
    np.add.reduce(parts, axis=3, out=out)


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
