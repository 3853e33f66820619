"""Memory planning: what a run needs against what the machine has free now."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from convcalc.calc.choices import ChannelMode
from convcalc.calc.layers import Conv, Deconv, GlobalPool, Layer
from convcalc.calc.network import per_axis, two_axes
from convcalc.errors import RuntimeFailure

if TYPE_CHECKING:  # the pipeline imports this module
    from convcalc.compute.pipeline import Settings, Stage


def available_memory() -> int | None:
    """Bytes of memory available now (Linux's MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def require_memory(needed: int, advice: str) -> None:
    """Refuse, before any work, a run needing more than the memory available now.

    Raises RuntimeFailure naming both amounts and ``advice`` (what to try instead).
    """
    available = available_memory()
    if available is not None and needed > available:
        raise RuntimeFailure(
            f"this needs about {needed / 2**30:.1f} GiB of memory and {available / 2**30:.1f} "
            f"GiB is available; {advice}"
        )


def estimate_bytes(
    shape: tuple[int, ...], stages: Sequence[Stage], settings: Settings, itemsize: int
) -> int:
    """Peak working memory, roughly, of running the stages on an HxWxC input.

    Per stage: the input, its padded copy and the output with an accumulator, in
    the compute dtype's ``itemsize``; the peak over stages. An L x C or DxHxWxC
    input (rank 1 or 3) counts the same way over all its axes.
    """
    if len(shape) != 3:
        return _estimate_ranked(shape, stages, settings, itemsize)
    h, w, c = shape
    peak = 0
    for stage in stages:
        layer = stage.spec.layer
        out_c = c
        if isinstance(layer, Conv | Deconv) and stage.kernels:
            each = settings.channels == ChannelMode.EACH and stage.kernels[0].ndim == 2
            per_input = c if each and layer.groups == 1 else 1  # g= gives one per filter
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


def _estimate_ranked(
    shape: tuple[int, ...], stages: Sequence[Stage], settings: Settings, itemsize: int
) -> int:
    """`estimate_bytes` at rank 1 or 3 (a transposed layer's output counted as the input
    grown by twice its largest stride per axis, as at rank 2)."""
    *spatial, c = shape
    rank = len(spatial)
    peak = 0
    for stage in stages:
        layer = stage.spec.layer
        out_c = c
        if isinstance(layer, Conv | Deconv) and stage.kernels:
            each = settings.channels == ChannelMode.EACH and stage.kernels[0].ndim == rank
            each = each and layer.groups == 1  # g= gives one output channel per filter
            out_c = len(stage.kernels) * (c if each else 1)
        grow = 2 * max(per_axis(layer.stride, rank, "stride")) if isinstance(layer, Deconv) else 1
        pad = _padding_guess(layer)
        cells = math.prod(spatial)
        padded = math.prod(n + 2 * pad for n in spatial) * c
        peak = max(peak, (cells * c + padded + 2 * cells * grow**rank * out_c) * itemsize)
        if isinstance(layer, GlobalPool):
            spatial = [1] * rank
        elif isinstance(layer, Deconv):
            spatial = [n * grow for n in spatial]
        c = out_c
    return peak


def _padding_guess(layer: Layer) -> int:
    padding = getattr(layer, "padding", (0,))
    counts = [p if isinstance(p, int) else max(p) if isinstance(p, tuple) else 0 for p in padding]
    kernel = getattr(layer, "kernel", None) or (1,)
    return max([*counts, max(kernel)])
