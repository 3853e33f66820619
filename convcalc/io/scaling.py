"""Mapping result values to an image's integer range: clip, abs, minmax or auto.

Pure numpy: no Pillow, so the terminal pictures of `convcalc.present.pictures` use it too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from convcalc.calc.choices import Scale
from convcalc.errors import ConvcalcError


@dataclass(frozen=True, eq=False)
class Scaled:
    """Values mapped to an image's integer range by :func:`to_uint8`/:func:`to_uint16`.

    ``array`` has the input's shape (uint8 or uint16); ``scale`` is the scale
    used (never AUTO); input value ``lo`` became 0 and ``hi`` became full scale.
    """

    array: NDArray[Any]
    scale: Scale
    lo: float
    hi: float
    notes: tuple[str, ...] = ()


def to_uint8(array: NDArray[Any], scale: Scale = Scale.AUTO, *, max_value: float = 255.0) -> Scaled:
    """Map values to 0-255 for an 8-bit image.

    Parameters
    ----------
    array : ndarray
        Any shape (typically HxWxC), any real dtype.
    scale : Scale
        ``clip``: clip to [0, max_value], then map 0..max_value → 0..255 (the
        identity for max_value 255). ``abs``: the same on ``|x|``. ``minmax``:
        map min..max → 0..255 linearly; a constant array becomes all 0 (a note
        says so). ``auto``: ``clip`` when every value is within [0, max_value],
        else ``minmax``.
    max_value : float
        The source's full scale: 255 for 8-bit, 65535 for 16-bit images.

    Returns
    -------
    Scaled
        uint8 array of the same shape, rounded to nearest; NaN becomes 0, ±inf
        0 or 255 (with a note).

    Examples
    --------
    >>> import numpy as np
    >>> s = to_uint8(np.array([-4.0, 0.0, 4.0]))
    >>> s.array.tolist(), str(s.scale), s.lo, s.hi
    ([0, 128, 255], 'minmax', -4.0, 4.0)
    """
    return _scale(array, scale, max_value, np.uint8)


def to_uint16(
    array: NDArray[Any], scale: Scale = Scale.AUTO, *, max_value: float = 65535.0
) -> Scaled:
    """Map values to 0-65535 for a 16-bit image, as :func:`to_uint8` does to 0-255."""
    return _scale(array, scale, max_value, np.uint16)


def _scale(
    array: NDArray[Any], scale: Scale, max_value: float, dtype: type[np.uint8] | type[np.uint16]
) -> Scaled:
    if not max_value > 0:
        raise ConvcalcError(f"max value {max_value} must be above 0")
    top = float(np.iinfo(dtype).max)
    values = np.asarray(array)
    if values.dtype == dtype and scale in (Scale.AUTO, Scale.CLIP) and max_value == top:
        return Scaled(values, Scale.CLIP, 0.0, top)  # already the image's values
    work = np.float32 if values.dtype in (np.float32, np.uint8, np.bool_) else np.float64
    values = values.astype(work, copy=False)
    vmin, vmax, bad = _finite_range(values)
    notes: list[str] = []
    if scale == Scale.AUTO:
        scale = Scale.CLIP if vmin >= 0 and vmax <= max_value else Scale.MINMAX
    if scale == Scale.ABS:
        values = np.abs(values)
        vmin, vmax = (
            0.0 if vmin <= 0 <= vmax else min(abs(vmin), abs(vmax)),
            max(abs(vmin), abs(vmax)),
        )
    if scale in (Scale.CLIP, Scale.ABS):
        lo, hi = 0.0, float(max_value)
        if vmin < 0 or vmax > max_value:
            below, above = int((values < 0).sum()), int((values > max_value).sum())
            notes.append(f"{scale}: {below} values below 0 and {above} above {max_value:g} clipped")
    else:
        lo, hi = vmin, vmax
        if lo == hi:
            notes.append(f"minmax: every value is {lo:g}, written as 0")
    factor = top / (hi - lo) if hi > lo else 0.0
    tiny = factor > float(np.finfo(work).max)
    if bad:
        notes.append(f"{bad} NaN/inf values written as 0 or {top:g}")
    out = np.empty(values.shape, dtype=dtype)
    flat_in, flat_out = values.reshape(-1), out.reshape(-1)
    step = _SCALE_CHUNK
    for start in range(0, flat_in.size, step):  # chunks: temporaries stay in cache
        chunk = flat_in[start : start + step]
        with np.errstate(invalid="ignore", over="ignore"):
            mapped = chunk - work(lo)
            if tiny:  # a range so narrow that top/range overflows: divide, then scale
                mapped /= work(hi - lo)
                mapped *= work(top)
            elif factor != 1.0:
                mapped *= work(factor)
            if bad:
                np.nan_to_num(mapped, copy=False, nan=0.0, posinf=top, neginf=0.0)
            np.clip(mapped, 0.0, top, out=mapped)
            np.rint(mapped, out=mapped)
        flat_out[start : start + step] = mapped
    return Scaled(out, scale, lo, hi, tuple(notes))


_SCALE_CHUNK = 2**16


def _finite_range(values: NDArray[Any]) -> tuple[float, float, int]:
    """(min, max) of the finite values (0, 0 if none) and how many are NaN or infinite."""
    if values.size == 0:
        return 0.0, 0.0, 0
    vmin, vmax = float(values.min()), float(values.max())
    if math.isfinite(vmin) and math.isfinite(vmax):
        return vmin, vmax, 0
    finite = np.isfinite(values)
    bad = int(values.size - finite.sum())
    if bad == values.size:
        return 0.0, 0.0, bad
    return float(values[finite].min()), float(values[finite].max()), bad
