"""`convcalc apply --backward [--grad-output FILE]`: the gradients in JSON and as a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from convcalc.io.reading import read_input
from tests.conftest import CROSS, CS231N_ARGS, SAMPLES, UFLDL, run, run_json

UFLDL_TXT = str(SAMPLES / "ufldl_5x5.txt")
CROSS_TEXT = "1,0,1;0,1,0;1,0,1"


def window_sums(x: Any, g: Any, k: int, s: int = 1, p: int = 0) -> Any:
    """dL/dW[i, j, c] = sum over output positions of dL/dY times the input under tap (i, j)."""
    xp = np.pad(x, ((p, p), (p, p), (0, 0)))
    out = np.zeros((k, k, x.shape[2]))
    for r in range(g.shape[0]):
        for col in range(g.shape[1]):
            out += g[r, col] * xp[r * s : r * s + k, col * s : col * s + k]
    return out


def test_ufldl_gradients_with_ones() -> None:
    doc = run_json("apply", UFLDL_TXT, "-k", CROSS_TEXT, "--backward")
    assert doc["grad_output"] == "ones"
    assert np.array(doc["grad_kernel"]).shape == (1, 3, 3)  # one filter, KHxKW
    want_w = window_sums(UFLDL[:, :, None], np.ones((3, 3)), 3)[:, :, 0]
    assert doc["grad_kernel"][0] == want_w.tolist()
    # each input cell gathers the kernel weights of every window that reads it
    want_x = np.zeros((5, 5))
    for r in range(3):
        for c in range(3):
            want_x[r : r + 3, c : c + 3] += CROSS
    assert np.array(doc["grad_input"])[:, :, 0].tolist() == want_x.tolist()
    assert "grad_bias" not in doc


def test_cs231n_two_filters_with_bias_stride_and_padding() -> None:
    doc = run_json(
        "apply",
        *CS231N_ARGS,
        "--backward",
    )
    x = read_input(str(SAMPLES / "cs231n_5x5x3.txt")).data
    want = window_sums(x, np.ones((3, 3)), 3, s=2, p=1)
    assert np.array(doc["grad_kernel"]).shape == (2, 3, 3, 3)
    np.testing.assert_array_equal(doc["grad_kernel"][0], want)
    np.testing.assert_array_equal(doc["grad_kernel"][1], want)
    assert np.array(doc["grad_input"]).shape == (5, 5, 3)


def test_grad_output_file(tmp_path: Path) -> None:
    upstream = tmp_path / "g.txt"
    upstream.write_text("1 0 2\n0 -1 0\n3 0 1\n")
    g = np.array([[1, 0, 2], [0, -1, 0], [3, 0, 1]])
    doc = run_json(
        "apply",
        UFLDL_TXT,
        "-k",
        CROSS_TEXT,
        "--bias",
        "0.5",
        "--backward",
        "--grad-output",
        str(upstream),
    )
    assert doc["grad_output"] == str(upstream)
    assert doc["grad_bias"] == [int(g.sum())]
    assert doc["grad_kernel"][0] == window_sums(UFLDL[:, :, None], g, 3)[:, :, 0].tolist()


def test_grad_output_of_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    upstream = tmp_path / "g.txt"
    upstream.write_text("1 0\n0 1\n")
    result = run("apply", UFLDL_TXT, "-k", CROSS_TEXT, "--backward", "--grad-output", str(upstream))
    assert result.exit_code == 2
    assert f"--grad-output {upstream}" in result.stderr
    assert "2x2x1 does not fit the output's 3x3x1" in result.stderr


def test_max_pool_routes_and_average_spreads() -> None:
    path = str(SAMPLES / "maxpool_4x4.txt")
    doc = run_json("apply", path, "--pool", "max", "-k", "2", "--backward")
    assert np.array(doc["grad_input"])[:, :, 0].tolist() == [
        [0, 0, 1, 0],
        [0, 1, 0, 0],
        [0, 0, 0, 1],
        [0, 1, 0, 0],
    ]
    assert "grad_kernel" not in doc
    doc = run_json("apply", path, "--pool", "avg", "-k", "2", "--backward")
    assert np.array(doc["grad_input"])[:, :, 0].tolist() == [[0.25] * 4] * 4


def test_channels_each_gives_a_2d_kernel_gradient_summed_over_channels() -> None:
    cs231n = str(SAMPLES / "cs231n_5x5x3.txt")
    each = run_json("apply", cs231n, "-k", "1,2;3,4", "--backward")
    summed = run_json("apply", cs231n, "-k", "1,2;3,4", "--channels", "sum", "--backward")
    assert np.array(each["grad_kernel"]).shape == (1, 2, 2)
    # with dL/dY all ones, each (3 outputs) and sum (1 output) read the same windows
    assert each["grad_kernel"] == summed["grad_kernel"]
    assert each["output_shape"] == [4, 4, 3] and summed["output_shape"] == [4, 4, 1]


def test_pipeline_gives_gradients_per_weighted_layer() -> None:
    doc = run_json(
        "apply", UFLDL_TXT, "conv:k=box3,p=1", "relu", "maxpool:2", "conv:k=1,2;3,4", "--backward"
    )
    assert [entry["layer"] for entry in doc["grad_layers"]] == [1, 4]
    assert doc["grad_layers"][1]["spec"] == "conv:k=1,2;3,4"
    assert np.array(doc["grad_input"]).shape == (5, 5, 1)


def test_summary_is_printed_without_json() -> None:
    result = run("apply", UFLDL_TXT, "-k", CROSS_TEXT, "--bias", "1", "--backward")
    assert result.exit_code == 0, result.output
    assert "gradients, with dL/dY = all ones:" in result.stdout
    assert "dL/dX 5x5" in result.stdout
    assert "dL/dW filter 1" in result.stdout
    assert "dL/db: 9" in result.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--grad-output", UFLDL_TXT), "--grad-output needs --backward"),
        (("--backward", "--format", "csv"), "does not combine with --format csv"),
        (("--backward", "-o", "out.npy"), "does not combine with -o out.npy"),
    ],
)
def test_refused_combinations(extra: tuple[str, ...], message: str) -> None:
    result = run("apply", UFLDL_TXT, "-k", CROSS_TEXT, *extra)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_l2_pooling_gradient_is_refused() -> None:
    result = run("apply", UFLDL_TXT, "--pool", "l2", "-k", "2", "--backward")
    assert result.exit_code == 2
    assert "the gradient of l2 pooling is not computed; valid: max, avg" in result.stderr


# -- --backward --steps for pooling and for one layer of a pipeline -------------------


def _check_steps(doc: dict[str, Any], grad_input: Any) -> None:
    """Each step's value is the sum of its terms' products and the gradient computed."""
    for step in doc["backward_steps"]:
        assert step["value"] == pytest.approx(sum(a * b for a, b in step["terms"]))
        if step["grad"] == "input":
            r, c = step["position"]
            assert step["value"] == pytest.approx(grad_input[r][c][step["channel"]])


def test_max_pool_steps_route_each_window_to_its_max() -> None:
    path = str(SAMPLES / "maxpool_4x4.txt")
    doc = run_json("apply", path, "--pool", "max", "-k", "2", "--backward", "--steps", "--json")
    assert (doc["kind"], doc["op"], len(doc["backward_steps"])) == ("pool", "max", 16)
    _check_steps(doc, doc["grad_input"])
    winners = {tuple(w["winner"]) for s in doc["backward_steps"] for w in s["windows"] if w["max"]}
    assert winners == {(1, 1), (0, 2), (3, 1), (2, 3)}
    result = run("apply", path, "--pool", "max", "-k", "2", "--backward", "--steps", "--at", "0,0")
    assert result.exit_code == 0, result.output
    assert "dL/dX[0,0] = 1×0 = 0\n    window (0,0): max 9 at (1,1)" in result.stdout


def test_average_pool_steps_divide_as_the_layer_does() -> None:
    path = str(SAMPLES / "maxpool_4x4.txt")
    for extra, count in (((), 9), (("--exclude-pad",), 4)):
        doc = run_json(
            "apply", path, "avgpool:3,s=2,p=1", *extra, "--backward", "--steps", "--json"
        )
        _check_steps(doc, doc["grad_input"])
        assert doc["backward_steps"][0]["windows"] == [{"output": [0, 0], "count": count}]


def test_pipeline_steps_trace_the_chosen_layer_with_its_upstream_gradient() -> None:
    layers = ("conv:k=1,0,1;0,1,0;1,0,1", "relu", "maxpool:2,s=1")
    first = run_json("apply", UFLDL_TXT, *layers, "--backward", "--steps", "--json")
    assert first["layer"] == 1 and first["upstream"]["from_spec"] == "relu"
    assert first["upstream"]["values"] == [[[1], [0], [1]], [[0], [2], [0]], [[0], [0], [0]]]
    _check_steps(first, first["grad_input"])
    kernel = np.array(first["grad_kernel"][0])
    for step in (s for s in first["backward_steps"] if s["grad"] == "kernel"):
        assert step["value"] == kernel[tuple(step["position"])]
    last = run_json(
        "apply", UFLDL_TXT, *layers, "--backward", "--steps", "--steps-layer", "3", "--json"
    )
    assert last["layer"] == 3 and last["upstream"]["from_layer"] is None
    # layer 3's dL/dX is dL/dY of layer 2 (relu), i.e. layer 1's upstream
    _check_steps(last, first["upstream"]["values"])
    result = run("apply", UFLDL_TXT, *layers, "--backward", "--steps", "--limit", "1")
    assert result.exit_code == 0, result.output
    assert (
        "dL/dY of layer 1 = dL/dX of layer 2 (relu), backpropagated from dL/dY of layer 3 = "
        "all ones" in result.stdout
    )


def test_steps_of_a_layer_without_traced_gradients_name_the_layers_that_have_them() -> None:
    result = run(
        "apply", UFLDL_TXT, "conv:k=box3", "relu", "--backward", "--steps", "--steps-layer", "2"
    )
    assert result.exit_code == 2
    assert "layer 2 is 'relu' (valid: --steps-layer 1, or drop --steps)" in result.stderr
    assert "Traceback" not in result.output
