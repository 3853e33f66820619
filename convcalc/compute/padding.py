"""Padding an HxWxC input: zero, reflect, replicate or wrap, all at once or by bands.

`pad` builds the padded array; `PaddedInput` hands out bands of padded rows on
demand, so the direct method never holds a padded copy of a whole image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from convcalc.calc.axes import axis_names
from convcalc.calc.choices import PadMode
from convcalc.errors import ConvcalcError


def pad(
    x: ArrayLike,
    pads: Sequence[tuple[int, int]],
    mode: PadMode = PadMode.ZERO,
    value: float = 0.0,
    dtype: DTypeLike | None = None,
) -> NDArray[Any]:
    """Pad the leading (spatial) axes of an HxWxC array, in ``dtype`` (default: kept).

    Parameters
    ----------
    x : array, HxWxC (or any array with at least ``len(pads)`` axes)
    pads : sequence of (before, after)
        One pair per leading axis: ``[(top, bottom), (left, right)]`` for an image.
    mode : PadMode
        ``zero``: the constant ``value`` (0 unless given). ``reflect``: mirror
        without repeating the edge, ``d c b | a b c d | c b a`` (PyTorch
        ``reflect``, numpy ``reflect``, scipy.ndimage ``mirror``); each pad must
        be smaller than the axis. ``replicate``: repeat the edge value (scipy
        ``nearest``). ``wrap``: periodic, ``x[i mod n]`` (scipy ``wrap``), for any
        pad; PyTorch's ``circular`` stops at pads up to n.

    Returns
    -------
    array, (H + top + bottom) x (W + left + right) x C

    Raises
    ------
    ConvcalcError
        A negative pad, more pairs than axes, reflect pad not smaller than the
        axis, or an empty axis to take values from.

    Examples
    --------
    >>> pad(np.array([[1, 2, 3]]), [(0, 0), (2, 2)], PadMode.REFLECT)
    array([[3, 2, 1, 2, 3, 2, 1]])
    """
    arr = np.asarray(x)
    if len(pads) > arr.ndim:
        raise ConvcalcError(
            f"{len(pads)} padding pairs for a {arr.ndim}-axis array; valid: at most {arr.ndim}"
        )
    widths = [(int(lo), int(hi)) for lo, hi in pads]
    _check_pads(arr, widths, mode)
    widths += [(0, 0)] * (arr.ndim - len(widths))
    target = arr.dtype if dtype is None else np.dtype(dtype)
    if not any(lo or hi for lo, hi in widths):
        return arr.astype(target, copy=False)
    if mode == PadMode.WRAP:
        return np.pad(arr.astype(target, copy=False), widths, mode="wrap")
    if mode not in (PadMode.ZERO, PadMode.REFLECT, PadMode.REPLICATE):
        raise ConvcalcError(f"pad mode {mode!r} is not valid; valid: {', '.join(PadMode)}")
    # one allocation: the input is cast while it is copied in, then the borders filled
    out = np.empty(
        [n + lo + hi for n, (lo, hi) in zip(arr.shape, widths, strict=True)], dtype=target
    )
    inner = tuple(slice(lo, lo + n) for n, (lo, _) in zip(arr.shape, widths, strict=True))
    out[inner] = arr
    for axis, (lo, hi) in enumerate(widths):
        if lo or hi:
            _fill_border(out, axis, lo, hi, arr.shape[axis], mode, value, inner)
    return out


class PaddedInput:
    """An HxWxC input and its padding, materialised a band of rows at a time.

    ``shape`` is the padded shape; ``rows(start, stop)`` returns padded rows
    ``start:stop`` (all padded columns) in ``dtype``, equal to the same rows of
    ``pad(x, pads, mode, value, dtype)``. Zero, reflect and replicate only.
    """

    def __init__(
        self,
        x: NDArray[Any],
        pads: Sequence[tuple[int, int]],
        mode: PadMode,
        value: float = 0.0,
        dtype: DTypeLike | None = None,
    ) -> None:
        if mode == PadMode.WRAP:
            raise ConvcalcError("wrap padding is built whole; use pad()")
        _check_pads(x, [(int(lo), int(hi)) for lo, hi in pads], mode)
        self.x = x
        (self.top, self.bottom), (self.left, self.right) = [(int(a), int(b)) for a, b in pads]
        self.mode, self.value = mode, value
        self.dtype = x.dtype if dtype is None else np.dtype(dtype)
        h, w, c = x.shape
        self.shape = (h + self.top + self.bottom, w + self.left + self.right, c)

    def rows(self, start: int, stop: int) -> NDArray[Any]:
        """Padded rows ``start:stop`` as a new (stop - start) x W' x C array."""
        h, w, _ = self.x.shape
        band = np.empty((stop - start, *self.shape[1:]), dtype=self.dtype)
        inner = band[:, self.left : self.left + w]
        source = np.arange(start, stop) - self.top
        valid = (source >= 0) & (source < h)
        if self.mode == PadMode.REPLICATE:
            source, valid = np.clip(source, 0, h - 1), np.ones_like(valid)
        elif self.mode == PadMode.REFLECT:
            source = np.abs(source)
            source = np.where(source > h - 1, 2 * (h - 1) - source, source)
            valid = np.ones_like(valid)
        if valid.all() and source.size and np.all(np.diff(source) == 1):
            inner[...] = self.x[source[0] : source[-1] + 1]
        else:
            inner[valid] = self.x[source[valid]]
            inner[~valid] = self.value
        if self.left or self.right:
            everything = (slice(None), slice(self.left, self.left + w), slice(None))
            _fill_border(band, 1, self.left, self.right, w, self.mode, self.value, everything)
        return band


def _fill_border(
    out: NDArray[Any],
    axis: int,
    lo: int,
    hi: int,
    n: int,
    mode: PadMode,
    value: float,
    inner: tuple[slice, ...],
) -> None:
    """Fill one axis's padding of ``out`` (interior ``lo:lo+n``) as numpy.pad would.

    Axes already padded are filled over their whole length, later ones over their
    interior only, so corners come out as numpy's axis-by-axis padding makes them.
    """

    def at(index: slice | int | list[int]) -> tuple[Any, ...]:
        return tuple(
            index if k == axis else (slice(None) if k < axis else inner[k]) for k in range(out.ndim)
        )

    if mode == PadMode.ZERO:
        out[at(slice(0, lo))] = value
        out[at(slice(lo + n, lo + n + hi))] = value
    elif mode == PadMode.REPLICATE:
        out[at(slice(0, lo))] = out[at(slice(lo, lo + 1))]
        out[at(slice(lo + n, lo + n + hi))] = out[at(slice(lo + n - 1, lo + n))]
    else:  # reflect: d c b | a b c d | c b a, each pad smaller than n
        out[at(slice(0, lo))] = out[at(list(range(2 * lo, lo, -1)))]
        out[at(slice(lo + n, lo + n + hi))] = out[at(list(range(lo + n - 2, lo + n - 2 - hi, -1)))]


def _check_pads(arr: NDArray[Any], widths: list[tuple[int, int]], mode: PadMode) -> None:
    """Refuse negative pads and reflect pads not smaller than their axis."""
    names = (*axis_names(2), "channels")
    for axis, (lo, hi) in enumerate(widths):
        n, name = arr.shape[axis], names[axis]
        if min(lo, hi) < 0:
            raise ConvcalcError(
                f"padding {min(lo, hi)} of the {name} is negative; valid: 0 or more"
            )
        if mode == PadMode.REFLECT and max(lo, hi) >= n:
            raise ConvcalcError(
                f"reflect padding {max(lo, hi)} is not smaller than the {n} {name}; "
                f"valid: at most {n - 1}, or pad mode replicate, wrap or zero"
            )
        if mode != PadMode.ZERO and n == 0 and lo + hi > 0:
            raise ConvcalcError(f"cannot {mode} pad the {name}: there are none")
