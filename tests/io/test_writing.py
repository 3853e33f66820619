"""The durability policy and the replace-in-place context of `convcalc.io.writing`."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from convcalc.errors import RuntimeFailure
from convcalc.io import writing
from convcalc.io.writing import replacing, write_npy, write_output


@pytest.fixture
def flushed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What os.fsync was called on: "file" or "folder", in order."""
    calls: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        calls.append("folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


def test_by_default_nothing_is_flushed(tmp_path: Path, flushed: list[str]) -> None:
    write_npy(str(tmp_path / "a.npy"), np.arange(6.0))
    write_output(str(tmp_path / "b.png"), np.zeros((2, 2, 1)))
    assert flushed == []
    assert np.load(tmp_path / "a.npy").tolist() == [0, 1, 2, 3, 4, 5]


def test_fsync_flushes_the_file_then_its_folder(tmp_path: Path, flushed: list[str]) -> None:
    write_npy(str(tmp_path / "a.npy"), np.arange(6.0), fsync=True)
    assert flushed == ["file", "folder"]


def test_the_written_npy_equals_numpy_save(tmp_path: Path) -> None:
    values = np.random.default_rng(3).random((64, 48)).astype(np.float32)
    write_npy(str(tmp_path / "ours.npy"), values)
    np.save(tmp_path / "numpy.npy", values)
    assert (tmp_path / "ours.npy").read_bytes() == (tmp_path / "numpy.npy").read_bytes()


def test_a_file_system_without_fallocate_is_still_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unsupported(fd: int, offset: int, size: int) -> None:
        raise OSError(95, "Operation not supported")

    monkeypatch.setattr(os, "posix_fallocate", unsupported, raising=False)
    write_npy(str(tmp_path / "a.npy"), np.arange(4.0))
    assert np.load(tmp_path / "a.npy").tolist() == [0, 1, 2, 3]


def test_replacing_renames_into_place_with_the_old_permissions(
    tmp_path: Path, flushed: list[str]
) -> None:
    target = tmp_path / "out.npy"
    target.write_bytes(b"old")
    target.chmod(0o640)
    with replacing(str(target), fsync=True) as temp:
        assert not os.path.exists(temp) and os.path.dirname(temp) == str(tmp_path)
        with open(temp, "wb") as file:
            np.save(file, np.ones(3))
        assert target.read_bytes() == b"old"  # replaced only when the block ends
    assert np.load(target).tolist() == [1, 1, 1]
    assert target.stat().st_mode & 0o777 == 0o640
    assert flushed == ["file", "folder"]
    assert os.listdir(tmp_path) == ["out.npy"]


def test_replacing_keeps_the_old_file_when_the_block_raises(tmp_path: Path) -> None:
    target = tmp_path / "out.npy"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), replacing(str(target)) as temp:
        Path(temp).write_bytes(b"half")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.npy"]


def test_replacing_reports_a_failed_rename_as_a_runtime_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(src: str, dst: str) -> None:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(os, "replace", refuse)
    with (
        pytest.raises(RuntimeFailure, match="Read-only"),
        replacing(str(tmp_path / "x.npy")) as temp,
    ):
        Path(temp).write_bytes(b"data")
    assert os.listdir(tmp_path) == []


def test_reserving_sizes_the_file_to_its_payload(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "r.bin", os.O_WRONLY | os.O_CREAT)
    try:
        writing.reserve(fd, 4096)
    finally:
        os.close(fd)
    assert (tmp_path / "r.bin").stat().st_size in (0, 4096)  # 0 where unsupported
