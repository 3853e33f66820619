"""Rich tables for the terminal. Imported only when a table is printed."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from convcalc.calc.compare import Comparison, ratio, ratio_text, reading
from convcalc.calc.geometry import Solution
from convcalc.calc.network import NetworkResult
from convcalc.compute.bench import Timing
from convcalc.present.formatting import counts, field_text, solution_spec
from convcalc.present.numbers import count, number, si, size_bytes

_LABELS = {
    "conv": "convolution (shared weights)",
    "local": "locally connected (no sharing)",
    "dense": "fully connected, same output",
    "units": "fully connected, {n} units",
}


def stack_table(result: NetworkResult, convention: str) -> Group:
    """A stack as a table (layer, output HxWxC, params, MACs, receptive field, memory)."""
    table = Table(box=box.SIMPLE_HEAD, title=f"input {result.input}  ({convention} rules)")
    for name, justify in (
        ("#", "right"),
        ("layer", "left"),
        ("output", "left"),
        ("params", "right"),
        ("MACs", "right"),
        ("RF size", "right"),
        ("jump", "right"),
        ("start", "right"),
        ("memory", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for i, layer in enumerate(result.layers, start=1):
        size, jump, start = field_text(layer.receptive_field)
        marker = "" if layer.exact else " *"
        table.add_row(
            str(i),
            layer.spec,
            f"{layer.output}{marker}",
            count(layer.params),
            si(layer.macs) if layer.macs else "0",
            size,
            jump,
            start,
            size_bytes(layer.memory),
        )
    return Group(table, *totals_lines(result))


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
    return lines


def comparison_table(c: Comparison, title: str) -> Group:
    """Params and MACs four ways, with ratios and one sentence of reading."""
    table = Table(box=box.SIMPLE_HEAD, title=title)
    for name in ("layer", "weights", "biases", "parameters", "× conv", "MACs"):
        table.add_column(name, justify="left" if name == "layer" else "right")
    for key, item in counts(c):
        label = _LABELS[key].format(n=f"{c.unit_count:,}" if c.unit_count else "")
        table.add_row(
            label,
            count(item.weights),
            count(item.biases),
            count(item.params),
            ratio_text(ratio(item, c.conv)),
            count(item.macs),
        )
    return Group(table, Text(reading(c)))


def solutions_table(n: int, target: int, solutions: list[Solution], limit: int) -> Table:
    """The ``--target`` answers as a table."""
    table = Table(box=box.SIMPLE_HEAD, title=f"{n} → {target}")
    for name in ("layer", "kernel", "stride", "padding", "dilation", "exact"):
        table.add_column(name)
    for sol in solutions[:limit]:
        pad = str(sol.padding) + (f", op={sol.output_padding}" if sol.output_padding else "")
        table.add_row(
            solution_spec(sol),
            str(sol.kernel),
            str(sol.stride),
            pad,
            str(sol.dilation),
            "yes" if sol.exact else "no",
        )
    if len(solutions) > limit:
        table.caption = f"{len(solutions) - limit} more (use --json for all)"
    return table


def matrix_table(values: Any, title: str) -> Group:
    """A 2-D matrix (or each slice of a KHxKWxC one) as a table of its numbers, titled."""
    table = Table(box=box.SQUARE, show_header=False)
    planes = [values] if values.ndim == 2 else [values[:, :, c] for c in range(values.shape[2])]
    for _ in range(planes[0].shape[1] * len(planes) + len(planes) - 1):
        table.add_column(justify="right")
    for r in range(planes[0].shape[0]):
        cells: list[str] = []
        for i, plane in enumerate(planes):
            cells += ([""] if i else []) + [number(v) for v in plane[r]]
        table.add_row(*cells)
    return Group(Text(title), table)


def kernel_list_table(
    rows: Sequence[tuple[str, str, tuple[int, ...]]], generators: Sequence[tuple[str, str]]
) -> Group:
    """The preset kernels (name, size, description) and the parameterised forms."""
    table = Table(box=box.SIMPLE_HEAD, title="kernels (convcalc kernels NAME shows the values)")
    for name in ("name", "size", "what it does"):
        table.add_column(name)
    for name, description, shape in rows:
        table.add_row(name, "x".join(map(str, shape)), description)
    forms = Table(box=box.SIMPLE_HEAD)
    forms.add_column("parameterised")
    forms.add_column("what it does")
    for syntax, description in generators:
        forms.add_row(syntax, description)
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


def bench_table(timings: Sequence[Timing], title: str) -> Table:
    """Each method's best time, how much slower than the fastest, and its largest error."""
    table = Table(box=box.SIMPLE_HEAD, title=title, min_width=len(title) + 4)
    for name in ("method", "time", "× fastest", "max error vs float64", "note"):
        table.add_column(name, justify="left" if name in ("method", "note") else "right")
    times = [t.seconds for t in timings if t.seconds is not None]
    fastest = min(times) if times else None
    for t in timings:
        if t.seconds is None or fastest is None:
            table.add_row(str(t.method), "—", "—", "—", t.reason or "")
            continue
        table.add_row(
            str(t.method),
            f"{t.seconds * 1e3:.2f} ms",
            f"{t.seconds / fastest:.2f}",
            f"{t.max_error:.3g}",
            "",
        )
    return table
