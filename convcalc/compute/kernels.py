"""The kernel catalogue: named preset kernels and parameterised kernel families.

All kernels are for cross-correlation, which is what convcalc computes (the kernel
is not flipped): ``out[i, j] = sum_{a,b} x[i+a, j+b] * k[a, b]``. Under that
convention ``sobel-x`` is positive where intensity increases from left to right
(OpenCV's ``Sobel(dx=1)`` kernel, applied by ``filter2D``), ``sobel-y`` where it
increases from top to bottom, and ``edge-v`` (the textbook ``[[1, 0, -1]] * 3``)
is positive where a bright region on the left meets a dark one on the right.

Kernels are float64, KHxKW. The kernel specifications users type for ``-k``
(names, ``gauss:sigma=…``, inline matrices, files) are read by
`convcalc.io.kernels`; rank-1 factoring is in `convcalc.compute.factoring`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from math import gcd

import numpy as np
from numpy.typing import ArrayLike, NDArray

from convcalc.errors import ConvcalcError

FloatArray = NDArray[np.float64]

MAX_GENERATED_SIZE = 1001
"""The largest side a parameterised kernel (gauss, box, motion) may have."""

SIGMA_RANGE = (0.01, 10000.0)
"""The sigmas ``gauss`` takes. Below 0.01 nothing changes (a neighbour already weighs
exp(-5000), so the kernel is the identity exactly); above 10000 neither (over the
largest size, 1001, the weights are within 0.13 % of a box blur's). Far outside,
sigma² underflows to 0 or overflows, and the kernel would be NaN."""


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
    raise unknown_kernel(name)


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
        raise unknown_kernel(name)
    return _PRESETS[key][1]()


def exact_fraction(
    values: ArrayLike, *, max_denominator: int = 65536
) -> tuple[int, NDArray[np.int64]] | None:
    """A kernel written as ``1/D ×`` an integer matrix, when its values are exactly
    such fractions (gauss5 is 1/256 × [[1, 4, 6, 4, 1], …]); None otherwise, or when D
    would exceed ``max_denominator`` or D is 1 (the kernel is integers already).

    Examples
    --------
    >>> exact_fraction(get_preset("box3"))[0]
    9
    """
    from fractions import Fraction  # only `kernels NAME` shows fractions: not at start-up

    flat = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(flat)):
        return None
    denominator = 1
    for value in flat:
        fraction = Fraction(float(value)).limit_denominator(max_denominator)
        if float(fraction) != float(value):
            return None
        denominator = denominator * fraction.denominator // gcd(denominator, fraction.denominator)
        if denominator > max_denominator:
            return None
    if denominator == 1:
        return None
    scaled = np.rint(np.asarray(values, dtype=np.float64) * denominator)
    return denominator, scaled.astype(np.int64)


def parameterised_kernels() -> list[tuple[str, str]]:
    """The parameterised kernel forms, as (syntax, description) pairs.

    Examples
    --------
    >>> parameterised_kernels()[0][0]
    'gauss:sigma=S[,size=N]'
    """
    return [(g.syntax, g.description) for g in _GENERATORS.values()]


def named_kernel(spec: str, rank: int = 2) -> FloatArray | None:
    """The kernel a preset name or a parameterised form names, or None.

    At ``rank`` 1 or 3 the separable blurs take the rank (``box:size=80`` is 80
    long in 1-D, ``gauss:sigma=1,size=5`` is 5x5x5 in 3-D: the outer product of
    the normalised 1-D profile); presets and ``motion`` are 2-D and refused there.

    Parameters
    ----------
    spec
        A preset name (:func:`preset_names`), any case: ``sobel-x``; or a
        parameterised kernel ``NAME:ARG,...`` where an argument is positional or
        ``key=value`` (:func:`parameterised_kernels`): ``gauss:sigma=1.5,size=7``,
        ``gauss:1.5``, ``box:5``, ``motion:size=9,angle=45``.
    rank
        The number of spatial axes: 1, 2 or 3.

    Returns
    -------
    ndarray of float64 or None
        KHxKW (K at rank 1, KDxKHxKW at rank 3), a new array each call; None when
        ``spec`` is neither form (it may then be a file or a matrix: see
        `convcalc.io.kernels.parse_kernel`).

    Raises
    ------
    ConvcalcError
        Bad parameters of a parameterised kernel, naming the key and its valid
        values.

    Examples
    --------
    >>> named_kernel("box:3").sum()
    np.float64(1.0)
    >>> named_kernel("1,0,-1") is None
    True
    >>> named_kernel("box:size=4", rank=1)
    array([0.25, 0.25, 0.25, 0.25])
    """
    key = spec.strip().lower()
    name, colon, args = key.partition(":")
    if rank != 2 and (key in _PRESETS or (colon and name in _GENERATORS)):
        if key in _PRESETS or name not in _RANKED_GENERATORS:
            raise ConvcalcError(
                f"kernel {spec.strip()!r} is 2-D; valid for a {rank}-D layer: "
                f"{', '.join(_GENERATORS[n].syntax for n in _RANKED_GENERATORS)}, a file, or an "
                f"inline kernel ({_RANKED_INLINE[rank]})"
            )
        return _with_rank(_GENERATORS[name].make(args), rank, spec.strip())
    if key in _PRESETS:
        return _PRESETS[key][1]()
    if colon and name in _GENERATORS:
        return _GENERATORS[name].make(args)
    return None


def unknown_kernel(name: str, *, other_forms: str = "") -> ConvcalcError:
    """The error for a kernel name that is neither a preset nor a parameterised form.

    Parameters
    ----------
    name
        The name as given.
    other_forms
        What else the caller accepts, appended to the advice when no name is
        close (for example ``", a file, or an inline matrix (…)"``).

    Returns
    -------
    ConvcalcError
        Suggesting every name as close as the closest (``laplace4`` or
        ``laplace8``), or, when none is close, what to give instead.

    Examples
    --------
    >>> str(unknown_kernel("sobelx"))
    "unknown kernel 'sobelx'; did you mean 'sobel-x'? (see `convcalc kernels`)"
    """
    import difflib  # only a misspelt name needs it: not at start-up

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
        f"unknown kernel {name!r}; give a preset name (see `convcalc kernels`){other_forms}"
    )


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
    "gauss5": (
        "5x5 Gaussian blur: binomial [1,4,6,4,1]ᵀ[1,4,6,4,1] / 256",
        _binomial([1, 4, 6, 4, 1]),
    ),
    "sharpen": (
        "sharpen: 5× the centre minus its four neighbours",
        _fixed([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]),
    ),
    "edge-v": (
        "textbook vertical-edge detector [[1,0,-1]]×3: positive for bright left, dark right",
        _fixed(_EDGE_V),
    ),
    "edge-h": (
        "textbook horizontal-edge detector (edge-v transposed): positive for bright "
        "top, dark bottom",
        _fixed(np.transpose(_EDGE_V)),
    ),
    "sobel-x": (
        "Sobel derivative in x: positive where intensity increases left to right",
        _fixed(_SOBEL_X),
    ),
    "sobel-y": (
        "Sobel derivative in y: positive where intensity increases top to bottom",
        _fixed(np.transpose(_SOBEL_X)),
    ),
    "prewitt-x": (
        "Prewitt derivative in x: positive where intensity increases left to right",
        _fixed(_PREWITT_X),
    ),
    "prewitt-y": (
        "Prewitt derivative in y: positive where intensity increases top to bottom",
        _fixed(np.transpose(_PREWITT_X)),
    ),
    "scharr-x": (
        "Scharr derivative in x (weights 3, 10, 3): more rotation-invariant than Sobel",
        _fixed(_SCHARR_X),
    ),
    "scharr-y": (
        "Scharr derivative in y (weights 3, 10, 3): more rotation-invariant than Sobel",
        _fixed(np.transpose(_SCHARR_X)),
    ),
    "laplace4": (
        "Laplacian, 4-neighbour: the four neighbours minus 4× the centre",
        _fixed([[0, 1, 0], [1, -4, 1], [0, 1, 0]]),
    ),
    "laplace8": (
        "Laplacian, 8-neighbour: the eight neighbours minus 8× the centre",
        _fixed([[1, 1, 1], [1, -8, 1], [1, 1, 1]]),
    ),
    "emboss": (
        "emboss: relief effect, bright where intensity rises towards the bottom right",
        _fixed([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]),
    ),
    "outline": (
        "outline: 8× the centre minus its eight neighbours (edges of every direction)",
        _fixed([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]),
    ),
    "motion": (
        "9x9 motion blur along the main diagonal (1/9 on each diagonal cell)",
        _fixed(np.eye(9), 9),
    ),
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
        kernel = self.build(values)
        if not np.isfinite(kernel).all():  # a guard: the parameter checks should prevent it
            raise self._error(f"the parameters {args.strip()!r} give values that are not finite")
        return kernel

    def _error(self, what: str) -> ConvcalcError:
        return ConvcalcError(
            f"kernel {self.name}: {what}; write {self.syntax} (parameters: "
            f"{', '.join(self.params)}; positional arguments in that order)"
        )


def _gauss(values: dict[str, str]) -> FloatArray:
    low, high = SIGMA_RANGE
    valid = f"a number from {low:g} to {high:g}"
    sigma = _float_param("gauss", "sigma", values["sigma"], valid)
    if not low <= sigma <= high:
        raise _param_error("gauss", "sigma", values["sigma"], valid)
    default = 2 * math.ceil(3 * sigma) + 1
    if "size" in values:
        size = _size_param("gauss", values["size"], odd=True)
    elif default > MAX_GENERATED_SIZE:
        raise _param_error(
            "gauss",
            "sigma",
            values["sigma"],
            f"at most {(MAX_GENERATED_SIZE - 1) // 6} without size (size 2·ceil(3σ)+1 "
            f"must be at most {MAX_GENERATED_SIZE})",
        )
    else:
        size = default
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-0.5 * (x / sigma) ** 2)  # x / sigma first: sigma**2 would underflow
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
            "gauss",
            "gauss:sigma=S[,size=N]",
            "sampled Gaussian blur, normalised to sum 1; size defaults to 2·ceil(3σ)+1",
            ("sigma", "size"),
            ("sigma",),
            _gauss,
        ),
        _Generator(
            "box",
            "box:size=N",
            "NxN box blur: the mean of the window",
            ("size",),
            ("size",),
            _box,
        ),
        _Generator(
            "motion",
            "motion:size=N[,angle=A]",
            "NxN motion blur along a line through the centre, A degrees anticlockwise "
            "from horizontal (default 0)",
            ("size", "angle"),
            ("size",),
            _motion,
        ),
    )
}


_RANKED_GENERATORS = ("gauss", "box")
"""The generated kernels that take the rank: separable, the outer product of a profile."""

_RANKED_INLINE = {1: "'1,2,1'", 3: "slices along depth separated by |: '1,1;1,1|1,1;1,1'"}
"""How an inline kernel is written at rank 1 and 3, for messages."""

MAX_RANKED_CELLS = MAX_GENERATED_SIZE**2
"""The most values a generated kernel of rank 3 may have (as many as the largest 2-D one)."""


def _with_rank(kernel: FloatArray, rank: int, spec: str) -> FloatArray:
    """A separable KxK blur at ``rank``: the outer product of its (normalised) row sums."""
    profile = kernel.sum(axis=1)  # outer(g, g)/sum: the row sums are g/sum(g)
    if profile.size**rank > MAX_RANKED_CELLS:
        raise ConvcalcError(
            f"kernel {spec!r} at rank {rank} has {profile.size**rank:,} values; valid: at most "
            f"{MAX_RANKED_CELLS:,} (size at most {int(MAX_RANKED_CELLS ** (1 / rank) + 1e-9)})"
        )
    result: FloatArray = profile
    for _ in range(rank - 1):
        result = np.multiply.outer(result, profile)
    return result


# --- unknown names ---------------------------------------------------------------


def _similarity(a: str, b: str) -> float:
    import difflib

    return difflib.SequenceMatcher(None, a, b).ratio()
