import io
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from convcalc.errors import ConvcalcError
from convcalc.io.matrices import (
    format_inline_matrix,
    format_text_matrix,
    load_npy,
    parse_inline_matrix,
    parse_text_matrix,
    read_npy_file,
)


def npy_bytes(array, **kwargs):
    buffer = io.BytesIO()
    np.save(buffer, array, **kwargs)
    return buffer.getvalue()


# --- parse_text_matrix -------------------------------------------------------------


def test_text_commas_spaces_tabs_and_comments():
    text = "# a header\n1, 2,3\n4 5\t6   # trailing comment\n\n"
    result = parse_text_matrix(text)
    assert result.dtype == np.float64
    np.testing.assert_array_equal(result, [[1, 2, 3], [4, 5, 6]])


def test_text_channels_separated_by_blank_lines():
    text = "1 2\n3 4\n\n\n5 6\n7 8\n\n9 10\n11 12\n"
    result = parse_text_matrix(text)
    assert result.shape == (2, 2, 3)
    np.testing.assert_array_equal(result[:, :, 0], [[1, 2], [3, 4]])
    np.testing.assert_array_equal(result[:, :, 2], [[9, 10], [11, 12]])


def test_text_comment_only_line_does_not_separate_channels():
    result = parse_text_matrix("1 2\n# between\n3 4\n")
    assert result.shape == (2, 2)


def test_text_windows_newlines_bom_and_scientific_notation():
    result = parse_text_matrix("\ufeff1e-3,-2.5\r\n+3,.5\r\n")
    np.testing.assert_array_equal(result, [[1e-3, -2.5], [3, 0.5]])


def test_text_single_value_is_1x1():
    assert parse_text_matrix("7").shape == (1, 1)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("1,2\n3,abc\n", ["line 2", "'abc'", "not a number", "commas or spaces"]),
        ("1 2 3\n4 5\n", ["line 2", "row 2 has 2 values", "row 1 has 3"]),
        ("1 2\n\n1 2\n3 4\n5 6 7\n", ["line 5", "row 3 of channel 2 has 3 values"]),
        ("1 2\n3 4\n\n1 2 3\n4 5 6\n", ["channel 2 (line 4) is 2x3", "is 2x2", "same shape"]),
        ("1 nan\n", ["line 1", "'nan'", "not finite"]),
        ("1 -inf\n", ["'-inf'", "not finite"]),
        ("1e999 1\n", ["'1e999'", "not finite"]),
        ("1,,2\n", ["line 1", "'1,,2'", "missing"]),
        ("", ["no values", "one row per line"]),
        ("# only a comment\n\n  \n", ["no values"]),
    ],
)
def test_text_errors_name_the_bad_token(text, fragments):
    with pytest.raises(ConvcalcError) as info:
        parse_text_matrix(text, source="input.txt")
    message = str(info.value)
    assert message.startswith("input.txt: ")
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


# --- parse_inline_matrix -----------------------------------------------------------


def test_inline_3x3():
    result = parse_inline_matrix("1,0,-1;1,0,-1;1,0,-1")
    np.testing.assert_array_equal(result, [[1, 0, -1]] * 3)
    assert result.dtype == np.float64


def test_inline_channels_and_spaces():
    result = parse_inline_matrix("1 0;0 1|2 0; 0 2")
    assert result.shape == (2, 2, 2)
    np.testing.assert_array_equal(result[:, :, 1], [[2, 0], [0, 2]])


def test_inline_single_row_is_1xn():
    np.testing.assert_array_equal(parse_inline_matrix("1,2,1"), [[1, 2, 1]])


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("1,0;1,x", ["row 2", "'x'", "not a number", "rows separated by ';'"]),
        ("1,2,3;4,5", ["row 2 has 2 values", "row 1 has 3"]),
        ("1,2;3,4|5,6;7", ["channel 2, row 2 has 1 value"]),
        ("1,2;3,4|5,6", ["channel 2 is 1x2", "channel 1 is 2x2"]),
        ("1;nan", ["row 2", "'nan'", "not finite"]),
        ("1,2;;3,4", ["row 2 is empty"]),
        ("1,2|", ["channel 2 is empty"]),
        ("  ", ["empty"]),
        ("1,,2", ["'1,,2'", "missing"]),
    ],
)
def test_inline_errors_name_the_bad_token(text, fragments):
    with pytest.raises(ConvcalcError) as info:
        parse_inline_matrix(text, source="-k")
    message = str(info.value)
    assert message.startswith("-k: ")
    for fragment in fragments:
        assert fragment in message


# --- formatting and round trips ----------------------------------------------------


def test_format_integers_without_point_and_floats_exactly():
    array = np.array([[1.0, -2.0, 0.1], [1e300, 5e-324, -0.0]])
    text = format_text_matrix(array)
    assert text.splitlines()[0] == "1,-2,0.1"
    assert text.splitlines()[1] == "1e+300,5e-324,-0"
    assert text.endswith("\n")


def test_format_channels_and_delimiter():
    array = np.arange(8).reshape(2, 2, 2)
    assert format_text_matrix(array, delimiter=" ") == "0 2\n4 6\n\n1 3\n5 7\n"


def test_format_bool_and_float32():
    assert format_text_matrix(np.array([[True, False]])) == "1,0\n"
    value = np.float32(0.1)
    parsed = parse_text_matrix(format_text_matrix(np.array([[value]])))
    assert parsed[0, 0] == np.float64(value)


@pytest.mark.parametrize("delimiter", ["", ";", "|", ",,", "\n"])
def test_format_refuses_delimiters_it_cannot_read_back(delimiter):
    with pytest.raises(ConvcalcError, match="delimiter"):
        format_text_matrix(np.ones((2, 2)), delimiter=delimiter)


@pytest.mark.parametrize("array", [np.ones(3), np.ones((2, 2, 2, 2)), np.ones((0, 3))])
def test_format_refuses_shapes_it_cannot_write(array):
    with pytest.raises(ConvcalcError, match="HxW or HxWxC"):
        format_text_matrix(array)


def test_inline_format():
    assert format_inline_matrix(np.array([[1, 0, -1], [2, 0, -2]])) == "1,0,-1;2,0,-2"
    assert format_inline_matrix(np.dstack([np.eye(2), 2 * np.eye(2)])) == "1,0;0,1|2,0;0,2"


finite = st.floats(allow_nan=False, allow_infinity=False)
shape_2d = hnp.array_shapes(min_dims=2, max_dims=2, max_side=6)
shape_3d = st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(2, 4))


def assert_identical(parsed, array):
    assert parsed.dtype == np.float64
    assert parsed.shape == array.shape
    np.testing.assert_array_equal(parsed, array)
    np.testing.assert_array_equal(np.signbit(parsed), np.signbit(array))


@given(hnp.arrays(np.float64, shape_2d, elements=finite))
def test_text_round_trip_2d(array):
    assert_identical(parse_text_matrix(format_text_matrix(array)), array)


@given(hnp.arrays(np.float64, shape_3d, elements=finite), st.sampled_from([",", " ", ", ", "\t"]))
def test_text_round_trip_3d(array, delimiter):
    assert_identical(parse_text_matrix(format_text_matrix(array, delimiter=delimiter)), array)


@given(hnp.arrays(np.float64, st.one_of(shape_2d, shape_3d), elements=finite))
def test_inline_round_trip(array):
    assert_identical(parse_inline_matrix(format_inline_matrix(array)), array)


# --- load_npy ----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int64, np.float32, np.float64])
def test_npy_keeps_numeric_dtype(dtype):
    array = np.arange(12, dtype=dtype).reshape(2, 3, 2)
    result = load_npy(npy_bytes(array))
    assert result.dtype == dtype
    np.testing.assert_array_equal(result, array)


def test_npy_does_not_copy_bytes():
    data = npy_bytes(np.arange(6.0).reshape(2, 3))
    result = load_npy(data)
    assert not result.flags.owndata
    assert not result.flags.writeable
    writable = load_npy(bytearray(data))
    writable[0, 0] = 9
    assert writable[0, 0] == 9


def test_npy_fortran_order_and_big_endian():
    array = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(load_npy(npy_bytes(array)), array)
    swapped = np.arange(6, dtype=">i4").reshape(3, 2)
    result = load_npy(npy_bytes(swapped))
    assert result.dtype.isnative
    assert result.dtype == np.int32
    np.testing.assert_array_equal(result, swapped)


def test_npy_bool_becomes_uint8():
    result = load_npy(npy_bytes(np.array([[True, False], [False, True]])))
    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, [[1, 0], [0, 1]])


def test_npy_1d_is_a_row():
    result = load_npy(npy_bytes(np.array([1.0, 2.0, 1.0])))
    assert result.shape == (1, 3)


class _Trap:
    triggered = False

    def __reduce__(self):
        return (_trigger, ())


def _trigger():
    _Trap.triggered = True
    return "boom"


def test_npy_never_unpickles():
    data = npy_bytes(np.array([[_Trap()]], dtype=object), allow_pickle=True)
    with pytest.raises(ConvcalcError, match="object"):
        load_npy(data)
    assert not _Trap.triggered


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        (npy_bytes(np.ones((2, 2), dtype=complex)), ["complex128", "complex"]),
        (npy_bytes(np.array([["a", "b"]])), ["<U1", "not numeric"]),
        (npy_bytes(np.zeros((2,), dtype="i4,f8")), ["not numeric"]),
        (npy_bytes(np.array([["2020-01-01"]], dtype="datetime64[D]")), ["datetime64"]),
        (npy_bytes(np.zeros((0, 3))), ["empty", "0x3"]),
        (npy_bytes(np.float64(3)), ["0 dimensions"]),
        (npy_bytes(np.zeros((1, 2, 3, 4))), ["4 dimensions", "1x2x3x4"]),
        (npy_bytes(np.array([[1.0, np.nan]])), ["nan", "(0, 1)", "not finite"]),
        (npy_bytes(np.array([[1.0], [np.inf]], dtype=np.float32)), ["inf", "(1, 0)"]),
        (npy_bytes(np.ones((4, 4)))[:-3], ["truncated", "128 bytes"]),
        (b"1,2,3\n", ["not a .npy file"]),
        (b"", ["not a .npy file"]),
        (b"\x93NUMPY\x01\x00\xff", ["header"]),
        (pickle.dumps([1, 2]), ["not a .npy file"]),
    ],
)
def test_npy_errors(data, fragments):
    with pytest.raises(ConvcalcError) as info:
        load_npy(data, source="k.npy")
    message = str(info.value)
    assert message.startswith("k.npy: ")
    for fragment in fragments:
        assert fragment in message


def test_npz_is_named():
    buffer = io.BytesIO()
    np.savez(buffer, a=np.ones((2, 2)))
    with pytest.raises(ConvcalcError, match=r"\.npz"):
        load_npy(buffer.getvalue())


def _read_file(data: bytes, size: int | None = None):
    return read_npy_file(io.BytesIO(data), len(data) if size is None else size, source="k.npy")


@given(
    hnp.arrays(
        dtype=st.sampled_from(["<f4", ">f8", "<i2", ">u4", "|u1", "|b1", "<f2"]),
        shape=hnp.array_shapes(min_dims=1, max_dims=5, max_side=4),
        elements={"allow_nan": False, "allow_infinity": False},
    ),
    st.booleans(),
)
def test_a_npy_file_reads_as_numpy_loads_it(array, fortran):
    array = np.asfortranarray(array) if fortran else array
    data = npy_bytes(array)
    loaded = _read_file(data)
    expected = np.load(io.BytesIO(data))
    assert loaded.shape == expected.shape and loaded.dtype.isnative
    np.testing.assert_array_equal(
        loaded, expected.astype(np.uint8) if array.dtype == bool else expected
    )
    assert loaded.flags.writeable


def test_a_npy_file_keeps_every_axis_and_its_checks():
    assert _read_file(npy_bytes(np.zeros((1, 2, 3, 4)))).shape == (1, 2, 3, 4)
    for data, fragment in [
        (npy_bytes(np.ones((4, 4)))[:-3], "truncated"),
        (npy_bytes(np.array([[1.0, np.nan]])), "not finite"),
        (npy_bytes(np.ones((2, 2), dtype=complex)), "complex"),
        (b"1,2,3\n", "not a .npy file"),
    ]:
        with pytest.raises(ConvcalcError, match=fragment):
            _read_file(data)


def test_a_file_that_shrank_after_its_size_was_taken_is_truncated():
    data = npy_bytes(np.ones((4, 4)))
    with pytest.raises(ConvcalcError, match="truncated"):
        _read_file(data[:-8], size=len(data))


def test_large_finite_values_whose_sum_overflows_are_finite():
    big = np.full((8, 8), 3e38, dtype=np.float32)
    np.testing.assert_array_equal(_read_file(npy_bytes(big)), big)
    np.testing.assert_array_equal(load_npy(npy_bytes(big)), big)
    big[3, 5] = np.inf
    with pytest.raises(ConvcalcError, match=r"inf at index \(3, 5\)"):
        _read_file(npy_bytes(big))


# --- reading a file's values in parallel parts ---------------------------------------


@pytest.fixture
def parallel_reads(monkeypatch):
    """Every read from a file goes in parallel parts, on 3 threads."""
    import convcalc.io.matrices as matrices

    monkeypatch.setattr(matrices, "PARALLEL_READ_BYTES", 1)
    monkeypatch.setattr(matrices, "threads", lambda: 3)


@pytest.mark.usefixtures("parallel_reads")
@given(
    hnp.arrays(
        dtype=st.sampled_from(["<f4", ">f8", "|u1"]),
        shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=9),
        elements={"allow_nan": False, "allow_infinity": False},
    )
)
def test_values_read_in_parallel_parts_are_numpys(tmp_path_factory, array):
    path = tmp_path_factory.mktemp("parts") / "a.npy"
    np.save(path, array)
    with open(path, "rb") as file:
        loaded = read_npy_file(file, path.stat().st_size, source="a.npy")
    np.testing.assert_array_equal(loaded, np.load(path))


@pytest.mark.usefixtures("parallel_reads")
def test_a_file_cut_short_under_parallel_reads_is_truncated(tmp_path):
    path = tmp_path / "a.npy"
    data = npy_bytes(np.arange(30, dtype=np.float32))
    path.write_bytes(data[:-10])
    with open(path, "rb") as file, pytest.raises(ConvcalcError, match="truncated"):
        read_npy_file(file, len(data), source="a.npy")
