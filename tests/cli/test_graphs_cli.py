"""Graphs through the command line: one row per group, --expand, JSON branches, --explain."""

from __future__ import annotations

import pytest

from tests.conftest import run, run_json

INCEPTION = (
    "( conv:64,1 | conv:96,1 conv:128,3,p=1 | conv:16,1 conv:32,3,p=1 | "
    "maxpool:3,s=1,p=1,ceil conv:32,1 ) concat"
)
SE = "( | gap conv:8,1 relu conv:32,1 sigmoid ) mul"


def test_a_group_is_one_row_and_expand_opens_it():
    plain = run("shape", "28x28x192", INCEPTION).stdout
    assert "( 4 branches ) concat" in plain and "conv:96,1" not in plain
    expanded = run("shape", "28x28x192", INCEPTION, "--expand").stdout
    for inner in ("1| conv:64,1", "2| conv:128,3,p=1", "4| maxpool:3,s=1,p=1,ceil"):
        assert inner in expanded


@pytest.mark.parametrize(
    ("shape", "text", "merge", "branches"),
    [
        ("28x28x192", INCEPTION, "concat", [1, 2, 2, 2]),
        ("16x16x32", SE, "mul", [0, 5]),
    ],
)
def test_json_gives_a_group_its_merge_and_branches(shape, text, merge, branches):
    doc = run_json("shape", shape, text)
    group = doc["layers"][0]
    assert group["op"] == merge
    assert [len(branch) for branch in group["branches"]] == branches
    keys = {"op", "spec", "output_shape", "params", "macs", "receptive_field"}
    assert keys <= set(group) and all(keys <= set(layer) for b in group["branches"] for layer in b)
    assert group["params"] == sum(layer["params"] for b in group["branches"] for layer in b)


def test_json_says_a_gate_makes_the_field_the_whole_input():
    group = run_json("shape", "16x16x32", SE)["layers"][0]
    assert group["receptive_field"] is None
    assert any("whole input" in note for note in group["notes"])


def test_explain_shows_the_union_at_a_merge():
    text = run(
        "shape", "32x32x8", "( conv:8,1 | conv:8,3,p=1 conv:8,3,p=1 ) add", "--explain"
    ).stdout
    assert "receptive field at the add: [0, 0] ∪ [-2, 2] = [-2, 2], size 5, start 0" in text


def test_a_network_file_with_groups_names_and_comments(tmp_path):
    net = tmp_path / "net.txt"
    net.write_text(
        "# a tiny U-Net\n"
        "conv:8,3,p=1 relu @skip   # the contracting path\n"
        "maxpool:2 conv:8,3,p=1 relu\n"
        "upsample:2 concat:skip conv:2,1\n"
        "( | conv:2,3,p=1 ) add *2\n"
    )
    doc = run_json("shape", "32x32x1", "--net", str(net))
    assert doc["output_shape"] == [32, 32, 2]
    bad = tmp_path / "bad.txt"
    bad.write_text("conv:8,3\n( conv:8,1\n| conv:4,1 ) add\n")
    result = run("shape", "32x32x1", "--net", str(bad))
    assert result.exit_code == 2
    assert "bad.txt:2" in result.stderr and "30x30x8, 30x30x4" in result.stderr


@pytest.mark.parametrize("after", [["maxpool:2"], ["( | conv:4,1 ) add", "upsample:2"]])
def test_a_field_not_tracked_is_shown_as_such_not_as_the_whole_input(after):
    args = ["shape", "64x64x1", "conv:4,3", "deconv:4,2,s=2", *after]
    table = run(*args).stdout
    assert "? the receptive field is not tracked" in table
    rows = [line for line in table.splitlines() if line.strip()[:1].isdigit()]
    assert all(" all " not in row for row in rows) and "?" in rows[-1]
    layers = run_json(*args)["layers"]
    assert [layer["receptive_field"] is None for layer in layers][1:] == [True] * len(layers[1:])
    gap_row = next(line for line in run(*args, "gap").stdout.splitlines() if " gap " in line)
    assert " all " in gap_row  # a global pool sees the whole input, tracked or not
