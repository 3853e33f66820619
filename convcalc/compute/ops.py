"""The operations `convcalc apply` runs: padding, convolution, pooling, activations.

Arrays are channels-last: an input is HxWxC (an HxW map is taken as HxWx1), a
kernel bank KH x KW x (C/groups) x F, a result Ho x Wo x F. Output sizes and
padding splits come from `convcalc.calc.geometry`, so they agree with `convcalc shape`.
"Convolution" is cross-correlation, as in CNN frameworks; ``flip=True`` gives the
mathematical convolution. dtype policy: float32 and 8-bit input (images, bool)
compute and return float32; any other real input (wider integers, float64)
computes in float64, exact for small integer examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from convcalc.calc.choices import Activation, Convention, Method, PadMode, PoolKind
from convcalc.calc.geometry import Axis, Padding
from convcalc.compute.arrays import Array, saturated, tap_product, working_array, working_dtype
from convcalc.compute.methods import choose_method, correlate_direct, correlate_padded, is_separable
from convcalc.compute.padding import PaddedInput
from convcalc.compute.padding import pad as pad  # re-exported: ops is where apply's operations live
from convcalc.compute.windows import (
    avg_divisors,
    conv_axes,
    conv_axes_nd,
    pool_axes_nd,
    transposed_axes_nd,
    transposed_full_size,
)
from convcalc.errors import ConvcalcError

LRELU_SLOPE = 0.01
"""The slope of leaky ReLU below zero (PyTorch's default)."""


def correlate(
    x: ArrayLike,
    kernels: ArrayLike,
    *,
    stride: tuple[int, int] = (1, 1),
    padding: tuple[Padding, Padding] = (0, 0),
    dilation: tuple[int, int] = (1, 1),
    pad_mode: PadMode = PadMode.ZERO,
    groups: int = 1,
    bias: Sequence[float] | None = None,
    flip: bool = False,
    method: Method = Method.AUTO,
    activation: Activation = Activation.NONE,
    convention: Convention = Convention.TORCH,
    out_dtype: DTypeLike | None = None,
) -> NDArray[Any]:
    """A convolution layer: pad, cross-correlate, add the bias, activate.

    ``y[r, c, o] = act(b[o] + sum_{i,j,k} xp[r·s + i·d, c·s + j·d, g·C/groups + k]·w[i,j,k,o])``
    with xp the padded input and ``g = o // (F/groups)``. Per axis (input n,
    kernel f, stride s, padding p_lo + p_hi, dilation d)::

        out = floor((n + p_lo + p_hi - d(f-1) - 1)/s) + 1

    Parameters
    ----------
    x : array, HxWxC (or HxW)
    kernels : array, KH x KW x (C/groups) x F (or KH x KW, one filter)
    stride, dilation : (int, int)
    padding : (Padding, Padding)
        Per axis: a count on both sides, ``(before, after)``, or ``same``
        (TensorFlow: the odd one after), ``valid`` or ``full``.
    pad_mode : PadMode
        What fills the padding, see `pad`.
    groups : int
        Grouped convolution (PyTorch's rule); ``groups = C`` is depthwise.
    bias : sequence of F floats, optional
    flip : bool
        Rotate every kernel by 180° first: the mathematical convolution.
    method : Method
        The algorithm, see `convcalc.compute.methods.correlate_padded`; all agree.
    activation : Activation
        Applied after the bias, see `activate`.
    convention : Convention
        Whose SAME rule the geometry reports (the numbers are the same).
    out_dtype : integer dtype, optional
        Return the result rounded to nearest and saturated to this type's range
        (OpenCV's ``saturate_cast``), e.g. uint8 for an 8-bit image. The direct
        method without bias or activation then never holds a float copy of the
        whole result.

    Returns
    -------
    array, Ho x Wo x F

    Raises
    ------
    ConvcalcError
        A kernel larger than the padded input, shapes or groups that do not fit,
        a bias of the wrong length, a reflect pad too large.

    Examples
    --------
    The worked example of the UFLDL tutorial:

    >>> x = [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]]
    >>> correlate(x, [[1, 0, 1], [0, 1, 0], [1, 0, 1]])[..., 0]
    array([[4., 3., 4.],
           [2., 4., 3.],
           [2., 3., 4.]])
    """
    xa, w, pads = _operands(x, kernels, stride, padding, dilation, convention)
    dtype = w.dtype
    if flip:
        w = w[::-1, ::-1]
    if method == Method.AUTO:
        method = _auto_method(xa.shape, w, pads, stride)
    unpadded = not any(lo or hi for lo, hi in pads) and xa.dtype == dtype
    streamed = out_dtype if bias is None and activation == Activation.NONE else None
    if method == Method.DIRECT and pad_mode != PadMode.WRAP and (not unpadded or streamed):
        # padded (and cast) a strip at a time: no padded copy of the whole image
        y = correlate_direct(
            PaddedInput(xa, pads, pad_mode, dtype=dtype),
            w,
            stride=stride,
            dilation=dilation,
            groups=groups,
            out_dtype=streamed,
        )
    else:
        y = correlate_padded(
            pad(xa, pads, pad_mode, dtype=dtype),
            w,
            stride=stride,
            dilation=dilation,
            groups=groups,
            method=method,
        )
    if out_dtype is not None and y.dtype == out_dtype:
        return y
    y = activate(_add_bias(y, bias), activation)
    return y if out_dtype is None else saturated(y, out_dtype, overwrite=True)


def auto_method(
    x: ArrayLike,
    kernels: ArrayLike,
    *,
    stride: tuple[int, int] = (1, 1),
    padding: tuple[Padding, Padding] = (0, 0),
    dilation: tuple[int, int] = (1, 1),
    groups: int = 1,
    convention: Convention = Convention.TORCH,
) -> Method:
    """The method `correlate` runs with ``method=auto`` on these arguments.

    `convcalc.compute.methods.choose_method`'s rule on the padded input's shape, with the
    kernels' separability in the working dtype. Arguments as in `correlate`;
    ``groups`` is accepted for that and does not change the choice (the bank's
    depth already says what groups do).
    """
    xa, w, pads = _operands(x, kernels, stride, padding, dilation, convention)
    return _auto_method(xa.shape, w, pads, stride)


def conv_transpose(
    x: ArrayLike,
    kernels: ArrayLike,
    *,
    stride: tuple[int, int] = (1, 1),
    padding: tuple[Padding, Padding] = (0, 0),
    dilation: tuple[int, int] = (1, 1),
    output_padding: tuple[int, int] = (0, 0),
    groups: int = 1,
    bias: Sequence[float] | None = None,
) -> Array:
    """Transposed convolution (PyTorch's ConvTranspose2d), by scatter-add per tap.

    Every input pixel adds its kernel-weighted copy at ``(r·s + i·d, c·s + j·d)``
    of a full output of ``(n-1)s + d(f-1) + 1`` rows; the padding is then cropped
    from the start, and the size per axis is (`convcalc.calc.geometry.transposed_axis`)::

        out = (n-1)s - p_lo - p_hi + d(f-1) + output_padding + 1

    It is the adjoint of `correlate` with the same stride, padding and dilation:
    ``<correlate(x, w), y> == <x, conv_transpose(y, w')>`` with w' the bank with
    its last two axes swapped.

    Parameters
    ----------
    x : array, HxWxC (or HxW)
    kernels : array, KH x KW x C x (F/groups)
        PyTorch's weight ``(C, F/groups, KH, KW)`` moved channels-last.
    stride, dilation, output_padding : (int, int)
    padding : (Padding, Padding)
        Per axis: a count on both sides, ``(before, after)``, ``same`` or ``valid``
        (TensorFlow/Keras sizes).
    groups : int
    bias : sequence of F floats, optional

    Returns
    -------
    array, Ho x Wo x F

    Examples
    --------
    >>> conv_transpose(np.ones((2, 2)), np.ones((2, 2)), stride=(2, 2)).shape
    (4, 4, 1)
    """
    xa = as_image(x)
    return conv_transpose_nd(
        xa,
        _kernel_bank(kernels, xa.dtype),
        stride=stride,
        padding=padding,
        dilation=dilation,
        output_padding=output_padding,
        groups=groups,
        bias=bias,
    )


def pool(
    x: ArrayLike,
    kind: PoolKind,
    size: tuple[int, int],
    *,
    stride: tuple[int, int] | None = None,
    padding: tuple[Padding, Padding] = (0, 0),
    dilation: tuple[int, int] = (1, 1),
    ceil: bool = False,
    exclude_pad: bool = False,
    convention: Convention = Convention.TORCH,
) -> Array:
    """Pool each channel over windows of ``size`` (the stride defaults to the size).

    Output size per axis from `convcalc.calc.geometry.pool_axis`: rounded down, or up
    with ``ceil`` (PyTorch ``ceil_mode``: the last window may run past the padded
    input but may not start in the bottom/right padding; Caffe always rounds up).

    * ``max``: the largest value; padding never wins (PyTorch).
    * ``avg``: the sum over the window divided by the number of its cells inside
      the padded input, padding included (PyTorch ``count_include_pad``; cells of
      a ceil-mode window past the padded input are not counted). With
      ``exclude_pad``, or the ``tf`` convention, by the number of real input cells
      (TensorFlow SAME).
    * ``l2``: ``sqrt(sum of squares)``, padding counting 0 (PyTorch LPPool2d, p=2,
      except that a ceil-mode window past the input is not rescaled).

    Parameters
    ----------
    x : array, HxWxC (or HxW)
    kind : PoolKind
    size, dilation : (int, int)
    stride : (int, int), optional
    padding : (Padding, Padding)
        Per axis: a count (at most half the window; Caffe: less than it),
        ``(before, after)``, ``same`` or ``valid``.
    ceil, exclude_pad : bool
    convention : Convention

    Raises
    ------
    ConvcalcError
        Padding over half the window (Caffe: not less than it), a window larger
        than the padded input, or a dilated window that sees only padding.

    Returns
    -------
    array, Ho x Wo x C

    Examples
    --------
    >>> x = np.array([[1, 3, 2, 1], [2, 9, 1, 1], [1, 3, 2, 3], [5, 6, 1, 2]])
    >>> pool(x, PoolKind.MAX, (2, 2))[..., 0]
    array([[9., 2.],
           [6., 3.]])
    """
    return pool_nd(
        as_image(x),
        kind,
        size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil=ceil,
        exclude_pad=exclude_pad,
        convention=convention,
    )


def global_pool(x: ArrayLike, kind: PoolKind, *, rank: int = 2) -> Array:
    """Pool each channel over the whole map: HxWxC (or HxW) to 1x1xC.

    With ``rank`` 1 or 3, over every spatial axis of L x C or DxHxWxC (to 1x C,
    1x1x1xC).

    ``max``, ``avg`` (the mean) or ``l2`` (``sqrt(sum of squares)``).

    Examples
    --------
    >>> global_pool(np.arange(4).reshape(2, 2), PoolKind.AVG)
    array([[[1.5]]])
    """
    xa = as_image(x) if rank == 2 else working_array(x)
    spatial = tuple(range(xa.ndim - 1))
    out: Array
    if kind == PoolKind.MAX:
        out = xa.max(axis=spatial, keepdims=True)
    elif kind == PoolKind.AVG:
        out = xa.mean(axis=spatial, keepdims=True)
    elif kind == PoolKind.L2:
        out = np.sqrt(np.square(xa).sum(axis=spatial, keepdims=True))
    else:
        raise ConvcalcError(f"pooling {kind!r} is not valid; valid: {', '.join(PoolKind)}")
    return out


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

    The rank is the kernel bank's: ``kernels.ndim - 2``. As `correlate`, per
    spatial axis::

        out = floor((n + p_lo + p_hi - d(f-1) - 1)/s) + 1

    Parameters
    ----------
    x : array, (*N) x C: L x C for 1-D, DxHxWxC for 3-D
    kernels : array, (*K) x (C/groups) x F: K x C x F, or KDxKHxKW x C x F
    stride, dilation : tuple of int, one per spatial axis
    padding : tuple of Padding, one per spatial axis
    pad_mode, groups, bias, flip, activation, convention
        As in `correlate`.

    Returns
    -------
    array, (*O) x F

    Notes
    -----
    Each kernel tap adds ``xp[tap·d :: s] @ w[tap]`` (a strided view of the padded
    input times a (C/groups) x F matrix) to the output, the direct method of
    `correlate`; the 2-D layers keep `correlate` and its other methods.

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
    return activate(_add_bias(y, bias), activation)


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
    return _add_bias(np.ascontiguousarray(y), bias)


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
    """`pool` for any rank: L x C (1-D) or DxHxWxC (3-D) with one window size per axis.

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


def activate(x: ArrayLike, activation: Activation) -> Array:
    """Apply a pointwise activation; same shape, working dtype (float32 or float64).

    ``relu``: max(x, 0); ``lrelu``: x if x >= 0 else 0.01x; ``sigmoid``:
    1/(1 + e^-x) (computed without overflow); ``tanh``; ``none``: x itself.

    Examples
    --------
    >>> activate(np.array([-2, 0, 3]), Activation.RELU)
    array([0., 0., 3.])
    """
    xa = working_array(x)
    if activation == Activation.NONE:
        return xa
    if activation == Activation.RELU:
        return np.maximum(xa, 0)
    if activation == Activation.LRELU:
        return np.where(xa >= 0, xa, xa * LRELU_SLOPE)
    if activation == Activation.SIGMOID:
        return np.exp(-np.logaddexp(0, -xa))
    if activation == Activation.TANH:
        return np.tanh(xa)
    raise ConvcalcError(f"activation {activation!r} is not valid; valid: {', '.join(Activation)}")


def as_image(x: ArrayLike, *, convert: bool = True) -> Array:
    """The input as HxWxC: an HxW map gains one channel.

    Parameters
    ----------
    x : array, HxWxC (or HxW), real
    convert : bool
        Return the values in their working dtype (float32 or float64, see the
        module); without it, as given (the caller casts a strip at a time).

    Raises
    ------
    ConvcalcError
        Complex, string or object values, or an input that is not HxW or HxWxC.
    """
    xa = working_array(x) if convert else np.asarray(x)
    working_dtype(xa.dtype)  # refuses complex, strings, objects
    if xa.ndim == 2:
        xa = xa[:, :, None]
    if xa.ndim != 3:
        raise ConvcalcError(
            f"an input of shape {'x'.join(map(str, xa.shape))} is not valid; valid: HxW or HxWxC"
        )
    return xa


# -- helpers ---------------------------------------------------------------


def _operands(
    x: ArrayLike,
    kernels: ArrayLike,
    stride: tuple[int, int],
    padding: tuple[Padding, Padding],
    dilation: tuple[int, int],
    convention: Convention,
) -> tuple[Array, Array, list[tuple[int, int]]]:
    """A convolution's HxWxC input as given, its KH x KW x depth x F bank in the
    working dtype, and the (before, after) padding per axis."""
    xa = as_image(x, convert=False)
    w = _kernel_bank(kernels, working_dtype(xa.dtype))
    axes = conv_axes(
        xa.shape, w.shape, stride=stride, padding=padding, dilation=dilation, convention=convention
    )
    return xa, w, [(a.pad_lo, a.pad_hi) for a in axes]


def _kernel_bank(kernels: ArrayLike, dtype: np.dtype[Any]) -> Array:
    """The kernels as KH x KW x depth x F in ``dtype`` (a KH x KW kernel is one filter)."""
    w = working_array(kernels).astype(dtype, copy=False)
    if w.ndim == 2:
        w = w[:, :, None, None]
    if w.ndim != 4:
        raise ConvcalcError(
            f"a kernel of shape {'x'.join(map(str, w.shape))} is not valid; "
            "valid: KHxKW or KHxKWxCxF"
        )
    return w


def _auto_method(
    x_shape: tuple[int, ...], w: Array, pads: list[tuple[int, int]], stride: tuple[int, int]
) -> Method:
    padded = (x_shape[0] + sum(pads[0]), x_shape[1] + sum(pads[1]), x_shape[2])
    return choose_method(padded, w.shape, stride=stride, separable=is_separable(w))


def _add_bias(y: Array, bias: Sequence[float] | None) -> Array:
    if bias is None:
        return y
    b = np.asarray(bias, dtype=y.dtype).reshape(-1)
    if b.shape[0] != y.shape[-1]:
        raise ConvcalcError(
            f"{b.shape[0]} bias value(s) for {y.shape[-1]} filter(s); "
            f"valid: one value per filter ({y.shape[-1]})"
        )
    y += b
    return y


def _taps(axis: Axis, tap: int) -> slice:
    """Along one axis, the padded input's cells that kernel tap ``tap`` meets."""
    start = tap * axis.dilation
    return slice(start, start + (axis.size - 1) * axis.stride + 1, axis.stride)


def _scatter(axis: Axis, tap: int) -> slice:
    """Along one axis, the full output's cells kernel tap ``tap`` of a transposed
    convolution adds the input cells to (input cell n at ``n·s + tap·d``)."""
    start = tap * axis.dilation
    return slice(start, start + (axis.n - 1) * axis.stride + 1, axis.stride)
