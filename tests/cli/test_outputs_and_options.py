"""What apply, animate and bench print and refuse: JSON that is always JSON and never a
wrapped or invented number, stdout that carries one thing, kernels that are not sizes,
layers apply cannot run, options that would be ignored, animations that cannot fit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from convcalc.cli.output import emit_json, json_numbers
from tests.conftest import SAMPLES, run

UFLDL = str(SAMPLES / "ufldl_5x5.txt")
EDGE = str(SAMPLES / "edge_6x6.txt")


def strict_json(text: str) -> Any:
    """Parse ``text`` as JSON proper: Python's parser accepts NaN and Infinity, JSON does not."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def only_json(*args: str) -> Any:
    """``convcalc ARGS``: asserted to succeed with exactly one JSON document on stdout."""
    result = run(*args)
    assert result.exit_code == 0, result.output
    return strict_json(result.stdout)


def refused(*args: str) -> str:
    """``convcalc ARGS``: asserted to fail with exit 2, nothing on stdout; its stderr."""
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    return result.stderr


# -- 1. JSON numbers: exact, never wrapped, never NaN or Infinity --------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (np.full((2, 2), 2**62, dtype=np.int64), 2.0**63),  # wrapped to -2**63 before
        ("99999999999999999999999,0\n0,0\n", 1e23),
        ("1e19,0\n0,0\n", 1e19),
        ("-1e19,0\n0,0\n", -1e19),
    ],
)
def test_large_whole_values_are_written_as_the_floats_they_are(tmp_path, values, expected):
    path = tmp_path / ("in.npy" if isinstance(values, np.ndarray) else "in.csv")
    np.save(path, values) if isinstance(values, np.ndarray) else path.write_text(values)
    (((value,),),) = only_json("apply", str(path), "-k", "1,0;0,1", "--json")["output"]
    assert value == expected and isinstance(value, float)


@pytest.mark.parametrize("value", [2**53 - 1, -(2**52) - 3, 12345678901234])
def test_whole_values_below_2_53_are_exact_integers(tmp_path, value):
    path = tmp_path / "in.csv"
    path.write_text(f"{value},0\n0,0\n")
    (((out,),),) = only_json("apply", str(path), "-k", "1,0;0,1", "--json")["output"]
    assert out == value and isinstance(out, int)


def test_integer_arrays_stay_exact_and_big_floats_stay_floats():
    big = np.array([[2**62 + 1, -(2**63)]], dtype=np.int64)
    assert json_numbers(big) == [[2**62 + 1, -(2**63)]]
    whole, huge, missing = json_numbers(np.array([2.0, 2.0**60, np.nan]))
    assert (whole, huge) == (2, 2.0**60) and isinstance(whole, int) and isinstance(huge, float)
    assert missing != missing  # NaN stays a float, for emit_json to write as null
    assert json_numbers(np.array([2.5, 3.0])) == [2.5, 3.0]


def nan_tiff(folder: Path) -> Path:
    path = folder / "nan.tif"
    values = np.array([[1, np.nan, 3], [4, 5, 6], [7, 8, np.inf]], dtype=np.float32)
    Image.fromarray(values, mode="F").save(path)
    return path


def overflowing_csv(folder: Path) -> Path:
    path = folder / "huge.csv"
    path.write_text("1e308,1e308\n1e308,1e308\n")
    return path


@pytest.mark.parametrize(
    ("make", "kernel", "nulls"),
    [(nan_tiff, "1,0;0,1", 3), (overflowing_csv, "1,1;1,1", 1)],
    ids=["nan-tiff", "overflow"],
)
@pytest.mark.parametrize(
    "extra", [[], ["--steps"], ["-o", "OUT.npy"]], ids=["result", "steps", "written"]
)
def test_values_that_are_not_finite_are_null_and_counted(tmp_path, make, kernel, nulls, extra):
    path = make(tmp_path)
    args = [str(tmp_path / a) if a == "OUT.npy" else a for a in extra]
    result = run("apply", str(path), "-k", kernel, "--json", *args)
    assert result.exit_code == 0, result.output
    doc = strict_json(result.stdout)
    if "--steps" in extra:
        values = [step["value"] for step in doc["steps"]]
    else:
        values = np.array(doc["output"], dtype=object).ravel().tolist()
    assert values.count(None) == nulls
    assert "not finite" in result.stderr


@pytest.mark.parametrize(
    ("document", "nulls"),
    [
        ({"a": float("nan"), "b": [1.0, float("inf"), -float("inf")]}, 3),
        ({"nested": {"x": [np.float32("nan"), np.float64(2.5)], "n": 3}}, 1),
    ],
)
def test_emit_json_writes_null_for_every_non_finite_number(capsys, document, nulls):
    emit_json(document)
    out, err = capsys.readouterr()
    strict_json(out)
    assert out.count("null") == nulls
    assert f"{nulls} value" in err and "not finite" in err


# -- 2. stdout carries one thing -----------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        ["--show"],
        ["-o", "OUT.png"],
        ["-o", "OUT.npy"],
        ["--steps"],
        ["--steps", "--show"],
        ["--steps", "-o", "OUT.png"],
        ["-v", "--show", "-o", "OUT.png"],
    ],
)
def test_json_is_the_whole_of_stdout(tmp_path, extra):
    args = [str(tmp_path / a) if a.startswith("OUT") else a for a in extra]
    doc = only_json("apply", UFLDL, "-k", "1,0,1;0,1,0;1,0,1", "--json", *args)
    assert doc["output_shape"] == [3, 3, 1]
    if "-o" in args:
        target = args[args.index("-o") + 1]
        assert doc["written"]["paths"] == [target] and Path(target).exists()
        assert any(note.startswith("wrote") for note in doc["notes"])
        image = target.endswith(".png")
        assert (doc["written"]["scale"] is not None) == image


def test_show_draws_on_stderr_under_json():
    result = run("apply", UFLDL, "-k", "box3", "--json", "--show")
    assert result.exit_code == 0
    strict_json(result.stdout)
    assert "input 5x5" in result.stderr


@pytest.mark.parametrize("flag", ["--steps", "--show", "--json"])
def test_png_on_stdout_is_never_mixed_with_text(flag):
    message = refused("apply", UFLDL, "-k", "box3", "-o", "-", flag)
    assert flag in message and "-o -" in message


def test_json_with_several_inputs_is_refused(tmp_path):
    message = refused("apply", UFLDL, EDGE, "-k", "box3", "-o", f"{tmp_path}/", "--json")
    assert "--json" in message and "one input" in message


# -- 3. a size is not a kernel -------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (
            ["apply", UFLDL, "-k", "3"],
            ["-k 3 would be a 1x1 kernel of value 3", "box3", "box:size=3", "3.0"],
        ),
        (["apply", UFLDL, "-k", "box3", "-k", "5"], ["-k 5", "box5", "5.0"]),
        (["apply", UFLDL, "-k", "3x3"], ["-k 3x3 is a size", "'1,1,1;1,1,1;1,1,1'"]),
        (["apply", UFLDL, "conv:k=3"], ["conv:k=3", "not its size 3", "box:size=3"]),
        (["apply", UFLDL, "conv:k=box3", "conv:k=2x2"], ["argument 2", "'1,1;1,1'"]),
        (["animate", UFLDL, "-k", "3", "-o", "x.gif"], ["-k 3 would be a 1x1 kernel"]),
        (["bench", UFLDL, "-k", "2"], ["-k 2 would be a 1x1 kernel", "'1,1;1,1'"]),
    ],
)
def test_a_bare_size_as_a_convolution_kernel_is_refused_with_the_ways_to_write_one(args, fragments):
    message = refused(*args)
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(("kernel", "factor"), [("3.0", 3), ("0.5", 0.5), ("-2", -2)])
def test_a_1x1_kernel_is_written_with_a_decimal_point(kernel, factor):
    doc = only_json("apply", UFLDL, "-k", kernel, "--json")
    assert doc["output"] == (np.loadtxt(UFLDL)[:, :, None] * factor).tolist()


def test_pooling_sizes_and_kernel_files_named_like_sizes_still_work(tmp_path, monkeypatch):
    assert only_json(
        "apply", str(SAMPLES / "maxpool_4x4.txt"), "--pool", "max", "-k", "2", "--json"
    )["output"] == [[[9], [2]], [[6], [3]]]
    monkeypatch.chdir(tmp_path)
    Path("3").write_text("1 0 1\n0 1 0\n1 0 1\n")
    assert only_json("apply", UFLDL, "-k", "3", "--json")["output"][0] == [[4], [3], [4]]


# -- 4. layers apply cannot run as written -------------------------------------------------


@pytest.mark.parametrize(("spec", "rank"), [("conv1d:k=1,2,1", 1), ("conv3d:k=1,2,1", 3)])
def test_other_ranks_are_refused_rather_than_run_as_2d(spec, rank):
    # alone, a conv1d/conv3d runs at its rank (tests/cli/test_ranks_cli.py); after a 2-D
    # layer it would run on 2-D data: refused
    message = refused("apply", EDGE, "conv:k=box3", spec)
    assert f"is a {rank}-D layer in a 2-D run" in message


# -- 5. options that would be ignored ------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["-k", "box3", "--at", "0,0"], "--at needs --steps"),
        (["-k", "box3", "--limit", "2"], "--limit needs --steps"),
        (["-k", "box3", "--steps-layer", "1"], "--steps-layer needs --steps"),
        (["--pool", "max", "--global", "-k", "2"], "-k has no effect on a global pool"),
        (["--pool", "avg", "--global", "-s", "2"], "-s has no effect on a global pool"),
        (["--pool", "avg", "-k", "2", "--bias", "1"], "--bias needs a convolution"),
        (["--pool", "max", "-k", "2", "--activation", "relu"], "--activation does not apply"),
        (["--pool", "max", "-k", "2", "--transposed"], "--transposed and --pool"),
        (["-k", "box3", "--output-padding", "1"], "--output-padding needs --transposed"),
        (["-k", "box3", "--ceil"], "--ceil needs --pool"),
        (["-k", "box3", "--global"], "--global needs --pool"),
        (["-k", "box3", "--exclude-pad"], "--exclude-pad needs average pooling"),
        (["--pool", "max", "-k", "2", "--exclude-pad"], "--exclude-pad needs average pooling"),
        (["--pool", "max", "-k", "2", "--method", "fft"], "--method needs a convolution"),
        (["--pool", "max", "-k", "2", "--flip"], "--flip needs a convolution"),
        (["conv:k=box3", "-s", "2"], "-s describes the layer of the option form"),
        (["maxpool:2", "--ceil"], "--ceil describes the layer of the option form"),
        (["-k", "box3", "--scale", "clip"], "--scale needs -o FILE"),
        (["-k", "box3", "-o", "OUT.npy", "--scale", "clip"], "--scale needs an image output"),
        (["-k", "box3", "-o", "OUT.jpg", "--compress", "9"], "--compress needs a PNG output"),
    ],
)
def test_an_option_the_run_would_ignore_is_refused(tmp_path, args, fragment):
    args = [str(tmp_path / a) if a.startswith("OUT") else a for a in args]
    assert fragment in refused("apply", EDGE, *args)
    assert not list(tmp_path.iterdir())  # refused before anything was written


@pytest.mark.parametrize(
    "args",
    [
        ["--pool", "avg", "-k", "2", "--exclude-pad", "-p", "1"],
        ["avgpool:2,p=1", "--exclude-pad"],
        ["--pool", "max", "-k", "2", "--ceil", "-s", "3"],
        ["-k", "1,1;1,1", "--transposed", "-s", "2", "--output-padding", "1"],
        ["-k", "box3", "--steps", "--at", "0,0", "--limit", "1"],
        ["conv:k=box3", "maxpool:2", "--steps", "--steps-layer", "2"],
        ["-k", "box3", "--bias", "1", "--activation", "relu", "--flip", "--method", "fft"],
        ["-k", "box3", "-o", "OUT.png", "--scale", "minmax", "--compress", "9", "--force"],
    ],
)
def test_options_the_run_uses_are_accepted(tmp_path, args):
    args = [str(tmp_path / a) if a.startswith("OUT") else a for a in args]
    result = run("apply", EDGE, *args)
    assert result.exit_code == 0, result.output


# -- 6. animations within bounds -----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--max-frames", "100000"], "--max-frames 100000 is not valid; valid: 3 to 2000"),
        (["--max-frames", "2"], "--max-frames 2"),
        (["--cell", "1000"], "--cell 1000 is not valid; valid: 4 to 128"),
        (["--duration", "5"], "--duration 5 is not valid; valid: 20 to 10000"),
        (["--duration", "100000"], "--duration 100000"),
    ],
)
def test_animate_ranges_are_checked_before_the_input_is_read(tmp_path, args, fragment):
    missing = str(tmp_path / "missing.txt")  # never read: the range is refused first
    assert fragment in refused(
        "animate", missing, "-k", "box3", "-o", str(tmp_path / "a.gif"), *args
    )


@pytest.mark.parametrize("cell", ["128", "96"])
def test_an_animation_too_big_to_draw_is_refused_with_what_would_fit(tmp_path, cell):
    grid = tmp_path / "grid.txt"
    np.savetxt(grid, np.arange(144).reshape(12, 12), fmt="%d")
    out = tmp_path / "a.gif"
    message = refused("animate", str(grid), "-k", "box3", "-p", "1", "--cell", cell, "-o", str(out))
    assert "145 frames" in message and "MiB" in message and "--max-frames" in message
    assert not out.exists()


def test_animate_refuses_options_it_would_ignore(tmp_path):
    out = str(tmp_path / "a.gif")
    assert "--transposed and --pool" in refused(
        "animate", UFLDL, "--pool", "max", "-k", "2", "--transposed", "-o", out
    )
    assert "--output-padding needs --transposed" in refused(
        "animate", UFLDL, "-k", "box3", "--output-padding", "1", "-o", out
    )


@pytest.mark.parametrize(
    ("fmt", "first"), [("csv", "row,0,1,2"), ("markdown", "| row | 0 | 1 | 2 |")]
)
def test_apply_prints_its_result_table_in_other_formats(fmt, first):
    result = run(
        "apply", str(SAMPLES / "ufldl_5x5.txt"), "-k", "1,0,1;0,1,0;1,0,1", "--format", fmt
    )
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == first and "4" in lines[-1]


@pytest.mark.parametrize("extra", [["-o", "out.npy"], ["--steps"]])
def test_apply_format_with_a_file_or_steps_is_refused(extra, tmp_path):
    result = run(
        "apply",
        str(SAMPLES / "ufldl_5x5.txt"),
        "-k",
        "box3",
        "--format",
        "csv",
        *[str(tmp_path / e) if e.endswith(".npy") else e for e in extra],
    )
    assert result.exit_code == 2 and "--format" in result.stderr


def test_fsync_is_asked_for_and_flushes_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    flushed: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (flushed.append(fd), real(fd))[1])
    out = str(tmp_path / "o.npy")
    assert run("apply", UFLDL, "-k", "box3", "-o", out).exit_code == 0
    assert flushed == []
    assert run("apply", UFLDL, "-k", "box3", "-o", out, "--fsync").exit_code == 0
    assert len(flushed) == 2  # the file, then its folder
    assert np.load(out).shape == (3, 3)


def test_fsync_without_a_file_is_refused() -> None:
    assert "--fsync needs -o FILE" in refused("apply", UFLDL, "-k", "box3", "--fsync")
    assert "--fsync needs -o FILE" in refused("apply", UFLDL, "-k", "box3", "-o", "-", "--fsync")
