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
come back as :func:`convcalc.io.matrices.read_npy_file` and ``parse_text_matrix`` give
them, as HxWxC, with ``mode="array"`` and ``max_value=None``.

With ``rank`` 1 or 3 (signals, volumes) ``data`` is L x C or DxHxWxC instead, as
:func:`ranked_layout` lays the array out; ``rank=None`` takes the rank from a
``.npy`` array's shape (see :func:`input_rank`).

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
    open_regular_file,
    read_regular_file,
    read_stream,
)
from convcalc.compute import memory
from convcalc.errors import ConvcalcError, RuntimeFailure
from convcalc.io.matrices import (
    NPY_HEADER_BYTES,
    as_matrix,
    parse_text_matrix,
    read_npy_file,
    read_npy_header,
)

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
    rank: int | None = 2,
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
    rank : int or None
        The spatial axes ``data`` has: 2 (HxWxC), 1 (L x C) or 3 (DxHxWxC), see
        :func:`ranked_layout`; None: 1 for a 1-D ``.npy``, 3 for a 4-D one, else 2.

    Returns
    -------
    Loaded
        ``data`` HxWxC (L x C, DxHxWxC), ``alpha`` HxW or None; dtypes as in the
        module table.

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
    if path != "-" and path.lower().endswith(".npy"):
        return _from_npy(_read_npy_file(path), path, gray, rank)
    data: bytes | bytearray
    if path == "-":
        source, data = "<stdin>", _read_stream(stdin or sys.stdin.buffer)
    else:
        source, data = path, _read_file(path)
    if not data:
        raise ConvcalcError(f"{source}: empty input (0 bytes); expected an image, .npy or text")
    ext = "" if path == "-" else os.path.splitext(path)[1].lower()
    if data.startswith(b"\x93NUMPY"):
        array = read_npy_file(io.BytesIO(data), len(data), source=source)
        return _from_npy(array, source, gray, rank)
    if rank != 2 and rank is not None:
        return _read_ranked(data, source, gray, rank)
    if ext in (".txt", ".csv", ".tsv"):
        return _from_array(
            parse_text_matrix(_as_text(data, source), source=source), "text", source, gray
        )
    if ext in _IMAGE_EXTENSIONS:
        return _decode_image(data, source, gray, max_pixels)
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


def input_rank(path: str) -> int:
    """The rank :func:`read_input` gives an input with ``rank=None``, from a ``.npy``
    header alone: 1 for a 1-D array (a signal), 3 for a 4-D one (DxHxWxC), else 2.

    Anything but a readable regular ``.npy`` file (stdin, an image, a text matrix, a
    missing file: its error comes when it is read) is 2.
    """
    try:
        if path == "-" or not stat.S_ISREG(os.stat(path).st_mode):
            return 2
        with open(path, "rb") as file:
            shape, _, dtype, _ = read_npy_header(file.read(NPY_HEADER_BYTES), path)
    except (OSError, ConvcalcError):
        return 2  # not an array apply reads: read_input says why
    if dtype.kind not in "biuf":
        return 2
    return _NPY_RANKS.get(len(shape), 2)


def ranked_layout(array: NDArray[Any], rank: int, kind: str, source: str) -> NDArray[Any]:
    """An array as read (a ``.npy`` array, or a text matrix HxW or HxWxC) laid out as
    rank-1 L x C or rank-3 DxHxWxC data, channels last.

    ========  ==================================  =========================================
    rank      ``.npy``                            text (or an inline kernel)
    ========  ==================================  =========================================
    1         (L,) a signal; (L, C)               one row: a signal; else rows are samples,
                                                  columns channels
    3         (D, H, W); (D, H, W, C)             slices (blank lines, ``|`` inline) along
                                                  the depth: HxWxD becomes DxHxW
    ========  ==================================  =========================================

    Raises
    ------
    ConvcalcError
        An array of another number of axes.
    """
    if kind == "npy" and array.ndim in (rank, rank + 1):
        return array[..., None] if array.ndim == rank else array
    if kind != "npy" and rank == 1 and array.ndim == 2:
        return array.reshape(-1, 1) if array.shape[0] == 1 else array
    if kind != "npy" and rank == 3 and array.ndim in (2, 3):
        slices = array[..., None] if array.ndim == 2 else array
        return np.moveaxis(slices, 2, 0)[..., None]
    valid = {1: "(L,) or (L, C)", 3: "(D, H, W) or (D, H, W, C)"}.get(rank, "HxW or HxWxC")
    raise ConvcalcError(
        f"{source}: a {kind} array of shape {'x'.join(map(str, array.shape))} is not "
        f"{rank}-D data; valid: a .npy of shape {valid}"
    )


def check_input(path: str) -> None:
    """Raise, without reading it, what :func:`read_input` would raise for a path that
    is not a readable regular file (missing, a directory, a device or FIFO); ``-``
    (stdin) passes."""
    if path != "-":
        check_regular_file(path, name=path, valid=INPUT_KINDS)


def input_rules(path: str) -> dict[str, Any]:
    """How an input file is checked before it is read, as keyword arguments of
    `convcalc.calc.files.read_regular_file`: its name in messages, what is valid, and
    the size bound (half the memory available now)."""
    bound = _read_bound()
    return {
        "name": path,
        "valid": INPUT_KINDS,
        "max_bytes": bound,
        "too_large": lambda size: _too_large(path, size, bound),
    }


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
    return read_regular_file(path, **input_rules(path))


def _read_npy_file(path: str) -> NDArray[Any]:
    """A ``.npy`` file's array with its own axes, read straight into it (as np.load)."""
    with open_regular_file(path, **input_rules(path)) as (file, size):
        if size == 0:
            raise ConvcalcError(f"{path}: empty input (0 bytes); expected an image, .npy or text")
        return read_npy_file(file, size, source=path)


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


_NPY_RANKS = {1: 1, 4: 3}
"""The rank an array's number of axes fixes on its own (others read as 2-D)."""


def _from_npy(array: NDArray[Any], source: str, gray: bool, rank: int | None) -> Loaded:
    """A ``.npy`` array as rank-2 HxWxC data, or at the rank asked, or with ``rank``
    None at the rank its axes say (1 for a 1-D array, 3 for a 4-D one, else 2)."""
    found = rank if rank is not None else _NPY_RANKS.get(array.ndim, 2)
    if found == 2:
        return _from_array(as_matrix(array, source), "npy", source, gray)
    return _from_array(ranked_layout(array, found, "npy", source), "npy", source, gray, found)


def _read_ranked(data: bytes | bytearray, source: str, gray: bool, rank: int) -> Loaded:
    """A text matrix read as rank-1 or rank-3 data (:func:`ranked_layout`)."""
    if data.startswith((b"\x89PNG", b"\xff\xd8", b"GIF8", b"II*", b"MM\0*", b"BM", b"RIFF")):
        raise ConvcalcError(f"{source}: an image is 2-D data; a {rank}-D input is a .npy array")
    array = parse_text_matrix(_as_text(data, source), source=source)
    return _from_array(ranked_layout(array, rank, "text", source), "text", source, gray, rank)


def _from_array(
    array: NDArray[Any], kind: Literal["npy", "text"], source: str, gray: bool, rank: int = 2
) -> Loaded:
    data = array[..., None] if array.ndim == rank else array
    data = data if data.flags.writeable else data.copy()
    notes: tuple[str, ...] = ()
    if gray and data.shape[-1] == 3:
        data = (data.astype(np.float64) @ np.array([0.299, 0.587, 0.114]))[..., None]
        notes = ("converted to grayscale (ITU-R 601-2 luma)",)
    elif gray and data.shape[-1] != 1:
        raise ConvcalcError(f"{source}: gray needs 1 or 3 channels, got {data.shape[-1]}")
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
            # exif_transpose copies even an upright image: call it only to turn one
            oriented = im if orientation in (1, None) else ImageOps.exif_transpose(im) or im
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
