"""Rich rendering of a `convcalc.compute.traces.Trace`: each output value's arithmetic.

Imported only when steps are printed. The text reads without colour: padding
cells carry a ``·`` before their value, the cells a dilated kernel skips are
drawn as ``∘``, and the largest cell of a max-pooling window carries a ``*``.
Negative numbers use the Unicode minus and are parenthesised inside products,
``0×(−1)``. Lines are wrapped between terms to the console's width.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rich.console import Console, ConsoleOptions, ConsoleRenderable, RenderResult
from rich.text import Text

from convcalc.calc.axes import axis_names
from convcalc.calc.choices import Activation, PoolKind, TraceKind
from convcalc.compute.pipeline import group_text
from convcalc.compute.traces import Array, ConvStep, PoolStep, Position, Trace
from convcalc.present.numbers import number, per_axis

MAX_GRID = 12
"""Windows spanning more rows or columns than this are not drawn as grids."""

MAX_TERMS = 49
"""Products (or pooled values) listed in full up to this many; more are elided."""

AT_FORMS = {1: "N", 2: "ROW,COL", 3: "D,ROW,COL"}
"""How ``--at`` writes an output position at each rank."""

_WHOLE = {1: "signal", 2: "map", 3: "volume"}
"""What a global pooling window covers at each rank."""

_GAP = "    "
_PADDING, _HOLE, _MAX = "·", "∘", "*"


def steps_renderable(trace: Trace) -> ConsoleRenderable:
    """The trace as lines of text fitted to the console's width at render time.

    A header names the layer and what the marks mean; then, per step, a heading
    (``output (0, 0), filter 0: input rows −1..1, columns −1..1``), window and kernel
    side by side, the products with their sum, and for several channels or a
    bias the ``F1 + F2 + F3 + b = value`` line; a closing line tells how many
    positions were left out.
    """
    return _StepsView(trace)


@dataclass(frozen=True)
class _StepsView:
    trace: Trace

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from steps_lines(self.trace, options.max_width)


def steps_lines(trace: Trace, width: int) -> list[Text]:
    """The rendered lines of a trace, none wider than ``width`` cells."""
    lines = _header(trace)
    for step in trace.steps:
        lines.append(Text(""))
        if isinstance(step, ConvStep):
            lines += _conv_lines(trace, step, width)
        else:
            lines += _pool_lines(trace, step, width)
    if trace.omitted:
        shown = trace.total_positions - trace.omitted
        lines += [
            Text(""),
            Text(
                f"{shown} of {trace.total_positions} positions shown; use "
                f"--at {AT_FORMS[trace.rank]} or --limit N for others",
                style="italic",
            ),
        ]
    return lines


# -- one step --------------------------------------------------------------------


def _conv_lines(trace: Trace, step: ConvStep, width: int) -> list[Text]:
    single = len(step.channels) == 1
    title = f"output {position_text(step.position)}"
    if trace.groups > 1:
        seen = group_text(step.filter, trace.filters, trace.input_shape[-1], trace.groups)
        title += f", filter {step.filter} {seen}"
    elif trace.filters > 1:
        title += f", filter {step.filter}"
    if single and trace.input_shape[-1] > 1 and trace.groups == 1:
        title += f", channel {step.channels[0].channel}"
        if trace.filters > 1:
            title += f" (output channel {step.output_channel})"
    lines = _heading(title, _where(trace, step.origin), width)
    indent = 2 if single else 4
    kernel_label = "kernel, rotated" if trace.kind == TraceKind.DECONV else "kernel"
    for part in step.channels:
        if not single:
            lines.append(Text(f"  channel {part.channel}", style="bold"))
        marks = np.where(part.padding, _PADDING, "")
        lines += _windows(
            trace,
            step.origin,
            [("window", part.window, marks), (kernel_label, part.kernel, None)],
            indent,
            width,
        )
        terms = [
            f"{factor_text(a)}×{factor_text(b)}"
            for a, b in zip(part.window.ravel(), part.kernel.ravel(), strict=True)
        ]
        lines += wrapped_terms("", terms, " + ", f" = {cell_text(part.sum)}", indent, width)
    sums = [p.sum for p in step.channels] + ([step.bias] if trace.has_bias else [])
    if not single or trace.has_bias:
        label = ("channels" if not single else "sum") + (" + bias" if trace.has_bias else "")
        lines += wrapped_terms(
            f"{label}: ",
            [factor_text(v) for v in sums],
            " + ",
            f" = {cell_text(step.total)}",
            2,
            width,
        )
    if trace.activation != Activation.NONE:
        lines.append(
            Text(f"  {trace.activation}({cell_text(step.total)}) = {cell_text(step.value)}")
        )
    return lines


def _pool_lines(trace: Trace, step: PoolStep, width: int) -> list[Text]:
    title = f"output {position_text(step.position)}"
    if trace.output_shape[-1] > 1:
        title += f", channel {step.channel}"
    where = (
        whole_text(trace.rank, step.window.shape)
        if trace.kind == TraceKind.GLOBAL_POOL
        else _where(trace, step.origin)
    )
    lines = _heading(title, where, width)
    marks = np.where(step.padding, _PADDING, "")
    if step.argmax is not None:
        marks[step.argmax] = _MAX
    lines += _windows(trace, step.origin, [("window", step.window, marks)], 2, width)
    values = step.window.ravel()
    value = cell_text(step.value)
    if step.op == PoolKind.MAX:
        lines += wrapped_terms(
            "max(", [cell_text(v) for v in values], ", ", f") = {value}", 2, width
        )
    elif step.op == PoolKind.AVG:
        lines += wrapped_terms(
            "(", [factor_text(v) for v in values], " + ", f") / {step.divisor} = {value}", 2, width
        )
    else:
        squares = cell_text(float(np.sum(values * values)))
        lines += wrapped_terms(
            "sqrt(",
            [f"{factor_text(v)}²" for v in values],
            " + ",
            f") = sqrt({squares}) = {value}",
            2,
            width,
        )
    return lines


# -- pieces -----------------------------------------------------------------------


def _heading(title: str, where: str, width: int) -> list[Text]:
    if len(title) + 2 + len(where) <= width:
        return [Text(f"{title}: {where}", style="bold")]
    return [Text(f"{title}:", style="bold"), Text(f"  {where}", style="bold")]


def _header(trace: Trace) -> list[Text]:
    shape_in, shape_out = ("x".join(map(str, s)) for s in (trace.input_shape, trace.output_shape))
    lines = [
        Text(f"layer {trace.layer} ({trace.layer_text}): {shape_in} → {shape_out}", style="bold")
    ]
    if trace.kind == TraceKind.GLOBAL_POOL:
        lines.append(
            Text(f"global pooling: one value per channel from its whole {_WHOLE[trace.rank]}")
        )
    else:
        lines += _facts(trace)
    lines += _legend(trace)
    return lines


def _facts(trace: Trace) -> list[Text]:
    """Kernel or window size, stride, padding, dilation and activation of the layer."""
    size = "x".join(str(a.kernel) for a in trace.axes)
    pads = per_axis(
        tuple(
            f"{a.pad_lo}" if a.pad_lo == a.pad_hi else f"{a.pad_lo}/{a.pad_hi}" for a in trace.axes
        )
    )
    padded = any(a.pad_lo or a.pad_hi for a in trace.axes)
    facts = [
        f"kernel {size}" if trace.kind != TraceKind.POOL else f"window {size}",
        f"stride {per_axis(tuple(str(a.stride) for a in trace.axes))}",
        f"padding {pads}" if padded else "no padding",
    ]
    if trace.kind == TraceKind.CONV and padded:
        facts[-1] += f" ({trace.pad_mode})"
    if _dilated(trace):
        facts.append(f"dilation {per_axis(tuple(str(a.dilation) for a in trace.axes))}")
    if trace.groups > 1:
        facts.append(groups_fact(trace.groups, trace.input_shape[-1]))
    if trace.activation != Activation.NONE:
        facts.append(f"then {trace.activation}")
    lines = [Text(", ".join(facts))]
    if trace.kind == TraceKind.DECONV:
        zeros = per_axis(tuple(str(a.stride - 1) for a in trace.axes))
        borders = [a.span - 1 - a.pad_lo for a in trace.axes]
        border = per_axis(tuple(cell_text(b) for b in borders))
        crop = " (a negative count crops)" if min(borders) < 0 else ""
        lines.append(
            Text(
                f"transposed, shown as a stride-1 correlation: the input stretched "
                f"with {zeros} zero{'' if zeros == '1' else 's'} between its cells "
                f"(cell k at stretched k·s) and padded by {border}{crop}, the kernel "
                "rotated by 180°"
            )
        )
    return lines


def _legend(trace: Trace) -> list[Text]:
    """What the marks in the grids mean, for the marks that appear."""
    legend = []
    if any(_padded(s) for s in trace.steps):
        legend.append(
            (
                _PADDING,
                "padding" + (" and inserted zeros" if trace.kind == TraceKind.DECONV else ""),
            )
        )
    if _dilated(trace):
        legend.append((_HOLE, "a cell the dilated window skips"))
    if any(isinstance(s, PoolStep) and s.argmax is not None for s in trace.steps):
        legend.append((_MAX, "the largest value"))
    if legend:
        text = "; ".join(f"{mark} {meaning}" for mark, meaning in legend)
        return [Text(text.replace(" ", " marks ", 1), style="dim")]
    return []


def _padded(step: ConvStep | PoolStep) -> bool:
    if isinstance(step, PoolStep):
        return bool(step.padding.any())
    return any(bool(c.padding.any()) for c in step.channels)


def side_by_side(
    grids: Sequence[tuple[str, Array, Array | None]],
    dilation: tuple[int, int],
    indent: int,
    width: int,
) -> list[Text]:
    """Labelled grids next to each other, or one under another when they do not fit."""
    blocks: list[tuple[str, list[Text]]] = []
    for label, values, marks in grids:
        rows = _grid(values, marks, dilation)
        span = ((values.shape[0] - 1) * dilation[0] + 1, (values.shape[1] - 1) * dilation[1] + 1)
        if max(span) > MAX_GRID or indent + max(len(r) for r in rows) > width:
            shown = "x".join(map(str, span))
            blocks.append(
                (label, [Text(f"{shown}, too large to draw; --json has every value", style="dim")])
            )
        else:
            blocks.append((label, rows))
    widths = [max(len(label), *(len(r) for r in rows)) for label, rows in blocks]
    pad = " " * indent
    if indent + sum(widths) + len(_GAP) * (len(blocks) - 1) > width:
        out: list[Text] = []
        for label, rows in blocks:
            out += [Text(pad + label, style="dim"), *(Text(pad) + r for r in rows)]
        return out
    lines = [
        Text(
            pad
            + _GAP.join(
                label.ljust(w) for (label, _), w in zip(blocks, widths, strict=True)
            ).rstrip(),
            style="dim",
        )
    ]
    for i in range(max(len(rows) for _, rows in blocks)):
        line = Text(pad)
        for k, ((_, rows), w) in enumerate(zip(blocks, widths, strict=True)):
            cell = rows[i] if i < len(rows) else Text("")
            line += (Text(_GAP) if k else Text("")) + cell
            if k < len(blocks) - 1:
                line += Text(" " * (w - len(cell)))
        line.rstrip()
        lines.append(line)
    return lines


def _grid(values: Array, marks: Array | None, dilation: tuple[int, int]) -> list[Text]:
    """A KH x KW grid drawn over its dilated span, the skipped cells as holes."""
    kh, kw = values.shape
    dh, dw = dilation
    cells = [[(_HOLE, "dim")] * ((kw - 1) * dw + 1) for _ in range((kh - 1) * dh + 1)]
    for i in range(kh):
        for j in range(kw):
            mark = "" if marks is None else str(marks[i, j])
            style = {"": "", _PADDING: "dim", _MAX: "bold"}[mark]
            cells[i * dh][j * dw] = (mark + cell_text(values[i, j]), style)
    size = max(len(text) for row in cells for text, _ in row)
    return [
        Text(" ").join(Text(text.rjust(size), style=style) for text, style in row) for row in cells
    ]


def wrapped_terms(
    prefix: str, terms: Sequence[str], sep: str, tail: str, indent: int, width: int
) -> list[Text]:
    """``prefix`` + terms joined by ``sep`` + ``tail``, broken between terms to fit."""
    note = ""
    if len(terms) > MAX_TERMS:
        note = f"  ({len(terms)} terms, {len(terms) - 14} not shown)"
        terms = [*terms[:12], "…", *terms[-2:]]
    terms = [*terms[:-1], terms[-1] + tail]  # the tail stays with the last term
    pad, more = " " * indent, " " * (indent + 2)
    join = sep.rstrip()
    lines, current = [], pad + prefix + terms[0]
    for k, term in enumerate(terms[1:], start=2):
        room = len(sep) + len(term) + (len(join) if k < len(terms) else 0)
        if len(current) + room > width:
            lines.append(current + join)
            current = more + term
        else:
            current += sep + term
    if note and len(current) + len(note) > width:
        lines.append(current)
        current = more + note.lstrip()
    else:
        current += note
    lines.append(current)
    return [Text(line, overflow="fold") for line in lines]


def _where(trace: Trace, origin: Position) -> str:
    grid = "stretched " if trace.kind == TraceKind.DECONV else "input "
    parts = []
    for name, start, a in zip(axis_names(trace.rank), origin, trace.axes, strict=True):
        k, d = a.kernel, a.dilation
        every = f" every {d}" if d > 1 and k > 1 else ""
        parts.append(f"{name} {cell_text(start)}..{cell_text(start + (k - 1) * d)}{every}")
    return grid + ", ".join(parts)


def groups_fact(groups: int, channels: int) -> str:
    """``2 groups (each filter sees 2 of the 4 channels)``: a grouped layer in the facts."""
    return f"{groups} groups (each filter sees {channels // groups} of the {channels} channels)"


def cell_text(value: float) -> str:
    v = float(value)
    if np.isinf(v):
        return "∞" if v > 0 else "−∞"
    return number(v).replace("-", "−")


def factor_text(value: float) -> str:
    text = cell_text(value)
    return f"({text})" if text.startswith("−") else text


def whole_text(rank: int, shape: tuple[int, ...]) -> str:
    """What a global pooling window covers: ``the whole 5x5 map``, ``the whole signal
    (9 positions)``, ``the whole 3x4x5 volume``."""
    size = "x".join(map(str, shape))
    return (
        f"the whole signal ({size} positions)" if rank == 1 else f"the whole {size} {_WHOLE[rank]}"
    )


def _dilated(trace: Trace) -> bool:
    return any(a.dilation > 1 for a in trace.axes)


def position_text(position: Position) -> str:
    """An output position as ``(0, 1)``: one index per spatial axis, ``(3)`` for a signal."""
    return "(" + ", ".join(map(str, position)) + ")"


def _windows(
    trace: Trace,
    origin: Position,
    grids: Sequence[tuple[str, Array, Array | None]],
    indent: int,
    width: int,
) -> list[Text]:
    """A step's window (and kernel) grids, labelled, side by side where they fit.

    An image's are KH x KW grids; a signal's one row of K cells; a volume's one grid
    per depth slice, the window's slices in one row (named by the input slice they
    read) and the kernel's in the next.
    """
    dilation = tuple(a.dilation for a in trace.axes)
    if trace.rank == 2:
        return side_by_side(grids, (dilation[0], dilation[1]), indent, width)
    if trace.rank == 1:
        flat = [(label, v[None], None if m is None else m[None]) for label, v, m in grids]
        return side_by_side(flat, (1, dilation[0]), indent, width)
    lines: list[Text] = []
    for k, (label, values, marks) in enumerate(grids):
        slices = [
            (
                f"{label}, slice {cell_text(origin[0] + i * dilation[0]) if k == 0 else i}",
                values[i],
                None if marks is None else marks[i],
            )
            for i in range(values.shape[0])
        ]
        lines += side_by_side(slices, (dilation[1], dilation[2]), indent, width)
    return lines
