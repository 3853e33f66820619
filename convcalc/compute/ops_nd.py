"""The layers of any rank `convcalc apply` runs on 1-D signals and 3-D volumes, tap by tap.

Convolution (`correlate_nd`), transposed convolution (`conv_transpose_nd`) and
pooling (`pool_nd`) on a (*N) x C input, one spatial axis per kernel axis: each
kernel tap adds a strided view of the padded input, the direct method of
`convcalc.compute.ops.correlate`. The 2-D layers (`convcalc.compute.ops`) keep
`correlate` and its other methods, and hand their transposed convolution and
pooling to these; callers import them from `convcalc.compute.ops`. Arrays and the
dtype policy are those of `convcalc.compute.ops`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from convcalc.calc.choices import Activation, Convention, PadMode, PoolKind
from convcalc.calc.geometry import Axis, Padding
from convcalc.compute.arrays import Array, tap_product, working_array
from convcalc.compute.padding import pad
from convcalc.compute.pointwise import activate, add_bias
from convcalc.compute.windows import (
    avg_divisors,
    conv_axes_nd,
    pool_axes_nd,
    transposed_axes_nd,
    transposed_full_size,
)
from convcalc.errors import ConvcalcError


def correlate_nd(
    x: ArrayLike,
    kernels: ArrayLike,
    *,
    stride: tuple[int, ...],
    padding: tuple[Padding, ...],
    dilation: tuple[int, ...],
    pad_mode: PadMode = PadMode.ZERO,
    groups: int = 1,
    bias: Sequence[float] | None = None,
    flip: bool = False,
    activation: Activation = Activation.NONE,
    convention: Convention = Convention.TORCH,
) -> Array:
    """A convolution layer of any rank (1-D signals, 3-D volumes), tap by tap.

    The rank is the kernel bank's: ``kernels.ndim - 2``. As
    `convcalc.compute.ops.correlate`, per spatial axis::

        out = floor((n + p_lo + p_hi - d(f-1) - 1)/s) + 1

    Parameters
    ----------
    x : array, (*N) x C: L x C for 1-D, DxHxWxC for 3-D
    kernels : array, (*K) x (C/groups) x F: K x C x F, or KDxKHxKW x C x F
    stride, dilation : tuple of int, one per spatial axis
    padding : tuple of Padding, one per spatial axis
    pad_mode, groups, bias, flip, activation, convention
        As in `convcalc.compute.ops.correlate`.

    Returns
    -------
    array, (*O) x F

    Notes
    -----
    Each kernel tap adds ``xp[tap·d :: s] @ w[tap]`` (a strided view of the padded
    input times a (C/groups) x F matrix) to the output, the direct method of
    `convcalc.compute.ops.correlate`; the 2-D layers keep `correlate` and its other
    methods.

    Examples
    --------
    >>> correlate_nd(np.arange(5.0)[:, None], np.ones((3, 1, 1)), stride=(1,), padding=(1,),
    ...              dilation=(1,))[:, 0]
    array([1., 3., 6., 9., 7.])
    """
    xa = working_array(x)
    w = working_array(kernels).astype(xa.dtype, copy=False)
    rank = w.ndim - 2
    if rank < 1 or xa.ndim != rank + 1:
        raise ConvcalcError(
            f"an input of shape {'x'.join(map(str, xa.shape))} does not fit a kernel bank of "
            f"shape {'x'.join(map(str, w.shape))}; valid: {rank} spatial axes and channels"
        )
    channels, (depth, filters) = xa.shape[-1], w.shape[-2:]
    if groups < 1 or channels % groups or filters % groups or depth * groups != channels:
        raise ConvcalcError(
            f"a kernel bank of depth {depth} with groups {groups} does not fit {channels} "
            f"input channels; valid: depth {channels} // groups"
        )
    axes = conv_axes_nd(
        xa.shape,
        w.shape[:rank],
        stride=stride,
        padding=padding,
        dilation=dilation,
        convention=convention,
    )
    xp = pad(xa, [(a.pad_lo, a.pad_hi) for a in axes], pad_mode)
    if flip:
        w = w[(slice(None, None, -1),) * rank]
    y = np.zeros((*(a.size for a in axes), filters), dtype=w.dtype)
    tmp = np.empty_like(y)
    for tap in np.ndindex(*w.shape[:rank]):
        view = xp[tuple(_taps(a, i) for a, i in zip(axes, tap, strict=True))]
        tap_product(view, w[tap], groups, tmp)
        y += tmp
    return activate(add_bias(y, bias), activation)


def conv_transpose_nd(
    x: ArrayLike,
    kernels: ArrayLike,
    *,
    stride: tuple[int, ...],
    padding: tuple[Padding, ...],
    dilation: tuple[int, ...],
    output_padding: tuple[int, ...],
    groups: int = 1,
    bias: Sequence[float] | None = None,
) -> Array:
    """Transposed convolution of any rank (PyTorch's ConvTranspose1d/2d/3d), tap by tap.

    The rank is the kernel bank's: ``kernels.ndim - 2``. Every input cell adds its
    kernel-weighted copy at ``n·s + i·d`` (per axis) of a full output, whose padding
    is then cropped from the start; per axis (`convcalc.calc.geometry.transposed_axis`)::

        out = (n-1)s - p_lo - p_hi + d(f-1) + output_padding + 1

    Parameters
    ----------
    x : array, (*N) x C: L x C for 1-D, DxHxWxC for 3-D
    kernels : array, (*K) x C x (F/groups)
        PyTorch's weight ``(C, F/groups, *K)`` moved channels-last.
    stride, dilation, output_padding : tuple of int, one per spatial axis
    padding : tuple of Padding, one per spatial axis
    groups : int
    bias : sequence of F floats, optional

    Returns
    -------
    array, (*O) x F

    Examples
    --------
    >>> conv_transpose_nd(np.array([[1.0], [2.0]]), np.ones((3, 1, 1)), stride=(2,),
    ...                   padding=(0,), dilation=(1,), output_padding=(0,))[:, 0]
    array([1., 1., 3., 2., 2.])
    """
    xa = working_array(x)
    w = working_array(kernels).astype(xa.dtype, copy=False)
    rank = w.ndim - 2
    if rank < 1 or xa.ndim != rank + 1:
        raise ConvcalcError(
            f"an input of shape {'x'.join(map(str, xa.shape))} does not fit a transposed kernel "
            f"bank of shape {'x'.join(map(str, w.shape))}; valid: {rank} spatial axes and channels"
        )
    c, (depth, fg) = xa.shape[-1], w.shape[-2:]
    if groups < 1 or c % groups or depth != c:
        raise ConvcalcError(
            f"a transposed kernel bank of depth {depth} with groups {groups} does not fit "
            f"{c} input channels; valid: depth {c} and groups dividing {c}"
        )
    kernel = w.shape[:rank]
    axes = transposed_axes_nd(
        xa.shape,
        kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        output_padding=output_padding,
    )
    full = np.zeros((*map(transposed_full_size, axes), groups * fg), dtype=xa.dtype)
    # (C, F/groups) per tap, as (C/groups, F) for tap_product
    taps = np.moveaxis(w.reshape(*kernel, groups, c // groups, fg), rank, rank + 1)
    taps = taps.reshape(*kernel, c // groups, groups * fg)
    tmp = np.empty((*xa.shape[:-1], groups * fg), dtype=xa.dtype)
    for tap in np.ndindex(*kernel):
        tap_product(xa, taps[tap], groups, tmp)
        full[tuple(_scatter(a, i) for a, i in zip(axes, tap, strict=True))] += tmp
    y = full[tuple(slice(a.pad_lo, a.pad_lo + a.size) for a in axes)]
    return add_bias(np.ascontiguousarray(y), bias)


def pool_nd(
    x: ArrayLike,
    kind: PoolKind,
    size: tuple[int, ...],
    *,
    stride: tuple[int, ...] | None = None,
    padding: tuple[Padding, ...],
    dilation: tuple[int, ...],
    ceil: bool = False,
    exclude_pad: bool = False,
    convention: Convention = Convention.TORCH,
) -> Array:
    """`convcalc.compute.ops.pool` for any rank: L x C (1-D) or DxHxWxC (3-D) with one
    window size per axis.

    The rules (max never picks padding, average's divisors, l2) are `pool`'s.

    Returns
    -------
    array, (*O) x C

    Examples
    --------
    >>> pool_nd(np.array([[1.0], [3.0], [2.0], [5.0]]), PoolKind.MAX, (2,),
    ...         padding=(0,), dilation=(1,))[:, 0]
    array([3., 5.])
    """
    xa = working_array(x)
    rank = len(size)
    if xa.ndim != rank + 1:
        raise ConvcalcError(
            f"an input of shape {'x'.join(map(str, xa.shape))} is not valid for a {rank}-D "
            f"pooling window; valid: {rank} spatial axes and channels"
        )
    axes = pool_axes_nd(
        xa.shape,
        size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil=ceil,
        convention=convention,
    )
    padded = _pool_input(xa, axes, kind)
    combine = np.maximum if kind == PoolKind.MAX else np.add
    out = np.empty((*(a.size for a in axes), xa.shape[-1]), dtype=xa.dtype)
    for number, tap in enumerate(np.ndindex(*size)):
        view = padded[tuple(_taps(a, i) for a, i in zip(axes, tap, strict=True))]
        if number == 0:
            out[...] = view
        else:
            combine(out, view, out=out)
    if kind == PoolKind.AVG:
        out /= avg_divisors(axes, exclude_pad=exclude_pad, convention=convention)[..., None]
    elif kind == PoolKind.L2:
        np.sqrt(out, out=out)
    elif kind != PoolKind.MAX:
        raise ConvcalcError(f"pooling {kind!r} is not valid; valid: {', '.join(PoolKind)}")
    return out


def _pool_input(xa: Array, axes: Sequence[Axis], kind: PoolKind) -> Array:
    """The input every window reads from: padded with what the pooling ignores (-inf
    for max, 0 otherwise) where a window reaches past the input, squared for l2; the
    input itself when no window does and nothing is squared (no copy)."""
    extent = [max(a.n + a.pad_lo + a.pad_hi, (a.size - 1) * a.stride + a.span) for a in axes]
    if kind != PoolKind.L2 and all(
        a.pad_lo == 0 and e == a.n for a, e in zip(axes, extent, strict=True)
    ):
        return xa
    fill = -np.inf if kind == PoolKind.MAX else 0.0
    padded = np.full((*extent, xa.shape[-1]), fill, dtype=xa.dtype)
    padded[tuple(slice(a.pad_lo, a.pad_lo + a.n) for a in axes)] = xa
    if kind == PoolKind.L2:
        np.square(padded, out=padded)
    return padded


def _taps(axis: Axis, tap: int) -> slice:
    """Along one axis, the padded input's cells that kernel tap ``tap`` meets."""
    start = tap * axis.dilation
    return slice(start, start + (axis.size - 1) * axis.stride + 1, axis.stride)


def _scatter(axis: Axis, tap: int) -> slice:
    """Along one axis, the full output's cells kernel tap ``tap`` of a transposed
    convolution adds the input cells to (input cell n at ``n·s + tap·d``)."""
    start = tap * axis.dilation
    return slice(start, start + (axis.n - 1) * axis.stride + 1, axis.stride)
