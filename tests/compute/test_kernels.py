"""The kernel catalogue (`convcalc.compute.kernels`): presets, their values and
descriptions, and the parameterised kernels (gauss, box, motion)."""

import math

import numpy as np
import pytest
from scipy import ndimage, signal

from convcalc.compute.kernels import (
    describe,
    get_preset,
    named_kernel,
    parameterised_kernels,
    preset_names,
    unknown_kernel,
)
from convcalc.errors import ConvcalcError
from convcalc.io.kernels import parse_kernel

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
    "identity",
    "box3",
    "box5",
    "gauss3",
    "gauss5",
    "edge-v",
    "edge-h",
    "sobel-x",
    "sobel-y",
    "prewitt-x",
    "prewitt-y",
    "scharr-x",
    "scharr-y",
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


def test_describe_unknown_name():
    with pytest.raises(ConvcalcError, match="did you mean 'sobel-x'"):
        describe("sobelx")


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
        ("gauss:sigma=0", ["sigma='0'", "0.01 to 10000"]),
        ("gauss:sigma=abc", ["sigma='abc'", "0.01 to 10000"]),
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


# --- named_kernel and unknown_kernel ----------------------------------------------


def test_named_kernel_is_none_for_what_is_not_a_name():
    np.testing.assert_array_equal(named_kernel(" Sobel-X "), get_preset("sobel-x"))
    assert named_kernel("box:2").shape == (2, 2)
    for spec in ("1,0,-1", "kernel.txt", "sobelx", "sobel-x:3"):
        assert named_kernel(spec) is None


def test_unknown_kernel_says_what_else_to_give():
    assert str(unknown_kernel("zzzzzz", other_forms=", or a file")) == (
        "unknown kernel 'zzzzzz'; give a preset name (see `convcalc kernels`), or a file"
    )
    with pytest.raises(ConvcalcError, match=r"unknown kernel 'zzzzzz'; give a preset name"):
        get_preset("zzzzzz")


def test_kernels_that_are_exact_fractions_are_shown_as_such():
    from convcalc.compute.kernels import exact_fraction
    from tests.conftest import run, run_json

    denominator, numerators = exact_fraction(get_preset("gauss5"))
    assert denominator == 256 and numerators[2].tolist() == [6, 24, 36, 24, 6]
    assert exact_fraction(get_preset("sobel-x")) is None  # integers already
    assert exact_fraction(parse_kernel("gauss:sigma=1,size=3")) is None  # irrational
    assert run_json("kernels", "box3")["fraction"]["denominator"] == 9
    assert "gauss5  (5x5, separable) = 1/256 ×" in run("kernels", "gauss5").stdout
