"""`apply --backward --steps`: the rendered gradient arithmetic (golden file) and the CLI."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import numpy as np
from rich.console import Console

from convcalc.calc.choices import PoolKind
from convcalc.calc.grammar import parse_spec
from convcalc.calc.layers import Conv, Pool, Spec
from convcalc.compute.backward_traces import backward_trace
from convcalc.compute.pipeline import Settings, Stage
from convcalc.io.reading import read_input
from convcalc.present.backward_steps import backward_steps_renderable
from tests.conftest import CROSS, SAMPLES, UFLDL, run

UFLDL_TXT = str(SAMPLES / "ufldl_5x5.txt")
CROSS_TEXT = "1,0,1;0,1,0;1,0,1"


def test_ufldl_golden(golden: Callable[[str, str], None]) -> None:
    stage = Stage(Spec("conv:k=cross", Conv(None, None)), (CROSS.astype(float),))
    t = backward_trace(UFLDL, [stage], Settings(), at=[(0, 0), (1, 1), (2, 2)])
    golden("backward_ufldl", _text(backward_steps_renderable(t)))


def test_cli_prints_and_emits_the_trace() -> None:
    result = run("apply", UFLDL_TXT, "-k", CROSS_TEXT, "--backward", "--steps", "--limit", "2")
    assert result.exit_code == 0, result.output
    assert "dL/dW[0,0] = 1×1 + 1×1 + 1×1 + 1×0 + 1×1 + 1×1 + 1×0 + 1×0 + 1×1 = 6" in result.stdout
    assert "2 of 25 input cells shown, 23 left out" in result.stdout
    result = run("apply", UFLDL_TXT, "-k", CROSS_TEXT, "--backward", "--steps", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    kernel = np.array(doc["grad_kernel"][0])
    for step in doc["backward_steps"]:
        assert step["value"] == sum(a * b for a, b in step["terms"])
        if step["grad"] == "kernel":
            assert step["value"] == kernel[tuple(step["position"])]
        else:
            assert step["value"] == doc["grad_input"][step["position"][0]][step["position"][1]][0]


def test_max_pool_golden(golden: Callable[[str, str], None]) -> None:
    x = read_input(str(SAMPLES / "maxpool_4x4.txt")).data
    stage = Stage(Spec("maxpool:2,s=1", Pool(PoolKind.MAX, (2,), (1,))))
    upstream = np.arange(1, 10).reshape(3, 3)
    t = backward_trace(x, [stage], Settings(), upstream)
    golden("backward_maxpool", _text(backward_steps_renderable(t, "g.txt")))


def test_pipeline_golden(golden: Callable[[str, str], None]) -> None:
    stages = [
        Stage(Spec("conv:k=cross", Conv(None, None)), (CROSS.astype(float),)),
        Stage(Spec("maxpool:2,s=1", Pool(PoolKind.MAX, (2,), (1,)))),
    ]
    t = backward_trace(UFLDL, stages, Settings(), at=[(0, 0), (1, 1), (2, 2)])
    golden("backward_pipeline", _text(backward_steps_renderable(t)))


def test_signal_conv_golden(golden: Callable[[str, str], None]) -> None:
    x = read_input(str(SAMPLES / "signal_9.txt"), rank=1).data
    stage = Stage(parse_spec("conv1d:k=1,2,1,s=2,p=1"), (np.array([1.0, 2.0, 1.0]),))
    t = backward_trace(x, [stage], Settings(rank=1), np.array([1, -1, 2, 0, 1]))
    golden("backward_signal_conv", _text(backward_steps_renderable(t, "g.txt")))


def test_volume_max_pool_golden(golden: Callable[[str, str], None]) -> None:
    x = read_input(str(SAMPLES / "volume_3x3x3.txt"), rank=3).data
    stage = Stage(parse_spec("maxpool3d:2,s=1"))
    upstream = np.arange(1, 9).reshape(2, 2, 2)
    at = [(1, 1, 1), (0, 1, 1), (2, 2, 0)]
    t = backward_trace(x, [stage], Settings(rank=3), upstream, at=at)
    golden("backward_volume_maxpool", _text(backward_steps_renderable(t, "g.npy")))


def test_average_pooling_reads_as_shares_and_a_cell_in_no_window_says_so() -> None:
    stage = Stage(Spec("avgpool:3,s=2,p=1", Pool(PoolKind.AVG, (3,), (2,), (1,))))
    t = backward_trace(UFLDL, [stage], Settings(), at=[(1, 1)])
    text = _text(backward_steps_renderable(t))
    assert "avg pooling 3x3, stride 2, padding 1" in text
    assert "dL/dX[1,1] = 1/9 + 1/9 + 1/9 + 1/9 = 0.4444" in text
    assert "windows (0,0), (0,1), (1,0), (1,1)" in text
    skip = Stage(Spec("maxpool:1,s=2", Pool(PoolKind.MAX, (1,), (2,))))
    text = _text(backward_steps_renderable(backward_trace(UFLDL, [skip], Settings(), at=[(0, 1)])))
    assert "dL/dX[0,1] = 0\n    in no window: no gradient reaches it" in text


def _text(renderable: Any) -> str:
    console = Console(width=100, no_color=True, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()
