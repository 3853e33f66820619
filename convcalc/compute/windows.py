"""The geometry of a layer on an HxWxC array (or L x C, DxHxWxC): its windows per axis.

Per axis the rules are `convcalc.calc.geometry`'s, so `apply`, `--steps` and
`animate` size and pad exactly as `convcalc shape` does.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from convcalc.calc.axes import axis_names
from convcalc.calc.choices import Convention
from convcalc.calc.geometry import Axis, Padding, conv_axis, pool_axis, transposed_axis
from convcalc.errors import ConvcalcError


def conv_axes(
    shape: tuple[int, ...],
    kernel: tuple[int, ...],
    *,
    stride: tuple[int, int],
    padding: tuple[Padding, Padding],
    dilation: tuple[int, int],
    convention: Convention = Convention.TORCH,
) -> tuple[Axis, Axis]:
    """The rows' and columns' geometry of a convolution, as `correlate` computes it.

    ``shape`` is the input's HxW(xC), ``kernel`` the bank's KH x KW (x ...); the
    rest as in `correlate`. Per axis `convcalc.calc.geometry.conv_axis`.
    """
    rows, cols = conv_axes_nd(
        shape,
        kernel[:2],
        stride=stride,
        padding=padding,
        dilation=dilation,
        convention=convention,
    )
    return rows, cols


def transposed_axes(
    shape: tuple[int, ...],
    kernel: tuple[int, ...],
    *,
    stride: tuple[int, int],
    padding: tuple[Padding, Padding],
    dilation: tuple[int, int],
    output_padding: tuple[int, int],
) -> tuple[Axis, Axis]:
    """The rows' and columns' geometry of a transposed convolution (`conv_transpose`).

    ``shape`` is the input's HxW(xC), ``kernel`` the bank's KH x KW (x ...); the
    rest as in `conv_transpose`. Per axis `convcalc.calc.geometry.transposed_axis`.
    """
    rows, cols = transposed_axes_nd(
        shape,
        kernel[:2],
        stride=stride,
        padding=padding,
        dilation=dilation,
        output_padding=output_padding,
    )
    return rows, cols


def transposed_axes_nd(
    shape: tuple[int, ...],
    kernel: tuple[int, ...],
    *,
    stride: tuple[int, ...],
    padding: tuple[Padding, ...],
    dilation: tuple[int, ...],
    output_padding: tuple[int, ...],
) -> tuple[Axis, ...]:
    """`transposed_axes` for any number of spatial axes: one `Axis` per entry of ``kernel``.

    ``shape`` is the input's spatial sizes (then, ignored, its channels); every
    other argument has one entry per spatial axis (L; DxHxW ...).
    """
    return tuple(
        transposed_axis(
            shape[k],
            kernel[k],
            stride=stride[k],
            padding=padding[k],
            dilation=dilation[k],
            output_padding=output_padding[k],
        )
        for k in range(len(kernel))
    )


def transposed_full_size(axis: Axis) -> int:
    """Along one axis, the length of the full output `conv_transpose` scatters into.

    ``(n-1)s + d(f-1) + 1``, the reach of the last input cell's kernel, or
    ``p_lo + out`` when output_padding asks for more; the output is the slice
    ``[p_lo, p_lo + out)`` of it, the rest being the cropped padding.

    Examples
    --------
    >>> from convcalc.calc.geometry import transposed_axis
    >>> transposed_full_size(transposed_axis(3, 3, stride=2, padding=1))
    7
    >>> transposed_full_size(transposed_axis(2, 1, stride=2, output_padding=1))
    4
    """
    return max((axis.n - 1) * axis.stride + axis.span, axis.pad_lo + axis.size)


def pool_axes(
    shape: tuple[int, ...],
    size: tuple[int, int],
    *,
    stride: tuple[int, int] | None = None,
    padding: tuple[Padding, Padding] = (0, 0),
    dilation: tuple[int, int] = (1, 1),
    ceil: bool = False,
    convention: Convention = Convention.TORCH,
) -> tuple[Axis, Axis]:
    """The rows' and columns' geometry of a pooling window on an HxW(xC) input.

    Arguments as in `pool`; per axis `convcalc.calc.geometry.pool_axis`.

    Raises
    ------
    ConvcalcError
        Anything `pool_axis` refuses, or a dilated window that sees only
        padding: every window must tap at least one input cell (PyTorch).
    """
    rows, cols = pool_axes_nd(
        shape,
        size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil=ceil,
        convention=convention,
    )
    return rows, cols


def conv_axes_nd(
    shape: tuple[int, ...],
    kernel: tuple[int, ...],
    *,
    stride: tuple[int, ...],
    padding: tuple[Padding, ...],
    dilation: tuple[int, ...],
    convention: Convention = Convention.TORCH,
) -> tuple[Axis, ...]:
    """`conv_axes` for any number of spatial axes: one `Axis` per entry of ``kernel``.

    ``shape`` is the input's spatial sizes (then, ignored, its channels); every
    other argument has one entry per spatial axis (L; DxHxW ...).
    """
    return tuple(
        conv_axis(
            shape[k],
            kernel[k],
            stride=stride[k],
            padding=padding[k],
            dilation=dilation[k],
            convention=convention,
        )
        for k in range(len(kernel))
    )


def pool_axes_nd(
    shape: tuple[int, ...],
    size: tuple[int, ...],
    *,
    stride: tuple[int, ...] | None = None,
    padding: tuple[Padding, ...],
    dilation: tuple[int, ...],
    ceil: bool = False,
    convention: Convention = Convention.TORCH,
) -> tuple[Axis, ...]:
    """`pool_axes` for any number of spatial axes: one `Axis` per entry of ``size``.

    Raises
    ------
    ConvcalcError
        As `pool_axes`.
    """
    strides = size if stride is None else stride
    axes = tuple(
        pool_axis(
            shape[k],
            size[k],
            stride=strides[k],
            padding=padding[k],
            dilation=dilation[k],
            ceil=ceil,
            convention=convention,
        )
        for k in range(len(size))
    )
    for a, name in zip(axes, axis_names(len(axes)), strict=True):
        if not _window_counts(a, exclude_pad=True).all():
            raise ConvcalcError(
                f"a pooling window of {a.kernel} {name} with dilation {a.dilation} covers only "
                f"padding ({a.pad_lo} before, {a.pad_hi} after {a.n} {name}); valid: less "
                "padding or dilation"
            )
    return axes


def avg_divisors(
    axes: tuple[Axis, ...],
    *,
    exclude_pad: bool = False,
    convention: Convention = Convention.TORCH,
) -> NDArray[np.int64]:
    """The divisors of average pooling for every output position (any rank).

    The product over axes of `avg_counts`'s per-axis counts: an array shaped like
    the output's spatial axes.
    """
    exclude = exclude_pad or convention == Convention.TF
    divisors: NDArray[np.int64] = np.ones((), dtype=np.int64)
    for axis in axes:
        divisors = np.multiply.outer(divisors, _window_counts(axis, exclude))
    return divisors


def avg_counts(
    axes: tuple[Axis, Axis],
    *,
    exclude_pad: bool = False,
    convention: Convention = Convention.TORCH,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The divisors of average pooling, per output row and per output column.

    Output ``(r, c)`` divides its window's sum by ``rows[r]·cols[c]``: the cells
    of the window inside the padded input (PyTorch ``count_include_pad``), or,
    with ``exclude_pad`` or the ``tf`` convention, inside the real input.

    Parameters
    ----------
    axes : (Axis, Axis)
        The rows' and columns' geometry, from `pool_axes`.
    exclude_pad : bool
    convention : Convention

    Returns
    -------
    rows, cols : int arrays of Ho and Wo counts
    """
    exclude = exclude_pad or convention == Convention.TF
    return _window_counts(axes[0], exclude), _window_counts(axes[1], exclude)


# -- helpers ---------------------------------------------------------------


def _window_counts(axis: Axis, exclude_pad: bool) -> NDArray[np.int64]:
    """Per output position, how many window taps fall inside the padded input.

    With ``exclude_pad``, inside the real input only. Positions are in padded
    coordinates: window r covers ``r·s + i·d`` for i < f.
    """
    taps = (np.arange(axis.size) * axis.stride)[:, None] + np.arange(axis.kernel) * axis.dilation
    if exclude_pad:
        lo, hi = axis.pad_lo, axis.pad_lo + axis.n
    else:
        lo, hi = 0, axis.n + axis.pad_lo + axis.pad_hi
    counts: NDArray[np.int64] = ((taps >= lo) & (taps < hi)).sum(axis=1)
    return counts
