"""Tables for other programs: CSV that adds up, Markdown and LaTeX (golden files)."""

from __future__ import annotations

import csv
import io

import pytest

from convcalc.calc.choices import Format
from convcalc.calc.evaluation import evaluate
from convcalc.calc.operations import network_other_ops
from convcalc.calc.presets import load_network
from convcalc.calc.sequence import parse_specs
from convcalc.calc.sizes import parse_shape
from convcalc.calc.training import training_cost
from convcalc.present.exports import stack_rows, write_table
from tests.conftest import run

INCEPTION = (
    "( conv:64,1 | conv:96,1 conv:128,3,p=1 | conv:16,1 conv:32,3,p=1 | "
    "maxpool:3,s=1,p=1,ceil conv:32,1 ) concat"
)


def parsed(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize(
    ("shape", "specs"),
    [
        ("28x28x192", parse_specs([INCEPTION, "relu"])),
        ("224x224x3", load_network("resnet50")),
        ("224x224x3", load_network("googlenet")),
    ],
)
def test_csv_parsed_back_sums_to_the_totals(shape, specs):
    result = evaluate(specs, parse_shape(shape))
    cost = training_cost(specs, result, batch=4)
    other = network_other_ops(result, specs)
    rows = parsed(write_table(Format.CSV, stack_rows(result, training=cost, other_ops=other)))
    total = {key: sum(int(row[key] or 0) for row in rows)
             for key in ("params", "macs", "memory_bytes", "other_ops", "kept_bytes",
                         "backward_macs")}  # fmt: skip
    assert total == {
        "params": result.total_params, "macs": result.total_macs,
        "memory_bytes": result.total_memory, "other_ops": sum(other),
        "kept_bytes": cost.activations_bytes, "backward_macs": cost.backward_macs,
    }  # fmt: skip


def test_csv_paths_name_each_layer_inside_a_group():
    rows = parsed(run("shape", "28x28x192", INCEPTION, "--format", "csv").stdout)
    assert [row["path"] for row in rows] == [
        "1.1.1",
        "1.2.1",
        "1.2.2",
        "1.3.1",
        "1.3.2",
        "1.4.1",
        "1.4.2",
        "1",
    ]
    assert rows[-1]["layer"] == "( 4 branches ) concat" and rows[-1]["params"] == "0"


@pytest.mark.parametrize("fmt", ["markdown", "latex"])
def test_markdown_and_latex_golden(fmt, golden):
    text = run("shape", "32x32x3", "--net", "lenet5", "--format", fmt).stdout
    golden(f"lenet5_{fmt}", text)
    params = run("params", "32x32x3", "-k", "5", "--filters", "10", "--format", fmt).stdout
    golden(f"params_{fmt}", params)


def test_json_and_format_disagreeing_are_refused():
    result = run("shape", "7", "-k", "3", "--json", "--format", "csv")
    assert result.exit_code == 2 and "two formats" in result.stderr
