"""The kernel specifications of ``-k`` (`convcalc.io.kernels`): names in any case,
inline matrices, files, and the messages for what is none of them."""

import re

import numpy as np
import pytest

from convcalc.compute.kernels import describe, get_preset
from convcalc.errors import ConvcalcError
from convcalc.io.kernels import parse_kernel, read_kernels
from tests.compute.test_kernels import CLASSIC


def test_names_are_case_insensitive():
    np.testing.assert_array_equal(parse_kernel(" Sobel-X "), get_preset("sobel-x"))
    assert describe("GAUSS5") == describe("gauss5")


# --- parse_kernel: names, inline matrices, files ----------------------------------


def test_inline_kernels():
    np.testing.assert_array_equal(parse_kernel("1,0,-1;1,0,-1;1,0,-1"), CLASSIC["edge-v"])
    assert parse_kernel("1 0;0 1|2 0;0 2").shape == (2, 2, 2)
    assert parse_kernel("1,2,1").shape == (1, 3)
    assert parse_kernel("-1").shape == (1, 1)


@pytest.mark.parametrize(
    ("spec", "suggestion"),
    [
        ("sobelx", "sobel-x"),
        ("edge_v", "edge-v"),
        ("Gaus3", "gauss3"),
        ("laplace", "laplace4' or 'laplace8"),
        ("guass:1", "gauss"),
    ],
)
def test_unknown_names_suggest_the_closest(spec, suggestion):
    with pytest.raises(ConvcalcError) as info:
        parse_kernel(spec)
    assert f"did you mean '{suggestion}'?" in str(info.value)
    assert "convcalc kernels" in str(info.value)


def test_unknown_name_without_a_close_match():
    with pytest.raises(ConvcalcError, match=r"unknown kernel 'zzzzzz'; give a preset name"):
        parse_kernel("zzzzzz")


def test_bad_inline_matrix_names_the_token():
    with pytest.raises(ConvcalcError, match=r"row 2: 'q' is not a number"):
        parse_kernel("1,0;q,1")


@pytest.mark.parametrize("spec", ["missing.npy", "no/such/kernel.txt"])
def test_missing_file(spec, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConvcalcError, match=re.escape(f"kernel file '{spec}' not found")):
        parse_kernel(spec)


def test_text_and_npy_files(tmp_path):
    text_file = tmp_path / "k.txt"
    text_file.write_text("# Sobel\n-1 0 1\n-2 0 2\n-1 0 1\n")
    np.testing.assert_array_equal(parse_kernel(str(text_file)), CLASSIC["sobel-x"])
    npy_file = tmp_path / "k.bin"  # recognised by content, not by name
    np.save(npy_file.with_suffix(".npy"), np.arange(12, dtype=np.int16).reshape(2, 2, 3))
    npy_file.write_bytes(npy_file.with_suffix(".npy").read_bytes())
    kernel = parse_kernel(str(npy_file))
    assert kernel.dtype == np.float64
    assert kernel.shape == (2, 2, 3)


def test_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2\n3 x\n")
    with pytest.raises(ConvcalcError, match=r"bad\.txt: line 2: 'x' is not a number"):
        parse_kernel(str(bad))
    binary = tmp_path / "noise.dat"
    binary.write_bytes(b"\xff\xfe\x00\x80")
    with pytest.raises(ConvcalcError, match=r"neither a \.npy file nor UTF-8 text"):
        parse_kernel(str(binary))


def test_read_file_callback_is_used_and_checked(tmp_path):
    image = tmp_path / "kernel.png"
    image.write_bytes(b"not really an image")
    calls = []

    def reader(path):
        calls.append(path)
        return np.ones((2, 2), dtype=np.uint8)

    kernel = parse_kernel(str(image), read_file=reader)
    assert calls == [str(image)]
    assert kernel.dtype == np.float64
    np.testing.assert_array_equal(kernel, np.ones((2, 2)))
    with pytest.raises(ConvcalcError, match="KHxKW or KHxKWxC"):
        parse_kernel(str(image), read_file=lambda path: np.ones(4))
    with pytest.raises(ConvcalcError, match="not finite"):
        parse_kernel(str(image), read_file=lambda path: np.full((2, 2), np.nan))


# --- read_kernels: files read as inputs are --------------------------------------


def test_read_kernels_reads_files_as_inputs(tmp_path):
    from PIL import Image

    gray = tmp_path / "k.png"
    Image.fromarray(np.array([[0, 255], [255, 0]], dtype=np.uint8)).save(gray)
    deep = tmp_path / "k.npy"
    np.save(deep, np.ones((3, 3, 2)))
    kernels = read_kernels(["sobel-x", str(gray), str(deep)])
    np.testing.assert_array_equal(kernels[0], CLASSIC["sobel-x"])
    assert kernels[1].shape == (2, 2)  # one channel: KHxKW
    assert kernels[2].shape == (3, 3, 2)
    assert all(k.dtype == np.float64 for k in kernels)
