""".npy files by rows: read through a memory map as load_npy reads them, written as numpy.save."""

from pathlib import Path

import numpy as np
import pytest

from convcalc.errors import ConvcalcError
from convcalc.io import npy_stream
from convcalc.io.matrices import load_npy
from convcalc.io.npy_stream import NpyRows, NpyRowWriter, peek_npy_header, read_npy_header


def saved(tmp_path, array, name="a.npy"):
    path = tmp_path / name
    np.save(path, array)
    return str(path)


def load_error(path):
    with pytest.raises(ConvcalcError) as exc:
        load_npy(Path(path).read_bytes(), source=path)
    return str(exc.value)


def opened(path):
    return NpyRows(path, read_npy_header(path))


@pytest.mark.parametrize(
    "array",
    [
        np.arange(60, dtype=np.float32).reshape(6, 10),
        np.arange(72, dtype=">f8").reshape(6, 4, 3),
        np.arange(40, dtype=np.int16).reshape(8, 5) - 20,
        np.array([[True, False], [False, True], [True, True]]),
    ],
)
def test_rows_are_load_npys_rows(tmp_path, array):
    path = saved(tmp_path, array)
    whole = load_npy(Path(path).read_bytes())
    rows = opened(path)
    assert rows.shape == array.shape and rows.dtype == whole.dtype
    for lo, hi in [(0, 2), (1, 3), (2, len(array))]:
        got = rows.read(lo, hi)
        assert got.dtype == whole.dtype
        np.testing.assert_array_equal(got, whole[lo:hi])


def test_bool_bytes_other_than_0_and_1_read_as_1(tmp_path):
    path = saved(tmp_path, np.zeros((3, 4), dtype=bool))
    data = bytearray(Path(path).read_bytes())
    data[-5] = 7  # a bool byte numpy writes as 0 or 1
    Path(path).write_bytes(data)
    np.testing.assert_array_equal(opened(path).read(0, 3), load_npy(bytes(data)))


def test_header_is_numpys(tmp_path):
    array = np.zeros((5, 7, 2), dtype="<f4")
    header = read_npy_header(saved(tmp_path, array))
    assert header.shape == (5, 7, 2) and header.dtype == array.dtype
    assert not header.fortran_order
    assert header.size - header.offset == array.nbytes


def test_peek_says_none_for_what_is_not_a_npy_file(tmp_path):
    text = tmp_path / "a.npy"
    text.write_text("1 2\n3 4\n")
    assert peek_npy_header(str(text)) is None
    assert peek_npy_header(str(tmp_path / "missing.npy")) is None
    assert peek_npy_header(str(tmp_path)) is None


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((3, 3), dtype=complex),
        np.zeros((0, 3), dtype=np.float32),
        np.zeros((2, 2, 2, 2), dtype=np.float32),
        np.array([["a", "b"]]),
    ],
)
def test_refused_arrays_get_load_npys_message(tmp_path, array):
    path = saved(tmp_path, array)
    with pytest.raises(ConvcalcError) as exc:
        opened(path)
    assert str(exc.value) == load_error(path)


def test_a_truncated_file_gets_load_npys_message(tmp_path):
    path = saved(tmp_path, np.ones((50, 20)))
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[:-100])
    with pytest.raises(ConvcalcError) as exc:
        opened(path)
    assert str(exc.value) == load_error(path)


@pytest.mark.parametrize("bad", [(0, 0), (7, 3), (11, 2)])
def test_the_first_value_not_finite_is_named_as_load_npy_names_it(tmp_path, bad):
    array = np.ones((12, 5, 2), dtype=np.float32)
    array[bad] = np.nan
    array[11, 4, 1] = -np.inf  # a later one is not the one named
    path = saved(tmp_path, array)
    rows = opened(path)
    with pytest.raises(ConvcalcError) as exc:
        for lo in range(0, 12, 3):
            rows.read(max(0, lo - 1), min(12, lo + 4))  # strips with halos, in order
    assert str(exc.value) == load_error(path)


def test_rows_no_strip_reads_are_checked_too(tmp_path):
    array = np.ones((10, 3))
    array[5, 1] = np.inf
    path = saved(tmp_path, array)
    rows = opened(path)
    rows.read(0, 2)
    rows.read(8, 10, check=False)  # a far edge read for wrap padding: checked in order later
    rows.read(2, 4)
    with pytest.raises(ConvcalcError) as exc:
        rows.read(7, 9)  # rows 4-6, skipped by every strip (a stride), are checked first
    assert str(exc.value) == load_error(path)
    rows = opened(path)
    rows.read(0, 3)
    with pytest.raises(ConvcalcError):
        rows.check_rest()


def test_reads_are_counted_and_each_maps_only_its_rows(tmp_path, monkeypatch):
    path = saved(tmp_path, np.ones((100, 8)))
    mapped = []
    real = np.memmap

    def spy(*args, **kwargs):
        mapped.append(kwargs["shape"])
        return real(*args, **kwargs)

    monkeypatch.setattr(npy_stream.np, "memmap", spy)
    rows = opened(path)
    rows.read(10, 14)
    rows.read(12, 20, check=False)
    assert mapped[-1] == (8, 8) and rows.rows_read == 12 and rows.most_rows_read == 8


def test_written_file_is_numpy_saves(tmp_path):
    array = np.random.default_rng(0).normal(size=(9, 4, 3)).astype(np.float32)
    with open(tmp_path / "rows.npy", "wb") as file:
        writer = NpyRowWriter(file, array.shape)
        for lo in range(0, 9, 4):
            writer.write(array[lo : lo + 4])
        writer.finish()
    expected = saved(tmp_path, array)
    assert (tmp_path / "rows.npy").read_bytes() == Path(expected).read_bytes()


def test_writer_refuses_rows_that_do_not_continue(tmp_path):
    with open(tmp_path / "a.npy", "wb") as file:
        writer = NpyRowWriter(file, (4, 3))
        writer.write(np.zeros((2, 3)))
        with pytest.raises(ValueError, match="do not continue"):
            writer.write(np.zeros((1, 2)))
        with pytest.raises(ValueError, match="do not continue"):
            writer.write(np.zeros((1, 3), dtype=np.float32))
        with pytest.raises(ValueError, match="2 of 4 rows"):
            writer.finish()
    assert (tmp_path / "a.npy").stat().st_size >= 4 * 3 * 8  # the blocks were reserved


def test_a_full_disk_fails_at_the_first_rows(tmp_path, monkeypatch):
    import errno

    def full(fd, offset, size):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(npy_stream.os, "posix_fallocate", full, raising=False)
    with open(tmp_path / "a.npy", "wb") as file:
        writer = NpyRowWriter(file, (4, 3))
        with pytest.raises(OSError, match="No space"):
            writer.write(np.zeros((2, 3)))
