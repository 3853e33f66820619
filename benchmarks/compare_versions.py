"""Two installs of convcalc side by side: is one slower than the other?

Run by hand, not by CI:
    python benchmarks/compare_versions.py OLD_CONVCALC NEW_CONVCALC [--rounds N]
Each workload runs the two executables alternately as whole processes (start-up,
reading and writing included) and prints the median wall time of each and their
ratio (new / old). Bytecode is compiled first: this machine sets
PYTHONDONTWRITEBYTECODE, which would otherwise charge every start-up for compiling.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def seconds(argv: list[str], cwd: str) -> float:
    """Wall seconds of one process, which must succeed."""
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def workloads(folder: str) -> list[tuple[str, list[str], int]]:
    """(title, convcalc arguments, rounds multiplier) for each workload."""
    return [
        ("shape 224 -k 3 -q (start-up)", ["shape", "224", "-k", "3", "-q"], 6),
        (
            "shape 224x224x3 --net resnet50 --json",
            ["shape", "224x224x3", "--net", "resnet50", "--json"],
            2,
        ),
        (
            "apply 4096x4096 float32 .npy, 3x3 -> .npy",
            ["apply", "big.npy", "-k", "box3", "-o", "out.npy", "--force"],
            1,
        ),
        (
            "apply 256x256 RGB PNG, gauss5 -> PNG",
            ["apply", str(SAMPLES / "photo.png"), "-k", "gauss5", "-o", "out.png", "--force"],
            2,
        ),
        (
            "apply --steps, the CS231n example",
            [
                "apply",
                str(SAMPLES / "cs231n_5x5x3.txt"),
                "-k",
                str(SAMPLES / "cs231n_w0.txt"),
                "-k",
                str(SAMPLES / "cs231n_w1.txt"),
                "--bias",
                "1,0",
                "-p",
                "1",
                "-s",
                "2",
                "--steps",
            ],
            2,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    for exe in (args.old, args.new):
        python = Path(exe).with_name("python")
        subprocess.run(
            [str(python), "-m", "compileall", "-q", "-x", "tests", "convcalc"],
            check=False,
            stdout=subprocess.DEVNULL,
        )
    with tempfile.TemporaryDirectory() as folder:
        import numpy as np

        np.save(
            os.path.join(folder, "big.npy"),
            np.random.default_rng(0).random((4096, 4096), dtype=np.float32),
        )
        print(
            f"median of alternating runs; ratio = new / old  ({sys.platform}, "
            f"{os.cpu_count()} cores)"
        )
        print("| workload | old | new | ratio |\n|---|---|---|---|")
        for title, argv, more in workloads(folder):
            times: dict[str, list[float]] = {"old": [], "new": []}
            for _ in range(args.rounds * more):
                for key, exe in (("old", args.old), ("new", args.new)):
                    times[key].append(seconds([exe, *argv], folder))
            old, new = (statistics.median(times[k]) for k in ("old", "new"))
            print(
                f"| {title} | {old * 1e3:.1f} ms | {new * 1e3:.1f} ms | {new / old:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
