"""Rich tables of shape and params against golden files (`pytest --update-golden` rewrites)."""

import io

import pytest
from rich.console import Console

from convcalc.calc.compare import compare
from convcalc.calc.grammar import parse_shape, parse_specs
from convcalc.calc.layers import Conv, Shape
from convcalc.calc.network import evaluate
from convcalc.calc.presets import load_network
from convcalc.present.tables import comparison_table, stack_table


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
