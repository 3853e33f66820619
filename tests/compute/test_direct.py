"""The direct method's own paths: strips saturated into an integer output."""

from __future__ import annotations

import tracemalloc

import numpy as np

from convcalc.calc.choices import PadMode
from convcalc.compute.direct import correlate_direct
from convcalc.compute.padding import PaddedInput


def test_uint8_output_never_holds_a_float_copy_of_the_result() -> None:
    x = np.random.default_rng(8).integers(0, 256, (4096, 512, 3), dtype=np.uint8)
    g = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256
    bank = np.broadcast_to(g[:, :, None, None], (5, 5, 1, 3)).astype(np.float32)
    tracemalloc.start()
    try:
        out = correlate_direct(
            PaddedInput(x, [(2, 2), (2, 2)], PadMode.REPLICATE, dtype=np.float32),
            bank,
            groups=3,
            out_dtype=np.uint8,
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.dtype == np.uint8 and out.shape == x.shape
    float_result = out.size * 4  # what a float32 result would take: 24 MiB
    assert peak - out.nbytes < float_result / 2, peak  # the strips' buffers only
