"""The plans of a layer of several channels, filters or a bias: the input's channel
slices side by side, each output channel reading the channels it sees with its filter's
slices, as `convcalc apply` runs the layer (`convcalc.compute.pipeline.kernel_bank`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from convcalc.calc.choices import AnimKind, PadMode, PoolKind
from convcalc.calc.layers import Conv, Pool, Spec
from convcalc.compute import ops
from convcalc.compute.methods import working_array
from convcalc.compute.pipeline import (
    Settings,
    Stage,
    group_channels,
    group_text,
    kernel_bank,
    run,
)
from convcalc.errors import ConvcalcError
from convcalc.present.frame_parts import (
    MAX_CHANNEL_LINES,
    MAX_TERMS,
    AnimationRequest,
    Array,
    Plan,
    Step,
    kernel_list,
    mosaic,
    note_ignored,
    slice_left,
    sliding_axes,
    title_text,
    value_text,
    window_of,
)
from convcalc.present.plane_frames import plane_step


def is_volume(request: AnimationRequest, image: Array) -> bool:
    """Whether the layer has several channels, filters or a bias (drawn slice by slice)."""
    several = np.ndim(image) == 3 and np.shape(image)[2] > 1
    if request.kind not in (AnimKind.CONV, AnimKind.TRANSPOSED):
        return several
    if request.groups != 1:
        return True
    kernels = kernel_list(request.kernel)
    deep = any(k.ndim == 3 for k in kernels)
    return several or deep or len(kernels) > 1 or request.bias is not None


def volume_input(image: Array) -> Array:
    """The input as an HxWxC float64 array (HxW gets one channel)."""
    x = np.asarray(working_array(image), dtype=np.float64)
    x = x[:, :, None] if x.ndim == 2 else x
    if x.ndim != 3 or x.size == 0:
        raise ConvcalcError(
            f"an input of shape {'x'.join(map(str, np.shape(image)))} "
            "is not valid; valid: HxW or HxWxC"
        )
    return x


@dataclass(frozen=True)
class FilterSlices:
    """A layer's filters as `convcalc apply` applies them to C input channels.

    ``kernels`` are the filters as given (float64), ``size`` their KH x KW. Output
    channel o reads input channels ``sees[o]`` with ``filters[o]`` (KH x KW x
    len(sees[o])), adds ``bias[o]`` and is named ``names[o]``: with ``--channels
    each`` a 2-D filter f on channel c is output channel f·C + c (filter-major, as
    apply orders it); in a grouped layer filter f is output channel f and sees its
    group's channels (`convcalc.compute.pipeline.group_channels`); else filter f is
    output channel f and sees every channel.
    """

    kernels: tuple[Array, ...]
    size: tuple[int, int]
    filters: tuple[Array, ...]
    sees: tuple[tuple[int, ...], ...]
    bias: tuple[float, ...]
    names: tuple[str, ...]


def filter_slices(request: AnimationRequest, channels: int) -> FilterSlices:
    """The (transposed) convolution's filters per output channel (`FilterSlices`)."""
    kernels = tuple(
        np.asarray(working_array(k), dtype=np.float64) for k in kernel_list(request.kernel)
    )
    given = request.bias
    if given is not None and len(given) != len(kernels):
        raise ConvcalcError(
            f"--bias has {len(given)} values for {len(kernels)} filters; give one per filter"
        )
    b = tuple(float(v) for v in given) if given is not None else (0.0,) * len(kernels)
    bank, groups, each = kernel_bank(kernels, channels, request.channels, groups=request.groups)
    size = (bank.shape[0], bank.shape[1])
    if groups > 1 and not each:
        count = len(kernels)
        return FilterSlices(
            kernels,
            size,
            tuple(bank[:, :, :, f] for f in range(count)),
            tuple(tuple(group_channels(f, count, channels, groups)) for f in range(count)),
            b,
            tuple(
                f"filter {f} ({size[0]}x{size[1]}x{channels // groups}, bias {value_text(v)}) "
                + group_text(f, count, channels, groups)
                for f, v in enumerate(b)
            ),
        )
    if each:  # output channel f·C + c is filter f on channel c
        pairs = [(f, c) for f in range(len(kernels)) for c in range(channels)]
        return FilterSlices(
            kernels,
            size,
            tuple(bank[:, :, :, c * len(kernels) + f] for f, c in pairs),
            tuple((c,) for _, c in pairs),
            tuple(b[f] for f, _ in pairs),
            tuple(f"filter {f} on channel {c}" for f, c in pairs),
        )
    depth = f"x{channels}" if channels > 1 else ""
    return FilterSlices(
        kernels,
        size,
        tuple(bank[:, :, :, f] for f in range(len(kernels))),
        (tuple(range(channels)),) * len(kernels),
        b,
        tuple(
            f"filter {f} ({size[0]}x{size[1]}{depth}, bias {value_text(v)})"
            for f, v in enumerate(b)
        ),
    )


def volume_plan(request: AnimationRequest, kind: AnimKind, image: Array, notes: list[str]) -> Plan:
    """Several channels or filters: the layer `convcalc apply` runs, per output channel."""
    x = volume_input(image)
    channels, pooling = x.shape[2], kind != AnimKind.CONV
    if pooling:
        window = window_of(request.kernel)
        size = (window.shape[0], window.shape[1])
        how = PoolKind.MAX if kind == AnimKind.POOL_MAX else PoolKind.AVG
        layer: Conv | Pool = Pool(
            kind=how,
            kernel=size,
            stride=request.stride,
            padding=request.padding,
            dilation=request.dilation,
        )
        stage = Stage(Spec(text=f"{how}pool", layer=layer))
        filters = tuple(window[:, :, None] for _ in range(channels))
        sees: tuple[tuple[int, ...], ...] = tuple((c,) for c in range(channels))
        bias, names = (0.0,) * channels, tuple(f"channel {c}" for c in range(channels))
        note_ignored(request, "pooling", notes)
    else:
        made = filter_slices(request, channels)
        size, filters, sees, bias, names = made.size, made.filters, made.sees, made.bias, made.names
        layer = Conv(
            out=len(made.kernels),
            kernel=size,
            stride=request.stride or (1, 1),
            padding=request.padding,
            dilation=request.dilation,
            groups=request.groups,
        )
        stage = Stage(Spec(text="conv", layer=layer), made.kernels, request.bias)
    stride = request.stride or (size if pooling else (1, 1))
    axes = sliding_axes(pooling, x.shape, size, stride, request)
    pads = [(a.pad_lo, a.pad_hi) for a in axes]
    if pooling:
        fill = math.nan if kind == AnimKind.POOL_MAX else 0.0
        padded = ops.pad(x, pads, PadMode.ZERO, fill)
    else:
        padded = ops.pad(x, pads, request.pad_mode)
    out = np.asarray(
        run(x, [stage], Settings(pad_mode=request.pad_mode, channels=request.channels)).output,
        dtype=np.float64,
    )
    name = {AnimKind.CONV: "conv", AnimKind.POOL_MAX: "max pool", AnimKind.POOL_AVG: "avg pool"}
    title = title_text(name[kind], size, stride, request, axes)
    if not pooling:
        title += f" · {len(filters)} output channels" if len(filters) > 1 else ""
        title += f" · {request.groups} groups" if request.groups > 1 else ""
    return Plan(
        kind,
        title,
        mosaic(padded),
        (pads[0][0], pads[1][0], *x.shape[:2]),
        mosaic(out),
        (0, 0, *out.shape[:2]),
        filters[0][:, :, 0],
        stride,
        request.dilation,
        f"the whole output: {out.shape[0]}x{out.shape[1]}x{out.shape[2]}",
        tuple(notes),
        left_slices=channels,
        right_slices=out.shape[2],
        filters=filters,
        sees=sees,
        bias=bias,
        names=names,
    )


def volume_step(p: Plan, k: int) -> Step:
    """Output channel o at (r, c): per input channel seen, its products, then the sum."""
    h, w = p.right_box[2:]
    o, (r, c) = k // (h * w), divmod(k % (h * w), w)
    width = (p.left.shape[1] - p.left_slices + 1) // p.left_slices
    kernel = p.filters[o]
    (kh, kw), (sh, sw), (dh, dw) = kernel.shape[:2], p.stride, p.dilation
    taps, weights, lines, sums = [], [], [], []
    for s, ch in enumerate(p.sees[o]):
        cells = [(r * sh + i * dh, c * sw + j * dw) for i in range(kh) for j in range(kw)]
        values = [float(p.left[a, slice_left(width, ch) + b]) for a, b in cells]
        ws = [float(v) for v in kernel[:, :, s].ravel()]
        taps += [(a, slice_left(width, ch) + b) for a, b in cells]
        weights += ws
        if p.kind == AnimKind.CONV:
            total = math.fsum(a * b for a, b in zip(values, ws, strict=True))
            terms = " + ".join(
                f"{value_text(a, paren=True)}·{value_text(b, paren=True)}"
                for a, b in zip(values, ws, strict=True)
            )
            text = terms if len(cells) <= MAX_TERMS else f"sum of {len(cells)} products"
            lines.append(f"  channel {ch}: {text} = {value_text(total, 4)}")
            sums.append(total)
    result = value_text(p.right[r, slice_left(w, o) + c], 4)
    at = f"out[{r},{c},{o}]"
    target = ((r, slice_left(w, o) + c),)
    if p.kind != AnimKind.CONV:
        at_left, at_right = slice_left(width, p.sees[o][0]), slice_left(w, o)
        single = replace(
            p,
            left=p.left[:, at_left : at_left + width],
            right=p.right[:, at_right : at_right + w],
            sees=(),
        )
        caption = plane_step(single, r * w + c).caption.replace(f"out[{r},{c}]", at, 1)
        return Step(k, (r, c), tuple(taps), target, (), caption, f"{at} = {result}", o)
    bias = p.bias[o]
    parts = [value_text(v, 4, paren=True) for v in sums]
    if len(parts) > MAX_TERMS:
        parts = [f"sum of {len(parts)} channel sums"]
    terms = " + ".join([*parts, f"bias {value_text(bias, 4, paren=True)}"])
    head = f"{at} ({p.names[o]}) = {terms} = {result}"
    caption = "\n".join([head, *lines]) if len(lines) <= MAX_CHANNEL_LINES else head
    return Step(k, (r, c), tuple(taps), target, tuple(weights), caption, f"{at} = {result}", o)
