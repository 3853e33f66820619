"""`.npy` files a band of rows at a time: read through a memory map, written in order.

`NpyRows` opens a ``.npy`` file for strip reads. Its header is checked with the
helpers `convcalc.io.matrices.load_npy` uses, so a file it refuses gets the same
message; each read maps only the rows asked for, a new map per read, released
with the rows, so that mapped pages do not pile up in the process's memory.
Values come as `load_npy` gives them (native byte order, bool as uint8 0/1) and
are checked as it checks them (floats must be finite), in file order, so the
value a bad file is refused for is the one `load_npy` names.

`NpyRowWriter` writes a ``.npy`` file into an open file: the header, as
`numpy.save` writes it, then the rows in order; nothing of the array is kept.
"""

from __future__ import annotations

import io
import math
import os
import stat
from typing import Any, BinaryIO, NamedTuple

import numpy as np
from numpy.typing import NDArray

from convcalc.errors import ConvcalcError
from convcalc.io import matrices
from convcalc.io.matrices import check_npy_dtype, check_npy_shape, check_npy_size
from convcalc.io.writing import reserve

Array = NDArray[Any]

CHECK_BYTES = 16 * 2**20
"""Rows skipped by every strip (a stride longer than the window) are checked this many
bytes at a time."""


class NpyHeader(NamedTuple):
    """A ``.npy`` file's header: the array's shape, order and dtype, and where its data
    starts (``offset`` bytes in); ``size`` is the file's size in bytes."""

    shape: tuple[int, ...]
    fortran_order: bool
    dtype: np.dtype[Any]
    offset: int
    size: int


def peek_npy_header(path: str) -> NpyHeader | None:
    """The header of the regular ``.npy`` file at ``path``, or None when it is not one
    (missing, not a regular file, not a ``.npy`` header numpy reads): reading it whole
    then says why."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        return read_npy_header(path)
    except (OSError, ConvcalcError):
        return None


def read_npy_header(path: str, *, source: str | None = None) -> NpyHeader:
    """The header of the ``.npy`` file at ``path``, read as `load_npy` reads it.

    Raises
    ------
    ConvcalcError
        Not a ``.npy`` file, or a header numpy cannot read (`load_npy`'s messages).
    OSError
        The file cannot be opened or read.
    """
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        head = file.read(matrices.NPY_HEADER_BYTES)
    shape, fortran_order, dtype, offset = matrices.read_npy_header(head, source or path)
    return NpyHeader(shape, fortran_order, dtype, offset, size)


class NpyRows:
    """The rows of an HxW or HxWxC ``.npy`` file, read a few at a time.

    ``shape`` is the array's shape and ``dtype`` the dtype its rows come in
    (`load_npy`'s: native byte order, bool as uint8). `read` maps rows ``[lo, hi)``
    and, with ``check``, first checks every row before ``hi`` not yet checked, in
    file order; `check_rest` checks the rows left. ``rows_read`` and
    ``most_rows_read`` count what was read (for tests).

    Raises
    ------
    ConvcalcError
        From the constructor: a dtype or shape `load_npy` refuses, a truncated file
        (its messages), or a Fortran-ordered array (rows are not contiguous).
        From `read` and `check_rest`: a value that is not finite.
    """

    def __init__(self, path: str, header: NpyHeader, *, source: str | None = None) -> None:
        self.path, self.source = path, source or path
        check_npy_dtype(header.dtype, self.source)
        check_npy_shape(header.shape, self.source)
        check_npy_size(header.shape, header.dtype, header.size - header.offset, self.source)
        if header.fortran_order and len(header.shape) > 1:
            raise ConvcalcError(
                f"{self.source}: the array is stored column by column (Fortran order); "
                "its rows cannot be read a strip at a time"
            )
        self.header = header
        self.shape = header.shape
        stored = header.dtype
        self.dtype = np.dtype(np.uint8) if stored.kind == "b" else stored.newbyteorder("=")
        self.row_bytes = math.prod(header.shape[1:]) * stored.itemsize
        self.checked = 0  # rows [0, checked) have been checked
        self.rows_read = 0
        self.most_rows_read = 0

    def read(self, lo: int, hi: int, *, check: bool = True) -> Array:
        """Rows ``[lo, hi)`` (HxW or HxWxC, as stored), mapped from the file.

        The map lives as long as the rows (and any view of them) do. With ``check``,
        the rows before ``hi`` not yet checked are checked first (`check_rest`).
        """
        if not 0 <= lo < hi <= self.shape[0]:
            raise ValueError(f"rows [{lo}, {hi}) are not rows of {self.shape}")
        rows = self._map(lo, hi)
        self.rows_read += hi - lo
        self.most_rows_read = max(self.most_rows_read, hi - lo)
        if check and hi > self.checked:
            self._check_to(lo)
            start = max(lo, self.checked)
            self._check(rows[start - lo :], start)
            self.checked = hi
        return rows

    def check_rest(self) -> None:
        """Check the rows no read has checked yet (those after the last one read, and
        any no strip needed)."""
        self._check_to(self.shape[0])

    def _map(self, lo: int, hi: int) -> Array:
        stored = self.header.dtype
        mapped = np.memmap(
            self.path,
            dtype=stored,
            mode="r",
            offset=self.header.offset + lo * self.row_bytes,
            shape=(hi - lo, *self.shape[1:]),
        )
        rows: Array = np.asarray(mapped)  # an ndarray viewing the map: keeps it alive
        if stored.kind == "b":  # as load_npy: bytes 0/1 as they are, any other byte is True
            as_bytes = rows.view(np.uint8)
            return as_bytes if as_bytes.max() <= 1 else (as_bytes != 0).astype(np.uint8)
        return rows if stored.isnative else rows.astype(self.dtype)

    def _check_to(self, stop: int) -> None:
        """Check rows ``[checked, stop)``, a few at a time (rows no strip reads)."""
        step = max(1, CHECK_BYTES // max(1, self.row_bytes))
        while self.checked < stop:
            hi = min(stop, self.checked + step)
            self._check(self._map(self.checked, hi), self.checked)
            self.checked = hi

    def _check(self, rows: Array, first: int) -> None:
        """`load_npy`'s check that floats are finite, on rows starting at row ``first``;
        the message names the first bad value in file order, by its index in the file."""
        if rows.dtype.kind != "f" or not rows.size:
            return
        with np.errstate(invalid="ignore"):
            if np.isfinite(rows.min()) and np.isfinite(rows.max()):
                return
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(rows))[0])
        index = (where[0] + first, *where[1:])
        raise ConvcalcError(
            f"{self.source}: the value {rows[where]} at index {index} is not finite; "
            "values must be finite numbers"
        )


class NpyRowWriter:
    """Writes an array of ``shape`` to an open binary file as ``.npy``, rows in order.

    The header (the one `numpy.save` writes) goes out with the first rows, whose
    dtype it records; the file's blocks are reserved then, so that a disk too small
    fails at once. `finish` checks that every row was written.
    """

    def __init__(self, file: BinaryIO, shape: tuple[int, ...]) -> None:
        self.file, self.shape = file, shape
        self.dtype: np.dtype[Any] | None = None
        self.rows = 0

    def write(self, rows: Array) -> None:
        """Append rows (r x the shape's other axes)."""
        if rows.shape[1:] != self.shape[1:] or self.rows + len(rows) > self.shape[0]:
            raise ValueError(f"rows of shape {rows.shape} do not continue {self.shape}")
        if self.dtype is None:
            self._start(rows.dtype)
        elif rows.dtype != self.dtype:
            raise ValueError(f"rows of {rows.dtype} do not continue {self.dtype}")
        self.file.write(memoryview(np.ascontiguousarray(rows).data).cast("B"))
        self.rows += len(rows)

    def finish(self) -> None:
        """Check that all the rows were written."""
        if self.rows != self.shape[0]:
            raise ValueError(f"{self.rows} of {self.shape[0]} rows written")

    def _start(self, dtype: np.dtype[Any]) -> None:
        self.dtype = dtype
        header = io.BytesIO()
        fields = {
            "descr": np.lib.format.dtype_to_descr(dtype),
            "fortran_order": False,
            "shape": self.shape,
        }
        np.lib.format.write_array_header_1_0(header, fields)
        self.file.write(header.getvalue())
        self.file.flush()
        reserve(self.file.fileno(), header.tell() + math.prod(self.shape) * dtype.itemsize)
