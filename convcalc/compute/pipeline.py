"""What `convcalc apply` runs: a list of stages (convolution, pooling, activation …)
applied in order to an HxWxC array (or, at rank 1, an L x C signal; at rank 3, a
DxHxWxC volume: `Settings.rank`).

The option form (``-k sobel-x -s 2``) is the one-stage case of the same pipeline
as the layer-spec form (``conv:k=sobel-x,s=2 relu maxpool:2``).

Channels: a kernel whose depth equals the input's channel count sums over the
channels (a CNN layer: one output channel per filter). A 2-D kernel on a
C-channel input filters each channel (``each``: C output channels per filter,
filter by filter) or sums over them (``sum``: one per filter). A grouped layer
(``conv:k=…,g=G``, ``--groups G``) follows PyTorch: filter f sees the C/G channels
of its group f // (F/G) (`grouped_bank`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from convcalc.calc.choices import Activation, ChannelMode, Convention, Method, PadMode
from convcalc.calc.layers import Conv, Deconv, GlobalPool, Layer, Pointwise, Pool, Spec
from convcalc.calc.network import per_axis, two_axes
from convcalc.compute import ops
from convcalc.compute.arrays import saturated, sum_is_finite, working_dtype
from convcalc.compute.memory import estimate_bytes as estimate_bytes  # apply's estimate
from convcalc.compute.pointwise import SMOOTH
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
    rank: int = 2  # spatial axes: 1 (L x C signals), 2 (HxWxC images), 3 (DxHxWxC volumes)


@dataclass(frozen=True)
class Stage:
    """One layer to apply, with its kernels' values (KHxKW or KHxKWxC; at rank 1 K or
    KxC, at rank 3 KDxKHxKW or KDxKHxKWxC) when it has any."""

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

    At ``settings.rank`` 1 the input is L x C (or L) and the result Lo x F; at
    rank 3, DxHxWxC (or DxHxW) and Do x Ho x Wo x F.

    Integer input computes in float64, float32 and 8-bit input in float32. An
    integer ``out_dtype`` returns the result rounded and saturated to that type
    (OpenCV's ``saturate_cast``), made strip by strip when the last stage is a
    convolution (see `convcalc.compute.ops.correlate`); `stays_8bit` says when uint8
    loses nothing an 8-bit image would keep.
    """
    check_stages(stages, settings.rank)
    notes: list[str] = []
    x = as_data(x, settings.rank)
    with quiet_overflow():
        for position, stage in enumerate(stages, start=1):
            last = out_dtype if position == len(stages) else None
            try:
                x = _apply(x, stage, settings, notes, last)
            except ConvcalcError as exc:
                raise in_layer(exc, position, stage, len(stages)) from None
        if out_dtype is not None and x.dtype != out_dtype:
            x = saturated(x, out_dtype)  # x may be the input itself (dropout): not overwritten
    missing = not_finite(x)
    if missing:
        notes.append(not_finite_note(missing, x.size))
    return Outcome(x, tuple(notes))


def as_data(x: ArrayLike, rank: int) -> Array:
    """The input of a run as (*N) x C, its dtype kept: HxWxC, L x C or DxHxWxC; a map
    without channels (HxW, L, DxHxW) gains one.

    Raises
    ------
    ConvcalcError
        An array with neither ``rank`` nor ``rank + 1`` axes.
    """
    xa = np.asarray(x)
    xa = xa[..., None] if xa.ndim == rank else xa
    if xa.ndim != rank + 1:
        raise ConvcalcError(
            f"an input of shape {'x'.join(map(str, xa.shape))} is not {rank}-D data; "
            f"valid: {_DATA_SHAPES.get(rank, 'HxW or HxWxC')}"
        )
    return xa


def in_layer(exc: ConvcalcError, position: int, stage: Stage, count: int) -> ConvcalcError:
    """``exc`` as `run` raises it: naming the layer (number and spec) when there are several."""
    prefix = f"layer {position} ({stage.spec.text}): " if count > 1 else ""
    return ConvcalcError(f"{prefix}{exc}", exc.hint)


def not_finite(x: Array) -> int:
    """How many values of ``x`` are infinite or NaN (none in an integer array)."""
    if sum_is_finite(x):  # one pass without a full-size temporary
        return 0
    return int(x.size - np.count_nonzero(np.isfinite(x)))


def not_finite_note(missing: int, size: int) -> str:
    """The note `run` adds when ``missing`` of the ``size`` output values are not finite."""
    return (
        f"{missing:,} of {size:,} output values {'is' if missing == 1 else 'are'} not finite "
        "(an overflow, or infinity or NaN in the input)"
    )


def conv_method(x: Array, stage: Stage, settings: Settings) -> Method:
    """The method a 2-D convolution stage runs on the HxWxC ``x``: ``settings.method``, or
    the one auto picks for x's shape and dtype (`convcalc.compute.ops.auto_method`)."""
    if settings.method != Method.AUTO:
        return settings.method
    layer = stage.spec.layer
    assert isinstance(layer, Conv)
    bank, groups, _ = stage_bank(stage, x.shape[2], settings)
    return ops.auto_method(
        x,
        bank,
        stride=two_axes(layer.stride, "stride"),
        padding=two_axes(layer.padding, "padding"),
        dilation=two_axes(layer.dilation, "dilation"),
        groups=groups,
        convention=settings.convention,
    )


def method_note(stage: Stage, method: Method) -> str:
    """The note (shown under -v) naming the method auto picked for a convolution stage."""
    return f"{stage.spec.text}: method {method} (auto)"


def check_stages(stages: Sequence[Stage], rank: int = 2) -> None:
    """Refuse, before any work, a stage apply cannot run as written at ``rank``.

    Every ranked layer (conv1d, deconv3d, maxpool1d …) must have the run's rank: a
    conv1d in a 2-D run would otherwise run as a 2-D layer on the same numbers, a
    silently wrong answer.
    """
    if rank not in _DATA_SHAPES:
        raise ConvcalcError(f"rank {rank} is not valid; valid: 1, 2 or 3")
    for position, stage in enumerate(stages, start=1):
        layer = stage.spec.layer
        where = f"layer {position} ({stage.spec.text})" if len(stages) > 1 else stage.spec.text
        fixed = layer_rank(layer)
        if fixed is not None and fixed != rank:
            raise ConvcalcError(
                f"{where} is a {fixed}-D layer in a {rank}-D run; valid: layers of one rank "
                f"({_RANKED_OPS[rank]})"
            )


def layer_rank(layer: Layer) -> int | None:
    """The rank a layer fixes (conv1d: 1, conv: 2, maxpool3d: 3), or None (maxpool:2,
    relu, gap take the run's)."""
    if isinstance(layer, Conv | Deconv):
        return layer.rank
    if isinstance(layer, Pool):
        return layer.rank
    return None


def stages_rank(stages: Sequence[Stage]) -> int | None:
    """The rank the stages fix: that of the first layer with one, or None."""
    return next((r for r in map(layer_rank, (s.spec.layer for s in stages)) if r), None)


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
    if x.dtype != np.uint8 or len(stages) != 1 or settings.rank != 2:
        return False
    stage = stages[0]
    if (
        not isinstance(stage.spec.layer, Conv)
        or stage.bias is not None
        or (stage.activation != Activation.NONE)
        or not stage.kernels
    ):
        return False
    bank = stage_bank(stage, x.shape[2], settings)[0]
    return float(bank.min()) >= 0 and float(bank.sum(axis=(0, 1, 2)).max()) <= 1 + _SUM_SLACK


_SUM_SLACK = 1e-6
"""Kernels like gauss5 (weights/256) sum to 1 up to rounding."""


def stage_bank(stage: Stage, channels: int, settings: Settings) -> tuple[Array, int, bool]:
    """`kernel_bank` of a (transposed) convolution stage on C = ``channels`` input channels,
    at the run's rank and with the layer's ``g=`` (refused on a transposed layer,
    `refuse_groups`)."""
    layer = stage.spec.layer
    assert isinstance(layer, Conv | Deconv)
    refuse_groups(layer)
    return kernel_bank(stage.kernels, channels, settings.channels, settings.rank, layer.groups)


def kernel_bank(
    kernels: Sequence[Array], channels: int, mode: ChannelMode, rank: int = 2, groups: int = 1
) -> tuple[Array, int, bool]:
    """Stack filters into a KH x KW x (C/groups) x F' bank for C input channels.

    At ``rank`` 1 the kernels are K or KxC and the bank K x (C/groups) x F'; at
    rank 3, KDxKHxKW(xC) and KDxKHxKW x (C/groups) x F'.

    ``groups`` > 1 is a grouped layer (``g=``, PyTorch's rule, see `grouped_bank`):
    the F filters, each C/groups deep, are the bank as given and ``mode`` is not used.

    Returns the bank, the groups, and whether the output is per channel (``each``:
    output channel ``c·F + f`` is filter f on channel c).
    """
    if not kernels:
        raise ConvcalcError("no kernel given; use -k PRESET|MATRIX|FILE or conv:k=...")
    shapes = {k.shape[:rank] for k in kernels}
    if len(shapes) > 1:
        shown = " and ".join("x".join(map(str, s)) for s in sorted(shapes))
        raise ConvcalcError(f"all kernels of a layer must have the same size; got {shown}")
    window = _KERNEL_SHAPES[rank]
    bad = [k.shape for k in kernels if k.ndim not in (rank, rank + 1)]
    if bad:
        raise ConvcalcError(
            f"a kernel of shape {'x'.join(map(str, bad[0]))} does not fit a {rank}-D layer; "
            f"valid: {window} or {window}xC"
        )
    if groups != 1:
        return grouped_bank(kernels, channels, groups, rank), groups, False
    depths = {1 if k.ndim == rank else k.shape[rank] for k in kernels}
    if len({k.ndim for k in kernels}) > 1 and channels > 1:
        raise ConvcalcError(
            f"a layer mixes {rank}-D kernels with kernels of depth "
            f"{max(depths)}; valid: all {window}, or all {window}x{channels}"
        )
    for depth in depths - {1}:
        if depth != channels:
            raise ConvcalcError(
                f"a kernel of depth {depth} does not match the input's {channels} channels; "
                f"valid: depth {channels} (summed, as in a CNN) or a {window} kernel"
            )
    planes = [k if k.ndim == rank + 1 else k[..., None] for k in kernels]
    if depths == {channels} or channels == 1:
        bank = np.stack(
            [np.broadcast_to(p, (*p.shape[:rank], channels)) for p in planes], axis=rank + 1
        )
        return bank, 1, False
    if mode == ChannelMode.SUM:
        bank = np.stack([np.repeat(p, channels, axis=rank) for p in planes], axis=rank + 1)
        return bank, 1, False
    flat = np.stack([p[..., 0] for p in planes], axis=rank)  # (*K) x F
    return np.tile(flat, (1,) * rank + (channels,))[..., None, :], channels, True


def grouped_bank(kernels: Sequence[Array], channels: int, groups: int, rank: int = 2) -> Array:
    """The (*K) x (C/groups) x F bank of a grouped layer (``g=groups``) on C channels.

    PyTorch's rule (``nn.Conv2d(groups=G)``): the C input channels and the F filters
    are split into ``groups`` equal groups in order; filter f belongs to group
    ``g = f // (F/groups)`` and sees input channels ``g·C/groups`` to
    ``(g+1)·C/groups - 1`` (`group_channels`), so every filter is C/groups deep (a
    filter one channel deep may be written without its channel axis).

    Raises
    ------
    ConvcalcError
        ``groups`` not dividing C or F, or a filter of another depth.
    """
    count, window = len(kernels), _KERNEL_SHAPES[rank]
    if groups < 1 or channels % groups:
        divisors = ", ".join(str(d) for d in range(1, channels + 1) if channels % d == 0)
        raise ConvcalcError(
            f"g={groups} does not divide the input's {channels} channel"
            f"{'' if channels == 1 else 's'}; valid: g= one of {divisors}"
        )
    if count % groups:
        raise ConvcalcError(
            f"g={groups} needs a filter count divisible by {groups} (filter f is in group "
            f"f // (F/{groups})); got {count} filter{'' if count == 1 else 's'}: give "
            f"{groups}, {2 * groups} … kernels (-k once per filter with --groups {groups}, "
            f"or k= once per filter in a layer spec: conv:k=A,k=B,g={groups})"
        )
    depth = channels // groups
    for k in kernels:
        got = 1 if k.ndim == rank else k.shape[rank]
        if got != depth:
            raise ConvcalcError(
                f"a kernel of depth {got} does not fit g={groups} on {channels} channels: "
                f"each filter sees {depth}; valid: {window}x{depth} kernels"
                + (f" (or {window})" if depth == 1 else "")
            )
    return np.stack([k if k.ndim == rank + 1 else k[..., None] for k in kernels], axis=rank + 1)


def filter_group(f: int, filters: int, groups: int) -> int:
    """The group filter ``f`` of ``filters`` belongs to in a layer of ``groups`` groups:
    ``f // (F/groups)`` (PyTorch's rule)."""
    return f // (filters // groups)


def group_channels(f: int, filters: int, channels: int, groups: int) -> range:
    """The input channels filter ``f`` of a layer of ``filters`` filters in ``groups``
    groups sees on C = ``channels`` (all of them when ``groups`` is 1).

    Examples
    --------
    >>> group_channels(3, 4, 4, 2)
    range(2, 4)
    """
    group, depth = filter_group(f, filters, groups), channels // groups
    return range(group * depth, (group + 1) * depth)


def group_text(f: int, filters: int, channels: int, groups: int) -> str:
    """``sees channels 2-3 (group 1)``: which input channels filter ``f`` of a grouped
    layer reads, as steps and animation captions name them."""
    seen = group_channels(f, filters, channels, groups)
    span = str(seen[0]) if len(seen) == 1 else f"{seen[0]}-{seen[-1]}"
    word = "channel" if len(seen) == 1 else "channels"
    return f"sees {word} {span} (group {filter_group(f, filters, groups)})"


def filter_major(y: Array, channels: int) -> Array:
    """Reorder per-channel outputs (c·F + f) to filter by filter (f·C + c), any rank."""
    *spatial, total = y.shape
    filters = total // channels
    reordered: Array = y.reshape(*spatial, channels, filters).swapaxes(-1, -2)
    return reordered.reshape(*spatial, total)


def refuse_groups(layer: Conv | Deconv) -> None:
    """Refuse a transposed convolution written with ``g=``: apply runs grouped
    convolutions (``conv:k=…,g=G``, `grouped_bank`), not grouped transposed ones."""
    if isinstance(layer, Deconv) and layer.groups != 1:
        raise ConvcalcError(
            f"g={layer.groups} on a transposed convolution is not run by apply; valid: g= on "
            "conv (grouped convolution), or a deconv without g= (--channels each filters "
            "channel by channel)"
        )


def check_bias(stage: Stage) -> None:
    """Refuse a stage whose bias does not give one value per filter (kernel)."""
    if stage.bias is not None and len(stage.bias) != len(stage.kernels):
        raise ConvcalcError(
            f"--bias has {len(stage.bias)} values for {len(stage.kernels)} filters; "
            "give one per filter"
        )


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
    apply = (_STAGES if settings.rank == 2 else _RANKED_STAGES).get(type(layer))
    if apply is None:
        raise ConvcalcError(
            f"'{stage.spec.text}' cannot be applied to an image; valid in apply: conv:k=…, "
            "deconv:k=…, maxpool/avgpool/l2pool, gap, gmp, relu, relu6, lrelu, sigmoid, "
            "tanh, softmax, gelu, silu, hardswish, hsigmoid, identity, dropout"
        )
    return apply(layer, x, stage, _Context(settings, notes, out_dtype))


def _convolve(layer: Conv, x: Array, stage: Stage, ctx: _Context) -> Array:
    settings, channels = ctx.settings, x.shape[2]
    bank, groups, each = stage_bank(stage, channels, settings)
    stride, dilation = two_axes(layer.stride, "stride"), two_axes(layer.dilation, "dilation")
    padding = two_axes(layer.padding, "padding")
    method = conv_method(x, stage, settings)
    if settings.method == Method.AUTO:  # chosen here, to be told under -v
        ctx.notes.append(method_note(stage, method))
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
    """A transposed convolution at any rank (the bank's first ``rank`` axes are the kernel's)."""
    rank, channels = ctx.settings.rank, x.shape[-1]
    bank, groups, each = stage_bank(stage, channels, ctx.settings)
    if each:  # grouped transposed weights are (*K) x C x (F/groups)
        bank = bank[..., 0, :].reshape(*bank.shape[:rank], channels, -1)
    if ctx.settings.flip:
        bank = bank[(slice(None, None, -1),) * rank]
    y = ops.conv_transpose_nd(
        x,
        bank,
        stride=per_axis(layer.stride, rank, "stride"),
        padding=per_axis(layer.padding, rank, "padding"),
        dilation=per_axis(layer.dilation, rank, "dilation"),
        output_padding=per_axis(layer.output_padding, rank, "output_padding"),
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
        shifted = np.exp(x - x.max(axis=-1, keepdims=True))
        result: Array = shifted / shifted.sum(axis=-1, keepdims=True)
        return result
    if name in SMOOTH:
        return SMOOTH[name].value(x.astype(working_dtype(x.dtype), copy=False))
    if name == "relu6":
        return np.clip(ops.activate(x, Activation.RELU), None, 6)
    return ops.activate(x, Activation(name))


def _convolve_ranked(layer: Conv, x: Array, stage: Stage, ctx: _Context) -> Array:
    settings, channels, rank = ctx.settings, x.shape[-1], ctx.settings.rank
    bank, groups, each = stage_bank(stage, channels, settings)
    if settings.method not in (Method.AUTO, Method.DIRECT):
        raise ConvcalcError(
            f"--method {settings.method} computes 2-D layers; a {rank}-D layer runs the direct "
            "method: valid --method auto or direct"
        )
    y = ops.correlate_nd(
        x,
        bank,
        stride=per_axis(layer.stride, rank, "stride"),
        padding=per_axis(layer.padding, rank, "padding"),
        dilation=per_axis(layer.dilation, rank, "dilation"),
        pad_mode=settings.pad_mode,
        groups=groups,
        bias=_bias(stage, each, channels),
        flip=settings.flip,
        activation=stage.activation,
        convention=settings.convention,
    )
    return filter_major(y, channels) if each else y


def _pool_ranked(layer: Pool, x: Array, stage: Stage, ctx: _Context) -> Array:
    rank = ctx.settings.rank
    return ops.pool_nd(
        x,
        layer.kind,
        per_axis(layer.kernel, rank, "kernel"),
        stride=None if layer.stride is None else per_axis(layer.stride, rank, "stride"),
        padding=per_axis(layer.padding, rank, "padding"),
        dilation=per_axis(layer.dilation, rank, "dilation"),
        ceil=layer.ceil,
        exclude_pad=ctx.settings.exclude_pad,
        convention=ctx.settings.convention,
    )


def _global_pool_ranked(layer: GlobalPool, x: Array, stage: Stage, ctx: _Context) -> Array:
    return ops.global_pool(x, layer.kind, rank=ctx.settings.rank)


_STAGES: dict[type, _StageFn] = {
    Conv: _convolve,
    Deconv: _transpose,
    Pool: _pool,
    GlobalPool: _global_pool,
    Pointwise: _pointwise,
}
"""What apply runs for each kind of layer; any other kind is refused."""

_RANKED_STAGES: dict[type, _StageFn] = {
    Conv: _convolve_ranked,
    Deconv: _transpose,
    Pool: _pool_ranked,
    GlobalPool: _global_pool_ranked,
    Pointwise: _pointwise,
}
"""What apply runs at rank 1 (L x C signals) and 3 (DxHxWxC volumes)."""

_DATA_SHAPES = {1: "L or LxC", 2: "HxW or HxWxC", 3: "DxHxW or DxHxWxC"}
"""The input a run of each rank takes (channels last)."""

_KERNEL_SHAPES = {1: "K", 2: "KHxKW", 3: "KDxKHxKW"}
"""A kernel's spatial shape at each rank."""

_RANKED_OPS = {
    1: "conv1d, deconv1d, maxpool1d, avgpool1d, maxpool, avgpool",
    2: "conv, deconv, maxpool, avgpool, l2pool",
    3: "conv3d, deconv3d, maxpool3d, avgpool3d, maxpool, avgpool",
}
"""The window layers apply runs at each rank, for messages."""


# -- helpers ---------------------------------------------------------------


def _refuse(name: str) -> Array:
    raise ConvcalcError(f"'{name}' has learned or batch statistics; apply cannot run it")


def _bias(stage: Stage, each: bool, channels: int) -> list[float] | None:
    check_bias(stage)
    if stage.bias is None:
        return None
    # per-channel outputs come channel by channel (c·F + f) until filter_major reorders them
    return list(stage.bias) * channels if each else list(stage.bias)
