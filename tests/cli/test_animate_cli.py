"""`convcalc animate` on the layers apply runs: several channels and filters, regions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from convcalc.calc.choices import AnimKind, ChannelMode
from convcalc.io.kernels import read_kernels
from convcalc.io.reading import read_input
from convcalc.present.frames import AnimationRequest, plan
from tests.conftest import CS231N_ARGS, SAMPLES, run

CS231N = CS231N_ARGS


def test_the_cs231n_layer_has_one_frame_per_position_and_filter(tmp_path: Path) -> None:
    out = tmp_path / "cs231n.gif"
    result = run("animate", *CS231N, "-o", str(out), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["frames"] == 3 * 3 * 2 + 1
    with Image.open(out) as gif:
        assert gif.n_frames == 19


def test_every_caption_equals_apply_json() -> None:
    applied = run("apply", *CS231N, "--json")
    assert applied.exit_code == 0, applied.output
    expected = np.array(json.loads(applied.stdout)["output"], dtype=float)
    x = read_input(CS231N[0]).data
    kernels = tuple(read_kernels((CS231N[2], CS231N[4])))
    p = plan(AnimationRequest(x, kernels, stride=(2, 2), padding=(1, 1), bias=(1.0, 0.0)))
    for step in p.steps:
        (r, c), o = step.position, step.panel
        head = step.caption.split("\n")[0]
        assert head.startswith(f"out[{r},{c},{o}]")
        assert float(head.rsplit(" = ", 1)[1]) == expected[r, c, o]
    for o in range(2):
        np.testing.assert_array_equal(p.right[:, 4 * o : 4 * o + 3], expected[..., o])


def test_a_2d_kernel_on_colour_sums_with_channels_sum(tmp_path: Path) -> None:
    x = read_input(CS231N[0]).data
    applied = run("apply", CS231N[0], "-k", "sobel-x", "--channels", "sum", "-p", "1", "--json")
    expected = np.array(json.loads(applied.stdout)["output"], dtype=float)
    (k,) = read_kernels(("sobel-x",))
    p = plan(AnimationRequest(x, k, padding=(1, 1), channels=ChannelMode.SUM))
    np.testing.assert_array_equal(p.right, expected[..., 0])
    out = tmp_path / "sum.gif"
    result = run(
        "animate", CS231N[0], "-k", "sobel-x", "--channels", "sum", "-p", "1", "-o", str(out)
    )
    assert result.exit_code == 0, result.output
    with Image.open(out) as gif:
        assert gif.n_frames == 25 + 1


def test_a_large_image_animates_a_region_with_a_note(tmp_path: Path) -> None:
    photo = str(SAMPLES / "photo.png")
    out = tmp_path / "crop.gif"
    result = run("animate", photo, "-k", "sobel-x", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "--region" in result.stderr and "centre 8x8" in result.stderr
    chosen = run("animate", photo, "-k", "box3", "--region", "10,20,6,5", "-o", str(out))
    assert chosen.exit_code == 0, chosen.output
    with Image.open(out) as gif:
        assert gif.n_frames <= 400


def test_bad_requests_are_usage_errors(tmp_path: Path) -> None:
    out = str(tmp_path / "x.gif")
    cases = [
        (["--region", "1,2,3"], "ROW,COL,H,W"),
        (["--region", "4,4,3,3"], "region 4,4,3,3"),
        (["--bias", "1,2"], "2 values for 1 filters"),
        (["--bias", "a"], "--bias"),
        (["--pool", "max", "--bias", "1"], "--pool animates one -k"),
    ]
    for extra, fragment in cases:
        result = run("animate", str(SAMPLES / "ufldl_5x5.txt"), "-k", "2.0", *extra, "-o", out)
        assert result.exit_code == 2, (extra, result.output)
        assert fragment in result.stderr, (extra, result.stderr)


def test_a_transposed_layer_on_colour_input_shows_what_apply_computes(tmp_path: Path) -> None:
    from tests.present.test_frames import _rebuilt_from_captions

    args = [CS231N[0], "--transposed", "-k", CS231N[2], "-k", CS231N[4], "-s", "2", "-p", "1"]
    applied = run("apply", *args, "--bias", "1,0", "--json")
    assert applied.exit_code == 0, applied.output
    expected = np.array(json.loads(applied.stdout)["output"], dtype=float)
    x = read_input(CS231N[0]).data
    kernels = tuple(read_kernels((CS231N[2], CS231N[4])))
    request = AnimationRequest(x, kernels, AnimKind.TRANSPOSED, (2, 2), (1, 1), bias=(1.0, 0.0))
    p = plan(request)
    np.testing.assert_array_equal(_rebuilt_from_captions(p, expected.shape), expected)
    for o in range(2):  # each output channel, cropped from its 11x11 full output
        np.testing.assert_array_equal(p.right[1:10, 12 * o + 1 : 12 * o + 10], expected[..., o])
    out = tmp_path / "up.gif"
    result = run("animate", *args, "--bias", "1,0", "-o", str(out), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["frames"] == 5 * 5 * 2 + 1
    assert "mean" not in result.stderr
