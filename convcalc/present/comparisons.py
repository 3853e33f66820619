"""The weight-sharing comparison of `convcalc params` as JSON and text lines."""

from __future__ import annotations

from typing import Any

from convcalc.calc.compare import Comparison, Count, Totals, ratio, ratio_text
from convcalc.present.numbers import count


def comparison_json(c: Comparison) -> dict[str, Any]:
    """The JSON document of a params comparison."""
    doc: dict[str, Any] = {
        "input_shape": c.input.as_list(),
        "output_shape": c.output.as_list(),
        "groups": c.groups,
    }
    for name, item in counts(c):
        doc[f"{name}_params"] = item.params
        doc[f"{name}_weights"] = item.weights
        doc[f"{name}_biases"] = item.biases
        doc[f"{name}_macs"] = item.macs
        doc[f"{name}_ratio"] = ratio(item, c.conv)
    if c.unit_count is not None:
        doc["units"] = c.unit_count
    return doc


def totals_json(t: Totals) -> dict[str, Any]:
    """The JSON of a network's convolutions added up (``params --net``)."""
    doc: dict[str, Any] = {"convolutions": t.layers}
    for name, item in _total_counts(t):
        doc[f"{name}_params"] = item.params
        doc[f"{name}_macs"] = item.macs
        doc[f"{name}_ratio"] = ratio(item, t.conv)
    return doc


def totals_lines(t: Totals) -> list[str]:
    """The network's convolutions added up, one line per way of building them."""
    lines = [f"all {t.layers} convolutions together:"]
    for name, item in _total_counts(t):
        times = "" if name == "conv" else f" ({ratio_text(ratio(item, t.conv))}× as many)"
        lines.append(
            f"  {_TOTAL_LABELS[name]}: {count(item.params)} parameters{times}, "
            f"{count(item.macs)} MACs"
        )
    return lines


def counts(c: Comparison) -> list[tuple[str, Count]]:
    """The comparison's rows in display order, with their keys."""
    rows = [("conv", c.conv), ("local", c.local), ("dense", c.dense)]
    if c.units is not None:
        rows.append(("units", c.units))
    return rows


# -- helpers ---------------------------------------------------------------


_TOTAL_LABELS = {
    "conv": "convolutions, weights shared",
    "local": "locally connected, nothing shared",
    "dense": "fully connected to the same outputs",
    "units": "fully connected to the units",
}


def _total_counts(t: Totals) -> list[tuple[str, Count]]:
    rows = [("conv", t.conv), ("local", t.local), ("dense", t.dense)]
    return rows + ([("units", t.units)] if t.units is not None else [])
