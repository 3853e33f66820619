"""Reading inputs (images, .npy arrays, text matrices) and writing results.

The only module besides the CLI that touches files, and the only one that imports
Pillow. It never prints: anything worth telling the user comes back as ``notes``.

Reading: :func:`read_input` gives a :class:`Loaded` whose ``data`` is always HxWxC
(C >= 1, colour channels without alpha) and whose ``alpha`` is HxW or None, on the
same scale as ``data``. Images keep the first frame of an animation and have their
EXIF orientation applied. Pillow's mode decides the array:

=========================  ================================  =========
Pillow mode                data (alpha)                      max_value
=========================  ================================  =========
L                          HxWx1 uint8                       255
LA, La                     HxWx1 uint8 (+ alpha)             255
RGB, RGBX                  HxWx3 uint8                       255
RGBA, RGBa                 HxWx3 uint8 (+ alpha)             255
P                          as RGB, as RGBA if transparent    255
1 (bilevel)                as L: 0 and 255                   255
CMYK, YCbCr, LAB, HSV      converted to RGB                  255
I;16, I;16B, I;16L, ...    HxWx1 uint16, full precision      65535
I (32-bit integer)         HxWx1 int32                       None
F (32-bit float)           HxWx1 float32                     None
=========================  ================================  =========

An L or RGB image with a transparent colour (PNG tRNS) gets an alpha channel too.
``gray=True`` turns colour into one channel with ITU-R 601-2 luma,
``L = R·299/1000 + G·587/1000 + B·114/1000`` (Pillow's "L", still uint8; alpha is
kept); one-channel images, 16-bit ones included, are left as they are. A 3-channel
array or text matrix gets the same weights in float64. Arrays and text matrices
come back as :func:`convcalc.matrices.load_npy` and ``parse_text_matrix`` give
them, as HxWxC, with ``mode="array"`` and ``max_value=None``.

Writing: :func:`write_output` picks the format by extension (``-``: PNG on
stdout). Image values are mapped to 0-255 (or 0-65535) by a :class:`Scale`, see
:func:`to_uint8`; ``.npy`` keeps exact values and dtype; ``.csv``/``.tsv``/``.txt``
hold the text matrix. Files are written to a temporary file in the target
directory, fsynced and renamed into place, so a failure leaves any old file intact.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

import numpy as np
from numpy.typing import NDArray

from convcalc.choices import Scale, StrEnum
from convcalc.errors import ConvcalcError, RuntimeFailure
from convcalc.matrices import format_text_matrix, load_npy, parse_text_matrix
from convcalc.scaling import to_uint8, to_uint16

if TYPE_CHECKING:  # Pillow is imported where images are read or written
    from PIL import Image

Payload = bytes | list[bytes | memoryview]
"""A file's contents: bytes, or parts written one after another."""


class FileFormat(StrEnum):
    """What an output file holds, decided by its extension."""

    PNG = "png"
    JPEG = "jpeg"
    TIFF = "tiff"
    WEBP = "webp"
    BMP = "bmp"
    NPY = "npy"
    TEXT = "text"


OUTPUT_EXTENSIONS: dict[str, FileFormat] = {
    ".png": FileFormat.PNG, ".jpg": FileFormat.JPEG, ".jpeg": FileFormat.JPEG,
    ".tif": FileFormat.TIFF, ".tiff": FileFormat.TIFF, ".webp": FileFormat.WEBP,
    ".bmp": FileFormat.BMP, ".npy": FileFormat.NPY, ".csv": FileFormat.TEXT,
    ".tsv": FileFormat.TEXT, ".txt": FileFormat.TEXT,
}
"""Every extension an output may have (``-`` writes PNG to stdout)."""


@dataclass(frozen=True, eq=False)
class Loaded:
    """An input read by :func:`read_input`.

    ``data`` is HxWxC (C >= 1, no alpha); ``alpha`` is HxW on the same scale or
    None; ``mode`` is Pillow's mode before conversion, or ``"array"``;
    ``max_value`` is the full-scale value of an image (255, 65535), None otherwise.
    """

    data: NDArray[Any]
    alpha: NDArray[Any] | None
    kind: Literal["image", "npy", "text"]
    mode: str
    max_value: float | None
    source: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class WriteReport:
    """What :func:`write_output` wrote: files, format, and for images the mapping.

    ``scale``, ``value_range`` (lo, hi) and ``bits`` (8 or 16) are None for
    ``.npy`` and text output, which keep values as they are.
    """

    paths: tuple[str, ...]
    format: FileFormat
    scale: Scale | None = None
    value_range: tuple[float, float] | None = None
    bits: int | None = None
    notes: tuple[str, ...] = ()


def read_input(path: str, *, gray: bool = False, stdin: BinaryIO | None = None) -> Loaded:
    """Read an image, a ``.npy`` array or a text matrix as an HxWxC array.

    Parameters
    ----------
    path : str
        A file, or ``-`` for stdin (format sniffed: .npy magic, an image Pillow
        knows, else a UTF-8 text matrix). A file is read by extension: ``.npy``,
        ``.txt``/``.csv``/``.tsv`` as text; an image extension with Pillow; any
        other name is sniffed like stdin.
    gray : bool
        Convert to one channel (ITU-R 601-2 luma, see the module docstring).
    stdin : binary stream, optional
        What ``-`` reads; ``sys.stdin.buffer`` by default.

    Returns
    -------
    Loaded
        ``data`` HxWxC, ``alpha`` HxW or None; dtypes as in the module table.

    Raises
    ------
    RuntimeFailure
        The file is missing, a directory, or cannot be read.
    ConvcalcError
        The bytes are empty, not a readable image/array/matrix, truncated or
        corrupt, or over Pillow's decompression-bomb pixel limit.
    """
    if path == "-":
        source, data = "<stdin>", _read_stream(stdin or sys.stdin.buffer)
    else:
        source, data = path, _read_file(path)
    if not data:
        raise ConvcalcError(f"{source}: empty input (0 bytes); expected an image, .npy or text")
    ext = "" if path == "-" else os.path.splitext(path)[1].lower()
    if ext == ".npy":
        return _from_array(load_npy(data, source=source), "npy", source, gray)
    if ext in (".txt", ".csv", ".tsv"):
        return _from_array(parse_text_matrix(_as_text(data, source), source=source),
                           "text", source, gray)
    if ext in _IMAGE_EXTENSIONS:
        return _decode_image(data, source, gray)
    if data.startswith(b"\x93NUMPY"):
        return _from_array(load_npy(data, source=source), "npy", source, gray)
    try:
        return _decode_image(data, source, gray)
    except _NotAnImage as exc:
        if b"\0" in data:
            raise ConvcalcError(f"{source}: not an image Pillow can read, a .npy array "
                                "or a text matrix") from exc
    return _from_array(parse_text_matrix(_as_text(data, source), source=source),
                       "text", source, gray)


def output_format(path: str) -> FileFormat:
    """The format an output path asks for; ``-`` is PNG. Raises ConvcalcError."""
    if path == "-":
        return FileFormat.PNG
    ext = os.path.splitext(path)[1].lower()
    if ext not in OUTPUT_EXTENSIONS:
        valid = ", ".join(OUTPUT_EXTENSIONS)
        got = f"extension {ext!r}" if ext else "no extension"
        raise ConvcalcError(f"{path}: {got} is not an output format; use one of {valid}, "
                            "or - for PNG on stdout")
    return OUTPUT_EXTENSIONS[ext]


def check_output(path: str, *, inputs: Sequence[str] = (), force: bool = False,
                 channels: int = 1, sheet: bool = False) -> tuple[str, ...]:
    """Check an output before any work; return the files it will write.

    Raises ConvcalcError for an unknown extension or an output that is one of
    ``inputs`` (unless ``force``), RuntimeFailure for a missing directory.
    ``channels`` other than 1 or 3 (or any above 1 with ``sheet``) give one file
    per channel, ``stem_i.ext``, unless the format keeps every channel.
    """
    fmt = output_format(path)
    if path == "-":
        return ("-",)
    targets: tuple[str, ...] = (path,)
    if fmt not in (FileFormat.NPY, FileFormat.TEXT) and _layout(channels, sheet) == "split":
        stem, ext = os.path.splitext(path)
        width = len(str(channels - 1))
        targets = tuple(f"{stem}_{i:0{width}d}{ext}" for i in range(channels))
    for target in targets:
        directory = os.path.dirname(target) or "."
        if not os.path.isdir(directory):
            raise RuntimeFailure(f"{target}: output directory {directory} does not exist")
        if os.path.isdir(target):
            raise RuntimeFailure(f"{target}: is a directory; give a file name")
        clash = next((i for i in inputs if i != "-" and _same_file(target, i)), None)
        if clash is not None and not force:
            raise ConvcalcError(f"{target}: is also the input {clash}; writing it would "
                                "destroy the input", hint="Use --force to overwrite it.")
    return targets


def write_output(path: str, array: NDArray[Any], *, scale: Scale = Scale.AUTO,
                 alpha: NDArray[Any] | None = None, max_value: float = 255.0,
                 inputs: Sequence[str] = (), force: bool = False, compress_level: int = 1,
                 sheet: bool = False, stdout: BinaryIO | None = None) -> WriteReport:
    """Write an HxWxC result as an image, ``.npy`` or text matrix, atomically.

    Parameters
    ----------
    path : str
        Output file; the extension picks the format (:data:`OUTPUT_EXTENSIONS`);
        ``-`` writes PNG bytes to ``stdout`` (default ``sys.stdout.buffer``).
    array : ndarray
        HxWxC (HxW is taken as HxWx1). Images: C == 1 grayscale, C == 3 RGB,
        other C one file per channel (``stem_i.ext``) or, with ``sheet`` (also
        for C == 3), one grayscale contact sheet: channels row by row in a
        near-square grid, 2-px white separators. On stdout a sheet is always
        used. ``.npy`` keeps dtype and values (HxW when C == 1); text keeps every
        channel, separated by blank lines.
    scale : Scale
        How image values map to 0-255, see :func:`to_uint8`.
    alpha : ndarray, optional
        HxW on the source's scale; written (LA/RGBA) only when its HxW matches
        ``array`` and the format has alpha (PNG, TIFF, WebP); else a note.
    max_value : float
        The source's full scale. Above 255 (a 16-bit source), a one-channel
        PNG/TIFF without alpha is written as 16-bit with :func:`to_uint16`;
        otherwise as 8-bit, with a note.
    inputs, force
        Output paths that are the same file as an input are refused unless
        ``force``.
    compress_level : int
        PNG zlib level 0-9 (1: fast). JPEG and WebP use quality 95.

    Raises
    ------
    ConvcalcError
        Unknown extension, an output that is an input, a bad array or level.
    RuntimeFailure
        Missing output directory, or the write failed (nothing is left behind).
    """
    fmt = output_format(path)
    array = np.asarray(array)
    array = array[..., None] if array.ndim == 2 else array
    if array.ndim != 3 or 0 in array.shape:
        raise ConvcalcError(f"cannot write an array of shape {array.shape}; expected HxWxC")
    if not 0 <= compress_level <= 9:
        raise ConvcalcError(f"PNG compress level {compress_level} is not within 0-9")
    channels = array.shape[2]
    use_sheet = sheet or (path == "-" and _layout(channels, False) == "split")
    targets = check_output(path, inputs=inputs, force=force, channels=channels,
                           sheet=use_sheet)
    payloads: list[Payload]
    if fmt in (FileFormat.NPY, FileFormat.TEXT):
        payloads = [_encode_values(array, path, fmt)]
        notes = (f"alpha not written: {fmt} output holds values only",) if alpha is not None else ()
        report = WriteReport(targets, fmt, notes=notes)
    else:
        images, report = _encode_images(array, fmt, scale, alpha, max_value,
                                        compress_level, use_sheet, targets)
        payloads = list(images)
    if path == "-":
        _write_stream(stdout or sys.stdout.buffer, payloads[0])
    else:
        _write_files(list(zip(targets, payloads, strict=True)))
    return report


def write_bytes(path: str, payload: bytes, *, inputs: Sequence[str] = (), force: bool = False,
                stdout: BinaryIO | None = None) -> None:
    """Write ready-made file bytes (a GIF, an SVG) atomically, or to stdout for ``-``.

    The same rules as :func:`write_output`: the directory must exist, an input is
    never overwritten unless ``force``, a failure leaves any old file intact.
    """
    if path == "-":
        _write_stream(stdout or sys.stdout.buffer, payload)
        return
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise RuntimeFailure(f"output directory '{directory}' does not exist")
    for source in inputs:
        if not force and os.path.exists(path) and _same_file(path, source):
            raise ConvcalcError(f"output '{path}' is the input '{source}'; refusing to "
                                "overwrite it", "Use --force to overwrite it anyway.")
    _write_files([(path, payload)])


# ----------------------------------------------------------------- reading helpers


class _NotAnImage(ConvcalcError):
    """Pillow does not recognise the bytes as any image format."""


_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".tif", ".tiff", ".webp", ".bmp",
                     ".gif")


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError as exc:
        raise RuntimeFailure(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise RuntimeFailure(f"{path}: is a directory, not a file") from exc
    except PermissionError as exc:
        raise RuntimeFailure(f"{path}: permission denied") from exc
    except OSError as exc:
        raise RuntimeFailure(f"{path}: cannot read ({exc.strerror or exc})") from exc


def _read_stream(stream: BinaryIO) -> bytes:
    try:
        return stream.read()
    except OSError as exc:
        raise RuntimeFailure(f"<stdin>: cannot read ({exc.strerror or exc})") from exc


def _as_text(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConvcalcError(f"{source}: not UTF-8 text (byte {exc.start}); expected a "
                            "text matrix") from exc


def _from_array(array: NDArray[Any], kind: Literal["npy", "text"], source: str,
                gray: bool) -> Loaded:
    data = array[..., None] if array.ndim == 2 else array
    data = data if data.flags.writeable else data.copy()
    notes: tuple[str, ...] = ()
    if gray and data.shape[2] == 3:
        data = (data.astype(np.float64) @ np.array([0.299, 0.587, 0.114]))[..., None]
        notes = ("converted to grayscale (ITU-R 601-2 luma)",)
    elif gray and data.shape[2] != 1:
        raise ConvcalcError(f"{source}: gray needs 1 or 3 channels, got {data.shape[2]}")
    return Loaded(data, None, kind, "array", None, source, notes)


def _decode_image(data: bytes, source: str, gray: bool) -> Loaded:
    from PIL import Image, ImageOps, UnidentifiedImageError

    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=_open_formats())
            fmt, mode = im.format or "image", im.mode
            frames = int(getattr(im, "n_frames", 1))
            im.load()
            orientation = im.getexif().get(0x0112, 1)
            oriented = ImageOps.exif_transpose(im) or im
            image = _normalise(oriented, gray, _has_transparency(im), notes)
    except UnidentifiedImageError as exc:
        raise _NotAnImage(f"{source}: not an image Pillow can read") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        numbers = re.findall(r"\d+", str(exc))
        pixels = f"{int(numbers[0]):,}" if numbers else "too many"
        raise ConvcalcError(f"{source}: {pixels} pixels is over Pillow's decompression-bomb "
                            f"limit of {Image.MAX_IMAGE_PIXELS:,} pixels") from exc
    except MemoryError as exc:
        raise RuntimeFailure(f"{source}: not enough memory to decode the image") from exc
    except Exception as exc:  # Pillow's decoders raise many types for bad bytes
        raise ConvcalcError(f"{source}: truncated or corrupt image ({exc})") from exc
    if frames > 1:
        notes.insert(0, f"{fmt}: first of {frames} frames used")
    if orientation not in (1, None):
        notes.insert(0, f"EXIF orientation {orientation} applied")
    array = np.array(image)
    max_value: float | None = 255.0
    if image.mode.startswith("I;16"):
        array, max_value = array.astype(np.uint16), 65535.0
    elif image.mode in ("I", "F"):
        max_value = None
    array = array[..., None] if array.ndim == 2 else array
    alpha = None
    if image.mode in ("LA", "RGBA"):
        array, alpha = np.ascontiguousarray(array[..., :-1]), array[..., -1].copy()
    return Loaded(array, alpha, "image", mode, max_value, source, tuple(notes))


def _open_formats() -> list[str]:
    """Every format Pillow opens except EPS, which runs Ghostscript on the file."""
    from PIL import Image

    Image.init()
    return [name for name in Image.OPEN if name != "EPS"]


def _has_transparency(im: Image.Image) -> bool:
    if "transparency" in im.info or im.mode in ("LA", "La", "RGBA", "RGBa", "PA"):
        return True
    return im.mode == "P" and im.palette is not None and im.palette.mode == "RGBA"


def _normalise(im: Image.Image, gray: bool, transparent: bool, notes: list[str]) -> Image.Image:
    """Convert to one of L, LA, RGB, RGBA, I;16*, I, F (see the module table)."""
    mode = im.mode
    if (mode.startswith("I;16") and not mode.endswith("S")) or mode in ("I", "F"):
        return im
    if mode in ("1", "L", "La", "LA"):
        target = "LA" if transparent else "L"
    elif mode.startswith("I;"):
        target = "I"
    else:
        target = "RGBA" if transparent else "RGB"
    if mode in ("P", "PA"):
        notes.append(f"palette image converted to {target}")
    elif mode == "1":
        notes.append("bilevel (mode 1) image read as grayscale 0/255")
    elif mode in ("L", "RGB") and target != mode:
        notes.append("transparent colour turned into alpha")
    elif mode not in ("L", "LA", "La", "RGB", "RGBA", "RGBa", "RGBX"):
        notes.append(f"{mode} image converted to {target}")
    image = im if mode == target else im.convert(target)
    if gray and target.startswith("RGB"):
        notes.append("converted to grayscale (ITU-R 601-2 luma)")
        image = image.convert("LA" if target == "RGBA" else "L")
    return image


# ----------------------------------------------------------------- scaling


# ----------------------------------------------------------------- writing helpers


_ALPHA_FORMATS = (FileFormat.PNG, FileFormat.TIFF, FileFormat.WEBP)
_SHEET_GAP = 2


def _layout(channels: int, sheet: bool) -> Literal["single", "sheet", "split"]:
    if channels == 1 or (channels == 3 and not sheet):
        return "single"
    return "sheet" if sheet else "split"


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _encode_values(array: NDArray[Any], path: str, fmt: FileFormat) -> Payload:
    values = array[..., 0] if array.shape[2] == 1 else array
    if fmt == FileFormat.NPY:  # the header, then the array's own memory: no copy
        values = np.ascontiguousarray(values)
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, np.lib.format.header_data_from_array_1_0(values))
        return [header.getvalue(), memoryview(values.data).cast("B")]
    delimiter = {".tsv": "\t", ".txt": " "}.get(os.path.splitext(path)[1].lower(), ",")
    text = format_text_matrix(values, delimiter=delimiter)
    return (text if text.endswith("\n") else text + "\n").encode("utf-8")


def _encode_images(array: NDArray[Any], fmt: FileFormat, scale: Scale,
                   alpha: NDArray[Any] | None, max_value: float, compress_level: int,
                   sheet: bool, targets: tuple[str, ...]) -> tuple[list[bytes], WriteReport]:
    notes: list[str] = []
    layout = _layout(array.shape[2], sheet)
    if alpha is not None:
        if alpha.shape != array.shape[:2]:
            notes.append(f"alpha dropped: its {alpha.shape[0]}x{alpha.shape[1]} differs "
                         f"from the result's {array.shape[0]}x{array.shape[1]}")
        elif layout != "single":
            notes.append("alpha dropped: channels are written one by one")
        elif fmt not in _ALPHA_FORMATS:
            notes.append(f"alpha dropped: {fmt.name} has no alpha channel")
        alpha = alpha if not notes else None
    bits, why_8 = 8, None
    if max_value > 255:
        if fmt not in (FileFormat.PNG, FileFormat.TIFF):
            why_8 = f"{fmt.name} holds 8 bits"
        elif alpha is not None or (layout == "single" and array.shape[2] == 3):
            why_8 = "Pillow writes 16 bits for one channel without alpha only"
        else:
            bits = 16
    if why_8:
        notes.append(f"16-bit source written as 8-bit: {why_8}; .npy keeps every value")
    scaled = (to_uint16 if bits == 16 else to_uint8)(array, scale, max_value=max_value)
    if layout == "single":
        planes = [scaled.array]
        if alpha is not None:
            a8 = np.clip(np.rint(alpha.astype(np.float64) * (255.0 / max_value)), 0, 255)
            planes = [np.dstack([scaled.array, a8.astype(np.uint8)])]
    elif layout == "sheet":
        planes = [_tile(scaled.array)]
        rows, cols = _grid(array.shape[2])
        notes.append(f"sheet: {array.shape[2]} channels in {rows} rows x {cols} columns, "
                     "row by row from the top left")
    else:
        planes = [scaled.array[..., i:i + 1] for i in range(array.shape[2])]
    payloads = [_encode_image(plane, fmt, compress_level, target)
                for plane, target in zip(planes, targets, strict=True)]
    report = WriteReport(targets, fmt, scaled.scale, (scaled.lo, scaled.hi), bits,
                         tuple(notes) + scaled.notes)
    return payloads, report


def _grid(channels: int) -> tuple[int, int]:
    cols = math.ceil(math.sqrt(channels))
    return math.ceil(channels / cols), cols


def _tile(array: NDArray[Any]) -> NDArray[Any]:
    """Lay the channels of HxWxC out as one (rows·H + gaps)x(cols·W + gaps)x1 plane."""
    height, width, channels = array.shape
    rows, cols = _grid(channels)
    step_y, step_x = height + _SHEET_GAP, width + _SHEET_GAP
    sheet = np.full((rows * step_y - _SHEET_GAP, cols * step_x - _SHEET_GAP, 1),
                    np.iinfo(array.dtype).max, dtype=array.dtype)
    for i in range(channels):
        y, x = (i // cols) * step_y, (i % cols) * step_x
        sheet[y:y + height, x:x + width, 0] = array[..., i]
    return sheet


def _encode_image(plane: NDArray[Any], fmt: FileFormat, compress_level: int,
                  target: str) -> bytes:
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(plane[..., 0] if plane.shape[2] == 1
                                                 else plane))
    options: dict[str, int] = {}
    if fmt == FileFormat.PNG:
        options["compress_level"] = compress_level
    elif fmt in (FileFormat.JPEG, FileFormat.WEBP):
        options["quality"] = 95
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt.name, **options)
    except (OSError, ValueError) as exc:
        raise ConvcalcError(f"{target}: cannot encode a {image.width}x{image.height} "
                            f"{image.mode} image as {fmt.name} ({exc})") from exc
    return buffer.getvalue()


def _write_stream(stream: BinaryIO, payload: Payload) -> None:
    try:
        for part in _parts(payload):
            stream.write(part)
        stream.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise RuntimeFailure(f"cannot write to stdout ({exc.strerror or exc})") from exc


def _write_files(files: list[tuple[str, Payload]]) -> None:
    """Write every file to a temporary file beside it, then rename all into place."""
    temps: list[tuple[str, str]] = []
    target = ""
    try:
        for target, payload in files:
            fd, temp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(target)),
                                        prefix=f".{os.path.basename(target)}.", suffix=".tmp")
            temps.append((temp, target))
            try:
                for part in _parts(payload):
                    _write_all(fd, part)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.chmod(temp, _file_mode(target))
        for temp, target in temps:
            os.replace(temp, target)
    except BaseException as exc:
        for temp, _ in temps:
            with contextlib.suppress(OSError):
                os.unlink(temp)
        if isinstance(exc, OSError):
            raise RuntimeFailure(f"{target}: cannot write ({exc.strerror or exc})") from exc
        raise


def _parts(payload: Payload) -> list[bytes | memoryview]:
    return payload if isinstance(payload, list) else [payload]


def _write_all(fd: int, payload: bytes | memoryview) -> None:
    """Write all of ``payload`` to ``fd`` (the one low-level write, patched in tests)."""
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view):]


def _file_mode(target: str) -> int:
    """The permissions a new file would get (the umask), or the ones it already has."""
    try:
        return os.stat(target).st_mode & 0o7777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask
