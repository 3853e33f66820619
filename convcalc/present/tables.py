"""Rich tables for the terminal. Imported only when a table is printed.

Numbers are never cut (DESIGN.md, "Formats"). Every table here fits the width it is
drawn at: numbers and layer specs never wrap, descriptive text wraps at spaces, and
a table still too wide leaves out its least needed columns with a note saying which
(`FittedTable`); a matrix too wide is shown in blocks of columns (`matrix_table`).
Nothing is shortened with an ellipsis: a table that cannot fit even so folds its
cells onto further lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NamedTuple

from rich import box
from rich.box import Box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, JustifyMethod, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from convcalc.calc.compare import Comparison, ratio, ratio_text, reading
from convcalc.calc.geometry import Solution
from convcalc.calc.merging import UNTRACKED
from convcalc.calc.network import LayerResult, NetworkResult
from convcalc.calc.training import TrainingCost
from convcalc.present.comparisons import counts
from convcalc.present.formatting import field_text, solution_spec
from convcalc.present.numbers import count, number, si, size_bytes

if TYPE_CHECKING:  # only an annotation: shape and params render tables without numpy
    from convcalc.compute.bench import Timing

_LABELS = {
    "conv": "convolution (shared weights)",
    "local": "locally connected (no sharing)",
    "dense": "fully connected, same output",
    "units": "fully connected, {n} units",
}


def stack_table(
    result: NetworkResult,
    convention: str,
    *,
    expand: bool = False,
    training: TrainingCost | None = None,
    other_ops: list[int] | None = None,
) -> Group:
    """A stack as a table (layer, output HxWxC, params, MACs, receptive field, memory).

    A group (or a block) is one row; with ``expand`` the layers inside follow it,
    indented, each branch's prefixed with its number. With ``training``, two more
    columns (what each layer keeps for the backward pass and its backward MACs, for
    the batch) and the training step's totals. On a narrow terminal the receptive
    field's start and jump go first, then the memory, the receptive field's size,
    the row number and the MACs.
    """
    rows = []
    for i, layer in enumerate(result.layers, start=1):
        layer_rows = _layer_rows(layer, str(i), "", expand)
        if other_ops is not None:
            ops = other_ops[i - 1]
            layer_rows = [(*layer_rows[0], si(ops) if ops else "0"),
                          *((*row, "") for row in layer_rows[1:])]  # fmt: skip
        if training is not None:
            cost = training.layers[i - 1]
            extra = (
                size_bytes(cost.kept_bytes * training.batch),
                si(cost.backward_macs * training.batch) if cost.backward_macs else "0",
            )
            layer_rows = [layer_rows[0] + extra, *((*row, "", "") for row in layer_rows[1:])]
        rows += layer_rows
    columns = (
        Col("#", drop=5),
        Col("layer", "left"),
        Col("output", "left"),
        Col("params"),
        Col("MACs", drop=6),
        Col("RF size", drop=4),
        Col("jump", drop=2),
        Col("start", drop=1),
        Col("memory", drop=3),
        *((Col("other ops", drop=7),) if other_ops is not None else ()),
        *((Col("kept", drop=8), Col("bwd MACs", drop=9)) if training is not None else ()),
    )
    table = FittedTable(columns, rows, title=f"input {result.input}  ({convention} rules)")
    extra_lines = [] if training is None else training_lines(training)
    if other_ops is not None:
        extra_lines.insert(0, Text(
            f"other operations (bias, batch norm, pooling, activations, adds, multiplies; "
            f"not MACs): {count(sum(other_ops))} = {si(sum(other_ops))}"
        ))  # fmt: skip
    return Group(table, *totals_lines(result), *extra_lines)


def training_lines(cost: TrainingCost) -> list[Text]:
    """The totals of a training step, under the table."""
    return [
        Text(
            f"training step: batch {cost.batch}, {cost.dtype}, {cost.optimizer}; "
            f"kept for backward: {size_bytes(cost.activations_bytes)}"
        ),
        Text(
            f"  weights {size_bytes(cost.weights_bytes)} + gradients "
            f"{size_bytes(cost.gradients_bytes)} + optimizer state "
            f"{size_bytes(cost.optimizer_bytes)} + activations "
            f"{size_bytes(cost.activations_bytes)} = peak {size_bytes(cost.total_bytes)}"
        ),
        Text(
            f"  MACs forward {count(cost.forward_macs)} = {si(cost.forward_macs)}, backward "
            f"{count(cost.backward_macs)} = {si(cost.backward_macs)} (FLOPs = 2 × MACs)"
        ),
    ]


Row = tuple[str, ...]
"""One table row's cells."""


def _layer_rows(layer: LayerResult, number: str, indent: str, expand: bool) -> list[Row]:
    """The row of one layer and, with ``expand``, the rows of the layers inside it."""
    size, jump, start = field_text(layer.receptive_field)
    marker = "" if layer.exact else " *"
    rows: list[Row] = [
        (
            number,
            indent + layer.spec,
            f"{layer.output}{marker}",
            count(layer.params),
            si(layer.macs) if layer.macs else "0",
            size,
            jump,
            start,
            size_bytes(layer.memory),
        )
    ]
    if not expand:
        return rows
    branches = layer.branches or ((layer.inner,) if layer.inner else ())
    for b, branch in enumerate(branches, start=1):
        mark = f"{b}| " if len(branches) > 1 else "| "
        if not branch:
            rows.append(("", f"{indent}  {mark}identity", *[""] * 7))
        for placed in branch:
            rows += _layer_rows(
                placed.result._replace(spec=placed.text), "", indent + "  " + mark, expand
            )
    return rows


def totals_lines(result: NetworkResult) -> list[Text]:
    """The totals under a stack table."""
    macs = result.total_macs
    lines = [
        Text(f"output {result.output}"),
        Text(f"parameters (trainable): {count(result.total_params)}"),
        Text(
            f"MACs (multiply-accumulates): {count(macs)} = {si(macs)}    "
            f"FLOPs = 2 × MACs = {si(2 * macs)}"
        ),
        Text(f"activation memory (float32, all layer outputs): {size_bytes(result.total_memory)}"),
    ]
    if result.total_buffers:
        lines.insert(
            2,
            Text(
                f"running statistics (batch norm, not trainable, not counted above): "
                f"{count(result.total_buffers)}"
            ),
        )
    if not all(layer.exact for layer in result.layers):
        lines.append(
            Text(
                "* the windows do not fit the input exactly (--explain says where)", style="yellow"
            )
        )
    if any(layer.receptive_field == UNTRACKED for layer in result.layers):
        lines.append(Text("? the receptive field is not tracked through a transposed convolution"))
    return lines


def comparison_table(c: Comparison, title: str) -> Group:
    """Params and MACs four ways, with ratios and one sentence of reading.

    On a narrow terminal the labels wrap, then the biases and the weights go.
    """
    rows = []
    for key, item in counts(c):
        label = _LABELS[key].format(n=f"{c.unit_count:,}" if c.unit_count else "")
        rows.append(
            (
                label,
                count(item.weights),
                count(item.biases),
                count(item.params),
                ratio_text(ratio(item, c.conv)),
                count(item.macs),
            )
        )
    columns = (
        Col("layer", "left", wraps=True),
        Col("weights", drop=2),
        Col("biases", drop=1),
        Col("parameters"),
        Col("× conv"),
        Col("MACs"),
    )
    return Group(FittedTable(columns, rows, title=title), Text(reading(c)))


def solutions_table(n: int, target: int, solutions: list[Solution], limit: int) -> FittedTable:
    """The ``--target`` answers as a table.

    The layer spec says every value; on a narrow terminal the columns repeating
    them go (dilation, kernel, stride, padding), never the spec or ``exact``.
    """
    rows = []
    for sol in solutions[:limit]:
        pad = str(sol.padding) + (f", op={sol.output_padding}" if sol.output_padding else "")
        rows.append(
            (
                solution_spec(sol),
                str(sol.kernel),
                str(sol.stride),
                pad,
                str(sol.dilation),
                "yes" if sol.exact else "no",
            )
        )
    columns = (
        Col("layer", "left"),
        Col("kernel", "left", drop=2),
        Col("stride", "left", drop=3),
        Col("padding", "left", drop=4),
        Col("dilation", "left", drop=1),
        Col("exact", "left"),
    )
    caption = (
        f"{len(solutions) - limit} more (use --json for all)" if len(solutions) > limit else None
    )
    return FittedTable(columns, rows, title=f"{n} → {target}", caption=caption)


def matrix_table(values: Any, title: str) -> MatrixTable:
    """A 2-D matrix (or each slice of a KHxKWxC one) as a table of its numbers, titled.

    Slices stand side by side; on a terminal too narrow for that, one under the
    other, and a slice still too wide in blocks of columns, each headed with the
    columns it holds.
    """
    planes = [values] if values.ndim == 2 else [values[:, :, c] for c in range(values.shape[2])]
    return MatrixTable(title, [[[number(v) for v in row] for row in plane] for plane in planes])


def kernel_list_table(
    rows: Sequence[tuple[str, str, tuple[int, ...]]], generators: Sequence[tuple[str, str]]
) -> Group:
    """The preset kernels (name, size, description) and the parameterised forms."""
    table = FittedTable(
        (Col("name", "left"), Col("size", "left"), Col("what it does", "left", wraps=True)),
        [(name, "x".join(map(str, shape)), description) for name, description, shape in rows],
        title="kernels (convcalc kernels NAME shows the values)",
    )
    forms = FittedTable(
        (Col("parameterised", "left"), Col("what it does", "left", wraps=True)), generators
    )
    return Group(table, forms)


@contextmanager
def progress(total: int) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr when it is a terminal; yields the function that advances it."""
    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda: None
        return
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("applying", total=total)
        yield lambda: bar.advance(task)


def bench_table(timings: Sequence[Timing], title: str) -> FittedTable:
    """Each method's best time, how much slower than the fastest, and its largest error."""
    times = [t.seconds for t in timings if t.seconds is not None]
    fastest = min(times) if times else None
    rows = []
    for t in timings:
        if t.seconds is None or fastest is None:
            rows.append((str(t.method), "—", "—", "—", t.reason or ""))
            continue
        rows.append(
            (
                str(t.method),
                f"{t.seconds * 1e3:.2f} ms",
                f"{t.seconds / fastest:.2f}",
                f"{t.max_error:.3g}",
                "",
            )
        )
    columns = (
        Col("method", "left"),
        Col("time"),
        Col("× fastest", drop=1),
        Col("max error vs float64"),
        Col("note", "left", wraps=True),
    )
    return FittedTable(columns, rows, title=title, min_width=len(title) + 4)


# -- tables that fit -----------------------------------------------------------------


class Col(NamedTuple):
    """A column of a `FittedTable`.

    ``wraps``: descriptive text that may wrap at spaces; other columns (numbers,
    layer specs) are always as wide as their widest cell. ``drop``: 0 for a column
    always shown; others are left out on a narrow terminal, 1 first, then 2 …
    """

    name: str
    justify: JustifyMethod = "right"
    wraps: bool = False
    drop: int = 0


class FittedTable:
    """A table that fits the width it is drawn at, leaving out columns rather than
    cutting a number.

    The whole table is drawn when its narrowest form (every number whole, text
    wrapped at spaces) fits; otherwise the droppable columns go, lowest ``drop``
    first, until it does, and a line under the table names them. Measured (for a
    width to print at) it is the whole table.
    """

    def __init__(
        self,
        columns: Sequence[Col],
        rows: Iterable[Sequence[str]],
        *,
        title: str | None = None,
        caption: str | None = None,
        min_width: int | None = None,
    ) -> None:
        self.columns = tuple(columns)
        self.rows = [tuple(row) for row in rows]
        self.title, self.caption, self.min_width = title, caption, min_width

    def table(self, keep: Sequence[int] | None = None) -> Table:
        """The rich table of the columns ``keep`` (all by default)."""
        keep = range(len(self.columns)) if keep is None else keep
        table = Table(box=box.SIMPLE_HEAD, title=self.title, caption=self.caption)
        for i in keep:
            col = self.columns[i]
            widest = max(cell_len(text) for text in (col.name, *(row[i] for row in self.rows)))
            table.add_column(
                col.name,
                justify=col.justify,
                no_wrap=not col.wraps,
                min_width=None if col.wraps else widest,
                overflow="fold",
            )
        for row in self.rows:
            table.add_row(*(row[i] for i in keep))
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        keep = list(range(len(self.columns)))
        order = sorted((col.drop, i) for i, col in enumerate(self.columns) if col.drop)
        left_out = []
        while order and narrowest(console, options, self.table(keep)) > width:
            i = order.pop(0)[1]
            keep.remove(i)
            left_out.append(self.columns[i].name)
        table = self.table(keep)
        if self.min_width is not None:
            table.min_width = min(self.min_width, width)
        yield table
        if left_out:
            yield Text(
                f"left out to fit {width} columns: {', '.join(left_out)} "
                "(a wider terminal shows them)"
            )

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        table = self.table()
        table.min_width = self.min_width
        return Measurement.get(console, options, table)


class MatrixTable:
    """The numbers of one or more matrices (``planes``, each rows of cell texts), titled.

    Drawn side by side when they fit the width, else plane by plane, each in as
    few blocks of whole columns as fit, headed ``columns 0 to 7 of 24``.
    """

    def __init__(self, title: str, planes: Sequence[Sequence[Sequence[str]]]) -> None:
        self.title = title
        self.planes = planes

    def table(self, columns: Sequence[Sequence[str]]) -> Table:
        """A box of cells given column by column (an empty column separates planes)."""
        table = Table(box=_MATRIX_BOX, show_header=False)
        for _ in columns:
            table.add_column(justify="right", no_wrap=True, overflow="fold")
        for r in range(len(columns[0]) if columns else 0):
            table.add_row(*(column[r] for column in columns))
        return table

    def side_by_side(self) -> list[list[str]]:
        """Every plane's columns, an empty column between planes."""
        rows = len(self.planes[0])
        columns: list[list[str]] = []
        for i, plane in enumerate(self.planes):
            columns += ([[""] * rows] if i else []) + [
                list(col) for col in zip(*plane, strict=True)
            ]
        return columns

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        yield Text(self.title)
        whole = self.side_by_side()
        if _box_width(whole) <= width:
            yield self.table(whole)
            return
        for c, plane in enumerate(self.planes):
            columns = [list(col) for col in zip(*plane, strict=True)]
            label = f"channel {c}" if len(self.planes) > 1 else ""
            blocks = _blocks(columns, width)
            for start, stop in blocks:
                part = f"columns {start} to {stop - 1} of {len(columns)}" if len(blocks) > 1 else ""
                if label or part:
                    yield Text(", ".join(t for t in (label, part) if t))
                yield self.table(columns[start:stop])

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(
            console, options, Group(Text(self.title), self.table(self.side_by_side()))
        )


def narrowest(console: Console, options: ConsoleOptions, table: Table) -> int:
    """The fewest columns ``table`` takes with every unwrappable cell whole."""
    return Measurement.get(console, options.update_width(_UNLIMITED), table).minimum


_UNLIMITED = 1 << 20
"""A width no table reaches: measuring at it tells a table's own minimum."""

_MATRIX_BOX: Box = box.SQUARE


def _box_width(columns: Sequence[Sequence[str]]) -> int:
    """The width of a `MatrixTable.table` of these columns (see `_blocks`)."""
    return sum(_column_width(column) for column in columns) + 1


def _column_width(column: Sequence[str]) -> int:
    """A matrix column's share of its table: the widest cell, a space either side and
    the line on its right (the first line, at the left edge, is added once)."""
    return max(map(cell_len, column)) + 3


def _blocks(columns: Sequence[Sequence[str]], width: int) -> list[tuple[int, int]]:
    """Runs ``(start, stop)`` of whole columns, each as wide as ``width`` allows (at
    least one column a run)."""
    widths = [_column_width(column) for column in columns]
    blocks, start = [], 0
    while start < len(widths):
        stop, used = start + 1, 1 + widths[start]
        while stop < len(widths) and used + widths[stop] <= width:
            used += widths[stop]
            stop += 1
        blocks.append((start, stop))
        start = stop
    return blocks
