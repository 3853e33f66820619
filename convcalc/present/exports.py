"""Tables as text for other programs: CSV (plain integers), GitHub Markdown, LaTeX.

A table is a header and rows of cells; the writers never cut a value. The rows of a
stack flatten its groups: each layer inside a group has a ``path`` (``3.2.1``: layer
1 of branch 2 of row 3), and a group's own row carries only its merge (the sum or
concatenation it makes), so that summing a column over all rows gives the total.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from convcalc.calc.choices import Format
from convcalc.calc.compare import Comparison, ratio
from convcalc.calc.network import BYTES_PER_VALUE, LayerResult, NetworkResult
from convcalc.calc.training import TrainingCost
from convcalc.present.comparisons import counts
from convcalc.present.formatting import field_text

Cell = str | int | float
Table = tuple[list[str], list[list[Cell]]]


def write_table(fmt: Format, table: Table) -> str:
    """A table in ``fmt`` (csv, markdown or latex), ending in a newline."""
    header, rows = table
    if fmt == Format.CSV:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        return out.getvalue()
    texts = [[_text(cell) for cell in row] for row in rows]
    right = [all(isinstance(row[i], int | float) for row in rows) and bool(rows)
             for i in range(len(header))]  # fmt: skip
    if fmt == Format.MARKDOWN:
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join("---:" if r else "---" for r in right) + "|"]  # fmt: skip
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
                  for row in texts]  # fmt: skip
        return "\n".join(lines) + "\n"
    columns = "".join("r" if r else "l" for r in right)
    body = [" & ".join(_latex(cell) for cell in row) + r" \\" for row in texts]
    return "\n".join([
        rf"\begin{{tabular}}{{{columns}}}", r"\toprule",
        " & ".join(_latex(name) for name in header) + r" \\", r"\midrule",
        *body, r"\bottomrule", r"\end{tabular}",
    ]) + "\n"  # fmt: skip


def stack_rows(
    result: NetworkResult,
    *,
    training: TrainingCost | None = None,
    other_ops: Sequence[int] | None = None,
) -> Table:
    """A stack's layers, groups flattened with a path; plain integers."""
    header = ["path", "layer", "output", "params", "macs", "rf_size", "rf_jump", "rf_start",
              "memory_bytes"]  # fmt: skip
    header += ["other_ops"] if other_ops is not None else []
    header += ["kept_bytes", "backward_macs"] if training is not None else []
    rows: list[list[Cell]] = []
    for i, layer in enumerate(result.layers):
        extra: list[Cell] = [] if other_ops is None else [other_ops[i]]
        if training is not None:
            cost = training.layers[i]
            extra += [cost.kept_bytes * training.batch, cost.backward_macs * training.batch]
        rows += _flattened(layer, str(i + 1), extra)
    return header, rows


def comparison_rows(found: Sequence[tuple[str, Comparison]]) -> Table:
    """``params``: one row per convolution and way of building it (conv, local, dense,
    units), plain integers; the ratio is to the shared convolution's parameters."""
    header = ["layer", "input", "output", "way", "weights", "biases", "params", "ratio", "macs"]
    rows: list[list[Cell]] = [
        [text, str(c.input), str(c.output), way, item.weights, item.biases, item.params,
         round(ratio(item, c.conv), 6), item.macs]
        for text, c in found
        for way, item in counts(c)
    ]  # fmt: skip
    return header, rows


def matrix_rows(values: Any) -> Table:
    """An HxWxC result, one row per row of each channel (a ``channel`` column when there
    are several); whole values as integers."""
    channels = values.shape[2]
    header = [*(["channel"] if channels > 1 else []), "row", *map(str, range(values.shape[1]))]
    rows: list[list[Cell]] = [
        [*([c] if channels > 1 else []), r, *(_number(v) for v in values[r, :, c])]
        for c in range(channels)
        for r in range(values.shape[0])
    ]
    return header, rows


def _number(value: Any) -> Cell:
    v = float(value)
    return int(v) if v.is_integer() and abs(v) < 2**53 else v


def _flattened(layer: LayerResult, path: str, extra: list[Cell]) -> list[list[Cell]]:
    """A layer's row; a group's or block's inner layers, then its merge's row."""
    branches = layer.branches or ((layer.inner,) if layer.inner else ())
    if not branches:
        return [_row(layer, path, layer.params, layer.macs, layer.memory, extra)]
    rows: list[list[Cell]] = []
    for b, branch in enumerate(branches, start=1):
        for j, placed in enumerate(branch, start=1):
            inner = placed.result._replace(spec=placed.text)
            rows += _flattened(inner, f"{path}.{b}.{j}", [""] * len(extra))
    own = layer.output.volume * BYTES_PER_VALUE if layer.merges else 0
    rows.append(_row(layer, path, 0, 0, own, extra))
    return rows


def _row(layer: LayerResult, path: str, params: int, macs: int, memory: int,
         extra: list[Cell]) -> list[Cell]:  # fmt: skip
    size, jump, start = (text.replace("—", "") for text in field_text(layer.receptive_field))
    return [path, layer.spec, str(layer.output), params, macs, size, jump, start, memory, *extra]


def _text(cell: Cell) -> str:
    return f"{cell:,}" if isinstance(cell, int) else str(cell)


_LATEX = {
    "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
}  # fmt: skip


def _latex(text: str) -> str:
    return "".join(_LATEX.get(char, char) for char in text)
