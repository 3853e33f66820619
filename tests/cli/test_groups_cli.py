"""`apply --groups` / `conv:k=…,g=G` and `animate --groups`: grouped convolution."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convcalc.cli.apply_stream import BUDGET_VARIABLE
from convcalc.io.kernels import read_kernels
from convcalc.io.reading import read_input
from convcalc.present.frames import AnimationRequest, plan
from tests.conftest import SAMPLES, run, run_json

GROUPED_X = str(SAMPLES / "grouped_4x4x4.txt")
KERNELS = ["1,0;0,1|0,1;1,0", "1,1;0,0|0,0;1,1", "1,0;1,0|0,-1;0,-1", "0,1;1,0|1,0;0,1"]
GROUPED = [GROUPED_X, *(a for k in KERNELS for a in ("-k", k)), "--groups", "2"]
"""The README's grouped layer: 4x4x4 in, four 2x2x2 filters in 2 groups."""


def expected() -> np.ndarray:
    """The layer's output, filter by filter: filters 0-1 read channels 0-1, 2-3 read 2-3."""
    x = read_input(GROUPED_X).data.astype(float)
    out = np.zeros((3, 3, 4))
    for f, kernel in enumerate(read_kernels(KERNELS)):
        first = 2 * (f // 2)
        for r in range(3):
            for c in range(3):
                out[r, c, f] = np.sum(x[r : r + 2, c : c + 2, first : first + 2] * kernel)
    return out


def test_apply_groups_gives_the_grouped_sum_and_names_each_filters_group() -> None:
    doc = run_json("apply", *GROUPED)
    np.testing.assert_array_equal(doc["output"], expected())
    steps = run("apply", *GROUPED, "--steps", "--at", "1,0")
    assert steps.exit_code == 0, steps.output
    assert "2 groups (each filter sees 2 of the 4 channels)" in steps.stdout
    assert "output (1, 0), filter 3 sees channels 2-3 (group 1):" in steps.stdout
    traced = run_json("apply", *GROUPED, "--steps", "--at", "1,0")
    assert [(s["group"], [c["channel"] for c in s["channels"]]) for s in traced["steps"]] == [
        (0, [0, 1]),
        (0, [0, 1]),
        (1, [2, 3]),
        (1, [2, 3]),
    ]
    assert [s["value"] for s in traced["steps"]] == list(expected()[1, 0])


def test_backward_gives_each_filter_the_gradient_of_its_own_group() -> None:
    doc = run_json("apply", *GROUPED, "--bias", "1,0,0,-1", "--backward")
    x = read_input(GROUPED_X).data.astype(float)
    windows = sum(x[r : r + 2, c : c + 2] for r in range(3) for c in range(3))  # dL/dY ones
    for f, grad in enumerate(doc["grad_kernel"]):
        first = 2 * (f // 2)
        np.testing.assert_array_equal(grad, windows[..., first : first + 2])
    assert doc["grad_bias"] == [9, 9, 9, 9]
    steps = run("apply", *GROUPED, "--backward", "--steps", "--at", "0,0")
    assert "filter 3: dL/dW[0,0,1] (input channel 3, group 1) = " in steps.stdout


def test_the_streamed_run_writes_the_in_memory_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "in.npy"
    np.save(source, np.random.default_rng(2).normal(size=(40, 33, 6)))
    kernels = ["1,1;1,1|1,0;0,1", "0,1;1,0|2,0;0,2", "1,0;0,0|0,0;0,-1"]
    args = [*(a for k in kernels for a in ("-k", k)), "--groups", "3", "-p", "1"]
    whole = run("apply", str(source), *args, "-o", str(tmp_path / "whole.npy"))
    monkeypatch.setenv(BUDGET_VARIABLE, "4000")
    strips = run("apply", str(source), *args, "-o", str(tmp_path / "strips.npy"), "-v")
    assert whole.exit_code == strips.exit_code == 0, strips.output
    assert "strips of at most" in strips.stderr
    assert (tmp_path / "strips.npy").read_bytes() == (tmp_path / "whole.npy").read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([GROUPED_X, "-k", "box3", "--groups", "3"], "g=3 does not divide the input's 4 channels"),
        ([GROUPED_X, *GROUPED[1:5], "--groups", "2", "-k", KERNELS[2]], "got 3 filters"),
        ([GROUPED_X, "-k", "box3", "-k", "box3", "--groups", "2"], "valid: KHxKWx2 kernels"),
        ([GROUPED_X, "conv:k=1,0;0,1|0,1;1,0,g=2"], "k= once per filter in a layer spec"),
        ([GROUPED_X, "--pool", "max", "-k", "2", "--groups", "2"], "--groups needs a convolution"),
        ([GROUPED_X, "conv:k=box3", "--groups", "2"], "--groups describes the layer of the option"),
        ([*GROUPED, "--channels", "sum"], "--channels has no effect on a grouped layer"),
        ([GROUPED_X, "--transposed", "-k", "box3", "--groups", "2"], "does not combine with --tr"),
    ],
)
def test_what_does_not_fit_is_a_one_line_usage_error(args: list[str], message: str) -> None:
    result = run("apply", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_animate_groups_captions_equal_apply_json(tmp_path: Path) -> None:
    applied = run_json("apply", *GROUPED)
    output = np.array(applied["output"], dtype=float)
    x = read_input(GROUPED_X).data
    p = plan(AnimationRequest(x, tuple(read_kernels(KERNELS)), groups=2))
    for step in p.steps:
        (r, c), f = step.position, step.panel
        head = step.caption.split("\n")[0]
        assert head.startswith(f"out[{r},{c},{f}] (filter {f} (2x2x2, bias 0) sees channels")
        assert float(head.rsplit(" = ", 1)[1]) == output[r, c, f]
    out = tmp_path / "grouped.gif"
    result = run("animate", *GROUPED, "-o", str(out), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["frames"] == 3 * 3 * 4 + 1
    with Image.open(out) as gif:
        assert gif.n_frames == 37


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--transposed"], "drop --groups with --transposed"),
        (["--channels", "each"], "--channels has no effect with --groups"),
    ],
)
def test_animate_groups_refuses_what_it_does_not_animate(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    result = run("animate", *GROUPED, *extra, "-o", str(tmp_path / "x.gif"))
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_a_layer_spec_takes_one_k_per_filter() -> None:
    spec = "conv:" + ",".join(f"k={kernel}" for kernel in KERNELS) + ",g=2"
    doc = run_json("apply", GROUPED_X, spec)
    np.testing.assert_array_equal(doc["output"], expected())
    # the option form's layer is written back as that spec, and the spec reads the same
    steps = run_json("apply", *GROUPED, "--steps", "--at", "0,0")
    assert steps["layer_text"] == spec
    assert run_json("apply", GROUPED_X, steps["layer_text"])["output"] == doc["output"]
