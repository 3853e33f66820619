"""Rich tables of shape and params against golden files (`pytest --update-golden` rewrites)."""

import io

import numpy as np
import pytest
from rich.console import Console

from convcalc.calc.compare import compare
from convcalc.calc.evaluation import evaluate
from convcalc.calc.geometry import find_targets
from convcalc.calc.layers import Conv, Shape
from convcalc.calc.presets import load_network
from convcalc.calc.sequence import parse_specs
from convcalc.calc.sizes import parse_shape
from convcalc.present.formatting import solution_spec
from convcalc.present.numbers import number
from convcalc.present.tables import comparison_table, matrix_table, solutions_table, stack_table


def rendered(renderable) -> str:
    console = Console(width=120, no_color=True, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


@pytest.mark.parametrize(("name", "shape"), [("lenet5", "32x32x3"), ("resnet18", "224x224x3")])
def test_stack_tables(name, shape, golden):
    result = evaluate(load_network(name), parse_shape(shape))
    golden(f"shape_{name}", rendered(stack_table(result, "torch")))


def test_inexact_stack_is_marked():
    result = evaluate(parse_specs(["conv:4,3,s=2"]), parse_shape("8x8x1"))
    text = rendered(stack_table(result, "torch"))
    assert "3x3x4 *" in text
    assert "do not fit the input exactly" in text


def test_params_table(golden):
    c = compare(Conv(10, (10,)), Shape((100, 100), 3), Shape((91, 91), 10), units=100)
    golden("params_100x100x3", rendered(comparison_table(c, "conv:10,10")))


# -- numbers are never cut: tables fit the terminal by leaving columns out -------------------


def rendered_at(renderable, width: int) -> str:
    console = Console(width=width, no_color=True, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def whole_numbers(text: str) -> set[str]:
    """Every run of digits and thousands separators as printed, split at spaces."""
    return {word.strip("()*") for line in text.splitlines() for word in line.split()}


@pytest.mark.parametrize("width", [80, 60])
def test_resnet50_parameter_counts_are_printed_whole(width):
    result = evaluate(load_network("resnet50"), parse_shape("224x224x3"))
    text = rendered_at(stack_table(result, "torch"), width)
    assert "…" not in text
    assert all(len(line) <= width for line in text.splitlines())
    words = whole_numbers(text)
    for layer in result.layers:
        assert f"{layer.params:,}" in words
        assert layer.spec in text  # layer specs are never cut either
    assert f"{result.total_params:,}" in text
    assert "left out to fit" in text


@pytest.mark.parametrize("width", [80, 60])
def test_comparison_counts_are_printed_whole(width):
    c = compare(Conv(10, (10,)), Shape((100, 100), 3), Shape((91, 91), 10), units=100)
    text = rendered_at(comparison_table(c, "conv:10,10"), width)
    assert "…" not in text
    assert all(len(line) <= width for line in text.splitlines())
    words = whole_numbers(text)
    for figure in ("2,484,382,810", "2,484,300,000", "24,925,810", "3,000,100", "825,376"):
        assert figure in words


def test_a_wide_terminal_shows_every_column_and_no_note():
    result = evaluate(load_network("resnet50"), parse_shape("224x224x3"))
    text = rendered_at(stack_table(result, "torch"), 200)
    assert "left out" not in text and "RF size" in text and "memory" in text


@pytest.mark.parametrize(("shape", "width"), [((3, 24), 80), ((4, 4, 3), 30)])
def test_a_matrix_too_wide_is_shown_in_blocks_of_whole_columns(shape, width):
    values = np.random.default_rng(1).normal(size=shape) * 1000
    text = rendered_at(matrix_table(values, "m"), width)
    assert "…" not in text
    assert all(len(line) <= width for line in text.splitlines())
    words = whole_numbers(text)
    assert all(number(v) in words for v in values.ravel())


def test_solutions_keep_the_spec_and_exact_at_40_columns():
    solutions = find_targets(224, 112, kernels=[3])
    text = rendered_at(solutions_table(224, 112, solutions, 6), 40)
    assert "…" not in text and "exact" in text
    assert all(solution_spec(s) in whole_numbers(text) for s in solutions[:6])
