"""Draw samples/photo.png: a synthetic 256x256 RGB test picture (free to redistribute).

Gradients, discs, squares, stripes at several frequencies and a little noise, so
that blur, sharpening and edge kernels each have something to show.
Run: python samples/make_photo.py
"""

from pathlib import Path

import numpy as np
from PIL import Image


def photo(size: int = 256, seed: int = 7) -> np.ndarray:
    """The test picture as a size x size x 3 uint8 array."""
    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    r = 0.55 + 0.35 * x
    g = 0.35 + 0.45 * y
    b = 0.75 - 0.4 * x * y
    img = np.stack([r, g, b], axis=2)
    disc = (x - 0.3) ** 2 + (y - 0.32) ** 2 < 0.18**2
    img[disc] = (0.95, 0.85, 0.2)
    square = (np.abs(x - 0.72) < 0.15) & (np.abs(y - 0.3) < 0.15)
    img[square] = (0.15, 0.2, 0.55)
    ring = np.abs(np.hypot(x - 0.7, y - 0.72) - 0.16) < 0.02
    img[ring] = (0.05, 0.05, 0.05)
    stripes = (y > 0.6) & (x < 0.45)
    frequency = 4 + 20 * x
    img[stripes] = (0.5 + 0.45 * np.sin(2 * np.pi * frequency * x))[stripes, None]
    noise = np.random.default_rng(seed).normal(0, 0.015, img.shape)
    return (np.clip(img + noise, 0, 1) * 255).round().astype(np.uint8)


if __name__ == "__main__":
    out = Path(__file__).with_name("photo.png")
    Image.fromarray(photo()).save(out, optimize=True)
    print(f"wrote {out}")
