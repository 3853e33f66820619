"""Reading inputs: images, .npy arrays and text matrices, from files or stdin.

With `convcalc.io.writing` (and the animations), the only module that touches files
or Pillow; Pillow is imported only when an image is decoded. It never prints:
anything worth telling the user comes back as ``notes``.

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
come back as :func:`convcalc.io.matrices.load_npy` and ``parse_text_matrix`` give
them, as HxWxC, with ``mode="array"`` and ``max_value=None``.

Writing results is `convcalc.io.writing`'s job.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import stat
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

import numpy as np
from numpy.typing import NDArray

from convcalc.calc.files import (
    check_regular_file,
    describe_file_type,
    read_regular_file,
    read_stream,
)
from convcalc.compute import memory
from convcalc.errors import ConvcalcError, RuntimeFailure
from convcalc.io.matrices import load_npy, parse_text_matrix

if TYPE_CHECKING:  # Pillow is imported where images are read or written
    from PIL import Image


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


INPUT_KINDS = "an image, a .npy array or a text matrix file, a folder of them, or - for stdin"
"""What an input may be, for messages."""


def read_input(
    path: str,
    *,
    gray: bool = False,
    stdin: BinaryIO | None = None,
    max_pixels: int | None = None,
) -> Loaded:
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
    max_pixels : int, optional
        The most pixels (width x height) an image may have; by default Pillow's
        decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``, 89,478,485).

    Returns
    -------
    Loaded
        ``data`` HxWxC, ``alpha`` HxW or None; dtypes as in the module table.

    Raises
    ------
    RuntimeFailure
        The file is missing, a directory, or cannot be read; it (or stdin) holds more
        than half the memory available.
    ConvcalcError
        Not a regular file (a device, a FIFO: never read; stdin may be a pipe), the
        bytes are empty, not a readable image/array/matrix, truncated or corrupt, or
        an image has more than ``max_pixels`` pixels.

    Notes
    -----
    Only regular files are read, and only when their size is at most half the
    memory available now (`convcalc.compute.memory.available_memory`); stdin is
    read up to that bound. So ``/dev/zero``, a FIFO or a symlink to either never
    hangs or fills the memory.
    """
    if max_pixels is not None and max_pixels < 1:
        raise ConvcalcError(f"max pixels {max_pixels} is not valid; valid: a whole number >= 1")
    data: bytes | bytearray
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
        return _from_array(
            parse_text_matrix(_as_text(data, source), source=source), "text", source, gray
        )
    if ext in _IMAGE_EXTENSIONS:
        return _decode_image(data, source, gray, max_pixels)
    if data.startswith(b"\x93NUMPY"):
        return _from_array(load_npy(data, source=source), "npy", source, gray)
    try:
        return _decode_image(data, source, gray, max_pixels)
    except _NotAnImage as exc:
        if b"\0" in data:
            raise ConvcalcError(
                f"{source}: not an image Pillow can read, a .npy array or a text matrix"
            ) from exc
    return _from_array(
        parse_text_matrix(_as_text(data, source), source=source), "text", source, gray
    )


def check_input(path: str) -> None:
    """Raise, without reading it, what :func:`read_input` would raise for a path that
    is not a readable regular file (missing, a directory, a device or FIFO); ``-``
    (stdin) passes."""
    if path != "-":
        check_regular_file(path, name=path, valid=INPUT_KINDS)


# ----------------------------------------------------------------- reading helpers


class _NotAnImage(ConvcalcError):
    """Pillow does not recognise the bytes as any image format."""


_IMAGE_EXTENSIONS = (
    ".png",
    ".jpg",
    ".jpeg",
    ".jpe",
    ".jfif",
    ".tif",
    ".tiff",
    ".webp",
    ".bmp",
    ".gif",
)


def _read_file(path: str) -> bytes | bytearray:
    """The file's bytes; a ``.npy`` file's in a bytearray, so that the array viewing
    them is writable without a copy."""
    bound = _read_bound()
    return read_regular_file(
        path,
        name=path,
        valid=INPUT_KINDS,
        max_bytes=bound,
        too_large=lambda size: _too_large(path, size, bound),
        writable=path.lower().endswith(".npy"),
    )


def _read_stream(stream: BinaryIO) -> bytes | bytearray:
    source = "<stdin>"
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, AttributeError, ValueError):  # not a file descriptor: a test's BytesIO
        mode = None
    if mode is not None and stat.S_ISCHR(mode) and not stream.isatty():
        raise ConvcalcError(
            f"{source}: is {describe_file_type(mode)}, not a file or a pipe; valid: "
            "a file or a pipe on stdin (convcalc apply - < photo.png), or give the path"
        )
    bound = _read_bound()
    try:
        return read_stream(
            stream, max_bytes=bound, too_large=lambda size: _too_large(source, size, bound)
        )
    except OSError as exc:
        raise RuntimeFailure(f"{source}: cannot read ({exc.strerror or exc})") from exc


def _read_bound() -> int | None:
    """The most bytes an input may hold: half the memory available now (the other half
    is for decoding and computing), or None when unknown."""
    available = memory.available_memory()
    return None if available is None else available // 2


def _too_large(source: str, size: int, bound: int | None) -> RuntimeFailure:
    return RuntimeFailure(
        f"{source}: {size / 2**30:.2f} GiB (or more) is over half the "
        f"{2 * (bound or 0) / 2**30:.2f} GiB of memory available (the other half is for "
        "the work); try a smaller input"
    )


def _as_text(data: bytes | bytearray, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConvcalcError(
            f"{source}: not UTF-8 text (byte {exc.start}); expected a text matrix"
        ) from exc


def _from_array(
    array: NDArray[Any], kind: Literal["npy", "text"], source: str, gray: bool
) -> Loaded:
    data = array[..., None] if array.ndim == 2 else array
    data = data if data.flags.writeable else data.copy()
    notes: tuple[str, ...] = ()
    if gray and data.shape[2] == 3:
        data = (data.astype(np.float64) @ np.array([0.299, 0.587, 0.114]))[..., None]
        notes = ("converted to grayscale (ITU-R 601-2 luma)",)
    elif gray and data.shape[2] != 1:
        raise ConvcalcError(f"{source}: gray needs 1 or 3 channels, got {data.shape[2]}")
    return Loaded(data, None, kind, "array", None, source, notes)


def _decode_image(
    data: bytes | bytearray, source: str, gray: bool, max_pixels: int | None
) -> Loaded:
    from PIL import Image, ImageOps, UnidentifiedImageError

    notes: list[str] = []
    limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    try:
        with warnings.catch_warnings(), _pixel_limit(limit):
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
        allow = numbers[0] if numbers else "N"
        raise ConvcalcError(
            f"{source}: {pixels} pixels is over the decompression-bomb limit of "
            f"{limit or 0:,} pixels",
            hint=f"To decode it anyway, allow it with --max-pixels {allow}.",
        ) from exc
    except MemoryError as exc:
        raise RuntimeFailure(f"{source}: not enough memory to decode the image") from exc
    except Exception as exc:  # Pillow's decoders raise many types for bad bytes
        raise ConvcalcError(f"{source}: truncated or corrupt image ({exc})") from exc
    if frames > 1:
        notes.insert(0, f"{fmt}: first of {frames} frames used")
    if orientation not in (1, None):
        notes.insert(0, f"EXIF orientation {orientation} applied")
    array = np.asarray(image)  # a read-only view of the decoded bytes: no copy
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


@contextlib.contextmanager
def _pixel_limit(limit: int | None) -> Iterator[None]:
    """Pillow's decompression-bomb limit set to ``limit`` pixels while decoding.

    Pillow reads the limit from a module global at each check (opening, and each
    frame), so it is set for the duration of one decode and restored after.
    """
    from PIL import Image

    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = limit
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


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
