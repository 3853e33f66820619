"""The operations `convcalc apply` runs: padding, convolution, pooling, activations.

This module holds the 2-D layers (an HxWxC image; `correlate` with its four
methods) and is where callers import every operation from: the layers of any rank
(`convcalc.compute.ops_nd`: 1-D signals, 3-D volumes), the activations
(`convcalc.compute.pointwise`) and `pad` are re-exported here.

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
from convcalc.calc.geometry import Padding
from convcalc.compute.arrays import Array, saturated, working_array, working_dtype
from convcalc.compute.methods import choose_method, correlate_direct, correlate_padded
from convcalc.compute.ops_nd import conv_transpose_nd, correlate_nd, pool_nd
from convcalc.compute.padding import PaddedInput, pad
from convcalc.compute.pointwise import LRELU_SLOPE, activate, add_bias
from convcalc.compute.windows import conv_axes
from convcalc.errors import ConvcalcError

__all__ = [
    "LRELU_SLOPE",
    "activate",
    "as_image",
    "auto_method",
    "conv_transpose",
    "conv_transpose_nd",
    "correlate",
    "correlate_nd",
    "global_pool",
    "pad",
    "pool",
    "pool_nd",
]


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
    y = activate(add_bias(y, bias), activation)
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
    return choose_method(padded, w.shape, stride=stride)
