"""Writing results: images, .npy and text matrices, atomically; never over an input.

:func:`write_output` picks the format by extension (``-``: PNG on stdout). Image
values are mapped to 0-255 (or 0-65535) by a :class:`~convcalc.calc.choices.Scale`, see
:func:`convcalc.io.scaling.to_uint8`; ``.npy`` keeps exact values and dtype;
``.csv``/``.tsv``/``.txt`` hold the text matrix. Files are written to a temporary
file in the target directory and renamed into place, so a failure leaves any old file
intact and no reader ever sees a partly written one; an interrupting signal turned
into an exception (as the CLI does for SIGINT, SIGTERM and SIGHUP) removes the
temporary file as it unwinds.

Durability is the caller's choice (``fsync``): by default the data is left to the
operating system to write back, as ``cp`` and ``numpy.save`` do; with ``fsync=True``
each file is flushed to the disk before its rename and the folder after it, so the new
file survives a power loss once the call returns. A file's blocks are reserved before
it is written (:func:`reserve`). PNG is encoded by `convcalc.io.png`; Pillow is
imported only when an image of another format is encoded.
"""

from __future__ import annotations

import contextlib
import errno
import io
import math
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal, NoReturn

import numpy as np
from numpy.typing import NDArray

from convcalc.calc.choices import FileFormat, Scale
from convcalc.errors import ConvcalcError, RuntimeFailure
from convcalc.io.matrices import format_text_matrix

Payload = bytes | list[bytes | memoryview]
"""A file's contents: bytes, or parts written one after another."""


OUTPUT_EXTENSIONS: dict[str, FileFormat] = {
    ".png": FileFormat.PNG,
    ".jpg": FileFormat.JPEG,
    ".jpeg": FileFormat.JPEG,
    ".tif": FileFormat.TIFF,
    ".tiff": FileFormat.TIFF,
    ".webp": FileFormat.WEBP,
    ".bmp": FileFormat.BMP,
    ".npy": FileFormat.NPY,
    ".csv": FileFormat.TEXT,
    ".tsv": FileFormat.TEXT,
    ".txt": FileFormat.TEXT,
}
"""Every extension an output may have (``-`` writes PNG to stdout)."""


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


def output_format(path: str) -> FileFormat:
    """The format an output path asks for; ``-`` is PNG. Raises ConvcalcError."""
    if path == "-":
        return FileFormat.PNG
    ext = os.path.splitext(path)[1].lower()
    if ext not in OUTPUT_EXTENSIONS:
        valid = ", ".join(OUTPUT_EXTENSIONS)
        got = f"extension {ext!r}" if ext else "no extension"
        raise ConvcalcError(
            f"{path}: {got} is not an output format; use one of {valid}, or - for PNG on stdout"
        )
    return OUTPUT_EXTENSIONS[ext]


def writes_8bit_image(path: str, scale: Scale) -> bool:
    """True when ``path`` is an 8-bit image written with ``scale`` clip or auto: values
    already in 0-255 then reach the file unchanged but for rounding."""
    return output_format(path) not in (FileFormat.NPY, FileFormat.TEXT) and scale in (
        Scale.AUTO,
        Scale.CLIP,
    )


def check_output(
    path: str,
    *,
    inputs: Sequence[str] = (),
    force: bool = False,
    channels: int = 1,
    sheet: bool = False,
) -> tuple[str, ...]:
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
            raise ConvcalcError(
                f"{target}: is also the input {clash}; writing it would destroy the input",
                hint="Use --force to overwrite it.",
            )
    return targets


def write_output(
    path: str,
    array: NDArray[Any],
    *,
    scale: Scale = Scale.AUTO,
    alpha: NDArray[Any] | None = None,
    max_value: float = 255.0,
    inputs: Sequence[str] = (),
    force: bool = False,
    compress_level: int = 1,
    sheet: bool = False,
    stdout: BinaryIO | None = None,
    fsync: bool = False,
) -> WriteReport:
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
        How image values map to 0-255, see `convcalc.io.scaling.to_uint8`.
    alpha : ndarray, optional
        HxW on the source's scale; written (LA/RGBA) only when its HxW matches
        ``array`` and the format has alpha (PNG, TIFF, WebP); else a note.
    max_value : float
        The source's full scale. Above 255 (a 16-bit source), a one-channel
        PNG/TIFF without alpha is written as 16-bit with `convcalc.io.scaling.to_uint16`;
        otherwise as 8-bit, with a note.
    inputs, force
        Output paths that are the same file as an input are refused unless
        ``force``.
    compress_level : int
        PNG zlib level 0-9 (1: fast). JPEG and WebP use quality 95.
    fsync : bool
        Flush each file to the disk before it replaces the target (see the module
        docstring); False leaves the write-back to the operating system.

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
    targets = check_output(path, inputs=inputs, force=force, channels=channels, sheet=use_sheet)
    payloads: list[Payload]
    if fmt in (FileFormat.NPY, FileFormat.TEXT):
        payloads = [_encode_values(array, path, fmt)]
        notes = (f"alpha not written: {fmt} output holds values only",) if alpha is not None else ()
        report = WriteReport(targets, fmt, notes=notes)
    else:
        images, report = _encode_images(
            array, fmt, scale, alpha, max_value, compress_level, use_sheet, targets
        )
        payloads = list(images)
    if path == "-":
        _write_stream(stdout or sys.stdout.buffer, payloads[0])
    else:
        _write_files(list(zip(targets, payloads, strict=True)), fsync=fsync)
    return report


def write_npy(
    path: str,
    array: NDArray[Any],
    *,
    inputs: Sequence[str] = (),
    force: bool = False,
    fsync: bool = False,
) -> None:
    """Write an array of any rank (a signal L or LxC, a volume DxHxW[xC]) as ``.npy``,
    atomically and never over an input, as :func:`write_output` writes HxWxC ones."""
    write_bytes(path, _npy_payload(array), inputs=inputs, force=force, fsync=fsync)


def write_bytes(
    path: str,
    payload: Payload,
    *,
    inputs: Sequence[str] = (),
    force: bool = False,
    stdout: BinaryIO | None = None,
    fsync: bool = False,
) -> None:
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
            raise ConvcalcError(
                f"output '{path}' is the input '{source}'; refusing to overwrite it",
                "Use --force to overwrite it anyway.",
            )
    _write_files([(path, payload)], fsync=fsync)


@contextlib.contextmanager
def replacing(target: str, *, fsync: bool = False) -> Iterator[str]:
    """A temporary name beside ``target`` for the caller to create and fill (a memory
    map, say); renamed over ``target`` when the block ends, removed if it raises.

    The caller checks the target first (:func:`check_output`); the file gets the
    permissions ``target`` has, or a new file's; ``fsync`` as in :func:`write_output`.
    """
    temp = _temporary_name(target)
    try:
        yield temp
        os.chmod(temp, _file_mode(target))
        if fsync:
            _flush_file(temp)
        os.replace(temp, target)
    except BaseException as exc:
        _discard([temp], target, exc)
    if fsync:
        _flush_folder(os.path.dirname(os.path.abspath(target)))


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


def _npy_payload(values: NDArray[Any]) -> Payload:
    """``.npy`` bytes: the header, then the array's own memory (no copy when contiguous)."""
    values = np.ascontiguousarray(values)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(values))
    return [header.getvalue(), memoryview(values.data).cast("B")]


def _encode_values(array: NDArray[Any], path: str, fmt: FileFormat) -> Payload:
    values = array[..., 0] if array.shape[2] == 1 else array
    if fmt == FileFormat.NPY:
        return _npy_payload(values)
    delimiter = {".tsv": "\t", ".txt": " "}.get(os.path.splitext(path)[1].lower(), ",")
    text = format_text_matrix(values, delimiter=delimiter)
    return (text if text.endswith("\n") else text + "\n").encode("utf-8")


def _encode_images(
    array: NDArray[Any],
    fmt: FileFormat,
    scale: Scale,
    alpha: NDArray[Any] | None,
    max_value: float,
    compress_level: int,
    sheet: bool,
    targets: tuple[str, ...],
) -> tuple[list[bytes], WriteReport]:
    notes: list[str] = []
    layout = _layout(array.shape[2], sheet)
    if alpha is not None:
        if alpha.shape != array.shape[:2]:
            notes.append(
                f"alpha dropped: its {alpha.shape[0]}x{alpha.shape[1]} differs "
                f"from the result's {array.shape[0]}x{array.shape[1]}"
            )
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
    from convcalc.io.scaling import to_uint8, to_uint16  # images only: .npy runs skip it

    scaled = (to_uint16 if bits == 16 else to_uint8)(array, scale, max_value=max_value)
    if layout == "single":
        planes = [scaled.array]
        if alpha is not None:
            a8 = np.clip(np.rint(alpha.astype(np.float64) * (255.0 / max_value)), 0, 255)
            planes = [np.dstack([scaled.array, a8.astype(np.uint8)])]
    elif layout == "sheet":
        planes = [_tile(scaled.array)]
        rows, cols = _grid(array.shape[2])
        notes.append(
            f"sheet: {array.shape[2]} channels in {rows} rows x {cols} columns, "
            "row by row from the top left"
        )
    else:
        planes = [scaled.array[..., i : i + 1] for i in range(array.shape[2])]
    payloads = [
        _encode_image(plane, fmt, compress_level, target)
        for plane, target in zip(planes, targets, strict=True)
    ]
    report = WriteReport(
        targets, fmt, scaled.scale, (scaled.lo, scaled.hi), bits, tuple(notes) + scaled.notes
    )
    return payloads, report


def _grid(channels: int) -> tuple[int, int]:
    cols = math.ceil(math.sqrt(channels))
    return math.ceil(channels / cols), cols


def _tile(array: NDArray[Any]) -> NDArray[Any]:
    """Lay the channels of HxWxC out as one (rows·H + gaps)x(cols·W + gaps)x1 plane."""
    height, width, channels = array.shape
    rows, cols = _grid(channels)
    step_y, step_x = height + _SHEET_GAP, width + _SHEET_GAP
    sheet = np.full(
        (rows * step_y - _SHEET_GAP, cols * step_x - _SHEET_GAP, 1),
        np.iinfo(array.dtype).max,
        dtype=array.dtype,
    )
    for i in range(channels):
        y, x = (i // cols) * step_y, (i % cols) * step_x
        sheet[y : y + height, x : x + width, 0] = array[..., i]
    return sheet


def _encode_image(plane: NDArray[Any], fmt: FileFormat, compress_level: int, target: str) -> bytes:
    if fmt == FileFormat.PNG:  # filtered and deflated on every core: see convcalc.io.png
        from convcalc.io.png import encode_png

        return encode_png(plane, level=compress_level)
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(plane[..., 0] if plane.shape[2] == 1 else plane))
    options = {"quality": 95} if fmt in (FileFormat.JPEG, FileFormat.WEBP) else {}
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt.name, **options)
    except (OSError, ValueError) as exc:
        raise ConvcalcError(
            f"{target}: cannot encode a {image.width}x{image.height} "
            f"{image.mode} image as {fmt.name} ({exc})"
        ) from exc
    return buffer.getvalue()


def _write_stream(stream: BinaryIO, payload: Payload) -> None:
    try:
        for part in _parts(payload):
            stream.write(part)
        stream.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise RuntimeFailure(f"cannot write to stdout: {exc.strerror or exc}") from exc


def _write_files(files: list[tuple[str, Payload]], *, fsync: bool = False) -> None:
    """Write every file to a temporary file beside it, then rename all into place;
    with ``fsync``, each is flushed before the renames and the folders after them."""
    temps: list[tuple[str, str]] = []
    target = ""
    try:
        for target, payload in files:
            # the name is recorded before the file exists, so that a signal turned into
            # an exception at any point (in whichever thread the OS delivered it) finds it
            temp = _temporary_name(target)
            temps.append((temp, target))
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o600)
            try:
                parts = _parts(payload)
                reserve(fd, sum(memoryview(part).nbytes for part in parts))
                for part in parts:
                    _write_all(fd, part)
                if fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.chmod(temp, _file_mode(target))
        for temp, target in temps:
            os.replace(temp, target)
    except BaseException as exc:
        _discard([temp for temp, _ in temps], target, exc)
    if fsync:
        for folder in {os.path.dirname(os.path.abspath(t)) for _, t in temps}:
            _flush_folder(folder)


def _discard(temps: list[str], target: str, exc: BaseException) -> NoReturn:
    """Remove the temporary files of a write that failed, then raise: an OSError as the
    RuntimeFailure naming ``target``, anything else (an interruption) as it is."""
    for temp in temps:
        with contextlib.suppress(OSError):
            os.unlink(temp)
    if isinstance(exc, OSError):
        raise RuntimeFailure(f"{target}: cannot write ({exc.strerror or exc})") from exc
    raise exc


def reserve(fd: int, size: int) -> None:
    """Allocate a new file's blocks before writing it, as numpy.save does: a disk too
    small fails here, before the work (OSError ENOSPC or EFBIG), and on ext4 a large
    write into a reserved file is about three times faster (64 MiB: 13 ms, not 41). A
    file system without it (tmpfs on old kernels) allocates as the data comes."""
    if not size or not hasattr(os, "posix_fallocate"):
        return
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EFBIG):
            raise


def _flush_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | _O_BINARY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _flush_folder(folder: str) -> None:
    """Flush a folder, so that a rename into it is on the disk too (POSIX; Windows
    cannot open a folder, and its renames need no such flush)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _temporary_name(target: str) -> str:
    """A new name beside ``target`` for its temporary file: ``.NAME.RANDOM.tmp``."""
    folder, name = os.path.split(os.path.abspath(target))
    return os.path.join(folder, f".{name}.{os.urandom(6).hex()}.tmp")


_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation


def _parts(payload: Payload) -> list[bytes | memoryview]:
    return payload if isinstance(payload, list) else [payload]


def _write_all(fd: int, payload: bytes | memoryview) -> None:
    """Write all of ``payload`` to ``fd`` (the one low-level write, patched in tests)."""
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view) :]


def _file_mode(target: str) -> int:
    """The permissions a new file would get (the umask), or the ones it already has."""
    try:
        return os.stat(target).st_mode & 0o7777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask
