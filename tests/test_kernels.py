import math
import re

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import ndimage, signal

from convcalc.compute.kernels import (
    describe,
    get_preset,
    parameterised_kernels,
    parse_kernel,
    preset_names,
    separable_factors,
)
from convcalc.errors import ConvcalcError

CLASSIC = {
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "edge-v": [[1, 0, -1], [1, 0, -1], [1, 0, -1]],
    "edge-h": [[1, 1, 1], [0, 0, 0], [-1, -1, -1]],
    "sobel-x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "sobel-y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "prewitt-x": [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]],
    "prewitt-y": [[-1, -1, -1], [0, 0, 0], [1, 1, 1]],
    "scharr-x": [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]],
    "scharr-y": [[-3, -10, -3], [0, 0, 0], [3, 10, 3]],
    "laplace4": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "laplace8": [[1, 1, 1], [1, -8, 1], [1, 1, 1]],
    "emboss": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
    "outline": [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
    "box3": np.full((3, 3), 1 / 9),
    "box5": np.full((5, 5), 1 / 25),
    "gauss3": np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16,
    "gauss5": np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256,
    "motion": np.eye(9) / 9,
}
BLURS = ["box3", "box5", "gauss3", "gauss5", "motion"]
RANK_ONE = [
    "identity", "box3", "box5", "gauss3", "gauss5", "edge-v", "edge-h", "sobel-x",
    "sobel-y", "prewitt-x", "prewitt-y", "scharr-x", "scharr-y",
]
NOT_RANK_ONE = ["sharpen", "laplace4", "laplace8", "emboss", "outline", "motion"]


def test_every_preset_is_listed_tested_and_described():
    assert set(preset_names()) == set(CLASSIC)
    assert set(RANK_ONE) | set(NOT_RANK_ONE) == set(CLASSIC)
    for name in preset_names():
        text = describe(name)
        assert text and "\n" not in text


@pytest.mark.parametrize("name", sorted(CLASSIC))
def test_preset_values(name):
    kernel = get_preset(name)
    assert kernel.dtype == np.float64
    np.testing.assert_array_equal(kernel, np.asarray(CLASSIC[name], dtype=np.float64))


def test_preset_is_a_fresh_array_each_call():
    first = get_preset("sobel-x")
    first[0, 0] = 100
    assert get_preset("sobel-x")[0, 0] == -1


@pytest.mark.parametrize("name", BLURS)
def test_blurs_sum_to_one(name):
    assert math.isclose(get_preset(name).sum(), 1.0, rel_tol=0, abs_tol=1e-15)


@pytest.mark.parametrize("name", ["sobel-x", "prewitt-x", "scharr-x"])
def test_x_derivatives_are_positive_on_a_left_to_right_ramp(name):
    ramp = np.tile(np.arange(8.0), (6, 1))  # dark on the left, bright on the right
    response = ndimage.correlate(ramp, get_preset(name), mode="nearest")
    assert (response[:, 1:-1] > 0).all()
    transposed = ndimage.correlate(ramp.T, get_preset(name.replace("-x", "-y")), mode="nearest")
    assert (transposed[1:-1, :] > 0).all()


def test_edge_v_finds_the_textbook_vertical_edge():
    image = np.array([[10, 10, 10, 0, 0, 0]] * 6, dtype=np.float64)
    result = signal.correlate2d(image, get_preset("edge-v"), mode="valid")
    np.testing.assert_array_equal(result, [[0, 30, 30, 0]] * 4)


def test_edge_h_is_the_transposed_detector():
    image = np.array([[10, 10, 10, 0, 0, 0]] * 6, dtype=np.float64).T
    result = signal.correlate2d(image, get_preset("edge-h"), mode="valid")
    np.testing.assert_array_equal(result, np.array([[0, 30, 30, 0]] * 4).T)


def test_names_are_case_insensitive():
    np.testing.assert_array_equal(parse_kernel(" Sobel-X "), get_preset("sobel-x"))
    assert describe("GAUSS5") == describe("gauss5")


# --- parameterised kernels ---------------------------------------------------------


def reference_gauss(sigma, size):
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    kernel = np.outer(g, g)
    return kernel / kernel.sum()


@pytest.mark.parametrize(
    ("spec", "sigma", "size"),
    [
        ("gauss:sigma=1,size=5", 1.0, 5),
        ("gauss:sigma=0.8,size=3", 0.8, 3),
        ("gauss:2.5,11", 2.5, 11),
        ("gauss:sigma=1", 1.0, 7),
        ("gauss:0.5", 0.5, 5),
        ("GAUSS: sigma = 1.5 ", 1.5, 11),
    ],
)
def test_gauss_matches_the_formula(spec, sigma, size):
    kernel = parse_kernel(spec)
    assert kernel.shape == (size, size)
    np.testing.assert_allclose(kernel, reference_gauss(sigma, size), rtol=1e-13, atol=0)
    assert math.isclose(kernel.sum(), 1.0, abs_tol=1e-14)


@pytest.mark.parametrize("spec", ["box:4", "box:size=4"])
def test_box_of_any_size(spec):
    np.testing.assert_allclose(parse_kernel(spec), np.full((4, 4), 1 / 16), rtol=1e-15)


def test_motion_lines():
    np.testing.assert_array_equal(parse_kernel("motion:size=9,angle=-45"), get_preset("motion"))
    horizontal = np.zeros((5, 5))
    horizontal[2, :] = 0.2
    np.testing.assert_array_equal(parse_kernel("motion:5"), horizontal)
    np.testing.assert_array_equal(parse_kernel("motion:5,angle=90"), parse_kernel("motion:5").T)
    np.testing.assert_array_equal(parse_kernel("motion:5,angle=45"), np.fliplr(np.eye(5)) / 5)
    shallow = parse_kernel("motion:size=7,angle=20")
    assert (np.count_nonzero(shallow, axis=0) == 1).all()  # one cell per column
    assert math.isclose(shallow.sum(), 1.0)


@pytest.mark.parametrize(
    ("spec", "fragments"),
    [
        ("gauss:sigma=1,size=4", ["size='4'", "odd integer"]),
        ("gauss:sigma=0", ["sigma='0'", "> 0"]),
        ("gauss:sigma=abc", ["sigma='abc'", "> 0"]),
        ("gauss:sigma=inf", ["sigma='inf'"]),
        ("gauss:sigma=400", ["sigma='400'", "at most"]),
        ("gauss:sigma=1,size=2001", ["size='2001'", "1 to 1001"]),
        ("gauss:sigm=1", ["'sigm'", "sigma, size"]),
        ("gauss:", ["'sigma' is missing"]),
        ("gauss:1,sigma=2", ["'sigma' is given twice"]),
        ("gauss:size=5,1", ["unexpected argument '1'"]),
        ("box:0", ["size='0'", "integer from 1"]),
        ("box:2.5", ["size='2.5'"]),
        ("box:3,4", ["unexpected argument '4'"]),
        ("motion:size=4", ["size='4'", "odd"]),
        ("motion:5,angle=up", ["angle='up'", "degrees"]),
        ("sobel-x:3", ["takes no parameters"]),
    ],
)
def test_bad_parameters_name_the_key_and_valid_values(spec, fragments):
    with pytest.raises(ConvcalcError) as info:
        parse_kernel(spec)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_parameterised_kernels_are_listed_and_described():
    syntaxes = [syntax for syntax, _ in parameterised_kernels()]
    assert syntaxes == ["gauss:sigma=S[,size=N]", "box:size=N", "motion:size=N[,angle=A]"]
    assert "Gaussian" in describe("gauss")


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


def test_describe_unknown_name():
    with pytest.raises(ConvcalcError, match="did you mean 'sobel-x'"):
        describe("sobelx")


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


# --- separable_factors -------------------------------------------------------------


@pytest.mark.parametrize("name", RANK_ONE)
def test_rank_one_presets_are_separated(name):
    kernel = get_preset(name)
    factors = separable_factors(kernel)
    assert factors is not None
    column, row = factors
    assert column.shape == (kernel.shape[0],)
    assert row.shape == (kernel.shape[1],)
    np.testing.assert_allclose(np.outer(column, row), kernel, rtol=0, atol=1e-15)


@pytest.mark.parametrize("name", NOT_RANK_ONE)
def test_other_presets_are_not_separable(name):
    assert separable_factors(get_preset(name)) is None


def test_sobel_factors_are_smoothing_times_derivative():
    column, row = separable_factors(get_preset("sobel-x"))
    np.testing.assert_array_equal(column, [1, 2, 1])
    np.testing.assert_array_equal(row, [-1, 0, 1])
    assert not np.signbit(row[1])


def test_dyadic_kernels_get_exact_factors():
    column, row = separable_factors(get_preset("gauss5"))
    np.testing.assert_array_equal(column, [1, 4, 6, 4, 1])
    np.testing.assert_array_equal(row, np.array([1, 4, 6, 4, 1]) / 256)
    for kernel in (np.outer([3, -6, 9], [2, 0, -5]) / 64, np.outer([-1, -2], [4, 8, 4])):
        column, row = separable_factors(kernel)
        np.testing.assert_array_equal(np.outer(column, row), kernel)  # exactly
        assert column[int(np.abs(column).argmax())] > 0
    column, row = separable_factors(np.ones((3, 3)) / 9)  # not dyadic: the pivot's factors
    np.testing.assert_allclose(np.outer(column, row), np.ones((3, 3)) / 9, rtol=1e-15)


def test_separable_edge_cases():
    assert separable_factors(parse_kernel("gauss:sigma=1.3")) is not None
    assert separable_factors(np.ones((3, 3, 2))) is None
    column, row = separable_factors(np.zeros((2, 3)))
    np.testing.assert_array_equal(np.outer(column, row), np.zeros((2, 3)))
    nearly = np.outer([1.0, 2.0], [3.0, 4.0]) + np.array([[0, 0], [0, 1e-6]])
    assert separable_factors(nearly) is None
    assert separable_factors(nearly, rtol=1e-5) is not None


magnitudes = st.one_of(st.just(0.0), st.floats(1e-3, 1e3), st.floats(-1e3, -1e-3))


def vectors(length):
    return hnp.arrays(np.float64, length, elements=magnitudes).filter(lambda v: bool(v.any()))


@st.composite
def outer_pairs(draw, count):
    """`count` pairs of non-zero vectors, all columns of one length, all rows of another."""
    rows, cols = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    return [(draw(vectors(rows)), draw(vectors(cols))) for _ in range(count)]


@given(outer_pairs(1))
def test_outer_products_are_recognised_and_reproduced(pairs):
    ((u, v),) = pairs
    kernel = np.outer(u, v)
    factors = separable_factors(kernel)
    assert factors is not None
    column, row = factors
    scale = np.abs(kernel).max()
    np.testing.assert_allclose(np.outer(column, row), kernel, rtol=0, atol=1e-12 * scale)


@given(outer_pairs(2))
def test_sums_of_two_independent_outer_products_are_not_separable(pairs):
    (a, b), (c, d) = pairs
    kernel = np.outer(a, b) + np.outer(c, d)
    singular = np.linalg.svd(kernel, compute_uv=False)
    assume(singular.size > 1 and singular[1] > 1e-6 * singular[0])
    assert separable_factors(kernel) is None
