"""PNG encoding: round trips through Pillow and a reference decoder, the Up filter,
every level and channel count, bands deflated on threads, chunks and checksums."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray
from PIL import Image

from convcalc.io import png
from convcalc.io.png import encode_png

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 4: 2, 2: 3, 6: 4}
"""Channel count by PNG colour type."""


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """Every chunk's type and data, checking the signature and every CRC."""
    assert data[:8] == SIGNATURE
    found, pos = [], 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body), f"bad CRC in {kind!r}"
        found.append((kind, body))
        pos += 12 + length
    assert pos == len(data)
    return found


def decode(data: bytes) -> tuple[NDArray[Any], list[int]]:
    """A small PNG reader for what encode_png writes: HxWxC pixels (uint8, or
    big-endian uint16) and each row's filter type. zlib.decompress checks the
    stream's header and Adler-32; the filters are undone byte by byte."""
    found = chunks(data)
    kinds = [kind for kind, _ in found]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and set(kinds[1:-1]) == {b"IDAT"}
    width, height, depth, colour, *methods = struct.unpack(">IIBBBBB", found[0][1])
    assert depth in (8, 16) and methods == [0, 0, 0]
    raw = zlib.decompress(b"".join(body for kind, body in found if kind == b"IDAT"))
    pixel = CHANNELS[colour] * depth // 8
    stride = width * pixel
    assert len(raw) == height * (1 + stride)
    rows, filters, prior = bytearray(), [], [0] * stride
    for y in range(height):
        line = raw[y * (1 + stride) : (y + 1) * (1 + stride)]
        filters.append(line[0])
        row = list(line[1:])
        for i in range(stride):
            a = row[i - pixel] if i >= pixel else 0
            c = prior[i - pixel] if i >= pixel else 0
            row[i] = (row[i] + predict(line[0], a, prior[i], c)) & 0xFF
        rows += bytes(row)
        prior = row
    pixels = np.frombuffer(bytes(rows), ">u2" if depth == 16 else np.uint8)
    return pixels.reshape(height, width, CHANNELS[colour]), filters


def predict(kind: int, a: int, b: int, c: int) -> int:
    """The PNG spec's predictor of filter type ``kind`` from the left, upper and
    upper-left bytes."""
    if kind == 4:
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        return a if pa <= pb and pa <= pc else b if pb <= pc else c
    return [0, a, b, (a + b) // 2][kind]


def pixels(shape: tuple[int, ...], dtype: Any = np.uint8, seed: int = 0) -> NDArray[Any]:
    """Smooth values plus noise: every filter then has something to predict."""
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    ramp = np.linspace(0, top // 2, int(np.prod(shape))).reshape(shape)
    return (ramp + rng.integers(0, top // 2, shape)).astype(dtype)


def pillow_read(data: bytes) -> NDArray[Any]:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_8bit_round_trip_through_pillow(channels: int) -> None:
    image = pixels((23, 31, channels))
    read = pillow_read(encode_png(image))
    assert np.array_equal(read.reshape(image.shape), image)


def test_16bit_gray_and_plain_hxw_round_trip_through_pillow() -> None:
    image = pixels((17, 29), np.uint16)
    read = pillow_read(encode_png(image))
    assert read.dtype == np.uint16 and np.array_equal(read, image)


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_16bit_colour_is_big_endian_for_pillow_too(channels: int) -> None:
    # Pillow reads these as 8-bit, keeping each sample's high byte (gray and
    # alpha as RGBA)
    image = pixels((9, 11, channels), np.uint16)
    data = encode_png(image)
    assert np.array_equal(decode(data)[0], image)
    high = (image >> 8).astype(np.uint8)
    if channels == 2:
        high = high[..., [0, 0, 0, 1]]
    assert np.array_equal(pillow_read(data), high)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_up_filter_decodes_in_many_bands(dtype: Any, channels: int) -> None:
    image = pixels((13, 7, channels), dtype)
    data = png._encode(image, 6, 3, band_bytes=200)
    decoded, filters = decode(data)
    assert np.array_equal(decoded, image)
    assert filters == [2] * 13  # Up


@pytest.mark.parametrize("level", range(10))
def test_every_level_round_trips_with_zlibs_header(level: int) -> None:
    image = pixels((40, 50, 3))
    data = encode_png(image, level=level)
    stream = b"".join(body for kind, body in chunks(data) if kind == b"IDAT")
    assert stream[:2] == zlib.compress(b"", level)[:2]
    assert np.array_equal(decode(data)[0], image)
    assert np.array_equal(pillow_read(data), image)
    if level == 0:  # stored blocks: every scanline byte is there
        assert len(stream) > 40 * (1 + 50 * 3)


@pytest.mark.parametrize(
    "shape", [(1, 1), (1, 1, 4), (1, 37, 3), (41, 1, 2), (5, 13, 1), (3, 127, 3)]
)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_odd_sizes(shape: tuple[int, ...], dtype: Any) -> None:
    image = pixels(shape, dtype)
    for data in (encode_png(image), png._encode(png._as_image(image), 1, 2, band_bytes=16)):
        assert np.array_equal(decode(data)[0].reshape(shape), image)


def test_bands_join_into_one_stream_whatever_the_workers() -> None:
    image = pixels((60, 20, 3))
    line = 1 + 20 * 3
    assert png._band_rows(60, line, 2, band_bytes=10 * line) == 10  # 6 bands
    assert png._band_rows(60, line, 1, band_bytes=60 * line) == 60  # one band
    for workers in (1, 2, 3, 5):
        data = png._encode(image, 1, workers, band_bytes=10 * line)
        assert np.array_equal(decode(data)[0], image)
        assert np.array_equal(pillow_read(data), image)


def test_slabs_of_one_row_within_a_band(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(png, "_SLAB_BYTES", 1)
    image = pixels((9, 8, 2), np.uint16)
    for band_bytes in (2**20, 100):
        data = png._encode(image, 1, 2, band_bytes)
        assert np.array_equal(decode(data)[0], image)


def test_bands_come_in_whole_rounds_of_workers() -> None:
    # 3 bands' worth on 2 workers: 4 bands, not 2 full ones and an idle worker
    assert png._band_rows(90, 100, 2, band_bytes=3000) == 23
    # too little for more than one band of at least band_bytes / 8
    assert png._band_rows(10, 100, 4, band_bytes=8000) == 10


@pytest.mark.parametrize("split", [0, 1, 5, 65521, 100_000, 300_000])
def test_adler32_combine_matches_zlib(split: int) -> None:
    data = bytes(range(256)) * 1000 + b"\xff" * 100_000  # sums wrap the modulus
    first, second = data[:split], data[split:]
    combined = png._adler32_combine(zlib.adler32(first), zlib.adler32(second), len(second))
    assert combined == zlib.adler32(data)


def test_idat_chunks_are_split_and_every_crc_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(png, "_IDAT_BYTES", 100)
    image = pixels((30, 30, 4))
    data = encode_png(image, level=0)
    found = chunks(data)
    sizes = [len(body) for kind, body in found if kind == b"IDAT"]
    assert len(sizes) > 30 and max(sizes) == 100
    assert found[0] == (b"IHDR", struct.pack(">IIBBBBB", 30, 30, 8, 6, 0, 0, 0))
    assert found[-1] == (b"IEND", b"")
    assert np.array_equal(pillow_read(data), image)


def test_any_strides_and_byte_order() -> None:
    image = pixels((12, 10, 3), np.uint16)
    assert np.array_equal(decode(encode_png(image[::-1, ::2, 1:2]))[0], image[::-1, ::2, 1:2])
    assert np.array_equal(decode(encode_png(image.astype(">u2")))[0], image)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((4, 4), np.float64),
        np.zeros((4, 4), np.int16),
        np.zeros((4, 4), bool),
        np.zeros((4, 4), np.uint32),
        np.zeros(4, np.uint8),
        np.zeros((4, 4, 5), np.uint8),
        np.zeros((0, 4), np.uint8),
        np.zeros((4, 0, 3), np.uint8),
        np.zeros((2, 2, 2, 2), np.uint8),
    ],
)
def test_bad_pixels_are_refused(bad: NDArray[Any]) -> None:
    with pytest.raises(ValueError, match=rf"{bad.dtype} array of shape \({bad.shape[0]},.*valid"):
        encode_png(bad)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"level": -1}, "level -1 is not valid; valid: 0-9"),
        ({"level": 10}, "level 10 is not valid"),
        ({"workers": 0}, "0 workers is not valid; valid: 1 or more"),
    ],
)
def test_bad_options_are_refused(options: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_png(np.zeros((2, 2), np.uint8), **options)


@settings(max_examples=60, deadline=None)
@given(
    image=hnp.arrays(
        st.sampled_from([np.uint8, np.uint16]),
        st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 4)),
    ),
    level=st.integers(0, 9),
    workers=st.integers(1, 3),
    band_bytes=st.sampled_from([8, 64, 2**20]),
)
def test_random_images_round_trip(
    image: NDArray[Any], level: int, workers: int, band_bytes: int
) -> None:
    data = png._encode(image, level, workers, band_bytes)
    assert np.array_equal(decode(data)[0], image)
