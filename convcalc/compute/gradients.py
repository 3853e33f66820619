"""Gradients of what `convcalc apply` runs: the backward pass of its layers, any rank.

`backward` runs a pipeline of stages (`convcalc.compute.pipeline`) forward, then the
chain rule back through it, last stage first: each stage's dL/dX from its dL/dY, and
for a (transposed) convolution dL/dW of each filter and dL/db, as PyTorch's autograd
gives them. The gradient of each operation is `convcalc.compute.op_gradients`'s (its
functions are re-exported here); this module turns a stage's kernels, channel mode
and flip into the bank those functions take, and back into one gradient per filter.

Arrays are channels-last: an input HxWxC (at rank 1 L x C, at rank 3 DxHxWxC, the
run's `Settings.rank`), an output (and its gradient) Ho x Wo x F.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from convcalc.calc.choices import Activation, ChannelMode
from convcalc.calc.layers import Conv, Deconv, GlobalPool, Pointwise, Pool
from convcalc.calc.network import per_axis
from convcalc.compute.arrays import Array, working_array
from convcalc.compute.op_gradients import (
    activation_backward,
    conv_backward,
    conv_backward_nd,
    conv_transpose_backward,
    conv_transpose_backward_nd,
    global_pool_backward,
    grad_shaped,
    pool_backward,
    pool_backward_nd,
    pool_winners,
)
from convcalc.compute.pipeline import Settings, Stage, as_data, kernel_bank, stage_bank
from convcalc.compute.pipeline import run as run_pipeline
from convcalc.compute.pointwise import SMOOTH
from convcalc.errors import ConvcalcError

__all__ = [
    "Backward",
    "LayerGradients",
    "activation_backward",
    "backward",
    "conv_backward",
    "conv_backward_nd",
    "conv_transpose_backward",
    "conv_transpose_backward_nd",
    "global_pool_backward",
    "kernel_gradients",
    "pool_backward",
    "pool_backward_nd",
    "pool_winners",
]


@dataclass(frozen=True)
class LayerGradients:
    """The gradients of one weighted stage: one kernel gradient per filter, in the
    filter's own shape (KHxKW or KHxKWxC; K or KxC, KDxKHxKW or KDxKHxKWxC at rank 1
    and 3), and dL/db per filter when it has a bias."""

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
    x : array, HxWxC (or HxW); at ``settings.rank`` 1 L x C (or L), at 3 DxHxWxC (or DxHxW)
    stages : the pipeline, as `convcalc.compute.pipeline.run` takes it
    settings : Settings, optional
        The defaults when not given.
    grad_output : array, Ho x Wo x F (or Ho x Wo for one channel), optional
        dL/dY of the last stage's output (its shape at every rank); all ones (L = the
        sum of the output) when not given.

    Returns
    -------
    Backward
        ``grad_input`` has the input's shape with its channels: HxWxC, L x C, DxHxWxC.

    Raises
    ------
    ConvcalcError
        A ``grad_output`` of another shape than the output, a stage whose
        gradient is not computed (l2 pooling, lrn), or anything `run` refuses.
    """
    settings = Settings() if settings is None else settings
    xa = working_array(as_data(x, settings.rank))
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


def kernel_gradients(
    kernels: Sequence[Array],
    grad_bank: Array,
    channels: int,
    mode: ChannelMode,
    rank: int = 2,
    groups: int = 1,
) -> tuple[Array, ...]:
    """Per filter, its gradient in the filter's own shape, from the gradient of the bank
    `convcalc.compute.pipeline.kernel_bank` stacked from it (at ``rank`` 1 or 3, the
    bank's first one or three axes are the kernel's; ``groups`` as there).

    A filter used on several channels (a kernel without a channel axis with ``each``,
    or repeated with ``sum``) gathers the sum over the channels it was used on; a
    filter of a grouped layer is its own slice of the bank.
    """
    each = kernel_bank(kernels, channels, mode, rank, groups)[2]
    count, depth = len(kernels), grad_bank.shape[rank]
    found = []
    for f, k in enumerate(kernels):
        if each:
            grad = grad_bank[..., 0, f::count].sum(axis=-1)
        elif groups != 1 or (k.ndim == rank + 1 and k.shape[rank] == depth):
            grad = grad_bank[..., f]
        else:
            grad = grad_bank[..., f].sum(axis=-1)
        found.append(np.ascontiguousarray(grad.reshape(k.shape)))
    return tuple(found)


# -- stages ----------------------------------------------------------------

_StepFn = Callable[[Any, Array, Array, Array, Stage, Settings], tuple[Array, LayerGradients | None]]


def _conv_step(
    layer: Conv, x: Array, y: Array, g: Array, stage: Stage, settings: Settings
) -> tuple[Array, LayerGradients]:
    rank, channels = settings.rank, x.shape[-1]
    bank, groups, each = stage_bank(stage, channels, settings)
    bank = _flipped(bank, settings)
    g = _channel_major(activation_backward(y, g, stage.activation), channels, each)
    gx, gw = conv_backward_nd(
        x,
        bank,
        g,
        stride=per_axis(layer.stride, rank, "stride"),
        padding=per_axis(layer.padding, rank, "padding"),
        dilation=per_axis(layer.dilation, rank, "dilation"),
        groups=groups,
        pad_mode=settings.pad_mode,
        convention=settings.convention,
    )
    grads = kernel_gradients(
        stage.kernels, _flipped(gw, settings), channels, settings.channels, rank, layer.groups
    )
    return gx, LayerGradients(grads, _bias_grad(stage, g, channels, each))


def _deconv_step(
    layer: Deconv, x: Array, y: Array, g: Array, stage: Stage, settings: Settings
) -> tuple[Array, LayerGradients]:
    rank, channels = settings.rank, x.shape[-1]
    bank, groups, each = stage_bank(stage, channels, settings)
    kernel = bank.shape[:rank]
    if each:  # as the forward: grouped transposed weights are (*K) x C x (F/groups)
        bank = bank[..., 0, :].reshape(*kernel, channels, -1)
    g = _channel_major(activation_backward(y, g, stage.activation), channels, each)
    gx, gw = conv_transpose_backward_nd(
        x,
        _flipped(bank, settings),
        g,
        stride=per_axis(layer.stride, rank, "stride"),
        padding=per_axis(layer.padding, rank, "padding"),
        dilation=per_axis(layer.dilation, rank, "dilation"),
        output_padding=per_axis(layer.output_padding, rank, "output_padding"),
        groups=groups,
    )
    gw = _flipped(gw, settings)
    if each:
        gw = gw.reshape(*kernel, 1, -1)
    grads = kernel_gradients(stage.kernels, gw, channels, settings.channels, rank)
    return gx, LayerGradients(grads, _bias_grad(stage, g, channels, each))


def _pool_step(
    layer: Pool, x: Array, y: Array, g: Array, stage: Stage, settings: Settings
) -> tuple[Array, None]:
    rank = settings.rank
    gx = pool_backward_nd(
        x,
        layer.kind,
        per_axis(layer.kernel, rank, "kernel"),
        g,
        stride=None if layer.stride is None else per_axis(layer.stride, rank, "stride"),
        padding=per_axis(layer.padding, rank, "padding"),
        dilation=per_axis(layer.dilation, rank, "dilation"),
        ceil=layer.ceil,
        exclude_pad=settings.exclude_pad,
        convention=settings.convention,
    )
    return gx, None


def _global_step(
    layer: GlobalPool, x: Array, y: Array, g: Array, stage: Stage, settings: Settings
) -> tuple[Array, None]:
    return global_pool_backward(x, layer.kind, g, rank=settings.rank), None


def _pointwise_step(
    layer: Pointwise, x: Array, y: Array, g: Array, stage: Stage, settings: Settings
) -> tuple[Array, None]:
    name = layer.name
    if name == "dropout":  # apply runs it as at inference: the identity
        return g, None
    if name == "softmax":
        return y * (g - (g * y).sum(axis=-1, keepdims=True)), None
    if name == "relu6":
        return np.where((y > 0) & (y < 6), g, 0), None
    if name in SMOOTH:
        return g * SMOOTH[name].slope(x.astype(y.dtype, copy=False)), None
    if name not in set(Activation) - {Activation.NONE}:
        raise ConvcalcError(
            f"the gradient of '{name}' is not computed; valid: relu, relu6, lrelu, sigmoid, "
            f"tanh, softmax, dropout, {', '.join(SMOOTH)}"
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
    return grad_shaped(grad_output, y.shape, y.dtype)


def _flipped(bank: Array, settings: Settings) -> Array:
    """The bank rotated 180° over its spatial axes with --flip (itself otherwise)."""
    return bank[(slice(None, None, -1),) * settings.rank] if settings.flip else bank


def _channel_major(g: Array, channels: int, each: bool) -> Array:
    """Undo `convcalc.compute.pipeline.filter_major`: filter by filter (f·C + c) back to
    channel by channel (c·F + f), the order the bank computes in."""
    if not each:
        return g
    *spatial, total = g.shape
    major: Array = np.swapaxes(g.reshape(*spatial, total // channels, channels), -1, -2)
    return major.reshape(*spatial, total)


def _bias_grad(stage: Stage, g: Array, channels: int, each: bool) -> tuple[float, ...] | None:
    """dL/db per filter: the sum of dL/dY over its output (over every channel with each)."""
    if stage.bias is None:
        return None
    sums = g.reshape(-1, g.shape[-1]).sum(axis=0, dtype=np.float64)
    if each:
        sums = sums.reshape(channels, -1).sum(axis=0)
    return tuple(float(v) for v in sums)
