"""What `convcalc apply` runs: a list of stages (convolution, pooling, activation …)
applied in order to an HxWxC array.

The option form (``-k sobel-x -s 2``) is the one-stage case of the same pipeline
as the layer-spec form (``conv:k=sobel-x,s=2 relu maxpool:2``).

Channels: a kernel whose depth equals the input's channel count sums over the
channels (a CNN layer: one output channel per filter). A 2-D kernel on a
C-channel input filters each channel (``each``: C output channels per filter,
filter by filter) or sums over them (``sum``: one per filter).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import DTypeLike, NDArray

from convcalc.calc.choices import Activation, ChannelMode, Convention, Method, PadMode
from convcalc.calc.layers import Conv, Deconv, GlobalPool, Layer, Pointwise, Pool, Spec
from convcalc.calc.network import two_axes
from convcalc.compute import ops
from convcalc.compute.arrays import saturated
from convcalc.errors import ConvcalcError

Array = NDArray[Any]


@dataclass(frozen=True)
class Settings:
    """How every stage of an apply run computes (the options that are not per layer)."""

    pad_mode: PadMode = PadMode.ZERO
    method: Method = Method.AUTO
    channels: ChannelMode = ChannelMode.EACH
    flip: bool = False
    exclude_pad: bool = False
    convention: Convention = Convention.TORCH


@dataclass(frozen=True)
class Stage:
    """One layer to apply, with its kernels' values (KHxKW or KHxKWxC) when it has any."""

    spec: Spec
    kernels: tuple[Array, ...] = ()
    bias: tuple[float, ...] | None = None
    activation: Activation = Activation.NONE


@dataclass(frozen=True)
class Outcome:
    """The result of a run: the HxWxC output and what is worth telling about it."""

    output: Array
    notes: tuple[str, ...] = field(default=())


def run(
    x: Array,
    stages: Sequence[Stage],
    settings: Settings = Settings(),
    *,
    out_dtype: DTypeLike | None = None,
) -> Outcome:
    """Apply the stages in order to an HxWxC array; returns Ho x Wo x F.

    Integer input computes in float64, float32 and 8-bit input in float32. An
    integer ``out_dtype`` returns the result rounded and saturated to that type
    (OpenCV's ``saturate_cast``), made strip by strip when the last stage is a
    convolution (see `convcalc.compute.ops.correlate`); `stays_8bit` says when uint8
    loses nothing an 8-bit image would keep.
    """
    check_stages(stages)
    notes: list[str] = []
    x = x[:, :, None] if x.ndim == 2 else x
    with quiet_overflow():
        for position, stage in enumerate(stages, start=1):
            last = out_dtype if position == len(stages) else None
            try:
                x = _apply(x, stage, settings, notes, last)
            except ConvcalcError as exc:
                prefix = f"layer {position} ({stage.spec.text}): " if len(stages) > 1 else ""
                raise ConvcalcError(f"{prefix}{exc}", exc.hint) from None
        if out_dtype is not None and x.dtype != out_dtype:
            x = saturated(x, out_dtype)  # x may be the input itself (dropout): not overwritten
    missing = _not_finite(x)
    if missing:
        notes.append(
            f"{missing:,} of {x.size:,} output values {'is' if missing == 1 else 'are'} not finite "
            "(an overflow, or infinity or NaN in the input)"
        )
    return Outcome(x, tuple(notes))


def check_stages(stages: Sequence[Stage]) -> None:
    """Refuse, before any work, a stage apply cannot run as written.

    Apply computes 2-D layers: a 1-D or 3-D (transposed) convolution would
    otherwise run as a 2-D one on the same numbers, a silently wrong answer.
    """
    for position, stage in enumerate(stages, start=1):
        layer = stage.spec.layer
        rank = getattr(layer, "rank", 2)
        if rank != 2:
            where = f"layer {position} ({stage.spec.text})" if len(stages) > 1 else stage.spec.text
            raise ConvcalcError(
                f"{where} is a {rank}-D layer: apply runs 2-D layers; conv1d/conv3d are "
                "sized by `convcalc shape` but not applied yet"
            )


@contextmanager
def quiet_overflow() -> Iterator[None]:
    """Let arithmetic overflow to infinity (and infinity make NaN) without warnings.

    Such values are counted and reported (`run`'s notes, JSON nulls) rather than
    warned about from deep inside numpy. The warnings filter also covers the
    worker threads of the direct method, which `numpy.errstate` (a context
    variable) does not reach.
    """
    with np.errstate(over="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", _OVERFLOW_WARNINGS, RuntimeWarning)
        yield


_OVERFLOW_WARNINGS = r"(overflow|invalid value) encountered"
"""numpy's warnings for a result that overflowed or became NaN."""


def stays_8bit(x: Array, stages: Sequence[Stage], settings: Settings) -> bool:
    """True when the stages turn the 8-bit HxWxC ``x`` into values within 0-255.

    That holds for one convolution without bias or activation whose every
    filter has no negative weight and weights summing to at most 1 over the
    channels it reads (a blur: box, Gaussian, motion), whatever the padding.
    The result is then what an 8-bit image stores, clipped or not.
    """
    if x.dtype != np.uint8 or len(stages) != 1:
        return False
    stage = stages[0]
    if (
        not isinstance(stage.spec.layer, Conv)
        or stage.bias is not None
        or (stage.activation != Activation.NONE)
        or not stage.kernels
    ):
        return False
    bank = kernel_bank(stage.kernels, x.shape[2], settings.channels)[0]
    return float(bank.min()) >= 0 and float(bank.sum(axis=(0, 1, 2)).max()) <= 1 + _SUM_SLACK


_SUM_SLACK = 1e-6
"""Kernels like gauss5 (weights/256) sum to 1 up to rounding."""


def kernel_bank(
    kernels: Sequence[Array], channels: int, mode: ChannelMode
) -> tuple[Array, int, bool]:
    """Stack filters into a KH x KW x (C/groups) x F' bank for C input channels.

    Returns the bank, the groups, and whether the output is per channel (``each``:
    output channel ``c·F + f`` is filter f on channel c).
    """
    if not kernels:
        raise ConvcalcError("no kernel given; use -k PRESET|MATRIX|FILE or conv:k=...")
    shapes = {k.shape[:2] for k in kernels}
    if len(shapes) > 1:
        shown = " and ".join("x".join(map(str, s)) for s in sorted(shapes))
        raise ConvcalcError(f"all kernels of a layer must have the same size; got {shown}")
    depths = {1 if k.ndim == 2 else k.shape[2] for k in kernels}
    if len({k.ndim for k in kernels}) > 1 and channels > 1:
        raise ConvcalcError(
            "a layer mixes 2-D kernels with kernels of depth "
            f"{max(depths)}; valid: all KHxKW, or all KHxKWx{channels}"
        )
    for depth in depths - {1}:
        if depth != channels:
            raise ConvcalcError(
                f"a kernel of depth {depth} does not match the input's {channels} channels; "
                f"valid: depth {channels} (summed, as in a CNN) or a 2-D kernel"
            )
    planes = [k if k.ndim == 3 else k[:, :, None] for k in kernels]
    if depths == {channels} or channels == 1:
        bank = np.stack([np.broadcast_to(p, (*p.shape[:2], channels)) for p in planes], axis=3)
        return bank, 1, False
    if mode == ChannelMode.SUM:
        bank = np.stack([np.repeat(p, channels, axis=2) for p in planes], axis=3)
        return bank, 1, False
    flat = np.stack([p[:, :, 0] for p in planes], axis=2)  # KH x KW x F
    return np.tile(flat, (1, 1, channels))[:, :, None, :], channels, True


def filter_major(y: Array, channels: int) -> Array:
    """Reorder per-channel outputs (c·F + f) to filter by filter (f·C + c)."""
    h, w, total = y.shape
    filters = total // channels
    reordered: Array = y.reshape(h, w, channels, filters).transpose(0, 1, 3, 2)
    return reordered.reshape(h, w, total)


def refuse_groups(layer: Conv | Deconv) -> None:
    """Refuse a (transposed) convolution layer written with ``g=``.

    Apply takes its grouping from the kernels' depth and ``--channels`` (see
    `kernel_bank`), so a ``g=`` there would say something the run does not do.
    """
    if layer.groups != 1:
        raise ConvcalcError("g= is not used by apply; --channels each filters channel by channel")


def check_bias(stage: Stage) -> None:
    """Refuse a stage whose bias does not give one value per filter (kernel)."""
    if stage.bias is not None and len(stage.bias) != len(stage.kernels):
        raise ConvcalcError(
            f"--bias has {len(stage.bias)} values for {len(stage.kernels)} filters; "
            "give one per filter"
        )


def estimate_bytes(
    shape: tuple[int, ...], stages: Sequence[Stage], settings: Settings, itemsize: int
) -> int:
    """Peak working memory, roughly, of running the stages on an HxWxC input.

    Per stage: the input, its padded copy and the output with an accumulator, in
    the compute dtype's ``itemsize``; the peak over stages.
    """
    h, w, c = shape
    peak = 0
    for stage in stages:
        layer = stage.spec.layer
        out_c = c
        if isinstance(layer, Conv | Deconv) and stage.kernels:
            per_input = (
                c if settings.channels == ChannelMode.EACH and stage.kernels[0].ndim == 2 else 1
            )
            out_c = len(stage.kernels) * per_input
        scale = 1
        if isinstance(layer, Deconv):
            scale = max(two_axes(layer.stride, "stride")) * 2
        pad = _padding_guess(layer)
        padded = (h + 2 * pad) * (w + 2 * pad) * c
        out = h * w * scale * scale * out_c
        peak = max(peak, (h * w * c + padded + 2 * out) * itemsize)
        if isinstance(layer, GlobalPool):
            h = w = 1
        elif isinstance(layer, Deconv):
            h, w = h * scale, w * scale
        c = out_c
    return peak


def _padding_guess(layer: Layer) -> int:
    padding = getattr(layer, "padding", (0,))
    counts = [p if isinstance(p, int) else max(p) if isinstance(p, tuple) else 0 for p in padding]
    kernel = getattr(layer, "kernel", None) or (1,)
    return max([*counts, max(kernel)])


# -- stages ----------------------------------------------------------------


class _Context(NamedTuple):
    settings: Settings
    notes: list[str]  # what run tells under -v, added to stage by stage
    out_dtype: DTypeLike | None  # set on the last stage: a convolution saturates per strip


_StageFn = Callable[[Any, Array, Stage, _Context], Array]


def _apply(
    x: Array, stage: Stage, settings: Settings, notes: list[str], out_dtype: DTypeLike | None
) -> Array:
    layer: Layer = stage.spec.layer
    apply = _STAGES.get(type(layer))
    if apply is None:
        raise ConvcalcError(
            f"'{stage.spec.text}' cannot be applied to an image; valid in apply: conv:k=…, "
            "deconv:k=…, maxpool/avgpool/l2pool, gap, gmp, relu, lrelu, sigmoid, tanh, softmax"
        )
    return apply(layer, x, stage, _Context(settings, notes, out_dtype))


def _convolve(layer: Conv, x: Array, stage: Stage, ctx: _Context) -> Array:
    refuse_groups(layer)
    settings, channels = ctx.settings, x.shape[2]
    bank, groups, each = kernel_bank(stage.kernels, channels, settings.channels)
    stride, dilation = two_axes(layer.stride, "stride"), two_axes(layer.dilation, "dilation")
    padding = two_axes(layer.padding, "padding")
    method = settings.method
    if method == Method.AUTO:  # chosen here, to be told under -v
        method = ops.auto_method(
            x,
            bank,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            convention=settings.convention,
        )
        ctx.notes.append(f"{stage.spec.text}: method {method} (auto)")
    y = ops.correlate(
        x,
        bank,
        stride=stride,
        padding=padding,
        dilation=dilation,
        pad_mode=settings.pad_mode,
        groups=groups,
        bias=_bias(stage, each, channels),
        flip=settings.flip,
        method=method,
        activation=stage.activation,
        convention=settings.convention,
        out_dtype=ctx.out_dtype,
    )
    return filter_major(y, channels) if each else y


def _transpose(layer: Deconv, x: Array, stage: Stage, ctx: _Context) -> Array:
    refuse_groups(layer)
    channels = x.shape[2]
    bank, groups, each = kernel_bank(stage.kernels, channels, ctx.settings.channels)
    if each:  # grouped transposed weights are KH x KW x C x (F/groups)
        bank = bank[:, :, 0, :].reshape(bank.shape[0], bank.shape[1], channels, -1)
    if ctx.settings.flip:
        bank = bank[::-1, ::-1]
    y = ops.conv_transpose(
        x,
        bank,
        stride=two_axes(layer.stride, "stride"),
        padding=two_axes(layer.padding, "padding"),
        dilation=two_axes(layer.dilation, "dilation"),
        output_padding=two_axes(layer.output_padding, "output_padding"),
        groups=groups,
        bias=_bias(stage, each, channels),
    )
    y = ops.activate(y, stage.activation)
    return filter_major(y, channels) if each else y


def _pool(layer: Pool, x: Array, stage: Stage, ctx: _Context) -> Array:
    return ops.pool(
        x,
        layer.kind,
        two_axes(layer.kernel, "kernel"),
        stride=None if layer.stride is None else two_axes(layer.stride, "stride"),
        padding=two_axes(layer.padding, "padding"),
        dilation=two_axes(layer.dilation, "dilation"),
        ceil=layer.ceil,
        exclude_pad=ctx.settings.exclude_pad,
        convention=ctx.settings.convention,
    )


def _global_pool(layer: GlobalPool, x: Array, stage: Stage, ctx: _Context) -> Array:
    return ops.global_pool(x, layer.kind)


def _pointwise(layer: Pointwise, x: Array, stage: Stage, ctx: _Context) -> Array:
    name = layer.name
    if name in {"dropout", "lrn"}:
        return x if name == "dropout" else _refuse(name)
    if name == "softmax":
        shifted = np.exp(x - x.max(axis=2, keepdims=True))
        result: Array = shifted / shifted.sum(axis=2, keepdims=True)
        return result
    if name == "relu6":
        return np.clip(ops.activate(x, Activation.RELU), None, 6)
    return ops.activate(x, Activation(name))


_STAGES: dict[type, _StageFn] = {
    Conv: _convolve,
    Deconv: _transpose,
    Pool: _pool,
    GlobalPool: _global_pool,
    Pointwise: _pointwise,
}
"""What apply runs for each kind of layer; any other kind is refused."""


# -- helpers ---------------------------------------------------------------


def _not_finite(x: Array) -> int:
    """How many values of ``x`` are infinite or NaN (none in an integer array)."""
    if x.dtype.kind not in "fc":
        return 0
    return int(x.size - np.count_nonzero(np.isfinite(x)))


def _refuse(name: str) -> Array:
    raise ConvcalcError(f"'{name}' has learned or batch statistics; apply cannot run it")


def _bias(stage: Stage, each: bool, channels: int) -> list[float] | None:
    check_bias(stage)
    if stage.bias is None:
        return None
    # per-channel outputs come channel by channel (c·F + f) until filter_major reorders them
    return list(stage.bias) * channels if each else list(stage.bias)
