"""Named kernels, parameterised kernels, and the kernel specifications of ``-k``.

All kernels are for cross-correlation, which is what convcalc computes (the kernel
is not flipped): ``out[i, j] = sum_{a,b} x[i+a, j+b] * k[a, b]``. Under that
convention ``sobel-x`` is positive where intensity increases from left to right
(OpenCV's ``Sobel(dx=1)`` kernel, applied by ``filter2D``), ``sobel-y`` where it
increases from top to bottom, and ``edge-v`` (the textbook ``[[1, 0, -1]] * 3``)
is positive where a bright region on the left meets a dark one on the right.

Kernels are float64, KHxKW, or KHxKWxC when they have one slice per input channel.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from convcalc.errors import ConvcalcError, RuntimeFailure
from convcalc.io.matrices import INLINE_SYNTAX, load_npy, parse_inline_matrix, parse_text_matrix

FloatArray = NDArray[np.float64]

MAX_GENERATED_SIZE = 1001
"""The largest side a parameterised kernel (gauss, box, motion) may have."""


def preset_names() -> list[str]:
    """The names of the preset kernels, in the order ``convcalc kernels`` lists them.

    Examples
    --------
    >>> preset_names()[:3]
    ['identity', 'box3', 'box5']
    """
    return list(_PRESETS)


def describe(name: str) -> str:
    """A one-line description of a preset kernel or of a kernel generator.

    Parameters
    ----------
    name
        A preset name (``sobel-x``) or a generator name (``gauss``), any case.

    Raises
    ------
    ConvcalcError
        The name is neither; the message suggests the closest name.

    Examples
    --------
    >>> describe("Sobel-X")
    'Sobel derivative in x: positive where intensity increases left to right'
    """
    key = name.strip().lower()
    if key in _PRESETS:
        return _PRESETS[key][0]
    if key in _GENERATORS:
        return _GENERATORS[key].description
    raise _unknown_kernel(name)


def get_preset(name: str) -> FloatArray:
    """The values of a preset kernel, as a new float64 array each call.

    Parameters
    ----------
    name
        One of :func:`preset_names`, any case.

    Returns
    -------
    ndarray of float64
        KHxKW.

    Raises
    ------
    ConvcalcError
        Unknown name; the message suggests the closest one.

    Examples
    --------
    >>> get_preset("sobel-x")
    array([[-1.,  0.,  1.],
           [-2.,  0.,  2.],
           [-1.,  0.,  1.]])
    """
    key = name.strip().lower()
    if key not in _PRESETS:
        raise _unknown_kernel(name)
    return _PRESETS[key][1]()


def parameterised_kernels() -> list[tuple[str, str]]:
    """The parameterised kernel forms, as (syntax, description) pairs.

    Examples
    --------
    >>> parameterised_kernels()[0][0]
    'gauss:sigma=S[,size=N]'
    """
    return [(g.syntax, g.description) for g in _GENERATORS.values()]


def parse_kernel(
    spec: str, *, read_file: Callable[[str], NDArray[Any]] | None = None
) -> FloatArray:
    """Turn a ``-k`` value into a kernel.

    ``spec`` is tried, in this order, as:

    1. a preset name (:func:`preset_names`), any case: ``sobel-x``;
    2. a parameterised kernel ``NAME:ARG,...`` where an argument is positional
       or ``key=value`` (:func:`parameterised_kernels`): ``gauss:sigma=1.5,size=7``,
       ``gauss:1.5``, ``box:5``, ``motion:size=9,angle=45``;
    3. the path of an existing file: read by ``read_file`` when given, otherwise a
       ``.npy`` file (recognised by its content) by :func:`~convcalc.io.matrices.load_npy`,
       anything else as UTF-8 text by :func:`~convcalc.io.matrices.parse_text_matrix`;
    4. an inline matrix (:func:`~convcalc.io.matrices.parse_inline_matrix`):
       ``"1,0,-1;1,0,-1;1,0,-1"``.

    Parameters
    ----------
    spec
        The kernel specification.
    read_file
        Reads a kernel file given its path (for example one that also reads
        images); its result is checked like any other kernel.

    Returns
    -------
    ndarray of float64
        KHxKW, or KHxKWxC for a kernel with one slice per input channel.

    Raises
    ------
    ConvcalcError
        An unknown name (with the closest name suggested), bad generator
        parameters (naming the key and its valid values), a missing file, a
        malformed matrix, or a kernel that is not KHxKW or KHxKWxC.
    RuntimeFailure
        An existing file that cannot be read.

    Examples
    --------
    >>> parse_kernel("box:3").sum()
    np.float64(1.0)
    >>> parse_kernel("1,0,-1;1,0,-1;1,0,-1").shape
    (3, 3)
    """
    text = spec.strip()
    key = text.lower()
    if key in _PRESETS:
        return _PRESETS[key][1]()
    name, colon, args = key.partition(":")
    if colon and name in _GENERATORS:
        return _GENERATORS[name].make(args)
    if text and os.path.isfile(text):
        return _checked_kernel(_read_kernel_file(text, read_file), text)
    if colon and name in _PRESETS:
        raise ConvcalcError(
            f"kernel {name!r} takes no parameters; parameterised kernels are "
            f"{', '.join(g.syntax for g in _GENERATORS.values())}"
        )
    if colon and _NAME.fullmatch(name) and not _WINDOWS_DRIVE.match(text):
        raise _unknown_kernel(name)
    if _NAME.fullmatch(text) and not _is_number(text):
        raise _unknown_kernel(text)
    if _PATH_LIKE.search(text):
        raise ConvcalcError(
            f"kernel file {text!r} not found; give a preset name (see `convcalc kernels`), "
            f"an inline matrix ({INLINE_SYNTAX}) or an existing file"
        )
    return parse_inline_matrix(text, source=f"kernel {text!r}")


def separable_factors(
    kernel: NDArray[Any], *, rtol: float = 1e-10
) -> tuple[FloatArray, FloatArray] | None:
    """The column and row vectors whose outer product is a rank-1 kernel.

    A KHxKW kernel is separable when its second singular value is at most
    ``rtol`` times its largest. Cross-correlating with it then equals
    cross-correlating with the KHx1 column and then the 1xKW row, which costs
    KH + KW instead of KH·KW multiplications per output value.

    The factors are read off the kernel at its largest-magnitude entry
    ``p = k[i, j]``. When the kernel is integers times one power of two (sobel,
    or gauss5, which is integers/256), the column is ``k[:, j]`` over the
    greatest common divisor of its integers, signed so that its entry i is
    positive, and the row what remains: both are exact, so ``np.outer(column,
    row)`` is the kernel itself (sobel-x: ``[1, 2, 1]`` and ``[-1, 0, 1]``;
    gauss5: ``[1, 4, 6, 4, 1]`` and that over 256). Otherwise ``column =
    sign(p)·k[:, j]`` and ``row = k[i, :] / |p|``, whose outer product
    reproduces the kernel to a few units in the last place of its largest entry.

    Parameters
    ----------
    kernel
        KHxKW.
    rtol
        Largest ratio of the second to the first singular value still counted
        as rank 1.

    Returns
    -------
    (column, row) or None
        Float64 vectors of lengths KH and KW; None when the kernel is not rank 1,
        not 2-D, or not finite. An all-zero kernel gives zero vectors.

    Examples
    --------
    >>> column, row = separable_factors(get_preset("sobel-x"))
    >>> column, row
    (array([1., 2., 1.]), array([-1.,  0.,  1.]))
    >>> separable_factors(get_preset("laplace4")) is None
    True
    """
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2 or k.size == 0 or not np.isfinite(k).all():
        return None
    i, j = np.unravel_index(int(np.argmax(np.abs(k))), k.shape)
    pivot = k[i, j]
    if pivot == 0:
        return np.zeros(k.shape[0]), np.zeros(k.shape[1])
    singular = np.linalg.svd(k, compute_uv=False)
    if singular.size > 1 and singular[1] > rtol * singular[0]:
        return None
    exact = _dyadic_factors(k, i, j)
    if exact is not None:
        return exact
    sign = 1.0 if pivot > 0 else -1.0
    # Adding 0.0 turns the -0.0 of a sign flip into 0.0.
    return k[:, j] * sign + 0.0, k[i, :] / abs(pivot) + 0.0


def _dyadic_factors(k: FloatArray, i: Any, j: Any) -> tuple[FloatArray, FloatArray] | None:
    """Exact factors of a rank-1 kernel of integers times 2**-m, or None (see above)."""
    for m in range(_DYADIC_MAX_SHIFT + 1):
        scaled = k * 2.0**m
        if np.array_equal(scaled, np.rint(scaled)):
            break
    else:
        return None
    if np.abs(scaled).max() >= 2**24:  # past float32's exact integers
        return None
    whole = scaled.astype(np.int64)
    column = whole[:, j] // np.gcd.reduce(whole[:, j])
    column = column if column[i] > 0 else -column
    row, rest = np.divmod(whole[i, :], column[i])
    if rest.any() or not np.array_equal(np.outer(column, row), whole):
        return None
    return column.astype(np.float64), row / 2.0**m + 0.0


_DYADIC_MAX_SHIFT = 30
"""Kernels are tried as integers over 2**0 … 2**30."""


# --- presets ---------------------------------------------------------------------


def _fixed(rows: ArrayLike, scale: float = 1.0) -> Callable[[], FloatArray]:
    values = np.array(rows, dtype=np.float64)

    def make() -> FloatArray:
        return values / scale

    return make


def _binomial(row: list[float]) -> Callable[[], FloatArray]:
    """The outer product of a binomial row with itself, normalised to sum 1."""
    r = np.array(row, dtype=np.float64)
    return _fixed(np.outer(r, r), float(r.sum()) ** 2)


_SOBEL_X = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
_PREWITT_X = [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]]
_SCHARR_X = [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]]
_EDGE_V = [[1, 0, -1], [1, 0, -1], [1, 0, -1]]

_PRESETS: dict[str, tuple[str, Callable[[], FloatArray]]] = {
    "identity": ("identity: leaves the input unchanged", _fixed([[0, 0, 0], [0, 1, 0], [0, 0, 0]])),
    "box3": ("3x3 box blur: the mean of the window (1/9 each)", _fixed(np.ones((3, 3)), 9)),
    "box5": ("5x5 box blur: the mean of the window (1/25 each)", _fixed(np.ones((5, 5)), 25)),
    "gauss3": ("3x3 Gaussian blur: binomial [1,2,1]ᵀ[1,2,1] / 16", _binomial([1, 2, 1])),
    "gauss5": ("5x5 Gaussian blur: binomial [1,4,6,4,1]ᵀ[1,4,6,4,1] / 256",
               _binomial([1, 4, 6, 4, 1])),
    "sharpen": ("sharpen: 5× the centre minus its four neighbours",
                _fixed([[0, -1, 0], [-1, 5, -1], [0, -1, 0]])),
    "edge-v": ("textbook vertical-edge detector [[1,0,-1]]×3: positive for bright left, "
               "dark right", _fixed(_EDGE_V)),
    "edge-h": ("textbook horizontal-edge detector (edge-v transposed): positive for bright "
               "top, dark bottom", _fixed(np.transpose(_EDGE_V))),
    "sobel-x": ("Sobel derivative in x: positive where intensity increases left to right",
                _fixed(_SOBEL_X)),
    "sobel-y": ("Sobel derivative in y: positive where intensity increases top to bottom",
                _fixed(np.transpose(_SOBEL_X))),
    "prewitt-x": ("Prewitt derivative in x: positive where intensity increases left to right",
                  _fixed(_PREWITT_X)),
    "prewitt-y": ("Prewitt derivative in y: positive where intensity increases top to bottom",
                  _fixed(np.transpose(_PREWITT_X))),
    "scharr-x": ("Scharr derivative in x (weights 3, 10, 3): more rotation-invariant than "
                 "Sobel", _fixed(_SCHARR_X)),
    "scharr-y": ("Scharr derivative in y (weights 3, 10, 3): more rotation-invariant than "
                 "Sobel", _fixed(np.transpose(_SCHARR_X))),
    "laplace4": ("Laplacian, 4-neighbour: the four neighbours minus 4× the centre",
                 _fixed([[0, 1, 0], [1, -4, 1], [0, 1, 0]])),
    "laplace8": ("Laplacian, 8-neighbour: the eight neighbours minus 8× the centre",
                 _fixed([[1, 1, 1], [1, -8, 1], [1, 1, 1]])),
    "emboss": ("emboss: relief effect, bright where intensity rises towards the bottom right",
               _fixed([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])),
    "outline": ("outline: 8× the centre minus its eight neighbours (edges of every direction)",
                _fixed([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]])),
    "motion": ("9x9 motion blur along the main diagonal (1/9 on each diagonal cell)",
               _fixed(np.eye(9), 9)),
}


# --- parameterised kernels -------------------------------------------------------


@dataclass(frozen=True)
class _Generator:
    """A kernel family with parameters: ``name:arg,key=value,...``."""

    name: str
    syntax: str
    description: str
    params: tuple[str, ...]
    required: tuple[str, ...]
    build: Callable[[dict[str, str]], FloatArray]

    def make(self, args: str) -> FloatArray:
        """The kernel for the text after the colon."""
        values: dict[str, str] = {}
        items = [item.strip() for item in args.split(",")] if args.strip() else []
        keyword_seen = False
        for position, item in enumerate(items):
            key, equals, value = item.partition("=")
            key, value = key.strip(), value.strip()
            if equals:
                keyword_seen = True
            elif position >= len(self.params) or keyword_seen:
                raise self._error(f"unexpected argument {item!r}")
            else:
                key, value = self.params[position], item
            if key not in self.params:
                raise self._error(f"unknown parameter {key!r}")
            if key in values:
                raise self._error(f"parameter {key!r} is given twice")
            if not value:
                raise self._error(f"parameter {key!r} has no value")
            values[key] = value
        missing = [key for key in self.required if key not in values]
        if missing:
            raise self._error(f"parameter {missing[0]!r} is missing")
        return self.build(values)

    def _error(self, what: str) -> ConvcalcError:
        return ConvcalcError(
            f"kernel {self.name}: {what}; write {self.syntax} (parameters: "
            f"{', '.join(self.params)}; positional arguments in that order)"
        )


def _gauss(values: dict[str, str]) -> FloatArray:
    sigma = _float_param("gauss", "sigma", values["sigma"], "a number > 0")
    if sigma <= 0:
        raise _param_error("gauss", "sigma", values["sigma"], "a number > 0")
    default = 2 * math.ceil(3 * sigma) + 1
    if "size" in values:
        size = _size_param("gauss", values["size"], odd=True)
    elif default > MAX_GENERATED_SIZE:
        raise _param_error(
            "gauss", "sigma", values["sigma"],
            f"at most {(MAX_GENERATED_SIZE - 1) // 6} without size (size 2·ceil(3σ)+1 "
            f"must be at most {MAX_GENERATED_SIZE})",
        )
    else:
        size = default
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    kernel = np.outer(g, g)
    return kernel / float(kernel.sum())


def _box(values: dict[str, str]) -> FloatArray:
    size = _size_param("box", values["size"], odd=False)
    return np.full((size, size), 1.0 / (size * size))


def _motion(values: dict[str, str]) -> FloatArray:
    size = _size_param("motion", values["size"], odd=True)
    angle = _float_param("motion", "angle", values.get("angle", "0"), "a number of degrees")
    theta = math.radians(angle)
    # Rows grow downwards, so a line rising to the right has a negative row step.
    row_step, col_step = -math.sin(theta), math.cos(theta)
    scale = max(abs(row_step), abs(col_step))
    half = (size - 1) // 2
    steps = np.arange(-half, half + 1, dtype=np.float64)
    rows = half + np.rint(steps * row_step / scale).astype(np.intp)
    cols = half + np.rint(steps * col_step / scale).astype(np.intp)
    kernel = np.zeros((size, size))
    kernel[rows, cols] = 1.0
    return kernel / float(kernel.sum())


def _float_param(kernel: str, key: str, text: str, valid: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _param_error(kernel, key, text, valid) from None
    if not math.isfinite(value):
        raise _param_error(kernel, key, text, valid)
    return value


def _size_param(kernel: str, text: str, *, odd: bool) -> int:
    valid = f"{'an odd' if odd else 'an'} integer from 1 to {MAX_GENERATED_SIZE}"
    try:
        size = int(text)
    except ValueError:
        raise _param_error(kernel, "size", text, valid) from None
    if not 1 <= size <= MAX_GENERATED_SIZE or (odd and size % 2 == 0):
        raise _param_error(kernel, "size", text, valid)
    return size


def _param_error(kernel: str, key: str, text: str, valid: str) -> ConvcalcError:
    return ConvcalcError(f"kernel {kernel}: {key}={text!r} is not valid; {key} must be {valid}")


_GENERATORS: dict[str, _Generator] = {
    g.name: g
    for g in (
        _Generator(
            "gauss", "gauss:sigma=S[,size=N]",
            "sampled Gaussian blur, normalised to sum 1; size defaults to 2·ceil(3σ)+1",
            ("sigma", "size"), ("sigma",), _gauss,
        ),
        _Generator(
            "box", "box:size=N", "NxN box blur: the mean of the window",
            ("size",), ("size",), _box,
        ),
        _Generator(
            "motion", "motion:size=N[,angle=A]",
            "NxN motion blur along a line through the centre, A degrees anticlockwise "
            "from horizontal (default 0)",
            ("size", "angle"), ("size",), _motion,
        ),
    )
}


# --- specifications --------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_WINDOWS_DRIVE = re.compile(r"[A-Za-z]:[\\/]")
_PATH_LIKE = re.compile(r"[\\/]|\.[A-Za-z][A-Za-z0-9]*$")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _unknown_kernel(name: str) -> ConvcalcError:
    key = name.strip().lower()
    candidates = [*_PRESETS, *_GENERATORS]
    close = difflib.get_close_matches(key, candidates, n=len(candidates))
    if close:
        # Every name as close as the closest, in listing order: laplace4 or laplace8.
        best = _similarity(key, close[0])
        tied = [c for c in candidates if c in close and _similarity(key, c) == best]
        return ConvcalcError(
            f"unknown kernel {name!r}; did you mean {' or '.join(map(repr, tied))}? "
            "(see `convcalc kernels`)"
        )
    return ConvcalcError(
        f"unknown kernel {name!r}; give a preset name (see `convcalc kernels`), "
        f"a file, or an inline matrix ({INLINE_SYNTAX})"
    )


def _similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


def _read_kernel_file(path: str, read_file: Callable[[str], NDArray[Any]] | None) -> Any:
    if read_file is not None:
        return read_file(path)
    try:
        with open(path, "rb") as stream:
            data = stream.read()
    except OSError as exc:
        raise RuntimeFailure(f"cannot read kernel file {path!r}: {exc.strerror}") from None
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


def _checked_kernel(array: Any, source: str) -> FloatArray:
    kernel = np.asarray(array)
    if kernel.ndim not in (2, 3) or kernel.size == 0 or kernel.dtype.kind not in "biuf":
        shape = "x".join(map(str, kernel.shape)) or "0-d"
        raise ConvcalcError(
            f"kernel {source!r} is a {shape} {kernel.dtype} array; a kernel must be "
            "KHxKW or KHxKWxC, non-empty, with integer or float values"
        )
    kernel = kernel.astype(np.float64)
    if not np.isfinite(kernel).all():
        raise ConvcalcError(f"kernel {source!r} has values that are not finite")
    return kernel
