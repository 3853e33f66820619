"""The plans of a one-channel layer: the window sliding over the padded input
(convolution, pooling; the transposed convolution's plan is in `transposed_frames`);
and the step of one position, a transposed convolution's too."""

from __future__ import annotations

import math

import numpy as np

from convcalc.calc.choices import AnimKind, PadMode, PoolKind
from convcalc.compute import ops
from convcalc.present.frame_parts import (
    MAX_TERMS,
    AnimationRequest,
    Array,
    Plan,
    Step,
    note_ignored,
    sliding_axes,
    span_text,
    title_text,
    value_text,
    weights_of,
    window_of,
)


def window_plan(request: AnimationRequest, kind: AnimKind, x: Array, notes: list[str]) -> Plan:
    """Convolution and pooling: the window slides over the padded input."""
    pooling = kind != AnimKind.CONV
    kernel = window_of(request.kernel) if pooling else weights_of(request.kernel)
    size = (kernel.shape[0], kernel.shape[1])
    stride = request.stride or (size if pooling else (1, 1))
    axes = sliding_axes(pooling, x.shape, size, stride, request)
    pads = [(a.pad_lo, a.pad_hi) for a in axes]
    if pooling:
        how = PoolKind.MAX if kind == AnimKind.POOL_MAX else PoolKind.AVG
        out = ops.pool(
            x, how, size, stride=stride, padding=request.padding, dilation=request.dilation
        )
        left = ops.pad(x, pads, PadMode.ZERO, math.nan if how == PoolKind.MAX else 0.0)
        note_ignored(request, "pooling", notes)
    else:
        out = ops.correlate(
            x,
            kernel,
            stride=stride,
            padding=request.padding,
            dilation=request.dilation,
            pad_mode=request.pad_mode,
        )
        left = ops.pad(x, pads, request.pad_mode)
    right = np.asarray(out[..., 0], dtype=np.float64)
    name = {AnimKind.CONV: "conv", AnimKind.POOL_MAX: "max pool", AnimKind.POOL_AVG: "avg pool"}
    return Plan(
        kind,
        title_text(name[kind], size, stride, request, axes),
        left,
        (pads[0][0], pads[1][0], *x.shape),
        right,
        (0, 0, *right.shape),
        kernel,
        stride,
        request.dilation,
        f"the whole output: {right.shape[0]}x{right.shape[1]}",
        tuple(notes),
    )


def plane_step(p: Plan, k: int) -> Step:
    """The highlighted cells and the captions of position k (raster order)."""
    r, c = divmod(k, (p.left if p.kind == AnimKind.TRANSPOSED else p.right).shape[1])
    (kh, kw), (sh, sw), (dh, dw) = p.kernel.shape, p.stride, p.dilation
    taps = tuple((r * sh + i * dh, c * sw + j * dw) for i in range(kh) for j in range(kw))
    weights = tuple(float(w) for w in p.kernel.ravel())
    if p.kind == AnimKind.TRANSPOSED:
        v = value_text(p.left[r, c])
        rows = span_text(r * sh - p.right_box[0], kh, dh)
        cols = span_text(c * sw - p.right_box[1], kw, dw)
        caption = f"in[{r},{c}] = {v}: out rows {rows}, cols {cols} += {v}·kernel"
        return Step(k, (r, c), ((r, c),), taps, weights, caption, f"in[{r},{c}] = {v}")
    values = [float(p.left[t]) for t in taps]
    result = value_text(p.right[r, c], 4)
    if p.kind == AnimKind.CONV:
        terms = " + ".join(
            f"{value_text(a, paren=True)}·{value_text(w, paren=True)}"
            for a, w in zip(values, weights, strict=True)
        )
        many = f"sum of {len(taps)} products"
    elif p.kind == AnimKind.POOL_MAX:
        values, weights = [v for v in values if not math.isnan(v)], ()
        terms = f"max({', '.join(map(value_text, values))})"
        many = f"max of {len(values)} values"
    else:
        terms, weights = f"({' + '.join(map(value_text, values))})/{len(values)}", ()
        many = f"mean of {len(values)} values"
    caption = f"out[{r},{c}] = {terms if len(taps) <= MAX_TERMS else many} = {result}"
    return Step(k, (r, c), taps, ((r, c),), weights, caption, f"out[{r},{c}] = {result}")
