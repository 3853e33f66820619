"""Reference implementations for the tests: the defining sums, one value at a time."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray


def brute_correlate(
    x: NDArray[Any],
    w: NDArray[Any],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
) -> NDArray[np.float64]:
    """Cross-correlation of an (already padded) HxWxC input with a KHxKWx(C/g)xF bank."""
    (h, wd, _), (kh, kw, cg, f) = x.shape, w.shape
    (sh, sw), (dh, dw) = stride, dilation
    ho, wo = (h - dh * (kh - 1) - 1) // sh + 1, (wd - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((ho, wo, f))
    for r in range(ho):
        for c in range(wo):
            for o in range(f):
                g = o // (f // groups)
                total = 0.0
                for i in range(kh):
                    for j in range(kw):
                        for k in range(cg):
                            total += x[r * sh + i * dh, c * sw + j * dw, g * cg + k] * w[i, j, k, o]
                out[r, c, o] = total
    return out
