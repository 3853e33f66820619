"""The arithmetic behind each gradient value of one convolution layer, any rank.

For ``Y[o, f] = Σ_{i,j,c} Xp[o·s + (i,j)·d, c]·W_f[i, j, c]`` (Xp the padded input; a
signal's taps are i alone, a volume's (k, i, j)),
with dL/dY the upstream gradient (after the activation's own gradient when the layer
has one):

* each kernel value's gradient is a sum over the output positions o::

      dL/dW_f[i, j, c] = Σ_o dL/dY[o, f] · Xp[o·s + (i,j)·d, c]

  (a 2-D filter used on several channels sums over those channels too);
* each input cell's gradient is a sum over the windows that read it, each term
  dL/dY at the window's output times the kernel value at the tap that reads the
  cell: the full convolution of dL/dY (dilated by the stride) with the kernel
  rotated by 180°. A padded cell copied from an input cell (reflect, replicate,
  wrap) adds its windows to that cell; zero padding reads no cell.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from convcalc.calc.geometry import Axis
from convcalc.calc.layers import Conv
from convcalc.calc.network import per_axis
from convcalc.compute import windows
from convcalc.compute.arrays import Array
from convcalc.compute.backward_records import (
    BackwardTrace,
    GradStep,
    Upstream,
    chosen,
    output_at,
    refuse_outside,
)
from convcalc.compute.gradients import activation_backward, backward
from convcalc.compute.padding import pad
from convcalc.compute.pipeline import Settings, Stage, check_bias, group_channels, stage_bank
from convcalc.compute.traces import Position, all_whole


def conv_trace(
    xa: Array,
    stage: Stage,
    settings: Settings,
    upstream: Upstream,
    at: Sequence[Position],
    limit: int | None,
) -> BackwardTrace:
    """The kernel and input gradient steps of one convolution stage.

    Parameters
    ----------
    xa : array, HxWxC (L x C, DxHxWxC at ``settings.rank`` 1 and 3)
        The stage's input.
    stage : Stage
        A convolution of the run's rank.
    settings : Settings
    upstream : Upstream
        dL/dY of the stage's output (Ho x Wo x F; (*O) x F) and where it came from.
    at, limit
        Kernel taps and input cells to show, and at most how many of each.

    Returns
    -------
    BackwardTrace
        Kernel steps filter by filter, taps row-major (channels within a tap);
        then input steps cell by cell row-major, channels within a cell.
    """
    layer = stage.spec.layer
    assert isinstance(layer, Conv)
    check_bias(stage)
    run = backward(xa, [stage], settings, upstream.grad)
    dz = activation_backward(run.output, run.grad_output, stage.activation).astype(np.float64)
    rank, channels = settings.rank, xa.shape[-1]
    bank, groups, each = stage_bank(stage, channels, settings)
    groups = 1 if each else groups
    axes = windows.conv_axes_nd(
        xa.shape,
        bank.shape[:rank],
        stride=per_axis(layer.stride, rank, "stride"),
        dilation=per_axis(layer.dilation, rank, "dilation"),
        padding=per_axis(layer.padding, rank, "padding"),
        convention=settings.convention,
    )
    uses = _uses(stage.kernels, channels, each, rank, groups)
    size, spatial = tuple(bank.shape[:rank]), tuple(xa.shape[:-1])
    refuse_outside(at, [("kernel", size), ("input", spatial)])
    kernel_at = chosen(at, limit, size)
    input_at = chosen(at, limit, spatial)
    walk = _Walk.of(xa, dz, axes, settings, size)
    steps = [
        walk.kernel_step(f, part, p)
        for f, fu in enumerate(uses)
        for p in kernel_at
        for part in _split(fu)
    ]
    steps += [walk.input_step(uses, p, c) for p in input_at for c in range(channels)]
    kernels = np.concatenate([np.ravel(k) for k in stage.kernels])
    taps, cells = math.prod(size), math.prod(spatial)
    return BackwardTrace(
        layer_text=stage.spec.text,
        input_shape=tuple(xa.shape),
        output_shape=(*(a.size for a in axes), dz.shape[-1]),
        kernel_size=size,
        axes=axes,
        filters=len(stage.kernels),
        steps=tuple(steps),
        kernel_total=taps,
        kernel_omitted=taps - len(kernel_at),
        input_total=cells,
        input_omitted=cells - len(input_at),
        pad_mode=settings.pad_mode,
        activation=stage.activation,
        flip=settings.flip,
        integral=all_whole(xa) and all_whole(kernels) and all_whole(dz),
        upstream=upstream,
        groups=groups,
    )


# -- how each filter is used --------------------------------------------------


@dataclass(frozen=True)
class _Use:
    """Filter f read on input ``channel`` with the ``kernel`` of one channel (KH x KW;
    K, KD x KH x KW), its own channel ``slot`` (the input channel, but in a grouped
    layer the place of the channel in the filter's group); its output is channel
    ``out`` of the pipeline's (filter-major) output."""

    channel: int
    out: int
    kernel: Array
    slot: int


@dataclass(frozen=True)
class _FilterUses:
    uses: tuple[_Use, ...]
    split: bool
    """True when the filter has a channel axis of its own (one gradient per channel);
    else its gradient sums over every channel it was used on."""


def _split(fu: _FilterUses) -> list[_FilterUses]:
    """The kernel steps of one filter at one tap: one per channel when split, else one."""
    if not fu.split:
        return [fu]
    return [_FilterUses((u,), True) for u in fu.uses]


def _uses(
    kernels: Sequence[Array], channels: int, each: bool, rank: int, groups: int = 1
) -> list[_FilterUses]:
    """Per filter, where `kernel_bank` applies it (the pipeline's output order); a
    filter of a grouped layer on its group's channels only."""
    found = []
    for f, kernel in enumerate(kernels):
        k = np.asarray(kernel, np.float64)
        seen = group_channels(f, len(kernels), channels, groups)
        split = not each and k.ndim == rank + 1 and k.shape[rank] == len(seen)
        found.append(
            _FilterUses(
                tuple(
                    _Use(
                        c,
                        f * channels + c if each else f,
                        k[..., slot] if split else k.reshape(k.shape[:rank]),
                        slot,
                    )
                    for slot, c in enumerate(seen)
                ),
                split,
            )
        )
    return found


# -- the sums -----------------------------------------------------------------


@dataclass(frozen=True)
class _Walk:
    """What the sums read: the padded input, which input cell (row-major index) each
    padded cell copies (-1 for zero padding), dL/dY, the geometry, flip and the kernel
    size."""

    xp: Array
    source: Array
    dz: Array
    axes: tuple[Axis, ...]
    flip: bool
    size: tuple[int, ...]
    spatial: tuple[int, ...]

    @classmethod
    def of(
        cls,
        xa: Array,
        dz: Array,
        axes: tuple[Axis, ...],
        settings: Settings,
        size: tuple[int, ...],
    ) -> _Walk:
        spatial = tuple(xa.shape[:-1])
        pads = [(a.pad_lo, a.pad_hi) for a in axes]
        xp = pad(xa, pads, settings.pad_mode)
        cells = np.arange(1, math.prod(spatial) + 1).reshape(*spatial, 1)
        source = pad(cells, pads, settings.pad_mode)[..., 0] - 1
        return cls(xp, source, dz, axes, settings.flip, size, spatial)

    def tap(self, i: int, k: int) -> int:
        """The bank's tap the filter's tap ``i`` (axis ``k``) is applied at."""
        return self.size[k] - 1 - i if self.flip else i

    def kernel_step(self, f: int, fu: _FilterUses, p: Position) -> GradStep:
        at = tuple(_taps(a, self.tap(p[k], k)) for k, a in enumerate(self.axes))
        parts = [
            np.stack([self.dz[..., u.out].ravel(), self.xp[at][..., u.channel].ravel()], axis=1)
            for u in fu.uses
        ]
        terms = np.concatenate(parts).astype(np.float64)
        channel = fu.uses[0].slot if fu.split else None
        return GradStep("kernel", f, channel, p, terms, float(np.sum(terms[:, 0] * terms[:, 1])))

    def input_step(self, uses: Sequence[_FilterUses], p: Position, c: int) -> GradStep:
        """Over filters, then output positions row-major, then taps: dL/dY × W."""
        index = int(np.ravel_multi_index(p, self.spatial))
        cells = [tuple(int(i) for i in cell) for cell in np.argwhere(self.source == index)]
        found: list[tuple[int, Position, int, float, float]] = []
        for f, fu in enumerate(uses):
            for u in (u for u in fu.uses if u.channel == c):
                for t, tap in enumerate(np.ndindex(*self.size)):
                    for cell in cells:
                        out = self._output(cell, tap)
                        if out is not None:
                            where = (*out, u.out)
                            dy = float(self.dz[where])
                            found.append((f, out, t, dy, float(u.kernel[tap])))
        found.sort(key=lambda t: t[:3])
        terms = np.array([t[3:] for t in found], np.float64).reshape(-1, 2)
        return GradStep("input", None, c, p, terms, float(np.sum(terms[:, 0] * terms[:, 1])))

    def _output(self, cell: Position, tap: tuple[int, ...]) -> Position | None:
        """The output whose window reads padded ``cell`` with the filter's ``tap``, if any."""
        found = []
        for k, (padded, i) in enumerate(zip(cell, tap, strict=True)):
            out = output_at(padded, self.tap(i, k), self.axes[k])
            if out is None:
                return None
            found.append(out)
        return tuple(found)


def _taps(axis: Axis, i: int) -> slice:
    """The padded positions tap ``i`` of every window reads along one axis."""
    start = i * axis.dilation
    return slice(start, start + (axis.size - 1) * axis.stride + 1, axis.stride)
