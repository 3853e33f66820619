"""Matrices as text and as ``.npy`` bytes: parsing them into arrays and back.

Two text syntaxes describe the same thing, an HxW matrix or an HxWxC stack of
channels (channels-last):

* the file syntax (:func:`parse_text_matrix`, :func:`format_text_matrix`): one row
  per line, values separated by commas and/or whitespace, ``#`` starts a comment,
  channels separated by one or more blank lines;
* the inline syntax of the command line (:func:`parse_inline_matrix`,
  :func:`format_inline_matrix`): rows separated by ``;``, values by ``,`` or
  spaces, channels by ``|``, e.g. ``"1,0,-1;1,0,-1;1,0,-1"``.

Parsed values are float64 and always finite. :func:`load_npy` reads a ``.npy``
file's bytes without ever unpickling anything. Nothing here does I/O.
"""

from __future__ import annotations

import io
import math
import os
import re
from typing import Any

import numpy as np
from numpy.typing import NDArray

from convcalc.compute.arrays import sum_is_finite, thread_map, threads
from convcalc.errors import ConvcalcError

FloatArray = NDArray[np.float64]
"""A float64 array: HxW or HxWxC."""

NumericArray = NDArray[np.integer[Any] | np.floating[Any]]
"""An integer or floating-point array, as :func:`load_npy` returns it."""

TEXT_SYNTAX = (
    "one row per line, values separated by commas or spaces, channels separated by a blank line"
)
"""What the file syntax looks like, for messages."""

INLINE_SYNTAX = (
    "rows separated by ';', values by ',' or spaces, channels by '|', e.g. '1,0,-1;1,0,-1;1,0,-1'"
)
"""What the inline syntax looks like, for messages."""

PARALLEL_READ_BYTES = 16 * 2**20
"""A ``.npy`` file's values of at least this many bytes are read by `threads` threads,
each its own part of the file: reading a cached file is copying from the page cache
into fresh pages, and one core does that at about half the speed of two.
Measurements: benchmarks/README.md.
"""


def parse_text_matrix(text: str, *, source: str = "matrix") -> FloatArray:
    """Parse a matrix written one row per line.

    Values are separated by commas and/or whitespace; ``#`` starts a comment that
    runs to the end of the line; a line that is empty or holds only a comment
    is skipped. Channels are separated by one or more blank lines (a line holding
    only a comment does not separate channels). A leading byte-order mark is
    ignored.

    Parameters
    ----------
    text
        The file's contents.
    source
        What to call the text in error messages (a file name, "input", ...).

    Returns
    -------
    ndarray of float64
        HxW for one channel, HxWxC for C >= 2 channels of the same HxW.

    Raises
    ------
    ConvcalcError
        No values; a token that is not a number (the message names it and its
        line); a row with a different number of values than the first row of its
        channel; channels of different shapes; a NaN or infinite value.

    Examples
    --------
    >>> parse_text_matrix("1, 2, 3\\n4 5 6  # comment").shape
    (2, 3)
    >>> parse_text_matrix("1 2\\n3 4\\n\\n5 6\\n7 8")[:, :, 1]
    array([[5., 6.],
           [7., 8.]])
    """
    channels: list[list[list[float]]] = []
    starts: list[int] = []
    rows: list[list[float]] = []
    first_line = 0
    for number, line in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        content = line.split("#", 1)[0].strip()
        if not content:
            if rows and not line.strip():
                channels.append(rows)
                starts.append(first_line)
                rows = []
            continue
        where = f"line {number}"
        values = _parse_values(content, source, where, TEXT_SYNTAX)
        if rows and len(values) != len(rows[0]):
            channel = f" of channel {len(channels) + 1}" if channels else ""
            raise ConvcalcError(
                f"{source}: {where}: row {len(rows) + 1}{channel} has {_count(len(values))}, "
                f"row 1 has {len(rows[0])}; every row of a channel needs the same number "
                "of values"
            )
        if not rows:
            first_line = number
        rows.append(values)
    if rows:
        channels.append(rows)
        starts.append(first_line)
    if not channels:
        raise ConvcalcError(f"{source}: no values found; write {TEXT_SYNTAX}")
    names = [f"channel {c + 1} (line {start})" for c, start in enumerate(starts)]
    return _stack_channels(channels, names, source)


def parse_inline_matrix(text: str, *, source: str = "kernel") -> FloatArray:
    """Parse a matrix written on one line, as on the command line.

    Rows are separated by ``;``, values by ``,`` and/or spaces, channels by ``|``.
    A single row ``"1,2,1"`` is a 1x3 matrix; a single value is 1x1.

    Parameters
    ----------
    text
        The matrix, e.g. ``"1,0,-1;1,0,-1;1,0,-1"`` or ``"1 0;0 1|2 0;0 2"``.
    source
        What to call the text in error messages.

    Returns
    -------
    ndarray of float64
        HxW for one channel, HxWxC for C >= 2 channels of the same HxW.

    Raises
    ------
    ConvcalcError
        An empty matrix, row or value; a token that is not a number (the message
        names it and its row); rows of different lengths; channels of different
        shapes; a NaN or infinite value.

    Examples
    --------
    >>> parse_inline_matrix("1,0,-1;1,0,-1;1,0,-1").shape
    (3, 3)
    >>> parse_inline_matrix("1 0;0 1|2 0;0 2").shape
    (2, 2, 2)
    """
    if not text.strip():
        raise ConvcalcError(f"{source}: the matrix is empty; write {INLINE_SYNTAX}")
    parts = text.split("|")
    channels: list[list[list[float]]] = []
    for c, part in enumerate(parts, start=1):
        prefix = f"channel {c}, " if len(parts) > 1 else ""
        if not part.strip():
            raise ConvcalcError(f"{source}: channel {c} is empty; write {INLINE_SYNTAX}")
        rows: list[list[float]] = []
        for r, row_text in enumerate(part.split(";"), start=1):
            where = f"{prefix}row {r}"
            content = row_text.strip()
            if not content:
                raise ConvcalcError(f"{source}: {where} is empty; write {INLINE_SYNTAX}")
            values = _parse_values(content, source, where, INLINE_SYNTAX)
            if rows and len(values) != len(rows[0]):
                raise ConvcalcError(
                    f"{source}: {where} has {_count(len(values))}, {prefix}row 1 has "
                    f"{len(rows[0])}; every row needs the same number of values"
                )
            rows.append(values)
        channels.append(rows)
    return _stack_channels(channels, [f"channel {c}" for c in range(1, len(parts) + 1)], source)


def load_npy(data: bytes | bytearray, *, source: str = "array") -> NumericArray:
    """Read a ``.npy`` file's bytes into an array, never unpickling anything.

    Accepted dtypes are integers and floats (any size and byte order) and bool.
    Integer and float arrays keep their dtype (the numeric core decides how to
    compute with them); non-native byte order is converted to native; bool
    becomes uint8 0/1, an integer type like the others. When ``data`` is
    ``bytes`` the result is a read-only view of it (no copy) unless a conversion
    was needed; pass a ``bytearray`` for a writable array.

    Parameters
    ----------
    data
        The whole ``.npy`` file (format versions 1.0 and 2.0).
    source
        What to call the data in error messages.

    Returns
    -------
    ndarray
        HxW or HxWxC; a 1-D array of N values is returned as a 1xN row.

    Raises
    ------
    ConvcalcError
        Not a ``.npy`` file (an ``.npz`` archive is named as such), truncated
        data (a shape larger than the data, however large), a size in the shape
        that is negative or not an integer, an object (pickled), complex, string,
        structured or date dtype, zero values, ndim other than 1, 2 or 3, or a NaN
        or infinite value.

    Examples
    --------
    >>> buffer = io.BytesIO()
    >>> np.save(buffer, np.arange(6).reshape(2, 3))
    >>> load_npy(buffer.getvalue())
    array([[0, 1, 2],
           [3, 4, 5]])
    """
    shape, fortran_order, dtype, offset = read_npy_header(data, source)
    check_npy_dtype(dtype, source)
    check_npy_shape(shape, source)
    count = math.prod(shape)
    check_npy_size(shape, dtype, len(data) - offset, source)
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return as_matrix(_finish_npy(flat.reshape(shape, order="F" if fortran_order else "C"), source))


def read_npy_file(file: io.BufferedIOBase, size: int, *, source: str) -> NumericArray:
    """Read a ``.npy`` array of any number of axes from an open file of ``size`` bytes.

    The values are read straight into a new array, as ``numpy.load`` does: no
    zero-filled buffer and no second copy. The header and values are checked as
    :func:`load_npy` checks them, but for the number of axes (see :func:`as_matrix`
    for the HxW[xC] rules).
    """
    shape, fortran_order, dtype, offset = read_npy_header(file.read(NPY_HEADER_BYTES), source)
    check_npy_dtype(dtype, source)
    check_npy_shape(shape, source, any_axes=True)
    check_npy_size(shape, dtype, size - offset, source)
    flat = np.empty(math.prod(shape), dtype=dtype)
    got = _read_values(file, flat.data.cast("B"), offset)
    if got != flat.nbytes:  # the file shrank since its size was taken
        check_npy_size(shape, dtype, got or 0, source)
    return _finish_npy(flat.reshape(shape, order="F" if fortran_order else "C"), source)


def _read_values(file: io.BufferedIOBase, target: memoryview, offset: int) -> int:
    """Read the file's bytes from ``offset`` into ``target``; how many were read (fewer
    if the file ends first). Large reads from a file descriptor run in parallel parts
    (`PARALLEL_READ_BYTES`), with positioned reads that leave the file's position alone."""
    try:
        fd = file.fileno()
    except (AttributeError, io.UnsupportedOperation):
        fd = -1
    count = threads()
    if fd < 0 or count < 2 or len(target) < PARALLEL_READ_BYTES or not hasattr(os, "preadv"):
        file.seek(offset)
        return file.readinto(target) or 0
    bounds = [len(target) * part // count for part in range(count + 1)]

    def read_part(part: int) -> int:
        start, stop = bounds[part], bounds[part + 1]
        done = start
        while done < stop:
            got = os.preadv(fd, [target[done:stop]], offset + done)
            if got == 0:  # the file is shorter than its header says
                break
            done += got
        return done - start

    return sum(thread_map(read_part, range(count)))


def as_matrix(array: NumericArray, source: str = "array") -> NumericArray:
    """A ``.npy`` array as an HxW or HxWxC matrix: a 1-D array of N values is a 1xN
    row; arrays of more than 3 axes are refused (they are volumes: rank 3)."""
    check_npy_shape(array.shape, source)
    return array.reshape(1, -1) if array.ndim == 1 else array


def _finish_npy(array: NDArray[Any], source: str) -> NumericArray:
    """Native byte order, bool as uint8 0/1, and only finite values."""
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    if array.dtype.kind == "b":
        as_bytes = array.view(np.uint8)
        array = as_bytes if as_bytes.max() <= 1 else array.astype(bool).astype(np.uint8)
    if array.dtype.kind == "f":
        _check_finite(array, source)
    return array


def format_text_matrix(array: NDArray[Any], *, delimiter: str = ",") -> str:
    """Write a matrix in the file syntax, the inverse of :func:`parse_text_matrix`.

    Integer values (of any dtype) are written without a decimal point, other
    floats as Python's shortest repr, so that ``parse_text_matrix(format_text_matrix(a))``
    equals ``a`` exactly (``-0.0`` included). An HxWx1 array is written as one
    channel and so reads back as HxW. NaN and infinities are written as ``nan``,
    ``inf`` and ``-inf``, which :func:`parse_text_matrix` refuses.

    Parameters
    ----------
    array
        HxW or HxWxC, integer, bool or floating-point.
    delimiter
        Between values: a comma and/or spaces and tabs, e.g. ``","``, ``", "``,
        ``" "`` or ``"\\t"``.

    Returns
    -------
    str
        One line per row, a blank line between channels, ending with a newline.

    Examples
    --------
    >>> print(format_text_matrix(np.array([[1.0, 0.5], [-2.0, 0.1]])), end="")
    1,0.5
    -2,0.1
    """
    if not delimiter or re.fullmatch(r"[ \t]*,?[ \t]*", delimiter) is None:
        raise ConvcalcError(
            f"delimiter {delimiter!r} is not valid: use a comma and/or spaces or tabs"
        )
    channels = _channels_of(array)
    blocks = ["\n".join(delimiter.join(row) for row in channel) for channel in channels]
    return "\n\n".join(blocks) + "\n"


def format_inline_matrix(array: NDArray[Any]) -> str:
    """Write a matrix in the inline syntax, the inverse of :func:`parse_inline_matrix`.

    Values as in :func:`format_text_matrix`; rows joined by ``;``, values by
    ``,``, channels by ``|``.

    Parameters
    ----------
    array
        HxW or HxWxC, integer, bool or floating-point.

    Returns
    -------
    str
        E.g. ``"1,0,-1;1,0,-1;1,0,-1"``.

    Examples
    --------
    >>> format_inline_matrix(np.array([[1.0, 0.0], [0.0, 1.0]]))
    '1,0;0,1'
    """
    channels = _channels_of(array)
    return "|".join(";".join(",".join(row) for row in channel) for channel in channels)


# --- helpers ---------------------------------------------------------------------

_VALUE_SEPARATOR = re.compile(r"\s*,\s*|\s+")
_NPY_MAGIC = b"\x93NUMPY"
NPY_HEADER_BYTES = 2**16
"""Bytes that hold any .npy header numpy reads (it refuses headers over 10,000 bytes):
what :func:`read_npy_header` needs of a file's start."""
_ZIP_MAGIC = b"PK\x03\x04"


def _parse_values(content: str, source: str, where: str, syntax: str) -> list[float]:
    """The values of a stripped, non-empty row."""
    values: list[float] = []
    for token in _VALUE_SEPARATOR.split(content):
        try:
            value = float(token)
        except ValueError:
            if token:
                what = f"{_show(token)} is not a number"
            else:
                what = f"a value is missing in {_show(content)} (two commas in a row?)"
            raise ConvcalcError(f"{source}: {where}: {what}; write {syntax}") from None
        if not math.isfinite(value):
            raise ConvcalcError(
                f"{source}: {where}: {_show(token)} is not finite; values must be finite numbers"
            )
        values.append(value)
    return values


def _stack_channels(channels: list[list[list[float]]], names: list[str], source: str) -> FloatArray:
    first = np.array(channels[0], dtype=np.float64)
    if len(channels) == 1:
        return first
    arrays = [first]
    for name, rows in zip(names[1:], channels[1:], strict=True):
        channel = np.array(rows, dtype=np.float64)
        if channel.shape != first.shape:
            raise ConvcalcError(
                f"{source}: {name} is {_shape_text(channel.shape)}, {names[0]} is "
                f"{_shape_text(first.shape)}; all channels must have the same shape"
            )
        arrays.append(channel)
    return np.stack(arrays, axis=-1)


def read_npy_header(
    data: bytes | bytearray, source: str
) -> tuple[tuple[int, ...], bool, np.dtype[Any], int]:
    """A ``.npy`` file's shape, Fortran order, dtype and data offset, from its first
    bytes (all of it, or at least its header); never unpickles anything."""
    if data[: len(_ZIP_MAGIC)] == _ZIP_MAGIC:
        raise ConvcalcError(
            f"{source}: this is an .npz archive of several arrays; save one array with "
            "numpy.save to a .npy file"
        )
    if data[: len(_NPY_MAGIC)] != _NPY_MAGIC:
        raise ConvcalcError(f"{source}: not a .npy file (it does not start with \\x93NUMPY)")
    stream = io.BytesIO(data[:NPY_HEADER_BYTES])  # not the whole file: BytesIO copies it
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ConvcalcError(
                f"{source}: .npy format version {version[0]}.{version[1]} is not supported; "
                "versions 1.0 and 2.0 are (numpy.save writes them for numeric arrays)"
            )
    except ConvcalcError:
        raise
    except (ValueError, TypeError, SyntaxError, EOFError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConvcalcError(f"{source}: the .npy header cannot be read: {reason}") from None
    return tuple(shape), bool(fortran_order), dtype, stream.tell()


def check_npy_dtype(dtype: np.dtype[Any], source: str) -> None:
    if dtype.kind in "biuf" and dtype.fields is None and dtype.subdtype is None:
        return
    if dtype.hasobject:
        what = "holds Python objects (pickled data), which are never loaded"
    elif dtype.kind == "c":
        what = "is complex; save the real part (a.real)"
    else:
        what = "is not numeric"
    raise ConvcalcError(
        f"{source}: dtype {dtype} {what}; valid dtypes are integers, floats and bool"
    )


def check_npy_shape(shape: tuple[int, ...], source: str, *, any_axes: bool = False) -> None:
    # The header is a Python literal: any size in it may be negative, a bool, or huge.
    if not all(type(n) is int and n >= 0 for n in shape):
        shown = "x".join(map(repr, shape))
        raise ConvcalcError(
            f"{source}: the .npy header gives the shape {shown}; valid: sizes that are "
            "whole numbers >= 1"
        )
    if not shape or (not any_axes and len(shape) not in (1, 2, 3)):
        raise ConvcalcError(
            f"{source}: the array has {len(shape)} dimensions (shape "
            f"{_shape_text(shape) or '()'}); valid are HxW, HxWxC, or N (read as 1xN)"
        )
    if math.prod(shape) == 0:
        raise ConvcalcError(f"{source}: the array is empty (shape {_shape_text(shape)})")


def check_npy_size(
    shape: tuple[int, ...], dtype: np.dtype[Any], available: int, source: str
) -> None:
    needed = math.prod(shape) * dtype.itemsize
    if available < needed:
        raise ConvcalcError(
            f"{source}: the .npy data is truncated: a {_shape_text(shape)} {dtype} array "
            f"needs {needed} bytes, the file has {max(available, 0)}"
        )


def _check_finite(array: NDArray[Any], source: str) -> None:
    # one pass without a full-size temporary; past an overflow the search decides
    if sum_is_finite(array):
        return
    bad = np.argwhere(~np.isfinite(array))
    if bad.size == 0:
        return
    index = tuple(int(i) for i in bad[0])
    raise ConvcalcError(
        f"{source}: the value {array[index]} at index {index} is not finite; "
        "values must be finite numbers"
    )


def _channels_of(array: NDArray[Any]) -> list[list[list[str]]]:
    """The formatted values of an HxW or HxWxC array, channel by channel."""
    a = np.asarray(array)
    if a.ndim not in (2, 3) or a.size == 0 or a.dtype.kind not in "biuf":
        raise ConvcalcError(
            f"cannot write a {_shape_text(a.shape) or '0-d'} {a.dtype} array as a matrix: "
            "it must be HxW or HxWxC, non-empty, integer or floating-point"
        )
    if a.dtype.kind == "b":
        a = a.astype(np.uint8)
    planes = [a] if a.ndim == 2 else [a[:, :, c] for c in range(a.shape[2])]
    return [[[_format_value(v) for v in row] for row in plane.tolist()] for plane in planes]


def _format_value(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(float(value))


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(n) for n in shape)


def _count(n: int) -> str:
    return f"{n} value" if n == 1 else f"{n} values"


def _show(token: str) -> str:
    """A token quoted for a message, shortened when it is long."""
    return repr(token if len(token) <= 40 else token[:37] + "...")
