"""A unit's receptive field drawn on the picture it looks at (``shape --rf-image``).

The picture keeps its pixels outside the field. Inside, the number of paths from each
input pixel to the unit (`convcalc.compute.fields.path_counts`) is laid over it as a
heat map, more opaque and brighter where more paths arrive, and the receptive field
box is outlined around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

BOX_COLOUR = (0, 255, 255)
"""The receptive field box: cyan, apart from the heat map's purples and yellows."""

_HEAT = np.array(
    [(0.00, 0, 0, 4), (0.25, 87, 16, 110), (0.50, 188, 55, 84),
     (0.75, 249, 142, 9), (1.00, 252, 255, 164)],
    dtype=np.float64,
)  # fmt: skip
"""Stops of an inferno-like ramp: position, red, green, blue."""

_ALPHA = (0.35, 0.80)
"""The heat map's opacity for the fewest paths and the most."""


class Box(NamedTuple):
    """A box of pixels, inclusive on both ends (rows top..bottom, columns left..right)."""

    top: int
    left: int
    bottom: int
    right: int


def field_box(
    start: Sequence[float], jump: Sequence[float], size: Sequence[int], unit: Sequence[int],
    shape: Sequence[int],
) -> Box:  # fmt: skip
    """The receptive field of a unit as pixels of a HxW picture, clipped to it.

    Per axis the field is centred on ``start + index·jump`` and spans ``size`` pixels:
    ``centre ± (size − 1)/2``.

    Examples
    --------
    >>> field_box((1.0, 1.0), (2, 2), (7, 7), (0, 3), (16, 16))
    Box(top=0, left=4, bottom=4, right=10)
    """
    lo, hi = [], []
    for s, j, r, i, n in zip(start, jump, size, unit, shape, strict=True):
        centre = s + i * j
        lo.append(max(0, int(np.ceil(centre - (r - 1) / 2 - 1e-9))))
        hi.append(min(n - 1, int(np.floor(centre + (r - 1) / 2 + 1e-9))))
    return Box(lo[0], lo[1], hi[0], hi[1])


def rf_picture(
    image: NDArray[Any], counts: NDArray[np.float64], box: Box, *, max_value: float | None = 255
) -> NDArray[np.uint8]:
    """Draw path counts as a heat overlay and the field's box on a picture.

    Parameters
    ----------
    image : ndarray
        HxWxC (C = 1 grey, 3 colour; more: the first three), on the scale ``max_value``
        (None: stretched from its minimum to its maximum).
    counts : ndarray
        HxW, the paths reaching each pixel; 0 leaves the pixel as it is.
    box : Box
        The receptive field, outlined in `BOX_COLOUR` just outside it.

    Returns
    -------
    ndarray of uint8
        HxWx3 RGB.
    """
    rgb = _as_rgb(image, max_value).astype(np.float64)
    reached = counts > 0
    if reached.any():
        level = counts / counts.max()
        alpha = np.where(reached, _ALPHA[0] + (_ALPHA[1] - _ALPHA[0]) * level, 0.0)[..., None]
        rgb = rgb * (1 - alpha) + _heat(level) * alpha
    picture = Image.fromarray(np.rint(rgb).astype(np.uint8), "RGB")
    width = max(1, min(counts.shape) // 128)
    ImageDraw.Draw(picture).rectangle(
        (box.left - width, box.top - width, box.right + width, box.bottom + width),
        outline=BOX_COLOUR,
        width=width,
    )
    return np.asarray(picture, dtype=np.uint8)


def _heat(level: NDArray[np.float64]) -> NDArray[np.float64]:
    """HxW values in 0-1 to HxWx3 colours of the ramp."""
    return np.stack(
        [np.interp(level, _HEAT[:, 0], _HEAT[:, channel]) for channel in (1, 2, 3)], axis=-1
    )


def _as_rgb(image: NDArray[Any], max_value: float | None) -> NDArray[np.uint8]:
    data = np.asarray(image, dtype=np.float64)
    data = data[..., None] if data.ndim == 2 else data
    data = np.repeat(data[..., :1], 3, axis=-1) if data.shape[-1] < 3 else data[..., :3]
    if max_value is None:
        low, high = float(data.min()), float(data.max())
        data = (data - low) * (255 / (high - low)) if high > low else np.zeros_like(data)
    elif max_value != 255:
        data = data * (255 / max_value)
    return np.clip(np.rint(data), 0, 255).astype(np.uint8)
