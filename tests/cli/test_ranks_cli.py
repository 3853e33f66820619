"""`convcalc apply` on 1-D signals and 3-D volumes: results, sizes equal to `shape`'s,
and the combinations refused with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from tests.conftest import SAMPLES, run, run_json


def save(path: Path, array: np.ndarray) -> str:
    np.save(path, array)
    return str(path)


@pytest.fixture
def signal(tmp_path: Path) -> str:
    return save(tmp_path / "signal.npy", np.array([0, 0, 1, 5, 1, 0, 0, 3, 0], dtype=float))


@pytest.fixture
def volume(tmp_path: Path) -> str:
    return save(tmp_path / "volume.npy", np.random.default_rng(0).normal(size=(6, 8, 10)))


def test_a_1d_signal_is_smoothed_and_printed_as_one_row(signal: str) -> None:
    result = run("apply", signal, "-k", "1,2,1", "-p", "1")
    assert result.exit_code == 0, result.output
    assert "output 9" in result.stdout
    assert "│ 0 │ 1 │ 7 │ 12 │ 7 │ 1 │ 3 │ 6 │ 3 │" in result.stdout


@pytest.mark.parametrize("mode", ["zero", "reflect", "replicate", "wrap"])
def test_box_smoothing_matches_scipy(signal: str, mode: str) -> None:
    doc = run_json("apply", signal, "-k", "box:size=3", "-p", "same", "--pad-mode", mode)
    scipy_mode = {"zero": "constant", "reflect": "mirror", "replicate": "nearest"}.get(mode, mode)
    x = np.load(signal)
    assert doc["rank"] == 1 and doc["output_shape"] == [9, 1]
    np.testing.assert_allclose(doc["output"], ndimage.uniform_filter1d(x, 3, mode=scipy_mode))


def test_long_box_is_as_long_as_its_size(tmp_path: Path) -> None:
    x = np.random.default_rng(1).normal(size=500)
    out = tmp_path / "smooth.npy"
    result = run("apply", save(tmp_path / "x.npy", x), "conv1d:k=box:size=80", "-o", str(out))
    assert result.exit_code == 0, result.output
    got = np.load(out)
    assert got.shape == (421,)  # a .npy keeps the rank
    np.testing.assert_allclose(got, np.convolve(x, np.full(80, 1 / 80), mode="valid"))


def test_lxc_input_with_rank_1_and_a_kxc_kernel(tmp_path: Path) -> None:
    x = np.random.default_rng(2).normal(size=(30, 3))
    w = np.random.default_rng(3).normal(size=(5, 3))
    path, kernel = save(tmp_path / "x.npy", x), save(tmp_path / "w.npy", w)
    doc = run_json("apply", path, "--rank", "1", "-k", kernel, "-s", "2", "-d", "2")
    expected = [sum(x[2 * i + 2 * t] @ w[t] for t in range(5)) for i in range(11)]
    np.testing.assert_allclose(doc["output"], expected)


def test_a_3d_volume_conv_and_max_pool(volume: str, tmp_path: Path) -> None:
    out = tmp_path / "out.npy"
    args = ("apply", volume, "conv3d:k=gauss:sigma=1,size=5,p=2", "maxpool3d:2", "-o", str(out))
    result = run(*args)
    assert result.exit_code == 0, result.output
    x = np.load(volume)
    blurred = ndimage.correlate(x, np.ones(1) * _gauss3(), mode="constant")
    expected = blurred.reshape(3, 2, 4, 2, 5, 2).max(axis=(1, 3, 5))
    np.testing.assert_allclose(np.load(out), expected, atol=1e-12)


def _gauss3() -> np.ndarray:
    g = np.exp(-0.5 * (np.arange(5) - 2.0) ** 2)
    g /= g.sum()
    return np.einsum("i,j,k->ijk", g, g, g)


def test_option_form_pools_a_volume_with_rank_3(volume: str) -> None:
    doc = run_json("apply", volume, "--rank", "3", "--pool", "avg", "-k", "2x2x5")
    x = np.load(volume)
    assert doc["output_shape"] == [3, 4, 2, 1]
    np.testing.assert_allclose(doc["output"], x.reshape(3, 2, 4, 2, 2, 5).mean(axis=(1, 3, 5)))


@pytest.mark.parametrize(
    ("shape", "specs", "kernel"),
    [
        ("40x3", ["conv1d:2,5,s=2,p=3,d=2"], (5, 3)),
        ("9x7x11x2", ["conv3d:2,3x3x5,s=2x1x3,p=1,d=1x2x1"], (3, 3, 5, 2)),
        ("9x7x11", ["maxpool3d:3,s=2,p=1,ceil"], None),
        ("25", ["avgpool1d:4,s=3,p=2"], None),
    ],
)
def test_sizes_equal_shapes(tmp_path: Path, shape: str, specs: list[str], kernel) -> None:
    dims = [int(n) for n in shape.split("x")]
    path = save(tmp_path / "x.npy", np.ones(dims))
    expected = run_json("shape", shape, *specs)["output_shape"]
    applied = []
    for spec in specs:
        if kernel is not None:
            k = save(tmp_path / "k.npy", np.ones(kernel))
            head, _, tail = spec.partition(":")
            spec = f"{head}:k={k}," + tail.split(",", 2)[2]
        applied.append(spec)
    args = ["apply", path, *applied, *(["--channels", "sum"] if kernel else [])]
    doc = run_json(*args)
    assert doc["output_shape"][:-1] == expected[: len(doc["output_shape"]) - 1]


def test_gauss_in_3d_is_5x5x5(volume: str, tmp_path: Path) -> None:
    doc = run_json("apply", volume, "conv3d:k=gauss:sigma=1,size=5", "--verbose")
    assert doc["output_shape"] == [2, 4, 6, 1]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["-k", "1,2,1", "--backward", "--steps", "--at", "0,1"], "valid: N such as 3"),
        (["-k", "1,2,1", "--steps", "--at", "1,2"], "valid: N such as 3"),
        (["-k", "1,2,1", "--steps", "--at", "12"], "outside the 7 output; valid: positions"),
        (["-k", "1,2,1", "--method", "fft"], "--method auto or direct"),
        (["-k", "1,2,1", "-o", "out.png"], "an image is 2-D"),
        (["-k", "sobel-x"], "is 2-D"),
        (
            ["conv1d:k=1,2,1", "deconv3d:k=1,2,1"],
            "is a 3-D layer in a 1-D run; valid: layers of one rank (conv1d, deconv1d",
        ),
        (["conv1d:k=1,2,1", "conv3d:k=1,2,1"], "is a 3-D layer in a 1-D run"),
        (["conv1d:k=1,2,1", "--rank", "3"], "disagree"),
        (["maxpool3d:2"], "not 3-D data"),
        (["-k", "1,2,1", "-s", "2x2"], "stride 2x2 has 2 axes"),
    ],
)
def test_bad_combinations_are_refused(signal: str, args: list[str], fragment: str) -> None:
    result = run("apply", signal, *args)
    assert result.exit_code == 2, result.output
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_a_volume_image_or_2d_text_at_rank_3_is_refused() -> None:
    result = run("apply", str(SAMPLES / "photo.png"), "conv3d:k=1,2,1")
    assert result.exit_code == 2 and "an image is 2-D data" in result.stderr


def test_2d_runs_are_unchanged() -> None:
    doc = run_json("apply", str(SAMPLES / "ufldl_5x5.txt"), "-k", "1,0,1;0,1,0;1,0,1")
    assert "rank" not in doc and doc["output"][0] == [[4], [3], [4]]
    assert json.dumps(doc)


def test_a_signal_is_written_atomically_and_never_over_its_input(tmp_path):
    import numpy as np

    from tests.conftest import run

    signal = tmp_path / "signal.npy"
    np.save(signal, np.array([0.0, 1.0, 5.0, 1.0, 0.0]))
    refused = run("apply", str(signal), "-k", "1,2,1", "-p", "1", "-o", str(signal))
    assert refused.exit_code == 2 and "would destroy the input" in refused.stderr
    assert np.load(signal).tolist() == [0.0, 1.0, 5.0, 1.0, 0.0]
    out = tmp_path / "out.npy"
    assert run("apply", str(signal), "-k", "1,2,1", "-p", "1", "-o", str(out)).exit_code == 0
    assert np.load(out).tolist() == [1.0, 7.0, 12.0, 7.0, 1.0]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


# -- steps, pictures, transposed and gradients at rank 1 and 3 ------------------------------


def test_signal_steps_at_a_position_and_as_json(signal: str) -> None:
    result = run("apply", signal, "-k", "1,2,1", "-p", "1", "--steps", "--at", "3")
    assert result.exit_code == 0, result.output
    assert "output (3): input positions 2..4" in result.stdout
    assert "1×1 + 5×2 + 1×1 = 12" in result.stdout
    doc = run_json("apply", signal, "-k", "1,2,1", "-p", "1", "--steps", "--at", "0")
    assert doc["rank"] == 1 and doc["output_shape"] == [9, 1] and doc["omitted"] == 8
    (step,) = doc["steps"]
    assert step["position"] == [0] and step["origin"] == [-1] and step["value"] == 0
    assert step["channels"][0]["window"] == [0, 0, 0]
    assert step["channels"][0]["padding_mask"] == [True, False, False]


def test_volume_steps_of_a_later_layer(volume: str) -> None:
    x = np.load(volume)
    args = ("conv3d:k=box:size=3,p=1", "maxpool3d:2", "--steps", "--steps-layer", "2")
    doc = run_json("apply", volume, *args, "--at", "1,2,4", "--at", "0,0,0")
    assert [s["position"] for s in doc["steps"]] == [[1, 2, 4], [0, 0, 0]]
    blurred = ndimage.uniform_filter(x, 3, mode="constant")
    assert doc["steps"][0]["value"] == pytest.approx(blurred[2:4, 4:6, 8:10].max())
    assert len(doc["steps"][0]["argmax"]) == 3
    text = run("apply", volume, *args, "--at", "1,2,4").stdout
    assert "output (1, 2, 4): input slices 2..3, rows 4..5, columns 8..9" in text
    assert "window, slice 2      window, slice 3" in text


def test_show_draws_a_signal_and_volume_slices(signal: str, volume: str) -> None:
    result = run("apply", signal, "-k", "1,2,1", "-p", "1", "--show")
    assert result.exit_code == 0, result.output
    assert "input 9" in result.stdout and "12 ┤" in result.stdout
    result = run("apply", volume, "maxpool3d:2", "--show", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["output_shape"] == [3, 4, 5, 1]
    assert "input 6x8x10" in result.stderr and "slice 5" in result.stderr


def test_transposed_signal_in_both_forms_equals_the_scatter(signal: str) -> None:
    x = np.load(signal)
    expected = np.zeros(2 * 8 + 3)
    for n, v in enumerate(x):
        expected[2 * n : 2 * n + 3] += v * np.array([1.0, 2.0, 1.0])
    expected = expected[1:-1]  # p=1 crops one from each end
    spec = run_json("apply", signal, "deconv1d:k=1,2,1,s=2,p=1")
    option = run_json("apply", signal, "-k", "1,2,1", "--transposed", "-s", "2", "-p", "1")
    assert spec["output"] == option["output"] == expected.tolist()
    shape = run_json("shape", "9", "deconv1d:1,3,s=2,p=1")["output_shape"]
    assert shape[0] == len(expected)


def test_backward_of_a_signal_pipeline(signal: str, tmp_path: Path) -> None:
    g = np.arange(4.0)
    grad = save(tmp_path / "g.npy", g)
    args = ("conv1d:k=1,2,1,s=2", "--backward", "--grad-output", grad)
    doc = run_json("apply", signal, *args)
    x = np.load(signal)
    want = np.zeros(9)
    for o in range(4):
        want[2 * o : 2 * o + 3] += g[o] * np.array([1.0, 2.0, 1.0])
    assert doc["grad_input"] == want.tolist()
    assert doc["grad_kernel"] == [[sum(g[o] * x[2 * o + t] for o in range(4)) for t in range(3)]]
    text = run("apply", signal, *args).stdout
    assert "dL/dX 9" in text and "dL/dW filter 1" in text
    wrong = run("apply", signal, "-k", "1,2,1", "--backward", "--grad-output", signal)
    assert wrong.exit_code == 2 and "does not fit the output's 7x1" in wrong.stderr


def test_backward_of_a_volume_has_the_input_shape_and_one_kernel_per_filter(
    tmp_path: Path,
) -> None:
    x = np.random.default_rng(4).normal(size=(3, 4, 5, 2))
    w = [np.ones((2, 2, 2, 2)), np.arange(16.0).reshape(2, 2, 2, 2)]
    kernels = [save(tmp_path / f"w{i}.npy", k) for i, k in enumerate(w)]
    path = save(tmp_path / "x.npy", x)
    args = ["--rank", "3", "-k", kernels[0], "-k", kernels[1], "--bias", "1,2", "--backward"]
    doc = run_json("apply", path, *args, "--activation", "relu")
    assert np.array(doc["grad_input"]).shape == x.shape
    assert [np.array(k).shape for k in doc["grad_kernel"]] == [(2, 2, 2, 2)] * 2
    out = np.array(doc["output"])
    assert doc["grad_bias"] == [float((out[..., f] > 0).sum()) for f in range(2)]


@pytest.mark.parametrize(
    ("rank", "spec", "at"),
    [(1, "conv1d:k=1,2,1,s=2,p=1", "4"), (3, "maxpool3d:2,s=1", "1,1,1")],
)
def test_backward_steps_of_a_signal_and_a_volume(
    rank: int, spec: str, at: str, tmp_path: Path
) -> None:
    data = str(SAMPLES / ("signal_9.txt" if rank == 1 else "volume_3x3x3.txt"))
    out_shape = run_json("apply", data, spec)["output_shape"]
    g = np.arange(1.0, np.prod(out_shape) + 1).reshape(out_shape[:-1])
    grad = save(tmp_path / "g.npy", g)
    args = ["apply", data, spec, "--backward", "--steps", "--grad-output", grad]
    doc = run_json(*args, "--json")
    assert doc["rank"] == rank and doc["upstream"]["values"] == g[..., None].tolist()
    grad_input = np.array(doc["grad_input"])
    for step in doc["backward_steps"]:
        assert step["value"] == sum(a * b for a, b in step["terms"])
        where = tuple(step["position"])
        if step["grad"] == "kernel":
            assert step["value"] == doc["grad_kernel"][step["filter"]][where[0]]
        else:
            assert step["value"] == grad_input[where]
    text = run(*args, "--at", at).stdout
    index = at.replace(" ", "")
    assert f"dL/dX[{index}] = " in text and f"--at {'N' if rank == 1 else 'D,ROW,COL'}" in text
