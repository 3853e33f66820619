"""Benchmark convcalc's core against scipy.ndimage, scipy.signal and OpenCV.

Run by hand, not by CI:  pip install -e '.[bench]' && python benchmarks/bench_core.py
Each workload runs every contender alternately (round after round, after one warm-up
call each) on the same array, keeps each one's median time, and reports ratios to
convcalc's time, then rewrites the results table in benchmarks/README.md. Every
contender makes the same-size output (convcalc with the padding that keeps the size).
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from convcalc.calc.choices import Method, PoolKind
from convcalc.compute import ops

ROUNDS = 9
README = Path(__file__).with_name("README.md")


def workloads() -> list[tuple[str, dict[str, Callable[[], object]]]]:
    import cv2
    from scipy import ndimage, signal

    rng = np.random.default_rng(0)
    big = rng.random((4096, 4096), dtype=np.float32)
    mid = rng.random((2048, 2048), dtype=np.float32)
    k3 = rng.random((3, 3), dtype=np.float32)
    k7 = rng.random((7, 7), dtype=np.float32)
    k31 = rng.random((31, 31), dtype=np.float32)
    big3, mid3 = big[:, :, None], mid[:, :, None]

    def core(x: np.ndarray, k: np.ndarray, method: Method = Method.AUTO) -> Callable[[], object]:
        h = k.shape[0] // 2
        return lambda: ops.correlate(x, k[:, :, None, None], padding=(h, h), method=method)

    return [
        (
            "4096x4096 float32, 3x3 (same size)",
            {
                "convcalc": core(big3, k3),
                "scipy.ndimage.correlate": lambda: ndimage.correlate(big, k3),
                "cv2.filter2D": lambda: cv2.filter2D(big, -1, k3),
            },
        ),
        (
            "4096x4096 float32, 7x7 (same size)",
            {
                "convcalc": core(big3, k7),
                "scipy.ndimage.correlate": lambda: ndimage.correlate(big, k7),
                "cv2.filter2D": lambda: cv2.filter2D(big, -1, k7),
            },
        ),
        (
            "2048x2048 float32, 31x31 (same size)",
            {
                "convcalc": core(mid3, k31),
                "scipy.signal.fftconvolve": lambda: signal.fftconvolve(
                    mid, k31[::-1, ::-1], mode="same"
                ),
                "cv2.filter2D": lambda: cv2.filter2D(mid, -1, k31),
            },
        ),
        (
            "4096x4096 float32, 2x2 max pool",
            {
                "convcalc": lambda: ops.pool(big3, PoolKind.MAX, (2, 2)),
                "numpy reshape max": lambda: big.reshape(2048, 2, 2048, 2).max(axis=(1, 3)),
            },
        ),
    ]


def median_times(contenders: dict[str, Callable[[], object]]) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():
        fn()  # warm-up
    for _ in range(ROUNDS):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(found) for name, found in times.items()}


def main() -> None:
    lines = [
        f"Measured {datetime.date.today()} on {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}; medians of {ROUNDS} "
        "alternating rounds. Ratio = the peer's time / convcalc's time (above 1: convcalc "
        "is faster).",
        "",
        "| workload | contender | time | ratio |",
        "|---|---|---|---|",
    ]
    for title, contenders in workloads():
        times = median_times(contenders)
        ours = times["convcalc"]
        for name, seconds in times.items():
            ratio = "1 (reference)" if name == "convcalc" else f"{seconds / ours:.2f}"
            lines.append(f"| {title} | {name} | {seconds * 1e3:.1f} ms | {ratio} |")
            print(lines[-1])
    table = "\n".join(lines)
    text = README.read_text()
    text = re.sub(
        r"(<!-- results -->\n).*?(<!-- /results -->)",
        lambda m: m.group(1) + table + "\n" + m.group(2),
        text,
        flags=re.S,
    )
    README.write_text(text)


if __name__ == "__main__":
    main()
