"""Rich tables for the terminal. Imported only when a table is printed."""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from convcalc.compare import Comparison, ratio, reading
from convcalc.formatting import count, counts, field_text, si, size_bytes, solution_spec
from convcalc.geometry import Solution
from convcalc.network import NetworkResult

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
        ("#", "right"), ("layer", "left"), ("output", "left"), ("params", "right"),
        ("MACs", "right"), ("RF size", "right"), ("jump", "right"), ("start", "right"),
        ("memory", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for i, layer in enumerate(result.layers, start=1):
        size, jump, start = field_text(layer.receptive_field)
        marker = "" if layer.exact else " *"
        table.add_row(
            str(i), layer.spec, f"{layer.output}{marker}", count(layer.params),
            si(layer.macs) if layer.macs else "0", size, jump, start, size_bytes(layer.memory),
        )
    return Group(table, *totals_lines(result))


def totals_lines(result: NetworkResult) -> list[Text]:
    """The totals under a stack table."""
    macs = result.total_macs
    lines = [
        Text(f"output {result.output}"),
        Text(f"parameters (trainable): {count(result.total_params)}"),
        Text(f"MACs (multiply-accumulates): {count(macs)} = {si(macs)}    "
             f"FLOPs = 2 × MACs = {si(2 * macs)}"),
        Text(f"activation memory (float32, all layer outputs): "
             f"{size_bytes(result.total_memory)}"),
    ]
    if result.total_buffers:
        lines.insert(2, Text(
            f"running statistics (batch norm, not trainable, not counted above): "
            f"{count(result.total_buffers)}"
        ))
    if not all(layer.exact for layer in result.layers):
        lines.append(Text("* the windows do not fit the input exactly (--explain says where)",
                          style="yellow"))
    return lines


def comparison_table(c: Comparison, title: str) -> Group:
    """Params and MACs four ways, with ratios and one sentence of reading."""
    table = Table(box=box.SIMPLE_HEAD, title=title)
    for name in ("layer", "weights", "biases", "parameters", "× conv", "MACs"):
        table.add_column(name, justify="left" if name == "layer" else "right")
    for key, item in counts(c):
        label = _LABELS[key].format(n=f"{c.unit_count:,}" if c.unit_count else "")
        table.add_row(
            label, count(item.weights), count(item.biases), count(item.params),
            _ratio_text(ratio(item, c.conv)), count(item.macs),
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
            solution_spec(sol), str(sol.kernel), str(sol.stride), pad, str(sol.dilation),
            "yes" if sol.exact else "no",
        )
    if len(solutions) > limit:
        table.caption = f"{len(solutions) - limit} more (use --json for all)"
    return table


def _ratio_text(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.3g}"
