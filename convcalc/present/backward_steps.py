"""Rich rendering of a `convcalc.compute.backward_traces.BackwardTrace`: each gradient
value's arithmetic, ``dL/dW[0,0] = 1×1 + 1×1 + … = 6``.

Imported only when backward steps are printed. Numbers, products and line wrapping
are those of the forward steps (`convcalc.present.steps`). Every rank: positions have
one index per spatial axis (``dL/dX[4]`` on a signal, ``dL/dX[0,1,2]`` on a volume),
and a volume's dL/dY grid is drawn slice by slice, as the forward steps draw windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.console import Console, ConsoleOptions, ConsoleRenderable, RenderResult
from rich.text import Text

from convcalc.calc.choices import Activation, PoolKind, TraceKind
from convcalc.compute.arrays import Array
from convcalc.compute.backward_traces import BackwardTrace, GradStep
from convcalc.compute.pipeline import filter_group, group_channels
from convcalc.present.numbers import per_axis
from convcalc.present.steps import (
    AT_FORMS,
    cell_text,
    factor_text,
    groups_fact,
    side_by_side,
    whole_text,
    wrapped_terms,
)

GRID_CELLS = 36
"""dL/dY is printed as a grid (when it is not all ones) up to this many cells per channel."""
GRID_COLUMNS = 12
"""… and this many columns,"""
GRID_CHANNELS = 4
"""… and this many channels,"""
GRID_SLICES = 6
"""… and (a volume) this many depth slices. A signal's values, up to GRID_CELLS, are one row."""


def backward_steps_renderable(
    trace: BackwardTrace, upstream: str = "all ones"
) -> ConsoleRenderable:
    """The trace as lines of text fitted to the console's width at render time.

    A header names the layer and dL/dY (``upstream``, the pipeline's: in a pipeline
    the layer's own is dL/dX of the next layer, printed as a grid when small); then
    the kernel gradient's values (``dL/dW[i,j] = dL/dY×X + …``, a convolution) and the
    input gradient's (``dL/dX[r,c] = dL/dY×W + …``; pooling: ``dL/dY×1`` where the
    cell is the window's max, ``dL/dY/count`` for an average, with the windows
    named), each section closing with how many were left out.
    """
    return _View(trace, upstream)


@dataclass(frozen=True)
class _View:
    trace: BackwardTrace
    upstream: str

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from backward_steps_lines(self.trace, options.max_width, self.upstream)


def backward_steps_lines(
    trace: BackwardTrace, width: int, upstream: str = "all ones"
) -> list[Text]:
    """The rendered lines of a backward trace, none wider than ``width`` cells."""
    lines = _header(trace, upstream) + _upstream_grid(trace, width)
    cells = [s for s in trace.steps if s.grad == "input"]
    if trace.kind == TraceKind.CONV:
        kernel = [s for s in trace.steps if s.grad == "kernel"]
        outputs = "x".join(str(a.size) for a in trace.axes)
        lines += [
            Text(""),
            Text(
                f"dL/dW: each kernel value sums, over the {outputs} output "
                "positions, dL/dY × the input value its tap reads (terms dL/dY×X)",
                style="bold",
            ),
        ]
        lines += [line for s in kernel for line in _step_lines(trace, s, width)]
        lines += _omitted(
            trace, trace.kernel_total - trace.kernel_omitted, trace.kernel_total, "kernel taps"
        )
        lines += [Text(""), Text(_CONV_INPUT, style="bold")]
        lines += [line for s in cells for line in _step_lines(trace, s, width)]
    else:
        heading = _MAX_INPUT if trace.pool == PoolKind.MAX else _AVG_INPUT
        lines += [Text(""), Text(heading, style="bold")]
        lines += [line for s in cells for line in _pool_lines(trace, s, width)]
    lines += _omitted(
        trace, trace.input_total - trace.input_omitted, trace.input_total, "input cells"
    )
    return lines


_CONV_INPUT = (
    "dL/dX: each input cell sums, over the windows that read it, dL/dY × the kernel "
    "value at the tap that reads it: the full convolution of dL/dY with the kernel "
    "rotated 180° (terms dL/dY×W)"
)
_GROUPED = (
    "grouped: filter f reads only its group's channels, so its kernel's channel k is the "
    "k-th channel of its group, and an input cell's dL/dX sums over its group's filters alone"
)
_MAX_INPUT = (
    "dL/dX: each input cell sums, over the windows that contain it, dL/dY × 1 where it "
    "is the window's max and × 0 where it is not: each window's dL/dY goes to its max "
    "alone (on a tie the first in row-major order, as PyTorch) (terms dL/dY×1 or ×0)"
)
_AVG_INPUT = (
    "dL/dX: each input cell sums, over the windows that contain it, dL/dY divided by "
    "the count that window's average divides by: each window spreads its dL/dY evenly "
    "(terms dL/dY/count)"
)


def _header(trace: BackwardTrace, upstream: str) -> list[Text]:
    shape_in, shape_out = ("x".join(map(str, s)) for s in (trace.input_shape, trace.output_shape))
    up = trace.upstream
    where = f"layer {up.layer} of {up.layers} ({trace.layer_text})" if up.layers > 1 else ""
    lines = [
        Text(
            f"backward through {where or trace.layer_text}: {shape_in} → {shape_out}",
            style="bold",
        ),
        Text(_facts(trace)),
        Text(_source(trace, upstream)),
    ]
    if trace.groups > 1:
        lines.append(Text(_GROUPED))
    if trace.activation != Activation.NONE:
        lines.append(
            Text(
                f"dL/dY below is taken before the {trace.activation}: "
                f"dL/dY × {trace.activation}′ at each output"
            )
        )
    return lines


def _facts(trace: BackwardTrace) -> str:
    """Kernel (or window), stride, padding, dilation, flip: ``kernel 3x3, stride 1, …``."""
    if trace.kind == TraceKind.GLOBAL_POOL:
        whole = whole_text(trace.rank, tuple(a.n for a in trace.axes))
        return f"global {trace.pool} pooling: one window, {whole}"
    size = "x".join(str(a.kernel) for a in trace.axes)
    facts = [
        f"kernel {size}" if trace.kind == TraceKind.CONV else f"{trace.pool} pooling {size}",
        f"stride {per_axis(tuple(str(a.stride) for a in trace.axes))}",
    ]
    padded = any(a.pad_lo or a.pad_hi for a in trace.axes)
    pads = per_axis(
        tuple(
            f"{a.pad_lo}" if a.pad_lo == a.pad_hi else f"{a.pad_lo}/{a.pad_hi}" for a in trace.axes
        )
    )
    mode = f" ({trace.pad_mode})" if trace.kind == TraceKind.CONV else ""
    facts.append(f"padding {pads}{mode}" if padded else "no padding")
    if any(a.dilation != 1 for a in trace.axes):
        facts.append(f"dilation {per_axis(tuple(str(a.dilation) for a in trace.axes))}")
    if trace.flip:
        facts.append("kernel flipped")
    if trace.groups > 1:
        facts.append(groups_fact(trace.groups, trace.input_shape[-1]))
    return ", ".join(facts)


def _source(trace: BackwardTrace, upstream: str) -> str:
    """Where dL/dY comes from: the pipeline's, or dL/dX of the next layer."""
    up = trace.upstream
    if up.layers == 1:
        return f"dL/dY = {upstream}"
    if up.next_text is None:
        return f"dL/dY of layer {up.layer} (the last) = {upstream}"
    head = f"dL/dY of layer {up.layer} = dL/dX of layer {up.layer + 1} ({up.next_text})"
    if up.layer + 1 == up.layers:
        return f"{head}, from its dL/dY = {upstream}"
    return f"{head}, backpropagated from dL/dY of layer {up.layers} = {upstream}"


def _upstream_grid(trace: BackwardTrace, width: int) -> list[Text]:
    """dL/dY per channel, when it is not all ones and small: an image's as a grid, a
    signal's as one row (wrapped to the width), a volume's as its depth slices side by
    side."""
    grad = np.asarray(trace.upstream.grad, dtype=np.float64)
    *spatial, channels = grad.shape
    rows, cols = (1, spatial[0]) if trace.rank == 1 else spatial[-2:]
    too_large = (
        rows * cols > GRID_CELLS
        or (trace.rank > 1 and cols > GRID_COLUMNS)
        or channels > GRID_CHANNELS
        or (trace.rank == 3 and spatial[0] > GRID_SLICES)
    )
    if too_large or np.all(grad == 1):
        return []
    lines = []
    name = f"dL/dY of layer {trace.upstream.layer}" if trace.upstream.layers > 1 else "dL/dY"
    for c in range(channels):
        lines.append(Text(name + (f", channel {c}:" if channels > 1 else ":")))
        if trace.rank == 3:
            slices = [(f"slice {d}", grad[d, ..., c], None) for d in range(spatial[0])]
            lines += side_by_side(slices, (1, 1), 2, width)
        elif trace.rank == 1:
            lines += wrapped_terms("", _aligned(grad[None, :, c])[0], " ", "", 2, width)
        else:
            lines += [Text("  " + " ".join(row)) for row in _aligned(grad[..., c])]
    return lines


def _aligned(grid: Array) -> list[list[str]]:
    """A 2-D grid's values as text, right-aligned to the widest."""
    texts = [[cell_text(v) for v in row] for row in grid]
    size = max(len(t) for row in texts for t in row)
    return [[t.rjust(size) for t in row] for row in texts]


def _step_lines(trace: BackwardTrace, step: GradStep, width: int) -> list[Text]:
    index = ",".join(map(str, step.position))
    if step.grad == "kernel":
        name = f"dL/dW[{index}{'' if step.channel is None else f',{step.channel}'}]"
        if trace.filters > 1:
            name = f"filter {step.filter}: {name}"
        if trace.groups > 1 and step.filter is not None and step.channel is not None:
            seen = group_channels(step.filter, trace.filters, trace.input_shape[-1], trace.groups)
            group = filter_group(step.filter, trace.filters, trace.groups)
            name += f" (input channel {seen[step.channel]}, group {group})"
    else:
        name = _cell_name(trace, step)
    terms = [f"{factor_text(a)}×{factor_text(b)}" for a, b in step.terms]
    return _sum_lines(name, terms, step.value, width)


def _pool_lines(trace: BackwardTrace, step: GradStep, width: int) -> list[Text]:
    """``dL/dX[r,c] = 1×0 + 2×1 = 2`` then the windows: ``window (0,0): max 9 at (1,1)``."""
    if trace.pool == PoolKind.MAX:
        terms = [f"{factor_text(dy)}×{int(won)}" for dy, won in step.terms]
    else:
        pairs = zip(step.terms[:, 0], step.windows, strict=True)
        terms = [f"{factor_text(dy)}/{w.count}" for dy, w in pairs]
    head = _sum_lines(_cell_name(trace, step), terms, step.value, width)
    if not step.windows:
        return [*head, Text("    in no window: no gradient reaches it")]
    names = []
    for w in step.windows:
        at = _index(w.output)
        if w.winner is not None and w.best is not None:
            found = "here" if w.winner == step.position else f"at {_index(w.winner)}"
            at += f": max {cell_text(w.best)} {found}"
        names.append(at)
    label = "window " if len(names) == 1 else "windows "
    sep = "; " if trace.pool == PoolKind.MAX else ", "
    return head + wrapped_terms(label, names, sep, "", 4, width)


def _sum_lines(name: str, terms: list[str], value: float, width: int) -> list[Text]:
    """``name = a + b + … = value`` wrapped to ``width``; ``name = 0`` without terms."""
    if not terms:
        return [Text(f"  {name} = {cell_text(value)}")]
    return wrapped_terms(f"{name} = ", terms, " + ", f" = {cell_text(value)}", 2, width)


def _cell_name(trace: BackwardTrace, step: GradStep) -> str:
    index = ",".join(map(str, step.position))
    return f"dL/dX[{index}{f',{step.channel}' if trace.input_shape[-1] > 1 else ''}]"


def _index(position: tuple[int, ...]) -> str:
    """A window or cell as ``(1,2)``: one index per spatial axis, ``(3)`` on a signal."""
    return "(" + ",".join(map(str, position)) + ")"


def _omitted(trace: BackwardTrace, shown: int, total: int, what: str) -> list[Text]:
    if shown == total:
        return []
    return [
        Text(
            f"  {shown} of {total} {what} shown, {total - shown} left out; use "
            f"--at {AT_FORMS[trace.rank]} or --limit N for others",
            style="italic",
        )
    ]
