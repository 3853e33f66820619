"""The arithmetic behind each output value of one apply layer (``apply --steps``).

`trace` runs the layers before the chosen one with `convcalc.compute.pipeline.run`, then
works out, for a few output positions, the window of the (padded) input that the
kernel meets, the kernel as applied, the products and their sums, the bias and
the activation; for pooling the window and its max, average or L2 norm
(`convcalc.compute.trace_layouts` says what each layer computes at a position). Every
step's ``value`` equals the feature map `pipeline.run` computes at that position
and channel (exactly for integer values; to rounding for others, since the step
sums in float64 while the pipeline may use float32 or FFT).

Every rank: an image's positions are (row, col), a signal's (index,), a volume's
(slice, row, col), and windows have the kernel's rank (`Trace.rank`).

Positions: all of them when the output has at most `SMALL_OUTPUT` positions per
channel, else the first `DEFAULT_SHOWN` in row-major order; ``at`` picks
positions, ``limit`` caps how many. Steps come output channel by output channel
(filter-major, the pipeline's channel order), positions row-major within one.

A window is KH x KW: the cells the kernel taps, so with dilation d the tapped
cells are d apart in the input and the cells between them (holes) are skipped.
A transposed convolution is shown as the equivalent stride-1 correlation: the
input stretched by s-1 zeros between cells, padded by d(f-1) - p, and the
kernel rotated by 180°; the inserted zeros are marked as padding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from convcalc.calc.axes import axis_names
from convcalc.calc.choices import Activation, PadMode, TraceKind
from convcalc.calc.geometry import Axis
from convcalc.compute.arrays import working_array
from convcalc.compute.pipeline import Settings, Stage, as_data, filter_group, run
from convcalc.compute.trace_layouts import (
    Array,
    ChannelStep,
    ConvStep,
    PoolStep,
    Position,
    Step,
    all_whole,
    layout,
)
from convcalc.errors import ConvcalcError

__all__ = [
    "DEFAULT_SHOWN",
    "SMALL_OUTPUT",
    "Array",
    "ChannelStep",
    "ConvStep",
    "PoolStep",
    "Position",
    "Step",
    "Trace",
    "all_whole",
    "plain_number",
    "trace",
    "trace_json",
]

SMALL_OUTPUT = 36
"""Outputs with at most this many positions per channel show every position."""

DEFAULT_SHOWN = 4
"""How many positions (the first, row-major) larger outputs show by default."""


@dataclass(frozen=True)
class Trace:
    """The traced layer and its steps.

    Shapes are HxWxC (L x C, DxHxWxC at rank 1 and 3); ``axes`` the geometry per
    spatial axis (kernel or window, stride, dilation, padding before/after).
    ``total_positions`` counts positions per output channel, ``omitted`` those no step
    shows; ``filters`` counts the kernels (0 for pooling); ``integral`` says whether
    the layer's input, kernels and bias are all whole numbers (whole results then
    print as integers).
    """

    layer: int
    layer_text: str
    kind: TraceKind
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    axes: tuple[Axis, ...]
    filters: int
    steps: tuple[Step, ...]
    positions: tuple[Position, ...]
    total_positions: int
    omitted: int
    pad_mode: PadMode
    activation: Activation
    has_bias: bool
    integral: bool
    groups: int = 1
    """A grouped convolution's ``g=``: filter f reads only its group's channels."""

    @property
    def rank(self) -> int:
        """The spatial axes: 1 (a signal), 2 (an image) or 3 (a volume)."""
        return len(self.axes)


def trace(
    x: Array,
    stages: Sequence[Stage],
    settings: Settings,
    *,
    layer: int = 1,
    at: Sequence[Position] = (),
    limit: int | None = None,
) -> Trace:
    """Work out the arithmetic of some output values of layer ``layer`` (1-based).

    Parameters
    ----------
    x : array, HxWxC (or HxW); at ``settings.rank`` 1 L x C (or L), at 3 DxHxWxC (or DxHxW)
        The pipeline's input; layers ``1 .. layer-1`` run on it first.
    stages : sequence of Stage
    settings : Settings
        Padding mode, channel mode, flip, exclude_pad, convention and rank, as in `run`.
    layer : int
        The layer to trace: a conv, deconv, pooling or global pooling stage.
    at : sequence of positions
        Output positions to show, one index per spatial axis: (row, col) for an
        image (duplicates dropped); default as the module says.
    limit : int, optional
        At most this many positions.

    Returns
    -------
    Trace
        Steps filter-major (all positions of output channel 0, then 1 …).

    Raises
    ------
    ConvcalcError
        A layer number out of range or naming a layer without windows, a
        position outside the output, a limit below 1, or anything `run` refuses.
    """
    if not 1 <= layer <= len(stages):
        raise ConvcalcError(f"layer {layer} is not valid; valid: 1 to {len(stages)}")
    if limit is not None and limit < 1:
        raise ConvcalcError(f"limit {limit} is not valid; valid: 1 or more")
    xa = working_array(as_data(x, settings.rank))
    if layer > 1:
        xa = working_array(run(xa, stages[: layer - 1], settings).output)
    stage = stages[layer - 1]
    try:
        found = layout(xa, stage, settings)
    except ConvcalcError as exc:
        if len(stages) == 1:
            raise
        raise ConvcalcError(f"layer {layer} ({stage.spec.text}): {exc}", exc.hint) from None
    if found is None:
        raise ConvcalcError(
            f"layer {layer} ({stage.spec.text}) has no windows to show; valid: a conv, deconv "
            f"or pooling layer among 1 to {len(stages)}"
        )
    *spatial, channels = found.output_shape
    positions = _positions(at, limit, tuple(spatial))
    steps = tuple(found.step(p, o) for o in range(channels) for p in positions)
    total = math.prod(spatial)
    return Trace(
        layer,
        stage.spec.text,
        found.kind,
        tuple(xa.shape),
        found.output_shape,
        found.axes,
        found.filters,
        steps,
        positions,
        total,
        total - len(positions),
        settings.pad_mode,
        stage.activation,
        stage.bias is not None,
        found.integral,
        found.groups,
    )


def trace_json(t: Trace) -> dict[str, Any]:
    """The JSON document of a trace.

    ``{"output_shape": [H, W, C], "steps": [...]}`` and the layer, the input
    shape and position counts. A convolution step holds ``position``, ``filter``,
    ``output_channel``, ``channels`` (each ``channel``, ``window``, ``kernel``,
    ``sum``, ``padding_mask``), ``bias`` and ``value`` (and ``pre_activation``
    with an activation; ``group`` in a grouped layer, whose ``channels`` are then
    those of the filter's group); a pooling step ``position``, ``channel``, ``window``
    (null for max pooling's padding), ``op``, ``value``, ``padding_mask`` and
    ``argmax`` (max) or ``divisor`` (avg). Whole values are integers when the
    layer's inputs were.

    At rank 1 and 3 the document also says ``rank``; positions, origins and argmax
    have one index per spatial axis ([i]; [slice, row, col]) and windows, kernels and
    masks nest as deep as the kernel (K; KD x KH x KW).
    """

    def num(v: float) -> float | int | None:
        return plain_number(v, t.integral)

    def grid(a: Array) -> Any:
        return num(float(a)) if a.ndim == 0 else [grid(inner) for inner in a]

    def step(s: Step) -> dict[str, Any]:
        doc: dict[str, Any] = {"position": list(s.position)}
        if isinstance(s, PoolStep):
            doc |= {
                "channel": s.channel,
                "origin": list(s.origin),
                "window": grid(s.window),
                "op": str(s.op),
                "value": num(s.value),
                "padding_mask": s.padding.tolist(),
            }
            if s.argmax is not None:
                doc["argmax"] = list(s.argmax)
            if s.divisor is not None:
                doc["divisor"] = s.divisor
            return doc
        doc |= {
            "filter": s.filter,
            **({"group": filter_group(s.filter, t.filters, t.groups)} if t.groups > 1 else {}),
            "output_channel": s.output_channel,
            "origin": list(s.origin),
            "channels": [
                {
                    "channel": c.channel,
                    "window": grid(c.window),
                    "kernel": grid(c.kernel),
                    "sum": num(c.sum),
                    "padding_mask": c.padding.tolist(),
                }
                for c in s.channels
            ],
            "bias": num(s.bias),
            "value": num(s.value),
        }
        if t.activation != Activation.NONE:
            doc["pre_activation"] = num(s.total)
        return doc

    return {
        **({} if t.rank == 2 else {"rank": t.rank}),
        "layer": t.layer,
        "layer_text": t.layer_text,
        "kind": str(t.kind),
        "input_shape": list(t.input_shape),
        "output_shape": list(t.output_shape),
        **({"groups": t.groups} if t.groups > 1 else {}),
        "total_positions": t.total_positions,
        "omitted": t.omitted,
        "steps": [step(s) for s in t.steps],
    }


# -- helpers ---------------------------------------------------------------------


def _positions(
    at: Sequence[Position], limit: int | None, spatial: tuple[int, ...]
) -> tuple[Position, ...]:
    """The output positions to show: ``at`` (checked, duplicates dropped), else the
    first ones in row-major order; at most ``limit``."""
    names = axis_names(len(spatial))
    valid = ", ".join(f"{name} 0 to {n - 1}" for name, n in zip(names, spatial, strict=True))
    shape = "x".join(map(str, spatial))
    for p in at:
        if len(p) != len(spatial) or not all(0 <= i < n for i, n in zip(p, spatial, strict=True)):
            where = "(" + ", ".join(map(str, p)) + ")"
            raise ConvcalcError(f"position {where} is outside the {shape} output; valid: {valid}")
    if at:
        chosen = tuple(dict.fromkeys(tuple(int(i) for i in p) for p in at))
    else:
        count = math.prod(spatial)
        if limit is None:
            limit = count if count <= SMALL_OUTPUT else DEFAULT_SHOWN
        chosen = tuple(
            tuple(int(i) for i in np.unravel_index(k, spatial)) for k in range(min(limit, count))
        )
    return chosen if limit is None else chosen[:limit]


def plain_number(v: float, integral: bool) -> float | int | None:
    value = float(v)
    if not np.isfinite(value):
        return None
    # beyond 2**53 a float64 sum no longer vouches for every digit of an integer
    return int(value) if integral and value.is_integer() and abs(value) < 2**53 else value
