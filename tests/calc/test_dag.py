"""Graphs read from files (nodes and tensors) turned into specs with groups and names."""

from __future__ import annotations

import pytest

from convcalc.calc.dag import Node, graph_specs
from convcalc.calc.evaluation import evaluate
from convcalc.calc.grammar import format_layer
from convcalc.calc.sequence import parse_specs
from convcalc.calc.sizes import parse_shape
from convcalc.errors import ConvcalcError


def layer(text: str):
    return parse_specs([text])[0].layer


def written(nodes: list[Node]) -> str:
    return " ".join(format_layer(spec.layer) for spec in graph_specs(nodes, "net"))


def test_forks_and_joins_become_groups():
    nodes = [
        Node("c1", layer("conv:8,3,p=1"), ("x",), "a"),
        Node("r1", layer("relu"), ("a",), "b"),
        Node("c2", layer("conv:8,3,p=1"), ("b",), "c"),
        Node("add", None, ("c", "b"), "d", "add"),
        Node("g", layer("gap"), ("d",), "e"),
        Node("f", layer("conv:8,1"), ("e",), "f"),
        Node("s", layer("sigmoid"), ("f",), "g"),
        Node("mul", None, ("d", "g"), "h", "mul"),
        Node("b1", layer("conv:4,1"), ("h",), "i"),
        Node("b2", layer("conv:4,3,p=1"), ("h",), "j"),
        Node("cat", None, ("i", "j", "h"), "k", "concat"),
    ]
    assert written(nodes) == (
        "conv:8,3,p=1 relu ( conv:8,3,p=1 | ) add ( gap conv:8,1 sigmoid | ) mul "
        "( conv:4,1 | conv:4,3,p=1 | ) concat"
    )
    specs = graph_specs(nodes, "net")
    assert str(evaluate(specs, parse_shape("8x8x3")).output) == "8x8x16"
    assert specs[2].where == "net node 'add'"


def test_crossing_branches_read_earlier_tensors_by_name():
    nodes = [
        Node("c1", layer("conv:8,3,p=1"), ("x",), "a"),
        Node("c2", layer("conv:8,3,p=1"), ("a",), "b"),
        Node("c3", layer("conv:8,3,p=1"), ("b",), "c"),
        Node("add", None, ("c", "a"), "d", "add"),
        Node("add2", None, ("d", "b"), "e", "add"),
    ]
    assert written(nodes) == "conv:8,3,p=1 @t0 conv:8,3,p=1 ( conv:8,3,p=1 add:t0 | ) add"


def test_branches_meeting_elsewhere_than_a_merge_are_refused():
    nodes = [
        Node("c1", layer("conv:8,1"), ("x",), "a"),
        Node("c2", layer("conv:8,1"), ("a",), "b"),
        Node("c3", layer("conv:8,1"), ("a",), "c"),
        Node("fc", layer("fc:10"), ("b", "c"), "d"),
    ]
    with pytest.raises(ConvcalcError, match="do not meet at an add, concat or mul"):
        graph_specs(nodes, "net")
