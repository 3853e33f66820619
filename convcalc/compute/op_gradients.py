"""The gradients of `convcalc.compute.ops`'s operations, one operation at a time, any rank.

Given dL/dY of an operation's output, each function returns what PyTorch's autograd
gives: dL/dX of the input and, for a (transposed) convolution, dL/dW of the kernel bank.
`convcalc.compute.gradients` chains them through a pipeline.

Arrays are channels-last as in `convcalc.compute.ops`: an input (*N) x C (HxWxC for an
image, L x C for a signal, DxHxWxC for a volume), a bank (*K) x (C/groups) x F, an
output (and its gradient) (*O) x F. The 2-D functions (`conv_backward`, `pool_backward`
…) also take an HxW map and a KH x KW kernel, as `ops.correlate` does; the ``_nd`` ones
take the rank from the kernel bank or the window. Integer input computes in float64,
float32 stays float32 (`convcalc.compute.arrays.working_array`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from convcalc.calc.choices import Activation, Convention, PadMode, PoolKind
from convcalc.calc.geometry import Axis, Padding
from convcalc.compute import ops
from convcalc.compute.arrays import Array, working_array
from convcalc.compute.padding import pad
from convcalc.compute.windows import (
    avg_divisors,
    conv_axes_nd,
    pool_axes_nd,
    transposed_axes_nd,
    transposed_full_size,
)
from convcalc.errors import ConvcalcError


def conv_backward(
    x: ArrayLike,
    bank: ArrayLike,
    grad_out: ArrayLike,
    *,
    stride: tuple[int, int] = (1, 1),
    padding: tuple[Padding, Padding] = (0, 0),
    dilation: tuple[int, int] = (1, 1),
    groups: int = 1,
    pad_mode: PadMode = PadMode.ZERO,
    convention: Convention = Convention.TORCH,
) -> tuple[Array, Array]:
    """The gradients of `convcalc.compute.ops.correlate` (without bias or activation).

    With xp the padded input and ``y[r, c, o] = sum_{i,j,k} xp[r·s + i·d, c·s + j·d,
    g·C/groups + k]·w[i, j, k, o]``::

        dL/dw[i, j, k, o] = sum_{r,c} dL/dy[r, c, o] · xp[r·s + i·d, c·s + j·d, g·C/groups + k]
        dL/dxp[r·s + i·d, c·s + j·d, g·C/groups + k] += dL/dy[r, c, o] · w[i, j, k, o]

    and dL/dx gathers dL/dxp from every padded cell back to the input cell it was
    copied from (zero padding: the border is dropped; reflect, replicate and wrap
    add it onto the cells they repeat).

    Parameters
    ----------
    x : array, HxWxC (or HxW)
    bank : array, KH x KW x (C/groups) x F (or KH x KW)
    grad_out : array, Ho x Wo x F (or Ho x Wo)
    stride, padding, dilation, groups, pad_mode, convention
        As in `correlate`.

    Returns
    -------
    grad_x : array, HxWxC
    grad_w : array, the bank's KH x KW x (C/groups) x F

    Notes
    -----
    The input gradient is the full convolution of dL/dY, dilated by the stride, with
    the kernel rotated 180°; it is computed here tap by tap, the same sums.

    Examples
    --------
    >>> gx, gw = conv_backward(np.arange(9).reshape(3, 3), np.ones((2, 2)), np.ones((2, 2)))
    >>> gx[..., 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    >>> gw[..., 0, 0]
    array([[ 8., 12.],
           [20., 24.]])
    """
    xa = ops.as_image(x)
    return conv_backward_nd(
        xa,
        _bank(bank, xa.dtype),
        grad_out,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        pad_mode=pad_mode,
        convention=convention,
    )


def conv_backward_nd(
    x: ArrayLike,
    bank: ArrayLike,
    grad_out: ArrayLike,
    *,
    stride: tuple[int, ...],
    padding: tuple[Padding, ...],
    dilation: tuple[int, ...],
    groups: int = 1,
    pad_mode: PadMode = PadMode.ZERO,
    convention: Convention = Convention.TORCH,
) -> tuple[Array, Array]:
    """`conv_backward` at any rank: the gradients of `convcalc.compute.ops.correlate_nd`.

    Per kernel tap t (one index per spatial axis) and output position o::

        dL/dw[t, k, f] = sum_o dL/dy[o, f] · xp[o·s + t·d, g·C/groups + k]
        dL/dxp[o·s + t·d, g·C/groups + k] += dL/dy[o, f] · w[t, k, f]

    Parameters
    ----------
    x : array, (*N) x C
    bank : array, (*K) x (C/groups) x F
    grad_out : array, (*O) x F (or (*O) for one filter)
    stride, padding, dilation : one entry per spatial axis
    groups, pad_mode, convention
        As in `correlate_nd`.

    Returns
    -------
    grad_x : array, (*N) x C
    grad_w : array, the bank's shape
    """
    xa = working_array(x)
    w = np.asarray(bank).astype(xa.dtype, copy=False)
    rank = _rank(xa, w)
    axes = conv_axes_nd(
        xa.shape,
        w.shape[:rank],
        stride=stride,
        padding=padding,
        dilation=dilation,
        convention=convention,
    )
    (cg, f), c = w.shape[rank:], xa.shape[-1]
    if groups < 1 or c % groups or cg * groups != c or f % groups:
        raise ConvcalcError(
            f"a kernel bank of depth {cg} and {f} filters with groups {groups} does not fit "
            f"{c} input channels; valid: depth C/groups and filters divisible by groups"
        )
    sizes = tuple(a.size for a in axes)
    g = grad_shaped(grad_out, (*sizes, f), xa.dtype)
    pads = [(a.pad_lo, a.pad_hi) for a in axes]
    xp = pad(xa, pads, pad_mode)
    gxp = np.zeros_like(xp)
    gw = np.zeros_like(w)
    fg = f // groups
    g3 = g.reshape(-1, groups, fg)
    for tap in np.ndindex(*w.shape[:rank]):
        at = tuple(_taps(a, i) for a, i in zip(axes, tap, strict=True))
        view = xp[at].reshape(-1, groups, cg)
        wt = w[tap].reshape(cg, groups, fg)
        gw[tap] = np.einsum("ngc,ngo->cgo", view, g3).reshape(cg, f)
        gxp[at] += np.einsum("ngo,cgo->ngc", g3, wt).reshape(*sizes, c)
    return _unpad(gxp, xa.shape, pads, pad_mode), gw


def conv_transpose_backward(
    x: ArrayLike,
    bank: ArrayLike,
    grad_out: ArrayLike,
    *,
    stride: tuple[int, int] = (1, 1),
    padding: tuple[Padding, Padding] = (0, 0),
    dilation: tuple[int, int] = (1, 1),
    output_padding: tuple[int, int] = (0, 0),
    groups: int = 1,
) -> tuple[Array, Array]:
    """The gradients of `convcalc.compute.ops.conv_transpose` (without bias).

    A transposed convolution scatters ``x[r, c]·w[i, j]`` to ``(r·s + i·d, c·s + j·d)``
    of a full output then crops the padding, so dL/dY is put back in that full output
    (zeros where it was cropped) and read with the same windows: dL/dx is the strided
    correlation of it with the bank's last two axes swapped, dL/dw the same sums as
    `conv_backward`'s kernel gradient with the roles of input and gradient swapped.

    Parameters
    ----------
    x : array, HxWxC (or HxW)
    bank : array, KH x KW x C x (F/groups) (or KH x KW)
    grad_out : array, Ho x Wo x F (or Ho x Wo)
    stride, padding, dilation, output_padding, groups
        As in `conv_transpose`.

    Returns
    -------
    grad_x : array, HxWxC
    grad_w : array, the bank's KH x KW x C x (F/groups)
    """
    xa = ops.as_image(x)
    return conv_transpose_backward_nd(
        xa,
        _bank(bank, xa.dtype),
        grad_out,
        stride=stride,
        padding=padding,
        dilation=dilation,
        output_padding=output_padding,
        groups=groups,
    )


def conv_transpose_backward_nd(
    x: ArrayLike,
    bank: ArrayLike,
    grad_out: ArrayLike,
    *,
    stride: tuple[int, ...],
    padding: tuple[Padding, ...],
    dilation: tuple[int, ...],
    output_padding: tuple[int, ...],
    groups: int = 1,
) -> tuple[Array, Array]:
    """`conv_transpose_backward` at any rank: the gradients of
    `convcalc.compute.ops.conv_transpose_nd` (bank (*K) x C x (F/groups))."""
    xa = working_array(x)
    w = np.asarray(bank).astype(xa.dtype, copy=False)
    rank = _rank(xa, w)
    axes = transposed_axes_nd(
        xa.shape,
        w.shape[:rank],
        stride=stride,
        padding=padding,
        dilation=dilation,
        output_padding=output_padding,
    )
    c, (depth, fg) = xa.shape[-1], w.shape[rank:]
    if groups < 1 or c % groups or depth != c:
        raise ConvcalcError(
            f"a transposed kernel bank of depth {depth} with groups {groups} does not fit "
            f"{c} input channels; valid: depth {c} and groups dividing {c}"
        )
    g = grad_shaped(grad_out, (*(a.size for a in axes), groups * fg), xa.dtype)
    full = np.zeros((*map(transposed_full_size, axes), g.shape[-1]), dtype=xa.dtype)
    full[tuple(slice(a.pad_lo, a.pad_lo + a.size) for a in axes)] = g
    # past the last input's reach no gradient flows back
    full = full[tuple(slice(0, (a.n - 1) * a.stride + a.span) for a in axes)]
    swapped = np.swapaxes(w, -1, -2)  # (*K) x (F/groups) x C
    none = (0,) * rank
    gx = ops.correlate_nd(
        full, swapped, stride=stride, padding=none, dilation=dilation, groups=groups
    )
    gw = conv_backward_nd(
        full, swapped, xa, stride=stride, padding=none, dilation=dilation, groups=groups
    )[1]
    return gx, np.swapaxes(gw, -1, -2)


def pool_backward(
    x: ArrayLike,
    kind: PoolKind,
    size: tuple[int, int],
    grad_out: ArrayLike,
    *,
    stride: tuple[int, int] | None = None,
    padding: tuple[Padding, Padding] = (0, 0),
    dilation: tuple[int, int] = (1, 1),
    ceil: bool = False,
    exclude_pad: bool = False,
    convention: Convention = Convention.TORCH,
) -> Array:
    """dL/dX of `convcalc.compute.ops.pool`, arguments as there.

    * ``max``: each dL/dY value goes to its window's largest input cell; on a tie,
      to the first in row-major order (PyTorch); a NaN wins its window (PyTorch):
      `pool_winners`.
    * ``avg``: each dL/dY value is spread evenly over its window's cells, divided by
      the forward's divisor (`convcalc.compute.windows.avg_counts`); the share of
      padding cells is dropped.

    A cell read by several windows gathers the sum of their shares.

    Parameters
    ----------
    x : array, HxWxC (or HxW)
    grad_out : array, Ho x Wo x C (or Ho x Wo)

    Returns
    -------
    array, HxWxC

    Examples
    --------
    >>> x = np.array([[1, 3, 2, 1], [2, 9, 1, 1], [1, 3, 2, 3], [5, 6, 1, 2]])
    >>> pool_backward(x, PoolKind.MAX, (2, 2), np.ones((2, 2)))[..., 0]
    array([[0., 0., 1., 0.],
           [0., 1., 0., 0.],
           [0., 0., 0., 1.],
           [0., 1., 0., 0.]])
    """
    return pool_backward_nd(
        ops.as_image(x),
        kind,
        size,
        grad_out,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil=ceil,
        exclude_pad=exclude_pad,
        convention=convention,
    )


def pool_backward_nd(
    x: ArrayLike,
    kind: PoolKind,
    size: tuple[int, ...],
    grad_out: ArrayLike,
    *,
    stride: tuple[int, ...] | None = None,
    padding: tuple[Padding, ...],
    dilation: tuple[int, ...],
    ceil: bool = False,
    exclude_pad: bool = False,
    convention: Convention = Convention.TORCH,
) -> Array:
    """`pool_backward` at any rank: dL/dX of `convcalc.compute.ops.pool_nd` on an
    (*N) x C input, one window size per spatial axis; a tie in max pooling goes to the
    first tap in row-major order (depth, then rows, then columns), as PyTorch's."""
    xa = working_array(x)
    if xa.ndim != len(size) + 1:
        raise ConvcalcError(
            f"an input of shape {'x'.join(map(str, xa.shape))} is not valid for a "
            f"{len(size)}-D pooling window; valid: {len(size)} spatial axes and channels"
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
    if kind not in (PoolKind.MAX, PoolKind.AVG):
        raise ConvcalcError(f"the gradient of {kind} pooling is not computed; valid: max, avg")
    g = grad_shaped(grad_out, (*(a.size for a in axes), xa.shape[-1]), xa.dtype)
    taps = [tuple(_taps(a, i) for a, i in zip(axes, tap, strict=True)) for tap in np.ndindex(*size)]
    inner = tuple(slice(a.pad_lo, a.pad_lo + a.n) for a in axes)
    grad = np.zeros((*_extent(axes), xa.shape[-1]), dtype=xa.dtype)
    if kind == PoolKind.MAX:
        winner = pool_winners(xa, axes)
        for t, at in enumerate(taps):
            grad[at] += np.where(winner == t, g, 0)
    else:
        share = g / avg_divisors(axes, exclude_pad=exclude_pad, convention=convention)[..., None]
        for at in taps:
            grad[at] += share
    return np.ascontiguousarray(grad[inner])


def pool_winners(x: ArrayLike, axes: Sequence[Axis]) -> Array:
    """Max pooling's winners, the one home of its tie rule: for each window of an
    (*N) x C input (each output position and channel), the tap holding the window's
    largest value, as a row-major index into the window (``np.unravel_index(t, (KH,
    KW))`` gives the tap).

    On a tie the first tap in row-major order wins (depth, then rows, then columns), as
    in PyTorch, and a NaN beats every number (of several NaNs the first; PyTorch's CPU
    kernel takes the last). Taps in the padding hold −inf, so a window whose real cells
    are all −inf keeps its first tap even in the padding (PyTorch: its first real cell).
    The gradient (`pool_backward_nd`, `global_pool_backward`) sends each window's dL/dY
    to this tap, and ``apply --backward --steps`` names it.

    Parameters
    ----------
    x : array, (*N) x C
    axes : one `Axis` per spatial axis (`convcalc.compute.windows.pool_axes_nd`)

    Returns
    -------
    array of int64, (*O) x C

    Examples
    --------
    >>> x = np.array([[1, 3, 2, 1], [2, 9, 1, 1], [1, 3, 2, 3], [5, 6, 1, 2]])[..., None]
    >>> axes = pool_axes_nd(x.shape, (2, 2), padding=(0, 0), dilation=(1, 1))
    >>> pool_winners(x, axes)[..., 0]
    array([[3, 0],
           [3, 1]])
    """
    xa = working_array(x)
    size = tuple(a.kernel for a in axes)
    padded = np.full((*_extent(axes), xa.shape[-1]), -np.inf, dtype=xa.dtype)
    padded[tuple(slice(a.pad_lo, a.pad_lo + a.n) for a in axes)] = xa
    outputs = tuple(a.size for a in axes)
    winner = np.zeros((*outputs, xa.shape[-1]), dtype=np.int64)
    if math.prod(size) > math.prod(outputs):
        # few large windows (global pooling): np.argmax keeps the same rule (the first
        # largest, the first NaN) and takes one call per window, not one per tap
        for o in np.ndindex(*outputs):
            at = tuple(
                slice(i * a.stride, i * a.stride + a.span, a.dilation)
                for i, a in zip(o, axes, strict=True)
            )
            winner[o] = np.argmax(padded[at].reshape(-1, xa.shape[-1]), axis=0)
        return winner
    best = np.full(winner.shape, -np.inf, dtype=xa.dtype)
    for t, tap in enumerate(np.ndindex(*size)):
        view = padded[tuple(_taps(a, i) for a, i in zip(axes, tap, strict=True))]
        better = (view > best) | (np.isnan(view) & ~np.isnan(best))  # later taps win only strictly
        best[better], winner[better] = view[better], t
    return winner


def global_pool_backward(
    x: ArrayLike, kind: PoolKind, grad_out: ArrayLike, *, rank: int = 2
) -> Array:
    """dL/dX of `convcalc.compute.ops.global_pool`: ``avg`` spreads each channel's
    gradient evenly over the map; ``max`` gives it to the `pool_winners` cell of the
    window that is the whole map (the first largest in row-major order, as PyTorch).
    ``grad_out`` is 1x1xC (or C values).

    With ``rank`` 1 or 3 the input is L x C or DxHxWxC, as in `global_pool`.
    """
    xa = ops.as_image(x) if rank == 2 else working_array(x)
    c = xa.shape[-1]
    g = grad_shaped(np.reshape(grad_out, (1,) * rank + (-1,)), (1,) * rank + (c,), xa.dtype)
    if kind == PoolKind.AVG:
        spread: Array = np.broadcast_to(g / math.prod(xa.shape[:-1]), xa.shape).copy()
        return spread
    if kind != PoolKind.MAX:
        raise ConvcalcError(
            f"the gradient of global {kind} pooling is not computed; valid: max, avg"
        )
    whole = xa.shape[:-1]  # one window, the whole map
    axes = pool_axes_nd(xa.shape, whole, padding=(0,) * rank, dilation=(1,) * rank)
    first = pool_winners(xa, axes).reshape(c)
    grad = np.zeros((math.prod(whole), c), dtype=xa.dtype)
    grad[first, np.arange(c)] = g.reshape(c)
    return grad.reshape(xa.shape)


def activation_backward(y: ArrayLike, grad_out: ArrayLike, activation: Activation) -> Array:
    """dL/dX of `convcalc.compute.ops.activate`, from its output ``y`` (any shape;
    ``grad_out`` has it, or lacks only a last axis of 1).

    ``relu``: dL/dY where y > 0, else 0 (PyTorch: 0 at 0); ``lrelu``: dL/dY where
    y > 0, else 0.01·dL/dY; ``sigmoid``: y(1-y)·dL/dY; ``tanh``: (1-y²)·dL/dY.
    """
    ya = working_array(y)
    g = grad_shaped(grad_out, ya.shape, ya.dtype)
    if activation == Activation.NONE:
        return g
    if activation == Activation.RELU:
        return np.where(ya > 0, g, 0)
    if activation == Activation.LRELU:
        return np.where(ya > 0, g, g * ops.LRELU_SLOPE)
    if activation == Activation.SIGMOID:
        return g * ya * (1 - ya)
    if activation == Activation.TANH:
        return g * (1 - ya * ya)
    raise ConvcalcError(f"activation {activation!r} is not valid; valid: {', '.join(Activation)}")


def grad_shaped(grad: ArrayLike, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Array:
    """``grad`` as an array of ``shape`` ((*O) x F; (*O) alone when F is 1), in ``dtype``.

    Raises
    ------
    ConvcalcError
        Another shape, naming both (an upstream gradient that does not fit the output).
    """
    g = np.asarray(grad)
    got = "x".join(map(str, g.shape))
    if g.ndim == len(shape) - 1 and shape[-1] == 1:
        g = g[..., None]
    if g.shape != tuple(shape):
        want = "x".join(map(str, shape))
        one = f" (or {want.rsplit('x', 1)[0]})" if len(shape) > 1 and shape[-1] == 1 else ""
        raise ConvcalcError(
            f"an upstream gradient of shape {got} does not fit the output's {want}; "
            f"valid: shape {want}{one}"
        )
    return working_array(g).astype(dtype, copy=False) if g.dtype != dtype else g


# -- helpers ---------------------------------------------------------------


def _rank(x: Array, w: Array) -> int:
    """The spatial axes a kernel bank (*K) x depth x F has, checked against the input's."""
    rank = w.ndim - 2
    if rank < 1 or x.ndim != rank + 1:
        raise ConvcalcError(
            f"an input of shape {'x'.join(map(str, x.shape))} does not fit a kernel bank of "
            f"shape {'x'.join(map(str, w.shape))}; valid: {max(rank, 1)} spatial axes and "
            "channels"
        )
    return rank


def _bank(bank: ArrayLike, dtype: np.dtype[Any]) -> Array:
    w = np.asarray(bank).astype(dtype, copy=False)
    if w.ndim == 2:
        w = w[:, :, None, None]
    if w.ndim != 4:
        raise ConvcalcError(
            f"a kernel of shape {'x'.join(map(str, w.shape))} is not valid; "
            "valid: KHxKW or KHxKWxCxF"
        )
    return w


def _taps(axis: Axis, i: int) -> slice:
    """The padded positions tap ``i`` of every window reads along one axis."""
    start = i * axis.dilation
    return slice(start, start + (axis.size - 1) * axis.stride + 1, axis.stride)


def _extent(axes: Sequence[Axis]) -> list[int]:
    """The padded input's size per axis, long enough for every window's taps."""
    return [max(a.n + a.pad_lo + a.pad_hi, (a.size - 1) * a.stride + a.span) for a in axes]


def _unpad(gxp: Array, shape: tuple[int, ...], pads: list[tuple[int, int]], mode: PadMode) -> Array:
    """The gradient of padding: each padded cell's gradient goes back to the input cell
    `pad` copied it from (none for zero padding)."""
    *spatial, c = shape
    if mode == PadMode.ZERO:
        inner = tuple(slice(lo, lo + n) for (lo, _), n in zip(pads, spatial, strict=True))
        return np.ascontiguousarray(gxp[inner])
    cells = math.prod(spatial)
    source = pad(np.arange(cells).reshape(*spatial, 1), pads, mode)[..., 0]
    gx = np.zeros((cells, c), dtype=gxp.dtype)
    np.add.at(gx, source.ravel(), gxp.reshape(-1, c))
    return gx.reshape(shape)
