"""One layer's step: its output shape, parameters, MACs and receptive field, from the
shape and field of its input.

Counting rules (they match torchvision's trainable parameters):

* convolution: ``KH·KW·(C_in/groups)·C_out`` weights + ``C_out`` biases;
  MACs ``H_out·W_out·C_out·KH·KW·C_in/groups`` (biases are not MACs);
* transposed convolution: the same weights; MACs count input positions,
  ``H_in·W_in·C_in·KH·KW·C_out/groups``;
* fully connected: ``N_in·N`` weights + ``N`` biases, ``N_in·N`` MACs;
* batch normalisation: ``2·C`` trainable parameters; its ``2·C`` running
  statistics are buffers, reported apart and never added to the parameters;
* pooling and pointwise layers hold no parameters and count no MACs.

Receptive field per axis, with s, p_lo and the dilated kernel span k of a layer
(size r, jump j, start = centre of the first output's field in input pixels):
``j' = j·s``, ``r' = r + (k-1)·j``, ``start' = start + ((k-1)/2 - p_lo)·j``.

Groups and blocks, which hold layers of their own, are evaluated as stacks
(`convcalc.calc.evaluation`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

from convcalc.calc.axes import axis_names, singular
from convcalc.calc.choices import Convention, Rounding
from convcalc.calc.geometry import Axis, Padding, conv_axis, pool_axis, transposed_axis
from convcalc.calc.layers import (
    AdaptivePool,
    BatchNorm,
    Conv,
    Deconv,
    Dense,
    DepthwiseConv,
    Flatten,
    GlobalPool,
    LayerNorm,
    Merge,
    Pad,
    Pointwise,
    Pool,
    Scale,
    Shape,
    Upsample,
)
from convcalc.calc.merging import UNTRACKED, ReceptiveField, centre_crop, merged_shape, union
from convcalc.calc.network import LayerResult, conv_fan_in, per_axis
from convcalc.errors import ConvcalcError


class Context(NamedTuple):
    """What every step reads besides its layer and its input."""

    convention: Convention
    strict: bool
    names: dict[str, tuple[Shape, ReceptiveField | None]]
    """The tensors named so far (``@NAME``): their shapes and receptive fields."""


Step = Callable[[Any, Shape, "ReceptiveField | None", Context], LayerResult]
"""A layer's step: the layer, its input's shape and receptive field, the context."""


def _conv(layer: Conv, shape: Shape, rf: ReceptiveField | None, ctx: Context) -> LayerResult:
    if layer.kernel is None:
        raise ConvcalcError("no kernel size: give one, as in conv:OUT,K")
    need_spatial(shape, layer.rank)
    out = shape.c if layer.out is None else layer.out
    _check_groups(shape.c, out, layer.groups)
    axes = _window_axes(layer, shape, ctx)
    output = Shape(tuple(ax.size for ax in axes), _out_channels(shape, layer.out))
    fan_in = conv_fan_in(_kernel(layer, shape), shape.c, layer.groups)
    params = fan_in * out + (out if layer.bias else 0)
    macs = math.prod(output.spatial) * out * fan_in
    return _result(output, params, macs, _window_field(rf, axes), axes, ctx)


def _depthwise(
    layer: DepthwiseConv, shape: Shape, rf: ReceptiveField | None, ctx: Context
) -> LayerResult:
    out = shape.c * layer.multiplier
    conv = Conv(
        out,
        layer.kernel,
        layer.stride,
        layer.padding,
        layer.dilation,
        shape.c,
        layer.bias,
        layer.rank,
    )
    return _conv(conv, shape, rf, ctx)


def _deconv(layer: Deconv, shape: Shape, rf: ReceptiveField | None, ctx: Context) -> LayerResult:
    if layer.kernel is None:
        raise ConvcalcError("no kernel size: give one, as in deconv:OUT,K")
    need_spatial(shape, layer.rank)
    out = shape.c if layer.out is None else layer.out
    _check_groups(shape.c, out, layer.groups)
    rank = len(shape.spatial)
    kernel = per_axis(layer.kernel, rank, "kernel")
    axes = tuple(
        transposed_axis(n, k, stride=s, padding=p, dilation=d, output_padding=op)
        for n, k, s, p, d, op in zip(
            shape.spatial,
            kernel,
            per_axis(layer.stride, rank, "stride"),
            per_axis(layer.padding, rank, "padding"),
            per_axis(layer.dilation, rank, "dilation"),
            per_axis(layer.output_padding, rank, "output_padding"),
            strict=True,
        )
    )
    output = Shape(tuple(ax.size for ax in axes), _out_channels(shape, layer.out))
    # the weights of a C_in to C_out convolution; the MACs are counted per input
    # position, since each input value is scattered through the whole kernel
    fan_in = conv_fan_in(kernel, shape.c, layer.groups)
    params = fan_in * out + (out if layer.bias else 0)
    macs = math.prod(shape.spatial) * fan_in * out
    notes = ("receptive field is not tracked through a transposed convolution",)
    return LayerResult("", output, params, 0, macs, UNTRACKED, axes, notes)


def _pool(layer: Pool, shape: Shape, rf: ReceptiveField | None, ctx: Context) -> LayerResult:
    need_spatial(shape, None)
    axes = _window_axes(layer, shape, ctx)
    output = Shape(tuple(ax.size for ax in axes), shape.channels)
    return _result(output, 0, 0, _window_field(rf, axes), axes, ctx)


def _global_pool(
    layer: GlobalPool, shape: Shape, rf: ReceptiveField | None, ctx: Context
) -> LayerResult:
    need_spatial(shape, None)
    output = Shape(tuple(1 for _ in shape.spatial), shape.channels)
    return LayerResult("", output, 0, 0, 0, None)


def _adaptive_pool(
    layer: AdaptivePool, shape: Shape, rf: ReceptiveField | None, ctx: Context
) -> LayerResult:
    """Average pooling to a fixed size, with PyTorch's windows: output i of n -> out
    averages inputs floor(i·n/out) to ceil((i+1)·n/out) - 1. Where n is a multiple of
    out these are a pool of kernel = stride = n/out; elsewhere their sizes vary, and
    the receptive field counts the largest."""
    need_spatial(shape, None)
    size = per_axis(layer.size, len(shape.spatial), "size")
    output = Shape(size, shape.channels)
    pairs = list(zip(shape.spatial, size, strict=True))
    if all(n % out == 0 for n, out in pairs):
        axes = tuple(pool_axis(n, n // out, stride=n // out) for n, out in pairs)
        return LayerResult("", output, 0, 0, 0, _window_field(rf, axes), axes)
    field = rf
    if rf is not None and rf != UNTRACKED:
        largest = [
            max(-(-(i + 1) * n // out) - i * n // out for i in range(out)) for n, out in pairs
        ]
        first = [-(-n // out) for n, out in pairs]
        field = ReceptiveField(
            tuple(
                round(r + (k - 1) * j) for r, k, j in zip(rf.size, largest, rf.jump, strict=True)
            ),
            tuple(_exact(j * n / out) for j, (n, out) in zip(rf.jump, pairs, strict=True)),
            tuple(s + (k - 1) / 2 * j for s, k, j in zip(rf.start, first, rf.jump, strict=True)),
        )
    note = "adaptive pooling windows of uneven size: the receptive field counts the largest"
    return LayerResult("", output, 0, 0, 0, field, (), (note,))


def _dense(layer: Dense, shape: Shape, rf: ReceptiveField | None, ctx: Context) -> LayerResult:
    if layer.units < 1:
        raise ConvcalcError(f"units {layer.units} is not valid: it must be at least 1")
    weights = shape.volume * layer.units
    params = weights + (layer.units if layer.bias else 0)
    return LayerResult("", Shape((), layer.units), params, 0, weights, None)


def _flatten(layer: Flatten, shape: Shape, rf: ReceptiveField | None, ctx: Context) -> LayerResult:
    return LayerResult("", Shape((), shape.volume), 0, 0, 0, None)


def _pointwise(
    layer: Pointwise, shape: Shape, rf: ReceptiveField | None, ctx: Context
) -> LayerResult:
    return LayerResult("", shape, 0, 0, 0, rf)


def _batchnorm(
    layer: BatchNorm, shape: Shape, rf: ReceptiveField | None, ctx: Context
) -> LayerResult:
    return LayerResult("", shape, 2 * shape.c, 2 * shape.c, 0, rf)


def _merge(layer: Merge, shape: Shape, rf: ReceptiveField | None, ctx: Context) -> LayerResult:
    """The current tensor merged with named ones (each centre-cropped first with crop)."""
    tensors = [(shape, rf)]
    for name in layer.names:
        if name not in ctx.names:
            known = ", ".join(f"@{n}" for n in ctx.names) or "none yet"
            raise ConvcalcError(f"no tensor is named '{name}'; named so far: {known}")
        named, field = ctx.names[name]
        if layer.crop:
            named = centre_crop(named, shape.spatial, name)
        tensors.append((named, field))
    output = merged_shape(layer.kind, [t[0] for t in tensors])
    fields = tuple(t[1] for t in tensors)
    return LayerResult("", output, 0, 0, 0, union(fields), merge=layer.kind, merged_fields=fields)


def _upsample(
    layer: Upsample, shape: Shape, rf: ReceptiveField | None, ctx: Context
) -> LayerResult:
    """Each value repeated ``scale`` times per axis (nearest) or interpolated between
    two neighbours (bilinear, whose field is one input pixel wider)."""
    need_spatial(shape, None)
    scale = per_axis(layer.scale, len(shape.spatial), "scale")
    output = Shape(tuple(n * s for n, s in zip(shape.spatial, scale, strict=True)), shape.channels)
    field = rf
    if rf is not None and rf != UNTRACKED:
        wider = 1 if layer.mode == "bilinear" else 0
        field = ReceptiveField(
            tuple(r + wider * int(j) for r, j in zip(rf.size, rf.jump, strict=True)),
            tuple(_exact(j / s) for j, s in zip(rf.jump, scale, strict=True)),
            rf.start,
        )
    return LayerResult("", output, 0, 0, 0, field)


def _pad(layer: Pad, shape: Shape, rf: ReceptiveField | None, ctx: Context) -> LayerResult:
    need_spatial(shape, None)
    pads = per_axis(layer.padding, len(shape.spatial), "padding")
    output = Shape(
        tuple(n + 2 * p for n, p in zip(shape.spatial, pads, strict=True)), shape.channels
    )
    field = rf
    if rf is not None and rf != UNTRACKED:
        starts = tuple(st - p * j for st, p, j in zip(rf.start, pads, rf.jump, strict=True))
        field = ReceptiveField(rf.size, rf.jump, starts)
    return LayerResult("", output, 0, 0, 0, field)


def _exact(value: float) -> float:
    """A whole jump as an int (printed ``2``, not ``2.0``)."""
    return int(value) if float(value).is_integer() else value


LAYER_STEPS: dict[type, Step] = {
    Conv: _conv,
    DepthwiseConv: _depthwise,
    Deconv: _deconv,
    Pool: _pool,
    GlobalPool: _global_pool,
    AdaptivePool: _adaptive_pool,
    Merge: _merge,
    Upsample: _upsample,
    Pad: _pad,
    LayerNorm: lambda layer, shape, rf, ctx: LayerResult("", shape, 2 * shape.c, 0, 0, rf),
    Scale: lambda layer, shape, rf, ctx: LayerResult("", shape, shape.c, 0, 0, rf),
    Dense: _dense,
    Flatten: _flatten,
    Pointwise: _pointwise,
    BatchNorm: _batchnorm,
}
"""The step of each layer that holds no layers of its own (groups and blocks:
`convcalc.calc.evaluation`)."""


# -- helpers ---------------------------------------------------------------


def _window_axes(layer: Conv | Pool, shape: Shape, ctx: Context) -> tuple[Axis, ...]:
    rank = len(shape.spatial)
    kernel = _kernel(layer, shape)
    padding: tuple[Padding, ...] = per_axis(layer.padding, rank, "padding")
    dilation = per_axis(layer.dilation, rank, "dilation")
    if isinstance(layer, Pool):
        strides = kernel if layer.stride is None else per_axis(layer.stride, rank, "stride")
        return tuple(
            pool_axis(
                n, k, stride=s, padding=p, dilation=d, ceil=layer.ceil, convention=ctx.convention
            )
            for n, k, s, p, d in zip(shape.spatial, kernel, strides, padding, dilation, strict=True)
        )
    strides = per_axis(layer.stride, rank, "stride")
    return tuple(
        conv_axis(n, k, stride=s, padding=p, dilation=d, convention=ctx.convention)
        for n, k, s, p, d in zip(shape.spatial, kernel, strides, padding, dilation, strict=True)
    )


def _kernel(layer: Conv | Pool, shape: Shape) -> tuple[int, ...]:
    assert layer.kernel is not None
    return per_axis(layer.kernel, len(shape.spatial), "kernel")


def _window_field(rf: ReceptiveField | None, axes: tuple[Axis, ...]) -> ReceptiveField | None:
    if rf is None or rf == UNTRACKED:
        return rf
    return ReceptiveField(
        tuple(
            round(r + (ax.span - 1) * j) for r, j, ax in zip(rf.size, rf.jump, axes, strict=True)
        ),
        tuple(_exact(j * ax.stride) for j, ax in zip(rf.jump, axes, strict=True)),
        tuple(
            start + ((ax.span - 1) / 2 - ax.pad_lo) * j
            for start, j, ax in zip(rf.start, rf.jump, axes, strict=True)
        ),
    )


def _result(
    output: Shape,
    params: int,
    macs: int,
    rf: ReceptiveField | None,
    axes: tuple[Axis, ...],
    ctx: Context,
) -> LayerResult:
    notes = [note for ax in axes for note in ax.notes]
    fit = _fit_notes(axes)
    lost = [note for note in fit if "never covered" in note]
    if lost and ctx.strict:  # padding alone left over loses no input: strict lets it be
        raise ConvcalcError(lost[0], "Drop --strict, or change the padding or the stride.")
    notes = list(dict.fromkeys(notes + fit))
    return LayerResult("", output, params, 0, macs, rf, axes, tuple(notes), not fit)


def _fit_notes(axes: tuple[Axis, ...]) -> list[str]:
    """Say, per axis (axes alike together), where the windows do not tile exactly."""
    grouped: dict[tuple[str, int], list[str]] = {}
    for name, ax in zip(axis_names(len(axes)), axes, strict=True):
        if ax.exact:
            continue
        reach = ax.n + ax.pad_lo + ax.pad_hi - ax.span
        quotient = f"{reach}/{ax.stride} = {reach / ax.stride:.4g}"
        if ax.rounding == Rounding.CEIL and (ax.size - 1) * ax.stride + ax.span > (
            ax.n + ax.pad_lo + ax.pad_hi
        ):
            text = f"not exact ({quotient}): rounded up, the last window runs past the input"
        elif ax.rounding == Rounding.CEIL:
            text = (
                f"not exact ({quotient}): rounded up, then less one (a window may not "
                "start inside the padding)"
            )
        else:
            text = f"not exact ({quotient}): rounded down"
        grouped.setdefault((text, ax.uncovered), []).append(name)
    notes = []
    for (text, uncovered), names in grouped.items():
        if uncovered:
            units = "/".join(names if uncovered > 1 else [singular(n) for n in names])
            text += f"; the last {uncovered} input {units} never covered"
        elif "rounded down" in text:
            text += "; only padding is left uncovered, no input is lost"
        notes.append(f"{' and '.join(names)}: {text}")
    return notes


def need_spatial(shape: Shape, rank: int | None) -> None:
    """Refuse a flat vector, and with ``rank`` an input of another number of axes."""
    if shape.flat:
        raise ConvcalcError(
            f"needs a spatial input but gets the flat vector {shape}; valid: put "
            "convolution and pooling before flatten and fully connected layers"
        )
    if rank is not None and len(shape.spatial) != rank:
        raise ConvcalcError(
            f"works on {rank} spatial axes but the input {shape} has {len(shape.spatial)}"
        )


def _check_groups(c_in: int, c_out: int, groups: int) -> None:
    if groups < 1 or c_in % groups or c_out % groups:
        raise ConvcalcError(
            f"groups {groups} must be at least 1 and divide both the input channels "
            f"{c_in} and the output channels {c_out}"
        )


def _out_channels(shape: Shape, out: int | None) -> int | None:
    if out is not None and out < 1:
        raise ConvcalcError(f"filters {out} is not valid: it must be at least 1")
    return shape.channels if out is None else out
