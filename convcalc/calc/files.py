"""Reading files safely, the rule every file convcalc reads obeys (inputs, kernel
files, network files): only a regular file is opened, never a device, FIFO or socket
(which could block or never end), and its size is checked against a bound before it
is read; a stream (stdin) is read up to a bound. No numpy: `shape` reads network
files with this alone, and `convcalc.io` uses it for every input.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
from collections.abc import Callable, Iterator
from typing import BinaryIO

from convcalc.errors import ConvcalcError, RuntimeFailure

TooLarge = Callable[[int], ConvcalcError]
"""Builds the error for data of the given size (bytes) over a read bound."""


def read_regular_file(
    path: str,
    *,
    name: str,
    valid: str,
    max_bytes: int | None,
    too_large: TooLarge,
) -> bytes | bytearray:
    """The bytes of the regular file at ``path``, read only if at most ``max_bytes``.

    A device, FIFO or socket is never read (nor opened, unless it replaced a regular
    file since the check: it is then opened non-blocking and refused). The size is
    checked before reading, and again while reading a file that grows.

    Parameters
    ----------
    path
        The file.
    name
        How messages call the file, e.g. ``"network file 'net.txt'"`` or the path.
    valid
        What would be valid instead of a non-regular file, for its message.
    max_bytes
        The bound; None for none.
    too_large
        Builds the error raised for a file over ``max_bytes``, given its size.

    Raises
    ------
    RuntimeFailure
        The file is missing, a directory, or cannot be read (exit status 1).
    ConvcalcError
        It is not a regular file (exit status 2), or ``too_large``'s error.
    """
    with open_regular_file(
        path, name=name, valid=valid, max_bytes=max_bytes, too_large=too_large
    ) as (file, size):
        first = file.read(size) if size else b""
        return _read_rest(file, first, max_bytes, too_large)


@contextlib.contextmanager
def open_regular_file(
    path: str,
    *,
    name: str,
    valid: str,
    max_bytes: int | None,
    too_large: TooLarge,
) -> Iterator[tuple[io.BufferedReader, int]]:
    """The regular file at ``path``, open for reading, and its size, checked as
    :func:`read_regular_file` checks it, for readers that fill their own buffers (a
    ``.npy`` array read straight into its array). An OSError while the block reads
    becomes the same RuntimeFailure."""
    check_regular_file(path, name=name, valid=valid)
    try:
        fd = os.open(path, os.O_RDONLY | _O_NONBLOCK | _O_BINARY)
    except OSError as exc:
        raise _failure(name, exc) from exc
    with open(fd, "rb") as file:
        try:
            info = os.fstat(fd)
            _require_regular(info.st_mode, name, valid)
            if max_bytes is not None and info.st_size > max_bytes:
                raise too_large(info.st_size)
            yield file, info.st_size
        except OSError as exc:
            raise _failure(name, exc) from exc


def check_regular_file(path: str, *, name: str, valid: str) -> None:
    """Raise what :func:`read_regular_file` would for a path that is not a readable
    regular file (missing, a directory, a device...), without opening it."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise _failure(name, exc) from exc
    _require_regular(mode, name, valid)


def read_stream(stream: BinaryIO, *, max_bytes: int | None, too_large: TooLarge) -> bytearray:
    """Everything ``stream`` holds up to its end, refusing more than ``max_bytes``.

    Raises ``too_large``'s error as soon as the data read passes the bound, and
    OSError as the stream raises it. The data grows in place: the peak memory is
    about the data's size.
    """
    data = _read_rest(stream, bytearray(), max_bytes, too_large)
    assert isinstance(data, bytearray)
    return data


def describe_file_type(mode: int) -> str:
    """What a file's ``st_mode`` says it is, for messages: "a character device"..."""
    for test, kind in _FILE_TYPES:
        if test(mode):
            return kind
    return "not a regular file"


# Package data, read with plain os.path: importlib.resources costs start-up time.


_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO opened without a writer does not block
_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation
_CHUNK = 2**20

_FILE_TYPES: tuple[tuple[Callable[[int], bool], str], ...] = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


def _require_regular(mode: int, name: str, valid: str) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise RuntimeFailure(f"{name}: is a directory, not a file")
    raise ConvcalcError(
        f"{name}: is {describe_file_type(mode)}, not a regular file; valid: {valid}"
    )


def _read_rest(
    stream: BinaryIO, first: bytes | bytearray, max_bytes: int | None, too_large: TooLarge
) -> bytes | bytearray:
    """``first``, then whatever ``stream`` still holds, up to ``max_bytes`` in all."""
    data = first
    while chunk := stream.read(_CHUNK):
        if not isinstance(data, bytearray):
            data = bytearray(data)
        data += chunk
        if max_bytes is not None and len(data) > max_bytes:
            raise too_large(len(data))
    return data


def _failure(name: str, exc: OSError) -> RuntimeFailure:
    if isinstance(exc, FileNotFoundError):
        return RuntimeFailure(f"{name}: no such file")
    if isinstance(exc, IsADirectoryError):
        return RuntimeFailure(f"{name}: is a directory, not a file")
    if isinstance(exc, PermissionError):
        return RuntimeFailure(f"{name}: permission denied")
    return RuntimeFailure(f"{name}: cannot read ({exc.strerror or exc})")
