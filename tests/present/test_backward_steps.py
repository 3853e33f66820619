"""`apply --backward --steps`: the rendered gradient arithmetic (golden file) and the CLI."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import numpy as np
from rich.console import Console

from convcalc.calc.layers import Conv, Spec
from convcalc.compute.backward_traces import backward_trace
from convcalc.compute.pipeline import Settings, Stage
from convcalc.present.backward_steps import backward_steps_renderable
from tests.conftest import CROSS, SAMPLES, UFLDL, run

UFLDL_TXT = str(SAMPLES / "ufldl_5x5.txt")
CROSS_TEXT = "1,0,1;0,1,0;1,0,1"


def test_ufldl_golden(golden: Callable[[str, str], None]) -> None:
    stage = Stage(Spec("conv:k=cross", Conv(None, None)), (CROSS.astype(float),))
    t = backward_trace(UFLDL, [stage], Settings(), at=[(0, 0), (1, 1), (2, 2)])
    console = Console(width=100, no_color=True, record=True, file=io.StringIO())
    console.print(backward_steps_renderable(t))
    golden("backward_ufldl", console.export_text())


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


def test_cli_refuses_pooling_and_pipelines() -> None:
    for layers in (("--pool", "max", "-k", "2"), ("conv:k=box3", "relu")):
        result = run("apply", UFLDL_TXT, *layers, "--backward", "--steps")
        assert result.exit_code == 2, result.output
        assert "traces one 2-D convolution layer" in result.stderr
