"""The kernel specifications users type for ``-k`` (and ``k=`` in a layer spec).

A specification is a preset name, a parameterised kernel (both from the catalogue,
`convcalc.compute.kernels`), the path of a kernel file, or an inline matrix.
Kernels come back float64, KHxKW, or KHxKWxC when they have one slice per input
channel; for a 1-D layer K or KxC, for a 3-D one KDxKHxKW or KDxKHxKWxC (``rank``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from convcalc.calc.files import check_regular_file, read_regular_file
from convcalc.compute.kernels import (
    named_kernel,
    parameterised_kernels,
    preset_names,
    unknown_kernel,
)
from convcalc.errors import ConvcalcError, RuntimeFailure
from convcalc.io.matrices import INLINE_SYNTAX, load_npy, parse_inline_matrix, parse_text_matrix
from convcalc.io.reading import ranked_layout, read_input

FloatArray = NDArray[np.float64]

MAX_KERNEL_FILE_BYTES = 2**26
"""The largest kernel file :func:`parse_kernel` reads on its own (64 MiB); kernel files
read through :func:`read_kernels` are inputs, bounded by the memory available."""


def read_kernels(texts: Sequence[str], rank: int = 2) -> tuple[FloatArray, ...]:
    """The kernels that ``-k`` or ``k=`` name, as arrays.

    Kernel files are read by `convcalc.io.reading.read_input`, like inputs:
    ``.npy``, text matrices, or even an image (a one-channel file gives a KHxKW
    kernel).

    Parameters
    ----------
    texts
        Kernel specifications, as :func:`parse_kernel` takes them.
    rank
        The layer's spatial axes, as :func:`parse_kernel` takes it.

    Returns
    -------
    tuple of ndarray of float64
        One kernel per specification, each KHxKW or KHxKWxC (at rank 1 and 3 as
        :func:`parse_kernel` says).

    Raises
    ------
    ConvcalcError, RuntimeFailure
        As :func:`parse_kernel` and `convcalc.io.reading.read_input` raise them.

    Examples
    --------
    >>> [k.shape for k in read_kernels(["sobel-x", "1,2,1"])]
    [(3, 3), (1, 3)]
    """
    if rank == 2:
        return tuple(parse_kernel(text, read_file=_kernel_file) for text in texts)
    return tuple(parse_kernel(text, rank=rank) for text in texts)


def parse_kernel(
    spec: str, *, read_file: Callable[[str], NDArray[Any]] | None = None, rank: int = 2
) -> FloatArray:
    """Turn a ``-k`` value into a kernel.

    ``spec`` is tried, in this order, as:

    1. a preset name (`convcalc.compute.kernels.preset_names`), any case: ``sobel-x``;
    2. a parameterised kernel ``NAME:ARG,...`` where an argument is positional
       or ``key=value`` (`convcalc.compute.kernels.parameterised_kernels`):
       ``gauss:sigma=1.5,size=7``, ``gauss:1.5``, ``box:5``, ``motion:size=9,angle=45``;
    3. the path of an existing file: read by ``read_file`` when given, otherwise a
       ``.npy`` file (recognised by its content) by :func:`~convcalc.io.matrices.load_npy`,
       anything else as UTF-8 text by :func:`~convcalc.io.matrices.parse_text_matrix`;
       only a regular file of at most :data:`MAX_KERNEL_FILE_BYTES` is read then;
    4. an inline matrix (:func:`~convcalc.io.matrices.parse_inline_matrix`):
       ``"1,0,-1;1,0,-1;1,0,-1"``.

    Parameters
    ----------
    spec
        The kernel specification.
    read_file
        Reads a kernel file given its path (for example one that also reads
        images); its result is checked like any other kernel.
    rank
        The layer's spatial axes. At rank 1 a kernel is K or KxC (an inline
        ``1,2,1`` is 3 taps), at rank 3 KDxKHxKW or KDxKHxKWxC (inline, depth
        slices separated by ``|``: ``1,1;1,1|1,1;1,1`` is 2x2x2); the layouts are
        `convcalc.io.reading.ranked_layout`'s. Generated kernels take the rank
        (`convcalc.compute.kernels.named_kernel`).

    Returns
    -------
    ndarray of float64
        KHxKW, or KHxKWxC for a kernel with one slice per input channel (at rank
        1 and 3 as above).

    Raises
    ------
    ConvcalcError
        An unknown name (with the closest name suggested), bad generator
        parameters (naming the key and its valid values), a path that is not a
        regular file (a device, a FIFO), a malformed matrix, or a kernel that is
        not KHxKW or KHxKWxC.
    RuntimeFailure
        A missing file, a directory, or a file that cannot be read.

    Examples
    --------
    >>> parse_kernel("box:3").sum()
    np.float64(1.0)
    >>> parse_kernel("1,0,-1;1,0,-1;1,0,-1").shape
    (3, 3)
    """
    text = spec.strip()
    if rank != 2 and read_file is None:
        read_file = lambda path: _kernel_file(path, rank)  # noqa: E731 - ranked layouts
    named = named_kernel(text, rank)
    if named is not None:
        return named
    if text and os.path.lexists(text) and (_PATH_LIKE.search(text) or not os.path.isdir(text)):
        return _checked_kernel(_read_kernel_file(text, read_file), text, rank)
    name, colon, _ = text.lower().partition(":")
    if colon and name in preset_names():
        raise ConvcalcError(
            f"kernel {name!r} takes no parameters; parameterised kernels are "
            f"{', '.join(syntax for syntax, _ in parameterised_kernels())}"
        )
    if colon and _NAME.fullmatch(name) and not _WINDOWS_DRIVE.match(text):
        raise unknown_kernel(name, other_forms=_OTHER_FORMS)
    if _NAME.fullmatch(text) and not _is_number(text):
        raise unknown_kernel(text, other_forms=_OTHER_FORMS)
    if _PATH_LIKE.search(text):  # a missing file is a runtime failure, as for inputs
        raise RuntimeFailure(
            f"kernel file {text!r} not found; give a preset name (see `convcalc kernels`), "
            f"an inline matrix ({INLINE_SYNTAX}) or an existing file"
        )
    matrix = parse_inline_matrix(text, source=f"kernel {text!r}")
    if rank == 2:
        return matrix
    source = f"kernel {text!r}"
    return _checked_kernel(_one_channel(ranked_layout(matrix, rank, "text", source)), text, rank)


# -- helpers ---------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_WINDOWS_DRIVE = re.compile(r"[A-Za-z]:[\\/]")
_PATH_LIKE = re.compile(r"[\\/]|\.[A-Za-z][A-Za-z0-9]*$")

_KERNEL_FILE_VALID = "a kernel file (.npy, text matrix or image), a preset name or an inline matrix"

_OTHER_FORMS = f", a file, or an inline matrix ({INLINE_SYNTAX})"
"""What a specification may be besides a name, for the unknown-name message."""


def _kernel_file(path: str, rank: int = 2) -> NDArray[Any]:
    """A kernel file read as an input is: HxWx1 becomes KHxKW (Lx1 K, DxHxWx1 KDxKHxKW)."""
    check_regular_file(path, name=f"kernel file {path!r}", valid=_KERNEL_FILE_VALID)
    return _one_channel(read_input(path, rank=rank).data)


def _one_channel(data: NDArray[Any]) -> NDArray[Any]:
    """Channels-last data with one channel loses that axis: it is a kernel of one slice."""
    return data[..., 0] if data.shape[-1] == 1 else data


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_kernel_file(path: str, read_file: Callable[[str], NDArray[Any]] | None) -> Any:
    if read_file is not None:
        return read_file(path)
    data = read_regular_file(
        path,
        name=f"kernel file {path!r}",
        valid=_KERNEL_FILE_VALID,
        max_bytes=MAX_KERNEL_FILE_BYTES,
        too_large=lambda size: ConvcalcError(
            f"kernel file {path!r} holds {size:,} bytes; valid: a kernel file of at most "
            f"{MAX_KERNEL_FILE_BYTES:,} bytes"
        ),
    )
    if data.startswith(b"\x93NUMPY") or path.lower().endswith(".npy"):
        return load_npy(data, source=path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConvcalcError(
            f"kernel file {path!r} is neither a .npy file nor UTF-8 text; "
            "give a .npy file or a text matrix (one row per line)"
        ) from None
    return parse_text_matrix(text, source=path)


def _checked_kernel(array: Any, source: str, rank: int = 2) -> FloatArray:
    kernel = np.asarray(array)
    if kernel.ndim not in (rank, rank + 1) or kernel.size == 0 or kernel.dtype.kind not in "biuf":
        shape = "x".join(map(str, kernel.shape)) or "0-d"
        window = {1: "K", 2: "KHxKW", 3: "KDxKHxKW"}[rank]
        raise ConvcalcError(
            f"kernel {source!r} is a {shape} {kernel.dtype} array; a kernel of a {rank}-D "
            f"layer must be {window} or {window}xC, non-empty, with integer or float values"
        )
    kernel = kernel.astype(np.float64)
    if not np.isfinite(kernel).all():
        raise ConvcalcError(f"kernel {source!r} has values that are not finite")
    return kernel
