"""PNG encoding of HxWxC pixels, faster than Pillow on several cores.

Rows are filtered in numpy and deflated on several threads, as pigz does: the
image is cut into bands of rows, and each band is filtered and deflated on its
own thread by its own raw-deflate compressor. Every band but the last ends with a
sync flush (on a byte boundary), so the pieces join into one deflate stream; a
zlib header and the Adler-32 of every scanline, combined from the bands' own,
frame it. numpy and CPython's zlib release the GIL, so the bands run at once.
Every row is filtered with Up: ``_FILTER`` holds the measurements behind that.
Pure numpy and the standard library: Pillow is not needed to write.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from numpy.typing import NDArray

from convcalc.compute.arrays import WORKERS


def encode_png(pixels: NDArray[Any], *, level: int = 1, workers: int = WORKERS) -> bytes:
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
    workers : int
        Threads that filter and deflate bands of rows at once.

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
    if workers < 1:
        raise ValueError(f"{workers!r} workers is not valid; valid: 1 or more")
    return _encode(image, level, workers)


# ------------------------------------------------------------------ encoding helpers


_Rows = NDArray[np.uint8]
"""Image rows as bytes: one line per row, W·C·(bytes per sample) long."""

_Filter = Callable[[_Rows, _Rows, _Rows, _Rows, _Rows], None]
"""A PNG filter: ``f(x, a, b, c, out)`` writes x filtered against its left (a),
upper (b) and upper-left (c) bytes into ``out``."""

_NONE, _SUB, _UP, _AVERAGE, _PAETH = range(5)

# The filter every row gets: Up, the fastest filter that keeps the size at Pillow's.
# Pillow picks one of None, Sub, Up and Paeth per row, the least sum of |signed
# byte| (libpng's heuristic); "adaptive" below is that choice among all five,
# vectorised in numpy for the measurement and not kept.
# At level 1 Average is as fast and 4 % smaller on the noisy "smooth" images, but
# 1.5-7 % larger on the others; at level 6 Average and adaptive take a third to a
# half longer than Up for those 4 %. Paeth and adaptive filtering alone cost more
# CPU than deflating at level 1.
# Measured 2026-11-23 on 2 cores (AMD EPYC; Python's zlib 1.2.13, Pillow 13.0 with
# zlib-ng 2.3.3), Z_FILTERED, 8-bit RGB: samples/photo.png; "smooth": 60 random
# Gaussian blobs on colour ramps plus noise of sd 3 levels; "blur": it after a
# Gaussian blur of sigma 2 px. Best wall time of 6-10 runs with no other process
# on the cores:
#
#                Pillow              ---- this module, 2 threads: ms, size / Pillow's ----
# image       L    ms     bytes    None       Sub        Up    Average      Paeth   adaptive
# photo 256   1     6    128837    4 1.307    3 1.088    3 1.009    3 1.042    5 1.016    7 0.995
# photo 256   6    11    113367    5 1.548    7 1.152    7 1.016    8 1.088    9 1.026   12 0.996
# blur 2048   1   170   2323104   55 1.647   46 1.063   45 1.007   47 1.022   66 1.002   87 1.000
# blur 2048   6   655   1655356  103 1.832  325 1.079  301 0.989  326 1.015  320 1.002  331 1.000
# smooth 2048 1   374   7661443  141 1.390   89 0.999   85 1.002   81 0.965  133 1.014  155 0.964
# smooth 2048 6   983   6646809  170 1.720  364 1.004  373 1.002  492 0.957  371 1.020  557 0.957
# blur 4096   1   621   8575336  193 1.598  166 1.077  160 1.002  170 1.031  229 1.001  290 1.000
# blur 4096   6  2237   5990787  371 1.688 1117 1.094  994 0.985 1073 1.025 1060 1.000 1135 1.000
# smooth 4096 1  1498  30630245  585 1.384  355 0.998  343 1.002  336 0.964  552 1.014  572 0.964
# smooth 4096 6  4088  26583176  690 1.715 1524 1.003 1520 1.002 2011 0.956 1567 1.020 2250 0.956
#
_FILTER = _UP

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
    if (image.ndim != 3 or image.shape[2] not in _COLOUR_TYPES or 0 in image.shape
            or image.dtype.kind != "u" or image.dtype.itemsize > 2):
        raise ValueError(f"cannot encode a {given.dtype} array of shape {given.shape} as "
                         "PNG; valid: uint8 or uint16, HxW or HxWxC with C 1-4, H and W "
                         "at least 1")
    return image


def _encode(image: NDArray[Any], level: int, workers: int, filter_type: int = _FILTER,
            band_bytes: int = _BAND_BYTES) -> bytes:
    """The PNG of HxWxC ``image``, every row filtered with ``filter_type``."""
    height, width, channels = image.shape
    line_bytes = 1 + width * channels * image.dtype.itemsize
    rows = _band_rows(height, line_bytes, workers, band_bytes)
    spans = [(top, min(top + rows, height)) for top in range(0, height, rows)]

    def deflate(span: tuple[int, int]) -> tuple[bytes, int]:
        return _deflate_band(image, *span, level, filter_type, last=span[1] == height)

    if workers == 1 or len(spans) == 1:
        bands = [deflate(span) for span in spans]
    else:
        with ThreadPoolExecutor(min(workers, len(spans))) as pool:
            bands = list(pool.map(deflate, spans))
    adler = 1
    for (top, bottom), (_, band_adler) in zip(spans, bands, strict=True):
        adler = _adler32_combine(adler, band_adler, (bottom - top) * line_bytes)
    # the header zlib itself writes at this level: its level hint and check bits
    stream = b"".join([zlib.compress(b"", level)[:2], *(data for data, _ in bands),
                       adler.to_bytes(4, "big")])
    header = struct.pack(">IIBBBBB", width, height, 8 * image.dtype.itemsize,
                         _COLOUR_TYPES[channels], 0, 0, 0)
    view = memoryview(stream)
    parts = [_SIGNATURE, *_chunk(b"IHDR", header)]
    for start in range(0, len(stream), _IDAT_BYTES):
        parts += _chunk(b"IDAT", view[start:start + _IDAT_BYTES])
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


def _deflate_band(image: NDArray[Any], top: int, bottom: int, level: int, filter_type: int,
                  *, last: bool) -> tuple[bytes, int]:
    """Rows top:bottom of HxWxC ``image`` as raw deflate data and their Adler-32.

    The data ends the stream if ``last``, else on a byte boundary (a sync flush),
    so that the next band's data may follow it.
    """
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15, 8, _STRATEGY)
    slab = max(1, _SLAB_BYTES // (1 + image[0].nbytes))
    parts = []
    adler = 1
    for start in range(top, bottom, slab):
        lines = _scanlines(image, start, min(start + slab, bottom), filter_type).data
        adler = zlib.adler32(lines, adler)
        parts.append(compressor.compress(lines))
    parts.append(compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH))
    return b"".join(parts), adler


def _scanlines(image: NDArray[Any], top: int, bottom: int, filter_type: int) -> _Rows:
    """Rows top:bottom of HxWxC ``image`` as PNG scanlines: the filter type, then
    the row's big-endian bytes filtered against the row above (none above row 0)."""
    width, channels = image.shape[1:]
    # one zero pixel left of each row and the row above on top: every filter is
    # then one expression over the whole slab, edges included
    padded = np.zeros((bottom - top + 1, width + 1, channels), image.dtype.newbyteorder(">"))
    padded[1:, 1:] = image[top:bottom]
    if top > 0:
        padded[0, 1:] = image[top - 1]
    raw = padded.view(np.uint8).reshape(bottom - top + 1, -1)
    pixel = channels * image.dtype.itemsize
    lines = np.empty((bottom - top, raw.shape[1] - pixel + 1), np.uint8)
    lines[:, 0] = filter_type
    _FILTERS[filter_type](raw[1:, pixel:], raw[1:, :-pixel], raw[:-1, pixel:],
                          raw[:-1, :-pixel], lines[:, 1:])
    return lines


def _none(x: _Rows, a: _Rows, b: _Rows, c: _Rows, out: _Rows) -> None:
    out[...] = x


def _sub(x: _Rows, a: _Rows, b: _Rows, c: _Rows, out: _Rows) -> None:
    np.subtract(x, a, out=out)


def _up(x: _Rows, a: _Rows, b: _Rows, c: _Rows, out: _Rows) -> None:
    np.subtract(x, b, out=out)


def _average(x: _Rows, a: _Rows, b: _Rows, c: _Rows, out: _Rows) -> None:
    # floor((a + b) / 2) without leaving uint8
    mean = np.bitwise_xor(a, b)
    mean >>= 1
    mean += a & b
    np.subtract(x, mean, out=out)


def _paeth(x: _Rows, a: _Rows, b: _Rows, c: _Rows, out: _Rows) -> None:
    # the PNG spec's predictor: of a, b and c the nearest to a + b - c, ties to a, then b
    far_a = np.subtract(b, c, dtype=np.int16)
    far_b = np.subtract(a, c, dtype=np.int16)
    far_c = np.abs(far_a + far_b)
    np.abs(far_a, out=far_a)
    np.abs(far_b, out=far_b)
    predictor = np.where(far_b <= far_c, b, c)
    np.copyto(predictor, a, where=(far_a <= far_b) & (far_a <= far_c))
    np.subtract(x, predictor, out=out)


_FILTERS: tuple[_Filter, ...] = (_none, _sub, _up, _average, _paeth)
"""The PNG filters by type number."""
