"""Gradients of what `convcalc apply` runs: the backward pass of its layers.

Given the upstream gradient dL/dY of a layer's output, each function returns the
gradients PyTorch's autograd gives: dL/dX of the input and, for a convolution,
dL/dW of the kernel bank (and dL/db, the sum of dL/dY per filter). `backward` chains
them through a pipeline of stages (`convcalc.compute.pipeline`), last stage first.

Arrays are channels-last as in `convcalc.compute.ops`: an input HxWxC, a bank
KH x KW x (C/groups) x F, an output (and its gradient) Ho x Wo x F. Integer input
computes in float64, float32 stays float32 (`convcalc.compute.arrays.working_array`).

The module is long because each forward operation's gradient sits beside the others,
with the one table (`_BACKWARD`) that chains them; a split would part that table from
what it dispatches to.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from convcalc.calc.choices import Activation, ChannelMode, Convention, PadMode, PoolKind
from convcalc.calc.geometry import Axis, Padding
from convcalc.calc.layers import Conv, Deconv, GlobalPool, Pointwise, Pool
from convcalc.calc.network import two_axes
from convcalc.compute import ops
from convcalc.compute.arrays import Array, working_array
from convcalc.compute.padding import pad
from convcalc.compute.pipeline import Settings, Stage, kernel_bank, refuse_groups
from convcalc.compute.pipeline import run as run_pipeline
from convcalc.compute.windows import (
    avg_counts,
    conv_axes,
    pool_axes,
    transposed_axes,
    transposed_full_size,
)
from convcalc.errors import ConvcalcError


@dataclass(frozen=True)
class LayerGradients:
    """The gradients of one weighted stage: one kernel gradient per filter, in the
    filter's own shape (KHxKW or KHxKWxC), and dL/db per filter when it has a bias."""

    kernels: tuple[Array, ...]
    bias: tuple[float, ...] | None


@dataclass(frozen=True)
class Backward:
    """A forward and backward run: the output, the upstream gradient used, dL/dX of the
    input, and per stage its `LayerGradients` (None for a stage without weights)."""

    output: Array
    grad_output: Array
    grad_input: Array
    layers: tuple[LayerGradients | None, ...]


def backward(
    x: ArrayLike,
    stages: Sequence[Stage],
    settings: Settings | None = None,
    grad_output: ArrayLike | None = None,
) -> Backward:
    """Run the stages on an HxWxC input, then the chain rule back through them.

    Parameters
    ----------
    x : array, HxWxC (or HxW)
    stages : the pipeline, as `convcalc.compute.pipeline.run` takes it
    settings : Settings, optional
        The defaults when not given.
    grad_output : array, Ho x Wo x F (or Ho x Wo for one channel), optional
        dL/dY of the last stage's output; all ones (L = the sum of the output) when
        not given.

    Returns
    -------
    Backward
        ``grad_input`` has the input's HxWxC shape.

    Raises
    ------
    ConvcalcError
        A ``grad_output`` of another shape than the output, a stage whose
        gradient is not computed (l2 pooling, lrn), or a run of rank 1 or 3
        (gradients are computed for 2-D layers).
    """
    settings = Settings() if settings is None else settings
    if settings.rank != 2:
        raise ConvcalcError(
            f"--backward computes the gradients of 2-D layers; this run is {settings.rank}-D "
            "(valid: a 2-D input and layers, or drop --backward)"
        )
    xa = ops.as_image(x)
    inputs: list[Array] = []
    for position, stage in enumerate(stages, start=1):
        inputs.append(xa)
        xa = _forward(xa, stage, settings, position, len(stages))
    g = _upstream(xa, grad_output)
    upstream = g
    layers: list[LayerGradients | None] = []
    for position in range(len(stages), 0, -1):
        stage = stages[position - 1]
        step = _BACKWARD.get(type(stage.spec.layer))
        try:
            if step is None:
                raise ConvcalcError(f"the gradient of '{stage.spec.text}' is not computed")
            y = xa if position == len(stages) else inputs[position]  # the stage's output
            g, grads = step(stage.spec.layer, inputs[position - 1], y, g, stage, settings)
        except ConvcalcError as exc:
            raise ConvcalcError(_where(stage, position, len(stages)) + str(exc), exc.hint) from None
        layers.insert(0, grads)
    return Backward(output=xa, grad_output=upstream, grad_input=g, layers=tuple(layers))


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
    w = _bank(bank, xa.dtype)
    rows, cols = conv_axes(
        xa.shape, w.shape, stride=stride, padding=padding, dilation=dilation, convention=convention
    )
    (kh, kw, cg, f), c = w.shape, xa.shape[2]
    if groups < 1 or c % groups or cg * groups != c or f % groups:
        raise ConvcalcError(
            f"a kernel bank of depth {cg} and {f} filters with groups {groups} does not fit "
            f"{c} input channels; valid: depth C/groups and filters divisible by groups"
        )
    g = _grad_shaped(grad_out, (rows.size, cols.size, f), xa.dtype)
    pads = [(rows.pad_lo, rows.pad_hi), (cols.pad_lo, cols.pad_hi)]
    xp = pad(xa, pads, pad_mode)
    gxp = np.zeros_like(xp)
    gw = np.zeros_like(w)
    fg = f // groups
    g5 = g.reshape(rows.size, cols.size, groups, fg)
    for i in range(kh):
        for j in range(kw):
            at = (_taps(rows, i), _taps(cols, j))
            view = xp[at].reshape(rows.size, cols.size, groups, cg)
            wt = w[i, j].reshape(cg, groups, fg)
            gw[i, j] = np.einsum("hwgc,hwgo->cgo", view, g5).reshape(cg, f)
            gxp[at] += np.einsum("hwgo,cgo->hwgc", g5, wt).reshape(rows.size, cols.size, c)
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
    w = _bank(bank, xa.dtype)
    rows, cols = transposed_axes(
        xa.shape,
        w.shape,
        stride=stride,
        padding=padding,
        dilation=dilation,
        output_padding=output_padding,
    )
    c, (depth, fg) = xa.shape[2], w.shape[2:]
    if groups < 1 or c % groups or depth != c:
        raise ConvcalcError(
            f"a transposed kernel bank of depth {depth} with groups {groups} does not fit "
            f"{c} input channels; valid: depth {c} and groups dividing {c}"
        )
    g = _grad_shaped(grad_out, (rows.size, cols.size, groups * fg), xa.dtype)
    full = np.zeros((*map(transposed_full_size, (rows, cols)), g.shape[2]), dtype=xa.dtype)
    full[rows.pad_lo : rows.pad_lo + rows.size, cols.pad_lo : cols.pad_lo + cols.size] = g
    reach = [(a.n - 1) * a.stride + a.span for a in (rows, cols)]
    full = full[: reach[0], : reach[1]]  # past the last input's reach no gradient flows back
    swapped = w.transpose(0, 1, 3, 2)  # KH x KW x (F/groups) x C
    gx = ops.correlate(full, swapped, stride=stride, dilation=dilation, groups=groups)
    gw = conv_backward(full, swapped, xa, stride=stride, dilation=dilation, groups=groups)[1]
    return gx, gw.transpose(0, 1, 3, 2)


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
      to the first in row-major order (PyTorch); a NaN wins its window (PyTorch).
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
    xa = ops.as_image(x)
    rows, cols = axes = pool_axes(
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
    g = _grad_shaped(grad_out, (rows.size, cols.size, xa.shape[2]), xa.dtype)
    extent = [max(a.n + a.pad_lo + a.pad_hi, (a.size - 1) * a.stride + a.span) for a in axes]
    taps = [
        (_taps(rows, i), _taps(cols, j)) for i in range(rows.kernel) for j in range(cols.kernel)
    ]
    grad = np.zeros((*extent, xa.shape[2]), dtype=xa.dtype)
    if kind == PoolKind.MAX:
        padded = np.full_like(grad, -np.inf)
        padded[rows.pad_lo : rows.pad_lo + rows.n, cols.pad_lo : cols.pad_lo + cols.n] = xa
        best = np.full(g.shape, -np.inf, dtype=xa.dtype)
        winner = np.zeros(g.shape, dtype=np.int64)
        for t, at in enumerate(taps):
            view = padded[at]
            better = (view > best) | (np.isnan(view) & ~np.isnan(best))
            best[better], winner[better] = view[better], t
        for t, at in enumerate(taps):
            grad[at] += np.where(winner == t, g, 0)
    else:
        row_counts, col_counts = avg_counts(axes, exclude_pad=exclude_pad, convention=convention)
        share = g / np.outer(row_counts, col_counts)[:, :, None]
        for at in taps:
            grad[at] += share
    inner = grad[rows.pad_lo : rows.pad_lo + rows.n, cols.pad_lo : cols.pad_lo + cols.n]
    return np.ascontiguousarray(inner)


def global_pool_backward(x: ArrayLike, kind: PoolKind, grad_out: ArrayLike) -> Array:
    """dL/dX of `convcalc.compute.ops.global_pool`: ``avg`` spreads each channel's
    gradient evenly over the map; ``max`` gives it to the channel's first largest
    cell in row-major order (PyTorch). ``grad_out`` is 1x1xC (or C values)."""
    xa = ops.as_image(x)
    h, w, c = xa.shape
    g = _grad_shaped(np.reshape(grad_out, (1, 1, -1)), (1, 1, c), xa.dtype)
    if kind == PoolKind.AVG:
        spread: Array = np.broadcast_to(g / (h * w), xa.shape).copy()
        return spread
    if kind != PoolKind.MAX:
        raise ConvcalcError(
            f"the gradient of global {kind} pooling is not computed; valid: max, avg"
        )
    flat = xa.reshape(h * w, c)
    nan = np.isnan(flat)
    first = np.where(nan.any(axis=0), nan.argmax(axis=0), np.nanargmax(np.where(nan, 0, flat), 0))
    grad = np.zeros_like(flat)
    grad[first, np.arange(c)] = g[0, 0]
    return grad.reshape(xa.shape)


def activation_backward(y: ArrayLike, grad_out: ArrayLike, activation: Activation) -> Array:
    """dL/dX of `convcalc.compute.ops.activate`, from its output ``y``.

    ``relu``: dL/dY where y > 0, else 0 (PyTorch: 0 at 0); ``lrelu``: dL/dY where
    y > 0, else 0.01·dL/dY; ``sigmoid``: y(1-y)·dL/dY; ``tanh``: (1-y²)·dL/dY.
    """
    ya = ops.as_image(y)
    g = _grad_shaped(grad_out, ya.shape, ya.dtype)
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


def kernel_gradients(
    kernels: Sequence[Array], grad_bank: Array, channels: int, mode: ChannelMode
) -> tuple[Array, ...]:
    """Per filter, its gradient in the filter's own shape, from the gradient of the bank
    `convcalc.compute.pipeline.kernel_bank` stacked from it.

    A filter used on several channels (a 2-D kernel with ``each``, or repeated with
    ``sum``) gathers the sum over the channels it was used on.
    """
    each = kernel_bank(kernels, channels, mode)[2]
    count = len(kernels)
    found = []
    for f, k in enumerate(kernels):
        if each:
            grad = grad_bank[:, :, 0, f::count].sum(axis=2)
        elif k.ndim == 3 and k.shape[2] == channels:
            grad = grad_bank[..., f]
        else:
            grad = grad_bank[..., f].sum(axis=2)
        found.append(np.ascontiguousarray(grad.reshape(k.shape)))
    return tuple(found)


# -- stages ----------------------------------------------------------------

_StepFn = Callable[[Any, Array, Array, Array, Stage, Settings], tuple[Array, LayerGradients | None]]


def _conv_step(
    layer: Conv, x: Array, y: Array, g: Array, stage: Stage, settings: Settings
) -> tuple[Array, LayerGradients]:
    refuse_groups(layer)
    channels = x.shape[2]
    bank, groups, each = kernel_bank(stage.kernels, channels, settings.channels)
    if settings.flip:
        bank = bank[::-1, ::-1]
    g = _channel_major(activation_backward(y, g, stage.activation), channels, each)
    gx, gw = conv_backward(
        x,
        bank,
        g,
        stride=two_axes(layer.stride, "stride"),
        padding=two_axes(layer.padding, "padding"),
        dilation=two_axes(layer.dilation, "dilation"),
        groups=groups,
        pad_mode=settings.pad_mode,
        convention=settings.convention,
    )
    if settings.flip:
        gw = gw[::-1, ::-1]
    grads = kernel_gradients(stage.kernels, gw, channels, settings.channels)
    return gx, LayerGradients(grads, _bias_grad(stage, g, channels, each))


def _deconv_step(
    layer: Deconv, x: Array, y: Array, g: Array, stage: Stage, settings: Settings
) -> tuple[Array, LayerGradients]:
    refuse_groups(layer)
    channels = x.shape[2]
    bank, groups, each = kernel_bank(stage.kernels, channels, settings.channels)
    kh, kw = bank.shape[:2]
    if each:  # as the forward: grouped transposed weights are KH x KW x C x (F/groups)
        bank = bank[:, :, 0, :].reshape(kh, kw, channels, -1)
    if settings.flip:
        bank = bank[::-1, ::-1]
    g = _channel_major(activation_backward(y, g, stage.activation), channels, each)
    gx, gw = conv_transpose_backward(
        x,
        bank,
        g,
        stride=two_axes(layer.stride, "stride"),
        padding=two_axes(layer.padding, "padding"),
        dilation=two_axes(layer.dilation, "dilation"),
        output_padding=two_axes(layer.output_padding, "output_padding"),
        groups=groups,
    )
    if settings.flip:
        gw = gw[::-1, ::-1]
    if each:
        gw = gw.reshape(kh, kw, 1, -1)
    grads = kernel_gradients(stage.kernels, gw, channels, settings.channels)
    return gx, LayerGradients(grads, _bias_grad(stage, g, channels, each))


def _pool_step(
    layer: Pool, x: Array, y: Array, g: Array, stage: Stage, settings: Settings
) -> tuple[Array, None]:
    gx = pool_backward(
        x,
        layer.kind,
        two_axes(layer.kernel, "kernel"),
        g,
        stride=None if layer.stride is None else two_axes(layer.stride, "stride"),
        padding=two_axes(layer.padding, "padding"),
        dilation=two_axes(layer.dilation, "dilation"),
        ceil=layer.ceil,
        exclude_pad=settings.exclude_pad,
        convention=settings.convention,
    )
    return gx, None


def _global_step(
    layer: GlobalPool, x: Array, y: Array, g: Array, stage: Stage, settings: Settings
) -> tuple[Array, None]:
    return global_pool_backward(x, layer.kind, g), None


def _pointwise_step(
    layer: Pointwise, x: Array, y: Array, g: Array, stage: Stage, settings: Settings
) -> tuple[Array, None]:
    name = layer.name
    if name == "dropout":  # apply runs it as at inference: the identity
        return g, None
    if name == "softmax":
        return y * (g - (g * y).sum(axis=2, keepdims=True)), None
    if name == "relu6":
        return np.where((y > 0) & (y < 6), g, 0), None
    if name not in set(Activation) - {Activation.NONE}:
        raise ConvcalcError(
            f"the gradient of '{name}' is not computed; valid: relu, relu6, lrelu, sigmoid, "
            "tanh, softmax, dropout"
        )
    return activation_backward(y, g, Activation(name)), None


_BACKWARD: dict[type, _StepFn] = {
    Conv: _conv_step,
    Deconv: _deconv_step,
    Pool: _pool_step,
    GlobalPool: _global_step,
    Pointwise: _pointwise_step,
}
"""The backward pass of each kind of layer apply runs (arguments: layer, the stage's
input, its output, dL/d(output), the stage, the settings)."""


# -- helpers ---------------------------------------------------------------


def _forward(x: Array, stage: Stage, settings: Settings, position: int, total: int) -> Array:
    try:
        return run_pipeline(x, [stage], settings).output
    except ConvcalcError as exc:
        raise ConvcalcError(_where(stage, position, total) + str(exc), exc.hint) from None


def _where(stage: Stage, position: int, total: int) -> str:
    return f"layer {position} ({stage.spec.text}): " if total > 1 else ""


def _upstream(y: Array, grad_output: ArrayLike | None) -> Array:
    if grad_output is None:
        return np.ones_like(y)
    return _grad_shaped(grad_output, y.shape, y.dtype)


def _grad_shaped(grad: ArrayLike, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Array:
    """``grad`` as an array of ``shape`` (Ho x Wo x F; Ho x Wo when F is 1), in ``dtype``."""
    g = np.asarray(grad)
    got = "x".join(map(str, g.shape))
    if g.ndim == 2 and len(shape) == 3 and shape[2] == 1:
        g = g[:, :, None]
    if g.shape != tuple(shape):
        want = "x".join(map(str, shape))
        one = f" (or {want.rsplit('x', 1)[0]})" if len(shape) == 3 and shape[2] == 1 else ""
        raise ConvcalcError(
            f"an upstream gradient of shape {got} does not fit the output's {want}; "
            f"valid: shape {want}{one}"
        )
    return working_array(g).astype(dtype, copy=False) if g.dtype != dtype else g


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


def _unpad(gxp: Array, shape: tuple[int, ...], pads: list[tuple[int, int]], mode: PadMode) -> Array:
    """The gradient of padding: each padded cell's gradient goes back to the input cell
    `pad` copied it from (none for zero padding)."""
    (top, _), (left, _) = pads
    h, w, c = shape
    if mode == PadMode.ZERO:
        return np.ascontiguousarray(gxp[top : top + h, left : left + w])
    source = pad(np.arange(h * w).reshape(h, w, 1), pads, mode)[:, :, 0]
    gx = np.zeros((h * w, c), dtype=gxp.dtype)
    np.add.at(gx, source.ravel(), gxp.reshape(-1, c))
    return gx.reshape(h, w, c)


def _channel_major(g: Array, channels: int, each: bool) -> Array:
    """Undo `convcalc.compute.pipeline.filter_major`: filter by filter (f·C + c) back to
    channel by channel (c·F + f), the order the bank computes in."""
    if not each:
        return g
    h, w, total = g.shape
    major: Array = g.reshape(h, w, total // channels, channels).transpose(0, 1, 3, 2)
    return major.reshape(h, w, total)


def _bias_grad(stage: Stage, g: Array, channels: int, each: bool) -> tuple[float, ...] | None:
    """dL/db per filter: the sum of dL/dY over its output (over every channel with each)."""
    if stage.bias is None:
        return None
    sums = g.sum(axis=(0, 1), dtype=np.float64)
    if each:
        sums = sums.reshape(channels, -1).sum(axis=0)
    return tuple(float(v) for v in sums)
