"""PNG encoding of HxWxC pixels, faster than Pillow on several cores.

Rows are filtered in numpy and deflated on several threads, as pigz does: the
image is cut into bands of rows, and each band is filtered and deflated on its
own thread by its own raw-deflate compressor. Every band but the last ends with a
sync flush (on a byte boundary), so the pieces join into one deflate stream; a
zlib header and the Adler-32 of every scanline, combined from the bands' own,
frame it. numpy and CPython's zlib release the GIL, so the bands run at once.
Every row is filtered with Up (see ``_UP``).
Pure numpy and the standard library: Pillow is not needed to write.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np
from numpy.typing import NDArray

from convcalc.compute.arrays import thread_map, threads


def encode_png(pixels: NDArray[Any], *, level: int = 1, workers: int | None = None) -> bytes:
    """Encode HxW or HxWxC pixels as the bytes of a PNG file.

    Parameters
    ----------
    pixels : ndarray
        HxW (gray) or HxWxC with C == 1 gray, 2 gray and alpha, 3 RGB, 4 RGBA;
        uint8 for 8-bit samples, uint16 for 16-bit ones. H and W at least 1; any
        strides and byte order.
    level : int
        zlib level 0-9, as Pillow's ``compress_level``: 0 stores, 1 is the
        fastest, 9 the smallest.
    workers : int, optional
        Threads that filter and deflate bands of rows at once (default:
        `convcalc.compute.arrays.threads`).

    Returns
    -------
    bytes
        A non-interlaced PNG: signature, IHDR, IDAT chunks of at most 1 MiB,
        IEND. 16-bit samples are written big-endian, as PNG stores them.

    Raises
    ------
    ValueError
        Pixels of another shape or dtype, a level outside 0-9, workers below 1.
    """
    image = _as_image(pixels)
    if not (isinstance(level, int) and 0 <= level <= 9):
        raise ValueError(f"PNG level {level!r} is not valid; valid: 0-9")
    workers = threads() if workers is None else workers
    if workers < 1:
        raise ValueError(f"{workers!r} workers is not valid; valid: 1 or more")
    return _encode(image, level, workers)


# ------------------------------------------------------------------ encoding helpers


_Rows = NDArray[np.uint8]
"""Image rows as bytes: one line per row, W·C·(bytes per sample) long."""

_UP = 2
"""The PNG filter every row gets: Up (type 2), the fastest filter that keeps the size
at Pillow's; choosing a filter per row, as Pillow does, costs more CPU than deflating
at level 1. Measurements: benchmarks/README.md."""

_BAND_BYTES = 4 * 2**20
"""Most scanline bytes a thread deflates as one band. Each band starts with an
empty deflate dictionary: 4 MiB bands add under 0.01 % to the size, 1 MiB 0.04 %."""

_SLAB_BYTES = 256 * 2**10
"""Scanline bytes filtered at once within a band, so the temporaries stay in cache."""

_IDAT_BYTES = 2**20
"""Most data bytes in one IDAT chunk."""

_STRATEGY = zlib.Z_FILTERED
"""Pillow's zlib strategy for PNG. At level 6 it makes noisy photos 10 % smaller
for 45 % more time, as Pillow's; zlib ignores it at levels 1-3."""

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}
"""PNG colour type by channel count: gray, gray and alpha, RGB, RGBA."""
_ADLER_BASE = 65521


def _as_image(pixels: NDArray[Any]) -> NDArray[Any]:
    """``pixels`` as HxWxC; ValueError unless PNG can hold them."""
    given = np.asarray(pixels)
    image = given[..., None] if given.ndim == 2 else given
    if (
        image.ndim != 3
        or image.shape[2] not in _COLOUR_TYPES
        or 0 in image.shape
        or image.dtype.kind != "u"
        or image.dtype.itemsize > 2
    ):
        raise ValueError(
            f"cannot encode a {given.dtype} array of shape {given.shape} as "
            "PNG; valid: uint8 or uint16, HxW or HxWxC with C 1-4, H and W "
            "at least 1"
        )
    return image


def _encode(image: NDArray[Any], level: int, workers: int, band_bytes: int = _BAND_BYTES) -> bytes:
    """The PNG of HxWxC ``image``, every row filtered with Up."""
    height, width, channels = image.shape
    line_bytes = 1 + width * channels * image.dtype.itemsize
    rows = _band_rows(height, line_bytes, workers, band_bytes)
    spans = [(top, min(top + rows, height)) for top in range(0, height, rows)]

    def deflate(span: tuple[int, int]) -> tuple[bytes, int]:
        return _deflate_band(image, *span, level, last=span[1] == height)

    bands = thread_map(deflate, spans, workers)
    adler = 1
    for (top, bottom), (_, band_adler) in zip(spans, bands, strict=True):
        adler = _adler32_combine(adler, band_adler, (bottom - top) * line_bytes)
    # the header zlib itself writes at this level: its level hint and check bits
    stream = b"".join(
        [zlib.compress(b"", level)[:2], *(data for data, _ in bands), adler.to_bytes(4, "big")]
    )
    header = struct.pack(
        ">IIBBBBB", width, height, 8 * image.dtype.itemsize, _COLOUR_TYPES[channels], 0, 0, 0
    )
    view = memoryview(stream)
    parts = [_SIGNATURE, *_chunk(b"IHDR", header)]
    for start in range(0, len(stream), _IDAT_BYTES):
        parts += _chunk(b"IDAT", view[start : start + _IDAT_BYTES])
    parts += _chunk(b"IEND", b"")
    return b"".join(parts)


def _band_rows(height: int, line_bytes: int, workers: int, band_bytes: int) -> int:
    """Rows per band: bands of band_bytes / 8 to band_bytes, as many as can be in
    whole rounds of ``workers``, so that no thread idles while another finishes."""
    total = height * line_bytes
    rounds = -(-total // (band_bytes * workers))
    bands = min(rounds * workers, max(1, total // max(1, band_bytes // 8)), height)
    return -(-height // bands)


def _chunk(kind: bytes, data: bytes | memoryview) -> list[bytes | memoryview]:
    """A PNG chunk in parts: length and type, data, CRC-32 of type and data."""
    crc = zlib.crc32(data, zlib.crc32(kind))
    return [struct.pack(">I", len(data)) + kind, data, crc.to_bytes(4, "big")]


def _adler32_combine(first: int, second: int, second_length: int) -> int:
    """The Adler-32 of A followed by B from A's, B's and B's length in bytes."""
    first_sum, first_sums = first & 0xFFFF, first >> 16
    second_sum, second_sums = second & 0xFFFF, second >> 16
    total = (first_sum + second_sum - 1) % _ADLER_BASE
    sums = (first_sums + second_sums + second_length * (first_sum - 1)) % _ADLER_BASE
    return sums << 16 | total


def _deflate_band(
    image: NDArray[Any], top: int, bottom: int, level: int, *, last: bool
) -> tuple[bytes, int]:
    """Rows top:bottom of HxWxC ``image`` as raw deflate data and their Adler-32.

    The data ends the stream if ``last``, else on a byte boundary (a sync flush),
    so that the next band's data may follow it.
    """
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15, 8, _STRATEGY)
    slab = max(1, _SLAB_BYTES // (1 + image[0].nbytes))
    parts = []
    adler = 1
    for start in range(top, bottom, slab):
        lines = _scanlines(image, start, min(start + slab, bottom)).data
        adler = zlib.adler32(lines, adler)
        parts.append(compressor.compress(lines))
    parts.append(compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH))
    return b"".join(parts), adler


def _scanlines(image: NDArray[Any], top: int, bottom: int) -> _Rows:
    """Rows top:bottom of HxWxC ``image`` as PNG scanlines: the filter type (Up), then
    the row's big-endian bytes minus those of the row above (none above row 0)."""
    width, channels = image.shape[1:]
    # the row above on top (zeros above row 0): Up is then one subtraction over the
    # whole slab
    padded = np.zeros((bottom - top + 1, width, channels), image.dtype.newbyteorder(">"))
    padded[1:] = image[top:bottom]
    if top > 0:
        padded[0] = image[top - 1]
    raw = padded.view(np.uint8).reshape(bottom - top + 1, -1)
    lines = np.empty((bottom - top, raw.shape[1] + 1), np.uint8)
    lines[:, 0] = _UP
    np.subtract(raw[1:], raw[:-1], out=lines[:, 1:])
    return lines
