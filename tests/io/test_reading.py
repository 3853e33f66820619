"""Tests for convcalc.io.reading: reading every image mode and format, scaling, writing."""

from __future__ import annotations

import errno
import io
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from convcalc.calc.choices import Scale
from convcalc.errors import ConvcalcError, RuntimeFailure
from convcalc.io import writing
from convcalc.io.reading import read_input
from convcalc.io.writing import write_output

RNG = np.random.default_rng(7)


def u8(*shape: int) -> NDArray[np.uint8]:
    return RNG.integers(0, 256, size=shape, dtype=np.uint8)


def save(tmp_path: Path, name: str, image: Image.Image, **options: Any) -> str:
    path = str(tmp_path / name)
    image.save(path, **options)
    return path


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def pixels(path: str | Path | io.BytesIO, mode: str | None = None) -> NDArray[Any]:
    with Image.open(path) as image:
        return np.array(image.convert(mode) if mode else image)


def palette_image(indices: NDArray[np.uint8], palette: NDArray[np.uint8]) -> Image.Image:
    image = Image.new("P", (indices.shape[1], indices.shape[0]))
    image.putpalette(palette.ravel().tolist())
    image.frombytes(indices.tobytes())
    return image


def is_input_error(exc: BaseException) -> bool:
    return isinstance(exc, ConvcalcError) and not isinstance(exc, RuntimeFailure)


# ----------------------------------------------------------------- modes


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_8bit_modes_round_trip_exactly(tmp_path: Path, channels: int) -> None:
    array = u8(5, 7, channels)
    image = Image.fromarray(array[..., 0] if channels == 1 else array)
    assert image.mode == {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]
    loaded = read_input(save(tmp_path, "a.png", image))
    colour = 1 if channels < 3 else 3
    assert loaded.data.dtype == np.uint8 and loaded.data.shape == (5, 7, colour)
    np.testing.assert_array_equal(loaded.data, array[..., :colour])
    if channels in (2, 4):
        assert loaded.alpha is not None
        np.testing.assert_array_equal(loaded.alpha, array[..., -1])
    else:
        assert loaded.alpha is None
    assert (loaded.kind, loaded.mode, loaded.max_value) == ("image", image.mode, 255.0)


def test_palette_without_transparency_becomes_rgb(tmp_path: Path) -> None:
    palette = u8(256, 3)
    indices = RNG.integers(0, 5, size=(4, 6), dtype=np.uint8)
    loaded = read_input(save(tmp_path, "p.png", palette_image(indices, palette)))
    assert loaded.mode == "P" and loaded.alpha is None
    np.testing.assert_array_equal(loaded.data, palette[indices])
    assert "palette image converted to RGB" in loaded.notes


def test_palette_with_transparency_becomes_rgba(tmp_path: Path) -> None:
    palette = u8(256, 3)
    indices = np.array([[0, 1, 2], [2, 1, 0]], dtype=np.uint8)
    image = palette_image(indices, palette)
    image.info["transparency"] = 2
    loaded = read_input(save(tmp_path, "p.png", image, transparency=2))
    np.testing.assert_array_equal(loaded.data, palette[indices])
    assert loaded.alpha is not None
    np.testing.assert_array_equal(loaded.alpha, np.where(indices == 2, 0, 255))
    assert "palette image converted to RGBA" in loaded.notes


def test_gray_with_transparent_colour_gets_alpha(tmp_path: Path) -> None:
    array = np.array([[5, 6], [6, 5]], dtype=np.uint8)
    loaded = read_input(save(tmp_path, "t.png", Image.fromarray(array), transparency=5))
    assert loaded.alpha is not None
    np.testing.assert_array_equal(loaded.alpha, np.where(array == 5, 0, 255))


def test_16bit_keeps_values_above_255_exactly(tmp_path: Path) -> None:
    array = np.array([[0, 255, 256], [1000, 40000, 65535]], dtype=np.uint16)
    for name in ("a.png", "a.tif"):
        loaded = read_input(save(tmp_path, name, Image.fromarray(array)))
        assert loaded.data.dtype == np.uint16 and loaded.max_value == 65535.0
        np.testing.assert_array_equal(loaded.data[..., 0], array)


def test_big_endian_16bit_becomes_native_uint16(tmp_path: Path) -> None:
    image = Image.new("I;16B", (3, 2), 50000)
    loaded = read_input(save(tmp_path, "b.tif", image))
    assert loaded.data.dtype == np.dtype(np.uint16) and loaded.data.dtype.isnative
    assert (loaded.data == 50000).all()


def test_32bit_int_and_float_modes(tmp_path: Path) -> None:
    ints = np.array([[-70000, 0], [1, 2**31 - 1]], dtype=np.int32)
    floats = np.array([[-1.5, 0.25], [1e-8, 3e9]], dtype=np.float32)
    li = read_input(save(tmp_path, "i.tif", Image.fromarray(ints)))
    lf = read_input(save(tmp_path, "f.tif", Image.fromarray(floats)))
    assert (li.mode, li.data.dtype, li.max_value) == ("I", np.dtype(np.int32), None)
    assert (lf.mode, lf.data.dtype, lf.max_value) == ("F", np.dtype(np.float32), None)
    np.testing.assert_array_equal(li.data[..., 0], ints)
    np.testing.assert_array_equal(lf.data[..., 0], floats)


def test_bilevel_reads_as_0_and_255(tmp_path: Path) -> None:
    image = Image.new("1", (4, 3), 0)
    image.putpixel((1, 2), 1)
    loaded = read_input(save(tmp_path, "b.png", image))
    expected = np.zeros((3, 4), np.uint8)
    expected[2, 1] = 255
    np.testing.assert_array_equal(loaded.data[..., 0], expected)
    assert loaded.mode == "1" and any("bilevel" in note for note in loaded.notes)


def test_cmyk_becomes_rgb(tmp_path: Path) -> None:
    image = Image.new("CMYK", (2, 2), (0, 255, 255, 0))
    loaded = read_input(save(tmp_path, "c.tif", image))
    assert loaded.data.shape == (2, 2, 3)
    np.testing.assert_array_equal(loaded.data[0, 0], [255, 0, 0])
    assert "CMYK image converted to RGB" in loaded.notes


def test_gray_uses_pillow_luma_and_keeps_alpha(tmp_path: Path) -> None:
    array = u8(4, 5, 4)
    path = save(tmp_path, "c.png", Image.fromarray(array))
    loaded = read_input(path, gray=True)
    expected = np.array(Image.fromarray(array[..., :3]).convert("L"))
    np.testing.assert_array_equal(loaded.data[..., 0], expected)
    assert loaded.alpha is not None
    np.testing.assert_array_equal(loaded.alpha, array[..., 3])
    sixteen = save(tmp_path, "s.png", Image.fromarray(np.full((2, 2), 40000, np.uint16)))
    assert (read_input(sixteen, gray=True).data == 40000).all()


# ----------------------------------------------------------------- formats


def smooth_rgb() -> NDArray[np.uint8]:
    y, x = np.mgrid[0:32, 0:48]
    return np.stack([x * 5, y * 7, (x + y) * 3], axis=-1).astype(np.uint8)


@pytest.mark.parametrize(
    ("name", "tolerance"),
    [
        ("a.png", 0),
        ("a.bmp", 0),
        ("a.tif", 0),
        ("a.jpg", 4.0),
        ("a.webp", 6.0),
    ],
)
def test_each_format_reads_back(tmp_path: Path, name: str, tolerance: float) -> None:
    array = smooth_rgb()
    loaded = read_input(save(tmp_path, name, Image.fromarray(array)))
    assert loaded.data.shape == array.shape
    error = np.abs(loaded.data.astype(float) - array).mean()
    assert error <= tolerance
    if tolerance == 0:
        np.testing.assert_array_equal(loaded.data, array)


def test_gif_first_frame_and_note(tmp_path: Path) -> None:
    frames = [Image.fromarray(np.full((4, 4), value, np.uint8)) for value in (10, 200, 90)]
    path = str(tmp_path / "a.gif")
    frames[0].save(path, save_all=True, append_images=frames[1:])
    loaded = read_input(path)
    assert (loaded.data == 10).all()
    assert "GIF: first of 3 frames used" in loaded.notes


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    array = np.zeros((16, 32), np.uint8)
    array[8:] = 255  # bright bottom half
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    loaded = read_input(save(tmp_path, "o.jpg", Image.fromarray(array), exif=exif))
    assert loaded.data.shape == (32, 16, 1)
    rotated = np.rot90(array, k=-1)  # clockwise: the bottom half goes left
    assert np.abs(loaded.data[..., 0].astype(float) - rotated).mean() < 4
    assert "EXIF orientation 6 applied" in loaded.notes


def test_an_upright_image_is_not_copied_to_be_turned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import ImageOps

    calls: list[int] = []
    real = ImageOps.exif_transpose
    monkeypatch.setattr(ImageOps, "exif_transpose", lambda im, **k: calls.append(1) or real(im))
    exif = Image.Exif()
    exif[0x0112] = 1
    plain = read_input(save(tmp_path, "a.png", Image.fromarray(u8(4, 6, 3))))
    upright = read_input(save(tmp_path, "b.jpg", Image.fromarray(u8(4, 6, 3)), exif=exif))
    assert plain.data.shape == upright.data.shape == (4, 6, 3) and calls == []
    exif[0x0112] = 3  # upside down
    turned = read_input(save(tmp_path, "c.png", Image.fromarray(u8(4, 6, 3)), exif=exif))
    assert calls == [1] and "EXIF orientation 3 applied" in turned.notes


# ----------------------------------------------------------------- stdin and sniffing


def test_stdin_sniffs_png_npy_and_text() -> None:
    array = u8(3, 4, 3)
    png = read_input("-", stdin=io.BytesIO(png_bytes(Image.fromarray(array))))
    assert png.kind == "image" and png.source == "<stdin>"
    np.testing.assert_array_equal(png.data, array)

    buffer = io.BytesIO()
    values = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    np.save(buffer, values)
    npy = read_input("-", stdin=io.BytesIO(buffer.getvalue()))
    assert (npy.kind, npy.mode, npy.max_value) == ("npy", "array", None)
    assert npy.data.dtype == np.float32
    np.testing.assert_array_equal(npy.data[..., 0], values)
    assert npy.data.flags.writeable

    text = read_input("-", stdin=io.BytesIO(b"1, 2, 3\n4 5 6\n\n7 8 9\n0 0 0\n"))
    assert text.kind == "text" and text.data.shape == (2, 3, 2)
    np.testing.assert_array_equal(text.data[..., 1], [[7, 8, 9], [0, 0, 0]])


def test_unknown_extension_is_sniffed(tmp_path: Path) -> None:
    (tmp_path / "m.dat").write_text("1 2\n3 4\n")
    assert read_input(str(tmp_path / "m.dat")).kind == "text"
    (tmp_path / "img").write_bytes(png_bytes(Image.new("L", (2, 2))))
    assert read_input(str(tmp_path / "img")).kind == "image"
    (tmp_path / "junk").write_bytes(b"\x00\x01binary")
    with pytest.raises(ConvcalcError, match="not an image Pillow can read"):
        read_input(str(tmp_path / "junk"))


def test_text_and_npy_gray() -> None:
    text = read_input("-", gray=True, stdin=io.BytesIO(b"10\n\n20\n\n30\n"))
    assert text.data.shape == (1, 1, 1)
    assert text.data[0, 0, 0] == pytest.approx(0.299 * 10 + 0.587 * 20 + 0.114 * 30)
    with pytest.raises(ConvcalcError, match="1 or 3 channels"):
        read_input("-", gray=True, stdin=io.BytesIO(b"1\n\n2\n"))


# ----------------------------------------------------------------- errors


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # as outside pytest
def test_decompression_bomb_warning_and_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)
    for side, pixels in ((4, "16"), (5, "25")):  # over the limit; over twice the limit
        data = png_bytes(Image.new("L", (side, side)))
        with pytest.raises(ConvcalcError, match="decompression-bomb") as info:
            read_input("-", stdin=io.BytesIO(data))
        assert is_input_error(info.value)
        assert f"{pixels} pixels" in str(info.value) and "limit of 10 pixels" in str(info.value)


def test_missing_directory_and_unreadable_are_runtime_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(RuntimeFailure, match="no such file") as info:
        read_input(str(tmp_path / "nope.png"))
    assert "nope.png" in str(info.value)
    with pytest.raises(RuntimeFailure, match="is a directory"):
        read_input(str(tmp_path))

    def denied(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(errno.EACCES, "Permission denied")

    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG")
    with monkeypatch.context() as patched:  # chmod 000 does not stop root
        patched.setattr(os, "open", denied)
        with pytest.raises(RuntimeFailure, match=r"secret\.png: permission denied"):
            read_input(str(secret))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.png", b"", "empty input"),
        ("text.png", b"hello, I am not a picture", "not an image Pillow can read"),
        ("bad.npy", b"\x93NUMPY garbage", "bad.npy"),
        ("bad.csv", b"1,2\n3\n", "bad.csv"),
        ("latin.csv", b"1,2\xe9\n", "not UTF-8"),
    ],
)
def test_bad_content_is_an_input_error(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ConvcalcError, match=message) as info:
        read_input(str(path))
    assert is_input_error(info.value)


def test_truncated_png_is_an_input_error(tmp_path: Path) -> None:
    data = png_bytes(Image.fromarray(u8(64, 64, 3)))
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ConvcalcError, match=r"cut\.png: truncated or corrupt") as info:
        read_input(str(tmp_path / "cut.png"))
    assert is_input_error(info.value)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "TIFF", "WEBP", "BMP"])
def test_any_truncation_gives_a_result_or_an_input_error(fmt: str) -> None:
    buffer = io.BytesIO()
    Image.fromarray(u8(24, 24, 3)).save(buffer, fmt)
    data = buffer.getvalue()
    for cut in np.linspace(1, len(data) - 1, 25).astype(int):
        try:
            loaded = read_input("-", stdin=io.BytesIO(data[:cut]))
        except ConvcalcError as exc:
            assert is_input_error(exc)
        else:
            assert loaded.data.ndim == 3


# ----------------------------------------------------------------- scaling


def test_png_write_is_exact_for_8bit_values(tmp_path: Path) -> None:
    array = u8(5, 6, 3).astype(np.float64)
    report = write_output(str(tmp_path / "o.png"), array)
    assert (report.scale, report.value_range, report.bits) == (Scale.CLIP, (0.0, 255.0), 8)
    np.testing.assert_array_equal(pixels(tmp_path / "o.png"), array)


@pytest.mark.parametrize(
    ("name", "tolerance"),
    [
        ("o.jpg", 4.0),
        ("o.jpeg", 4.0),
        ("o.webp", 4.0),
        ("o.bmp", 0),
        ("o.tiff", 0),
    ],
)
def test_write_each_image_format(tmp_path: Path, name: str, tolerance: float) -> None:
    array = smooth_rgb().astype(np.float64)
    write_output(str(tmp_path / name), array)
    back = pixels(tmp_path / name, "RGB").astype(float)
    assert np.abs(back - array).mean() <= tolerance


def test_16bit_written_as_16bit_png_and_tiff_only(tmp_path: Path) -> None:
    array = np.array([[0, 300], [40000, 65535]], dtype=np.uint16)[..., None]
    for name in ("o.png", "o.tif"):
        report = write_output(str(tmp_path / name), array, max_value=65535.0)
        assert report.bits == 16
        np.testing.assert_array_equal(read_input(str(tmp_path / name)).data, array)
    report = write_output(str(tmp_path / "o.jpg"), array, max_value=65535.0)
    assert report.bits == 8 and "written as 8-bit" in report.notes[0]


def test_alpha_written_when_it_fits(tmp_path: Path) -> None:
    rgb, alpha = u8(4, 4, 3), u8(4, 4)
    write_output(str(tmp_path / "a.png"), rgb, alpha=alpha)
    back = read_input(str(tmp_path / "a.png"))
    assert back.alpha is not None
    np.testing.assert_array_equal(back.alpha, alpha)
    np.testing.assert_array_equal(back.data, rgb)
    small = write_output(str(tmp_path / "b.png"), rgb[:2, :2], alpha=alpha)
    assert small.notes == ("alpha dropped: its 4x4 differs from the result's 2x2",)
    assert pixels(tmp_path / "b.png").shape == (2, 2, 3)
    jpeg = write_output(str(tmp_path / "c.jpg"), rgb, alpha=alpha)
    assert jpeg.notes == ("alpha dropped: JPEG has no alpha channel",)


def test_npy_keeps_float32_and_exact_values(tmp_path: Path) -> None:
    values = np.array([[0.1, -3.75e-9], [1e30, -0.0]], dtype=np.float32)
    write_output(str(tmp_path / "one.npy"), values[..., None])
    back = np.load(tmp_path / "one.npy")
    assert back.dtype == np.float32 and back.shape == (2, 2)
    np.testing.assert_array_equal(back, values)
    stack = RNG.standard_normal((3, 4, 5)).astype(np.float32)
    report = write_output(str(tmp_path / "stack.npy"), stack, sheet=True)
    assert report.paths == (str(tmp_path / "stack.npy"),) and report.scale is None
    np.testing.assert_array_equal(read_input(str(tmp_path / "stack.npy")).data, stack)


@pytest.mark.parametrize("name", ["m.csv", "m.tsv", "m.txt"])
def test_text_output_round_trips(tmp_path: Path, name: str) -> None:
    values = np.array([[[1.5, 2], [-3, 0.1]], [[4, 5], [6, 7e-5]]])
    write_output(str(tmp_path / name), values)
    np.testing.assert_array_equal(read_input(str(tmp_path / name)).data, values)
    assert (",", "\t", " ")[("m.csv", "m.tsv", "m.txt").index(name)] in (
        (tmp_path / name).read_text().splitlines()[0]
    )


def test_other_channel_counts_become_separate_files(tmp_path: Path) -> None:
    array = np.stack([np.full((2, 3), 10.0), np.full((2, 3), 30.0)], axis=-1)
    report = write_output(str(tmp_path / "out.png"), array)
    assert report.paths == (str(tmp_path / "out_0.png"), str(tmp_path / "out_1.png"))
    assert not (tmp_path / "out.png").exists()
    assert (pixels(tmp_path / "out_1.png") == 30).all()
    many = write_output(str(tmp_path / "m.png"), RNG.random((2, 2, 12)))
    assert [Path(p).name for p in many.paths[:2]] == ["m_00.png", "m_01.png"]
    assert Path(many.paths[-1]).name == "m_11.png"


def test_separate_files_share_one_scale(tmp_path: Path) -> None:
    array = np.stack([np.full((2, 2), -1.0), np.full((2, 2), 1.0)], axis=-1)
    report = write_output(str(tmp_path / "s.png"), array)
    assert report.scale == Scale.MINMAX and report.value_range == (-1.0, 1.0)
    assert (pixels(report.paths[0]) == 0).all()
    assert (pixels(report.paths[1]) == 255).all()


def test_sheet_tiles_channels_with_separators(tmp_path: Path) -> None:
    array = np.stack([np.full((3, 5), 10.0 * (i + 1)) for i in range(4)], axis=-1)
    report = write_output(str(tmp_path / "sheet.png"), array, sheet=True)
    assert report.paths == (str(tmp_path / "sheet.png"),)
    sheet = pixels(tmp_path / "sheet.png")
    assert sheet.shape == (3 + 2 + 3, 5 + 2 + 5)
    assert (sheet[:3, :5] == 10).all() and (sheet[:3, 7:] == 20).all()
    assert (sheet[5:, :5] == 30).all() and (sheet[5:, 7:] == 40).all()
    assert (sheet[3:5] == 255).all() and (sheet[:, 5:7] == 255).all()


def test_stdout_gets_png_bytes_and_a_sheet_for_many_channels() -> None:
    out = io.BytesIO()
    report = write_output("-", np.full((2, 2, 1), 9.0), stdout=out)
    assert report.paths == ("-",)
    assert (pixels(io.BytesIO(out.getvalue())) == 9).all()
    out = io.BytesIO()
    write_output("-", np.zeros((2, 2, 2)), stdout=out)
    assert pixels(io.BytesIO(out.getvalue())).shape == (2, 6)


def test_unknown_extension_is_refused_before_anything_else(tmp_path: Path) -> None:
    with pytest.raises(ConvcalcError, match=r"'\.gif' is not an output format.*\.png") as info:
        write_output(str(tmp_path / "missing" / "o.gif"), np.zeros((2, 2, 2, 2)))
    assert is_input_error(info.value)
    assert list(tmp_path.iterdir()) == []


def test_missing_output_directory_is_a_runtime_failure(tmp_path: Path) -> None:
    with pytest.raises(RuntimeFailure, match=r"output directory .*missing does not exist"):
        write_output(str(tmp_path / "missing" / "o.png"), np.zeros((2, 2, 1)))


def test_bad_compress_level(tmp_path: Path) -> None:
    with pytest.raises(ConvcalcError, match="compress level 10"):
        write_output(str(tmp_path / "o.png"), np.zeros((2, 2, 1)), compress_level=10)


def test_output_equal_to_an_input_is_refused_unless_forced(tmp_path: Path) -> None:
    path = tmp_path / "in.png"
    path.write_bytes(png_bytes(Image.new("L", (2, 2), 3)))
    original = path.read_bytes()
    (tmp_path / "link.png").symlink_to(path)
    spellings = [str(path), str(tmp_path / "sub" / ".." / "in.png"), str(tmp_path / "link.png")]
    (tmp_path / "sub").mkdir()
    for spelling in spellings:
        with pytest.raises(ConvcalcError, match="is also the input") as info:
            write_output(spelling, np.zeros((2, 2, 1)), inputs=[str(path)])
        assert is_input_error(info.value)
        assert path.read_bytes() == original
    write_output(str(path), np.zeros((2, 2, 1)), inputs=[str(path)], force=True)
    assert (pixels(path) == 0).all()


def _fail_after_half(error: BaseException) -> Any:
    def write_all(fd: int, payload: bytes) -> None:
        os.write(fd, payload[: len(payload) // 2])
        raise error

    return write_all


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        KeyboardInterrupt(),
    ],
)
def test_failed_write_leaves_the_old_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    path = tmp_path / "out.png"
    path.write_bytes(b"old contents")
    monkeypatch.setattr(writing, "_write_all", _fail_after_half(error))
    expected = RuntimeFailure if isinstance(error, OSError) else KeyboardInterrupt
    with pytest.raises(expected) as info:
        write_output(str(path), np.full((8, 8, 3), 100.0))
    if isinstance(error, OSError):
        assert "out.png: cannot write (No space left on device)" in str(info.value)
    assert path.read_bytes() == b"old contents"
    assert sorted(os.listdir(tmp_path)) == ["out.png"]


def test_failed_channel_write_leaves_no_file_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = writing._write_all

    def second_fails(fd: int, payload: bytes) -> None:
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, payload)

    monkeypatch.setattr(writing, "_write_all", second_fails)
    with pytest.raises(RuntimeFailure):
        write_output(str(tmp_path / "c.png"), RNG.random((3, 3, 4)))
    assert os.listdir(tmp_path) == []


def test_written_file_gets_umask_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_output(str(tmp_path / "p.png"), np.zeros((2, 2, 1)))
    finally:
        os.umask(old)
    assert (tmp_path / "p.png").stat().st_mode & 0o777 == 0o644


def test_with_fsync_every_file_is_flushed_before_any_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):  # the folder is flushed after
            assert not list(tmp_path.glob("f_*.png"))
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    write_output(str(tmp_path / "f.png"), np.zeros((2, 2, 2)), fsync=True)
    assert len(synced) == 3 and len(list(tmp_path.glob("f_*.png"))) == 2  # 2 files, 1 folder


def test_write_bytes_is_atomic_and_refuses_an_input(tmp_path, monkeypatch):
    from convcalc.io.writing import write_bytes

    target = tmp_path / "anim.gif"
    write_bytes(str(target), b"GIF89a-first")
    assert target.read_bytes() == b"GIF89a-first"
    with pytest.raises(ConvcalcError, match="is the input"):
        write_bytes(str(target), b"x", inputs=[str(target)])

    def disk_full(fd, payload):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writing, "_write_all", disk_full)
    with pytest.raises(RuntimeFailure):
        write_bytes(str(target), b"GIF89a-second")
    assert target.read_bytes() == b"GIF89a-first"
    assert [p.name for p in tmp_path.iterdir()] == ["anim.gif"]


def test_npy_file_is_read_into_a_writable_array_without_a_copy(tmp_path: Path) -> None:
    values = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(tmp_path / "v.npy", values)
    loaded = read_input(str(tmp_path / "v.npy"))
    np.testing.assert_array_equal(loaded.data[..., 0], values)
    assert loaded.data.flags.writeable and not loaded.data.flags.owndata  # a view


def test_npy_file_is_read_straight_into_its_array(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from convcalc.io import reading

    def no_bytes(*args: Any, **kwargs: Any) -> bytes:
        raise AssertionError("a .npy file is read into its array, not into a bytes buffer")

    monkeypatch.setattr(reading, "read_regular_file", no_bytes)
    volume = np.arange(2 * 3 * 4 * 2, dtype=">f4").reshape(2, 3, 4, 2)
    np.save(tmp_path / "v.npy", volume)
    loaded = read_input(str(tmp_path / "v.npy"), rank=None)
    np.testing.assert_array_equal(loaded.data, volume)
    assert loaded.data.dtype == np.float32 and loaded.data.dtype.isnative
    with pytest.raises(ConvcalcError, match="4 dimensions"):
        read_input(str(tmp_path / "v.npy"), rank=2)
