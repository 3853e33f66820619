"""`convcalc shape --rf-image`: a unit's receptive field drawn on samples/photo.png."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.conftest import SAMPLES, run

PHOTO = str(SAMPLES / "photo.png")


def test_draws_the_box_and_the_paths(tmp_path):
    out = tmp_path / "rf.png"
    result = run(
        "shape", "conv:8,3,s=2", "conv:8,3,s=2", "--rf-image", PHOTO, "--at", "10,20",
        "-o", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "rows 40-46, columns 80-86 (7x7)" in result.stderr
    with Image.open(PHOTO) as photo, Image.open(out) as picture:
        before = np.asarray(photo.convert("RGB")).astype(int)
        after = np.asarray(picture).astype(int)
    assert after.shape == (256, 256, 3)
    inside = np.abs(after[40:47, 80:87] - before[40:47, 80:87]).sum(axis=-1)
    assert (inside > 0).all()
    far = np.ones((256, 256), dtype=bool)
    far[30:57, 70:97] = False
    assert (after[far] == before[far]).all()


def test_input_given_must_match_the_picture(tmp_path):
    out = str(tmp_path / "rf.png")
    ok = run("shape", "256x256x3", "conv:8,3", "--rf-image", PHOTO, "--at", "0,0", "-o", out)
    assert ok.exit_code == 0, ok.output
    bad = run("shape", "224x224x3", "conv:8,3", "--rf-image", PHOTO, "-o", out)
    assert bad.exit_code == 2
    assert "is 256x256 but INPUT is 224x224x3" in bad.stderr


def test_a_preset_defaults_to_the_last_spatial_layer_centre(tmp_path):
    out = tmp_path / "rf.png"
    result = run("shape", "--net", "vgg16", "--rf-image", PHOTO, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "layer 32 (adaptiveavgpool:7), unit 3,3 of 7x7x512" in result.stderr
    with Image.open(out) as picture:
        assert picture.size == (256, 256)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["conv:8,3", "--at", "254,0"], "outside layer 1's output"),
        (["conv:8,3", "--at", "1"], "--at '1' is not valid"),
        (["conv:8,3", "fc:4", "--layer", "2"], "no spatial output"),
        (["deconv:8,3,s=2", "conv:8,3", "--layer", "2"], "not tracked"),
        (["conv:8,3", "--layer", "3"], "valid: 1 to 1"),
        (["conv:8,3", "( conv:8,3,p=1 @x | conv:8,1 add:x ) add"], "inside a group"),
    ],
)
def test_errors_exit_2_with_one_line(tmp_path, args, message):
    out = tmp_path / "rf.png"
    result = run("shape", *args, "--rf-image", PHOTO, "-o", str(out))
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_refuses_to_overwrite_the_picture_without_force(tmp_path):
    photo = tmp_path / "photo.png"
    photo.write_bytes((SAMPLES / "photo.png").read_bytes())
    args = ["shape", "conv:8,3", "--rf-image", str(photo), "-o", str(photo)]
    refused = run(*args)
    assert refused.exit_code == 2
    assert photo.read_bytes() == (SAMPLES / "photo.png").read_bytes()
    assert run(*args, "--force").exit_code == 0


def test_options_need_rf_image():
    result = run("shape", "32x32x3", "conv:8,3", "--at", "1,1")
    assert result.exit_code == 2
    assert "--at needs --rf-image" in result.stderr
