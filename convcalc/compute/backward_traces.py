"""The arithmetic behind each gradient value of one apply layer (``apply --backward --steps``).

Every rank: a signal's kernel taps and input cells are (i,), an image's (row, col), a
volume's (slice, row, col), as the forward steps' (`convcalc.compute.traces`).

`backward_trace` picks one layer of the pipeline (a convolution, or max, average or
global pooling), runs the layers before it to get its input, and backpropagates the
pipeline's dL/dY through the layers after it to get the layer's own dL/dY (dL/dY of
layer N = dL/dX of layer N+1). Then the layer's arithmetic:

* a convolution (`convcalc.compute.backward_conv`): each kernel value's gradient
  ``dL/dW[i, j] = Σ_o dL/dY[o]·X[o·s + (i, j)·d]``, and each input cell's
  ``dL/dX = Σ dL/dY × W`` over the windows that read it (the full convolution of
  dL/dY with the kernel rotated 180°);
* pooling (`convcalc.compute.backward_pool`): each input cell's gradient, summed over
  the windows that contain it: dL/dY where the cell is the window's max (max
  pooling), dL/dY ÷ the window's divisor (average pooling).

Every `GradStep` keeps its terms as (dL/dY, factor) pairs; their products add up to
``value``, which equals `convcalc.compute.gradients.backward`'s gradient (exactly for
integer data; to rounding otherwise, as the step sums in float64).

Positions: kernel taps (i, j) and input cells (r, c) are chosen as `traces` chooses
output positions: all of them up to `SMALL_OUTPUT`, else the first `DEFAULT_SHOWN`;
``at`` picks positions (each where it fits: a kernel tap, an input cell or both),
``limit`` caps how many of each.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from convcalc.calc.layers import Conv, GlobalPool, Pool
from convcalc.compute.arrays import Array, working_array
from convcalc.compute.backward_conv import conv_trace
from convcalc.compute.backward_pool import pool_trace
from convcalc.compute.backward_records import (
    BackwardTrace,
    GradStep,
    PoolWindow,
    Upstream,
)
from convcalc.compute.gradients import backward
from convcalc.compute.pipeline import (
    Settings,
    Stage,
    as_data,
    filter_group,
    group_channels,
    run,
)
from convcalc.compute.traces import DEFAULT_SHOWN, SMALL_OUTPUT, Position, plain_number
from convcalc.errors import ConvcalcError

__all__ = [
    "DEFAULT_SHOWN",
    "SMALL_OUTPUT",
    "BackwardTrace",
    "GradStep",
    "PoolWindow",
    "Upstream",
    "backward_trace",
    "backward_trace_json",
]

UPSTREAM_CELLS = 400
"""JSON gives the traced layer's dL/dY values when it has at most this many per channel."""

_Tracer = Callable[
    [Array, Stage, Settings, Upstream, Sequence[Position], int | None], BackwardTrace
]

_TRACERS: dict[type, _Tracer] = {Conv: conv_trace, Pool: pool_trace, GlobalPool: pool_trace}
"""The layers whose gradient arithmetic is traced, by kind."""


def backward_trace(
    x: Array,
    stages: Sequence[Stage],
    settings: Settings,
    grad_output: Any = None,
    *,
    layer: int = 1,
    at: Sequence[Position] = (),
    limit: int | None = None,
) -> BackwardTrace:
    """Work out the arithmetic of the gradients of layer ``layer`` (1-based) of a pipeline.

    Parameters
    ----------
    x : array, HxWxC (or HxW); at ``settings.rank`` 1 L x C (or L), at 3 DxHxWxC (or DxHxW)
        The pipeline's input; layers ``1 .. layer-1`` run on it first.
    stages : sequence of Stage
        Layers of the run's rank; the one traced is a convolution or a max/average
        (global) pooling.
    settings : Settings
        Padding mode, channel mode, flip, exclude_pad, convention and rank, as in `run`.
    grad_output : array, Ho x Wo x F (or Ho x Wo; (*O) x F), optional
        dL/dY of the pipeline's output; all ones when not given.
    layer : int
        The layer to trace; its dL/dY is dL/dX of layer ``layer + 1``.
    at : sequence of positions
        Kernel taps and input cells to show, one index per spatial axis ((row, col) for
        an image); default as the module says.
    limit : int, optional
        At most this many kernel taps and this many input cells.

    Returns
    -------
    BackwardTrace
        Kernel steps first (a convolution), then input steps cell by cell.

    Raises
    ------
    ConvcalcError
        A layer number out of range or naming a layer without traced gradients, a
        position outside both the kernel and the input, a limit below 1, or what
        `backward` refuses.
    """
    if not 1 <= layer <= len(stages):
        raise ConvcalcError(f"layer {layer} is not valid; valid: 1 to {len(stages)}")
    if limit is not None and limit < 1:
        raise ConvcalcError(f"limit {limit} is not valid; valid: 1 or more")
    whole = backward(x, stages, settings, grad_output)  # refuses what --backward refuses
    stage = stages[layer - 1]
    tracer = _TRACERS.get(type(stage.spec.layer))
    if tracer is None:
        raise ConvcalcError(_untraced(stages, layer))
    xa = working_array(as_data(x, settings.rank))
    if layer > 1:
        xa = working_array(run(xa, stages[: layer - 1], settings).output)
    upstream = Upstream(whole.grad_output, layer, len(stages))
    if layer < len(stages):
        y = run(xa, [stage], settings).output
        after = backward(y, stages[layer:], settings, whole.grad_output)
        upstream = Upstream(after.grad_input, layer, len(stages), stages[layer].spec.text)
    try:
        return tracer(xa, stage, settings, upstream, at, limit)
    except ConvcalcError as exc:
        if len(stages) == 1:
            raise
        raise ConvcalcError(f"layer {layer} ({stage.spec.text}): {exc}", exc.hint) from None


def backward_trace_json(t: BackwardTrace) -> dict[str, Any]:
    """The JSON document of a backward trace.

    ``{"backward_steps": [...]}`` with the layer (its number, spec and ``kind``:
    conv, pool or global_pool, with ``op`` max or avg for pooling), the shapes and
    position counts, and ``upstream``: where the layer's dL/dY came from
    (``from_layer``, the next layer's number and ``from_spec``, or null for the last
    layer) and its ``values`` (Ho x Wo x C; (*O) x C) when small. Each step has ``grad``
    (``kernel`` or ``input``), ``filter`` (kernel) and/or ``channel``, ``position``,
    ``terms`` ([dL/dY, x], [dL/dY, w], [dL/dY, 1 or 0] for max pooling, [dL/dY,
    1/count] for average pooling) and ``value``; a pooling step also ``windows``,
    one per term: ``output`` and ``winner``, ``max`` (max) or ``count`` (avg). A
    grouped convolution (``groups``) gives each step its ``group``, and a kernel step
    the ``input_channel`` its ``channel`` (the kernel's own) reads.
    Whole values are integers when the layer's numbers were.

    At rank 1 and 3 the document also says ``rank`` (as `trace_json` does), and
    positions, outputs and winners have one index per spatial axis.
    """

    def num(v: float) -> float | int | None:
        return plain_number(v, t.integral)

    def nested(a: Array) -> Any:
        return num(float(a)) if a.ndim == 0 else [nested(inner) for inner in a]

    def window(w: PoolWindow) -> dict[str, Any]:
        doc: dict[str, Any] = {"output": list(w.output)}
        if w.winner is not None and w.best is not None:
            doc |= {"winner": list(w.winner), "max": num(w.best)}
        if w.count is not None:
            doc["count"] = w.count
        return doc

    def step(s: GradStep) -> dict[str, Any]:
        doc: dict[str, Any] = {"grad": s.grad}
        if s.filter is not None:
            doc["filter"] = s.filter
        if s.channel is not None:
            doc["channel"] = s.channel
        if t.groups > 1:
            doc |= _group_keys(t, s)
        doc |= {
            "position": list(s.position),
            "terms": [[num(a), num(b)] for a, b in s.terms],
            "value": num(s.value),
        }
        if t.pool is not None:
            doc["windows"] = [window(w) for w in s.windows]
        return doc

    up = t.upstream
    grad = np.asarray(up.grad)
    upstream: dict[str, Any] = {
        "from_layer": up.layer + 1 if up.next_text is not None else None,
        "from_spec": up.next_text,
    }
    if math.prod(grad.shape[:-1]) <= UPSTREAM_CELLS:
        upstream["values"] = nested(grad)
    kind: dict[str, Any] = {"kind": str(t.kind)}
    if t.pool is not None:
        kind["op"] = str(t.pool)
    return {
        **({} if t.rank == 2 else {"rank": t.rank}),
        "layer": up.layer,
        "layer_text": t.layer_text,
        **kind,
        "input_shape": list(t.input_shape),
        "output_shape": list(t.output_shape),
        **({"groups": t.groups} if t.groups > 1 else {}),
        "kernel_positions": t.kernel_total,
        "kernel_omitted": t.kernel_omitted,
        "input_positions": t.input_total,
        "input_omitted": t.input_omitted,
        "upstream": upstream,
        "backward_steps": [step(s) for s in t.steps],
    }


def _group_keys(t: BackwardTrace, s: GradStep) -> dict[str, int]:
    """A grouped layer's step: its ``group``, and for a kernel value the
    ``input_channel`` its channel (the place in the group) reads."""
    channels = t.input_shape[-1]
    if s.filter is None:
        assert s.channel is not None
        return {"group": s.channel // (channels // t.groups)}
    keys = {"group": filter_group(s.filter, t.filters, t.groups)}
    if s.channel is not None:
        seen = group_channels(s.filter, t.filters, channels, t.groups)
        keys["input_channel"] = seen[s.channel]
    return keys


def _untraced(stages: Sequence[Stage], layer: int) -> str:
    """Why layer ``layer`` is not traced, and which layers are."""
    text = stages[layer - 1].spec.text
    traced = [n for n, s in enumerate(stages, start=1) if type(s.spec.layer) in _TRACERS]
    if len(stages) == 1:
        where = "drop --steps for the gradients alone"
    elif traced:
        where = f"--steps-layer {' or '.join(map(str, traced))}, or drop --steps"
    else:
        where = "no layer of this pipeline is one; drop --steps for the gradients alone"
    got = f"layer {layer} is '{text}'" if len(stages) > 1 else f"got '{text}'"
    return (
        f"--backward --steps traces a conv or a max/average pooling layer; {got} (valid: {where})"
    )
