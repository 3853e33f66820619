"""The arithmetic behind each gradient value of one convolution (``apply --backward --steps``).

For a single 2-D convolution layer ``Y[o, f] = Σ_{i,j,c} Xp[o·s + (i,j)·d, c]·W_f[i, j, c]``
(Xp the padded input), with dL/dY the upstream gradient (after the activation's own
gradient when the layer has one):

* each kernel value's gradient is a sum over the output positions o::

      dL/dW_f[i, j, c] = Σ_o dL/dY[o, f] · Xp[o·s + (i,j)·d, c]

  (a 2-D filter used on several channels sums over those channels too);
* each input cell's gradient is a sum over the windows that read it, each term
  dL/dY at the window's output times the kernel value at the tap that reads the
  cell: the full convolution of dL/dY (dilated by the stride) with the kernel
  rotated by 180°. A padded cell copied from an input cell (reflect, replicate,
  wrap) adds its windows to that cell; zero padding reads no cell.

Every `GradStep` keeps its terms as (dL/dY, factor) pairs; their products add up to
``value``, which equals `convcalc.compute.gradients.backward`'s gradient (exactly for
integer data; to rounding otherwise, as the step sums in float64).

Positions: kernel taps (i, j) and input cells (r, c) are chosen as `traces` chooses
output positions: all of them up to `SMALL_OUTPUT`, else the first `DEFAULT_SHOWN`;
``at`` picks positions (each where it fits: a kernel tap, an input cell or both),
``limit`` caps how many of each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from convcalc.calc.choices import Activation, PadMode
from convcalc.calc.geometry import Axis
from convcalc.calc.layers import Conv
from convcalc.calc.network import two_axes
from convcalc.compute import ops, windows
from convcalc.compute.arrays import Array
from convcalc.compute.gradients import activation_backward, backward
from convcalc.compute.padding import pad
from convcalc.compute.pipeline import Settings, Stage, check_bias, kernel_bank, refuse_groups
from convcalc.compute.traces import DEFAULT_SHOWN, SMALL_OUTPUT, all_whole, plain_number
from convcalc.errors import ConvcalcError

GradKind = Literal["kernel", "input"]


@dataclass(frozen=True)
class GradStep:
    """One gradient value and its terms.

    ``grad`` says which gradient: ``kernel`` (``filter`` set; ``channel`` set when the
    filter has a channel axis of its own) or ``input`` (``channel`` the input's).
    ``position`` is the kernel tap (i, j) or the input cell (row, column). ``terms``
    is N x 2: dL/dY and the input value (kernel) or the kernel value (input);
    ``value`` the sum of their products.
    """

    grad: GradKind
    filter: int | None
    channel: int | None
    position: tuple[int, int]
    terms: Array
    value: float


@dataclass(frozen=True)
class BackwardTrace:
    """The traced layer and its gradient steps (kernel steps first, then input steps).

    Shapes are HxWxC; ``kernel_size`` KH x KW; ``axes`` the rows' and columns'
    geometry. ``kernel_total``/``input_total`` count the taps and cells,
    ``kernel_omitted``/``input_omitted`` those no step shows. ``integral`` says
    whether input, kernels and dL/dY are whole numbers.
    """

    layer_text: str
    input_shape: tuple[int, int, int]
    output_shape: tuple[int, int, int]
    kernel_size: tuple[int, int]
    axes: tuple[Axis, Axis]
    filters: int
    steps: tuple[GradStep, ...]
    kernel_total: int
    kernel_omitted: int
    input_total: int
    input_omitted: int
    pad_mode: PadMode
    activation: Activation
    flip: bool
    integral: bool


def backward_trace(
    x: Array,
    stages: Sequence[Stage],
    settings: Settings,
    grad_output: Any = None,
    *,
    at: Sequence[tuple[int, int]] = (),
    limit: int | None = None,
) -> BackwardTrace:
    """Work out the arithmetic of the kernel and input gradients of one convolution.

    Parameters
    ----------
    x : array, HxWxC (or HxW)
    stages : sequence of Stage
        Exactly one 2-D convolution stage.
    settings : Settings
        Padding mode, channel mode, flip and convention, as in `run`.
    grad_output : array, Ho x Wo x F (or Ho x Wo), optional
        dL/dY; all ones when not given.
    at : sequence of (row, col)
        Kernel taps and input cells to show; default as the module says.
    limit : int, optional
        At most this many kernel taps and this many input cells.

    Returns
    -------
    BackwardTrace
        Kernel steps filter by filter, taps row-major (channels within a tap);
        then input steps cell by cell row-major, channels within a cell.

    Raises
    ------
    ConvcalcError
        Anything but one 2-D convolution, a position outside both the kernel and
        the input, a limit below 1, or what `backward` refuses.
    """
    layer = stages[0].spec.layer if len(stages) == 1 else None
    if not isinstance(layer, Conv) or settings.rank != 2:
        got = " ".join(s.spec.text for s in stages)
        raise ConvcalcError(
            f"--backward --steps traces one 2-D convolution layer; got '{got}' "
            "(valid: a single conv layer, e.g. -k KERNEL; drop --steps for the gradients alone)"
        )
    if limit is not None and limit < 1:
        raise ConvcalcError(f"limit {limit} is not valid; valid: 1 or more")
    stage = stages[0]
    refuse_groups(layer)
    check_bias(stage)
    xa = ops.as_image(x)
    run = backward(xa, stages, settings, grad_output)
    dz = activation_backward(run.output, run.grad_output, stage.activation).astype(np.float64)
    channels = xa.shape[2]
    bank, _, each = kernel_bank(stage.kernels, channels, settings.channels)
    axes = windows.conv_axes(
        xa.shape,
        bank.shape,
        stride=two_axes(layer.stride, "stride"),
        dilation=two_axes(layer.dilation, "dilation"),
        padding=two_axes(layer.padding, "padding"),
        convention=settings.convention,
    )
    uses = _uses(stage.kernels, channels, each)
    kh, kw = bank.shape[:2]
    height, width = xa.shape[:2]
    kernel_at = _chosen(at, limit, kh, kw)
    input_at = _chosen(at, limit, height, width)
    for r, c in at:
        if not (0 <= r < kh and 0 <= c < kw) and not (0 <= r < height and 0 <= c < width):
            raise ConvcalcError(
                f"position ({r}, {c}) is outside both the {kh}x{kw} kernel and the "
                f"{height}x{width} input; valid: rows 0 to {max(kh, height) - 1}, "
                f"columns 0 to {max(kw, width) - 1} within one of them"
            )
    walk = _Walk.of(xa, dz, axes, settings, (kh, kw))
    steps = [
        walk.kernel_step(f, part, p)
        for f, fu in enumerate(uses)
        for p in kernel_at
        for part in _split(fu)
    ]
    steps += [walk.input_step(uses, p, c) for p in input_at for c in range(channels)]
    kernels = np.concatenate([np.ravel(k) for k in stage.kernels])
    return BackwardTrace(
        layer_text=stage.spec.text,
        input_shape=(height, width, channels),
        output_shape=(axes[0].size, axes[1].size, dz.shape[2]),
        kernel_size=(kh, kw),
        axes=axes,
        filters=len(stage.kernels),
        steps=tuple(steps),
        kernel_total=kh * kw,
        kernel_omitted=kh * kw - len(kernel_at),
        input_total=height * width,
        input_omitted=height * width - len(input_at),
        pad_mode=settings.pad_mode,
        activation=stage.activation,
        flip=settings.flip,
        integral=all_whole(xa) and all_whole(kernels) and all_whole(dz),
    )


def backward_trace_json(t: BackwardTrace) -> dict[str, Any]:
    """The JSON document of a backward trace.

    ``{"backward_steps": [...]}`` with the layer, the shapes and position counts;
    each step ``grad`` (``kernel`` or ``input``), ``filter`` (kernel) and/or
    ``channel``, ``position``, ``terms`` ([dL/dY, x] or [dL/dY, w] pairs) and
    ``value``. Whole values are integers when the layer's numbers were.
    """

    def num(v: float) -> float | int | None:
        return plain_number(v, t.integral)

    def step(s: GradStep) -> dict[str, Any]:
        doc: dict[str, Any] = {"grad": s.grad}
        if s.filter is not None:
            doc["filter"] = s.filter
        if s.channel is not None:
            doc["channel"] = s.channel
        return doc | {
            "position": list(s.position),
            "terms": [[num(a), num(b)] for a, b in s.terms],
            "value": num(s.value),
        }

    return {
        "layer_text": t.layer_text,
        "input_shape": list(t.input_shape),
        "output_shape": list(t.output_shape),
        "kernel_positions": t.kernel_total,
        "kernel_omitted": t.kernel_omitted,
        "input_positions": t.input_total,
        "input_omitted": t.input_omitted,
        "backward_steps": [step(s) for s in t.steps],
    }


# -- how each filter is used --------------------------------------------------


@dataclass(frozen=True)
class _Use:
    """Filter f read on input ``channel`` with the 2-D ``kernel``; its output is
    channel ``out`` of the pipeline's (filter-major) output."""

    channel: int
    out: int
    kernel: Array


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


def _uses(kernels: Sequence[Array], channels: int, each: bool) -> list[_FilterUses]:
    """Per filter, where `kernel_bank` applies it (the pipeline's output order)."""
    found = []
    for f, kernel in enumerate(kernels):
        k = np.asarray(kernel, np.float64)
        split = not each and k.ndim == 3 and k.shape[2] == channels
        found.append(
            _FilterUses(
                tuple(
                    _Use(
                        c,
                        f * channels + c if each else f,
                        k[:, :, c] if split else k.reshape(k.shape[:2]),
                    )
                    for c in range(channels)
                ),
                split,
            )
        )
    return found


# -- the sums -----------------------------------------------------------------


@dataclass(frozen=True)
class _Walk:
    """What the sums read: the padded input, which input cell each padded cell copies
    (-1 for zero padding), dL/dY, the geometry, flip and the kernel size."""

    xp: Array
    source: Array
    dz: Array
    axes: tuple[Axis, Axis]
    flip: bool
    size: tuple[int, int]
    input_width: int

    @classmethod
    def of(
        cls,
        xa: Array,
        dz: Array,
        axes: tuple[Axis, Axis],
        settings: Settings,
        size: tuple[int, int],
    ) -> _Walk:
        h, w = xa.shape[:2]
        pads = [(a.pad_lo, a.pad_hi) for a in axes]
        xp = pad(xa, pads, settings.pad_mode)
        cells = np.arange(1, h * w + 1).reshape(h, w, 1)
        source = pad(cells, pads, settings.pad_mode)[:, :, 0] - 1
        return cls(xp, source, dz, axes, settings.flip, size, w)

    def tap(self, i: int, k: int) -> int:
        """The bank's tap the filter's tap ``i`` (axis ``k``) is applied at."""
        return self.size[k] - 1 - i if self.flip else i

    def kernel_step(self, f: int, fu: _FilterUses, p: tuple[int, int]) -> GradStep:
        at = tuple(_taps(a, self.tap(p[k], k)) for k, a in enumerate(self.axes))
        parts = [
            np.stack([self.dz[:, :, u.out].ravel(), self.xp[at][:, :, u.channel].ravel()], axis=1)
            for u in fu.uses
        ]
        terms = np.concatenate(parts).astype(np.float64)
        channel = fu.uses[0].channel if fu.split else None
        return GradStep("kernel", f, channel, p, terms, float(np.sum(terms[:, 0] * terms[:, 1])))

    def input_step(self, uses: Sequence[_FilterUses], p: tuple[int, int], c: int) -> GradStep:
        """Over filters, then output positions row-major, then taps: dL/dY × W."""
        width = self.size[1]
        cells = np.argwhere(self.source == p[0] * self.input_width + p[1])
        found: list[tuple[int, int, int, int, float, float]] = []
        for f, fu in enumerate(uses):
            for u in (u for u in fu.uses if u.channel == c):
                for tap in range(self.size[0] * width):
                    i, j = divmod(tap, width)
                    for pr, pc in cells:
                        orow = _output(int(pr), self.tap(i, 0), self.axes[0])
                        ocol = _output(int(pc), self.tap(j, 1), self.axes[1])
                        if orow is not None and ocol is not None:
                            dy = float(self.dz[orow, ocol, u.out])
                            found.append((f, orow, ocol, tap, dy, float(u.kernel[i, j])))
        found.sort(key=lambda t: t[:4])
        terms = np.array([t[4:] for t in found], np.float64).reshape(-1, 2)
        return GradStep("input", None, c, p, terms, float(np.sum(terms[:, 0] * terms[:, 1])))


def _taps(axis: Axis, i: int) -> slice:
    """The padded positions tap ``i`` of every window reads along one axis."""
    start = i * axis.dilation
    return slice(start, start + (axis.size - 1) * axis.stride + 1, axis.stride)


def _output(padded: int, tap: int, axis: Axis) -> int | None:
    """The output whose window reads padded position ``padded`` with tap ``tap``, if any."""
    offset = padded - tap * axis.dilation
    if offset < 0 or offset % axis.stride:
        return None
    out = offset // axis.stride
    return out if out < axis.size else None


def _chosen(
    at: Sequence[tuple[int, int]], limit: int | None, height: int, width: int
) -> tuple[tuple[int, int], ...]:
    """The positions of an HxW grid to show: those of ``at`` inside it, or the default."""
    if at:
        inside = ((int(r), int(c)) for r, c in at if 0 <= r < height and 0 <= c < width)
        chosen = tuple(dict.fromkeys(inside))
    else:
        count = height * width
        shown = count if count <= SMALL_OUTPUT else DEFAULT_SHOWN
        chosen = tuple((i // width, i % width) for i in range(min(shown, count)))
    return chosen if limit is None else chosen[:limit]
