"""stdout and stderr made safe: a full disk is one runtime failure, and characters an
encoding lacks (``→`` on a cp1252 Windows redirection) are written in ASCII."""

from __future__ import annotations

import codecs
import contextlib
import io
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from convcalc.errors import RuntimeFailure


@contextlib.contextmanager
def guarded_stdout() -> Iterator[None]:
    """sys.stdout replaced by one whose write errors raise RuntimeFailure, when it is
    a real file (CliRunner's in-memory streams are left as they are)."""
    original = sys.stdout
    buffer = getattr(original, "buffer", None)
    raw = buffer if isinstance(buffer, io.RawIOBase) else getattr(buffer, "raw", None)
    if not isinstance(original, io.TextIOWrapper) or not isinstance(raw, io.RawIOBase):
        yield
        return
    original.flush()
    guarded = io.TextIOWrapper(
        io.BufferedWriter(_StdoutWriter(raw)),
        encoding=original.encoding,
        errors=original.errors,
        line_buffering=original.line_buffering,
    )
    sys.stdout = guarded
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            guarded.flush()
        sys.stdout = original


class _StdoutWriter(io.RawIOBase):
    """stdout's file, whose first write error becomes a RuntimeFailure (a broken pipe
    stays a BrokenPipeError: the reader has gone, nothing to report); what is written
    after it is dropped, so that the final flush at exit is quiet."""

    def __init__(self, raw: io.RawIOBase) -> None:
        super().__init__()
        self._raw = raw
        self._failed = False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._raw.fileno()

    def isatty(self) -> bool:
        return self._raw.isatty()

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        if self._failed:
            return size
        try:
            return self._raw.write(data) or 0
        except OSError as exc:
            self._failed = True
            if isinstance(exc, BrokenPipeError):
                raise
            raise RuntimeFailure(f"cannot write to stdout: {exc.strerror or exc}") from exc


@contextlib.contextmanager
def ascii_fallback() -> Iterator[None]:
    """stdout and stderr write, in place of each character their encoding lacks, an
    ASCII stand-in (``→`` as ``->``, ``×`` as ``x``), when the encoding is not UTF."""
    changed: list[tuple[TextIO, str]] = []
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None) or "utf-8"
        try:
            utf = codecs.lookup(encoding).name.startswith("utf")
        except LookupError:
            utf = False
        reconfigure = getattr(stream, "reconfigure", None)
        if not utf and reconfigure is not None:
            changed.append((stream, stream.errors or "strict"))
            reconfigure(errors=_ASCII_HANDLER)
    try:
        yield
    finally:
        for stream, errors in changed:
            with contextlib.suppress(Exception):
                stream.reconfigure(errors=errors)  # type: ignore[attr-defined]


_ASCII_HANDLER = "convcalc-ascii"

_ASCII = {
    "→": "->",
    "←": "<-",
    "·": "*",
    "×": "x",
    "−": "-",
    "–": "-",
    "—": "--",
    "…": "...",
    "σ": "sigma",
    "ᵀ": "^T",
    "²": "^2",
    "³": "^3",
    "⌈": "ceil(",
    "⌉": ")",
    "⌊": "floor(",
    "⌋": ")",
    "∞": "inf",
    "∘": "o",
    "≤": "<=",
    "≥": ">=",
    "≈": "~",
    "±": "+/-",
    "°": " deg",
    "›": ">",
    "‹": "<",
    "▀": "^",
    "█": "#",
}
"""ASCII stand-ins for the characters convcalc prints; others are decomposed
(``é`` as ``e``) or become ``?``."""


def _in_ascii(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    text = error.object[error.start : error.end]
    return "".join(_ASCII.get(char) or _decomposed(char) for char in text), error.end


def _decomposed(char: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode() or "?"


codecs.register_error(_ASCII_HANDLER, _in_ascii)
