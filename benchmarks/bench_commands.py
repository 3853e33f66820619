"""Benchmark whole `convcalc` commands against the scripts a user would write instead.

Run by hand, not by CI:  pip install -e '.[bench]' && python benchmarks/bench_commands.py
Each workload runs convcalc's command and the peer script alternately as separate
processes, keeps each one's best wall time and its peak resident memory (from
wait4), and rewrites the "Whole commands" table in benchmarks/README.md.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROUNDS = 5
START_UP_ROUNDS = 30
"""Start-up times are a few ms apart and jitter by as much: they need more runs."""
README = Path(__file__).with_name("README.md")
PY = sys.executable


def run(argv: list[str], cwd: str) -> tuple[float, int]:
    """Wall seconds and peak resident memory (bytes) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        message = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{' '.join(argv)} failed: {message}")
    return seconds, usage.ru_maxrss * 1024


def workloads(convcalc: str) -> list[tuple[str, list[str], list[str]]]:
    cv2_filter = (
        "import sys, numpy as np, cv2; x = np.load(sys.argv[1]); k = np.load(sys.argv[2]); "
        "h = k.shape[0] // 2; "
        "y = cv2.filter2D(x, -1, k, borderType=cv2.BORDER_CONSTANT)[h:-h, h:-h]; "
        "np.save(sys.argv[3], y)"
    )
    numpy_pool = (
        "import sys, numpy as np; x = np.load(sys.argv[1]); "
        "y = x.reshape(x.shape[0] // 2, 2, x.shape[1] // 2, 2).max(axis=(1, 3)); "
        "np.save(sys.argv[2], y)"
    )
    pillow_cv2 = (
        "import sys, numpy as np, cv2; from PIL import Image; "
        "x = np.asarray(Image.open(sys.argv[1])); "
        "g = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256; "
        "y = cv2.filter2D(x, -1, g, borderType=cv2.BORDER_REPLICATE); "
        "Image.fromarray(y).save(sys.argv[2], compress_level=1)"
    )
    return [
        (
            "4096x4096 float32 .npy, 3x3 kernel",
            [convcalc, "apply", "big.npy", "-k", "k3.npy", "-o", "out.npy", "--force"],
            [PY, "-c", cv2_filter, "big.npy", "k3.npy", "peer.npy"],
        ),
        (
            "4096x4096 float32 .npy, 7x7 kernel",
            [convcalc, "apply", "big.npy", "-k", "k7.npy", "-o", "out.npy", "--force"],
            [PY, "-c", cv2_filter, "big.npy", "k7.npy", "peer.npy"],
        ),
        (
            "2048x2048 float32 .npy, 31x31 kernel",
            [convcalc, "apply", "mid.npy", "-k", "k31.npy", "-o", "out.npy", "--force"],
            [PY, "-c", cv2_filter, "mid.npy", "k31.npy", "peer.npy"],
        ),
        (
            "4096x4096 float32 .npy, 2x2 max pool",
            [convcalc, "apply", "big.npy", "--pool", "max", "-k", "2", "-o", "out.npy", "--force"],
            [PY, "-c", numpy_pool, "big.npy", "peer.npy"],
        ),
        (
            "4096x4096 RGB PNG, 5x5 Gaussian to PNG (compress level 1)",
            [
                convcalc,
                "apply",
                "big.png",
                "-k",
                "gauss5",
                "-p",
                "same",
                "--pad-mode",
                "replicate",
                "-o",
                "out.png",
                "--compress",
                "1",
                "--force",
            ],
            [PY, "-c", pillow_cv2, "big.png", "peer.png"],
        ),
        (
            "4096x4096 photo-like RGB PNG (noisy), 5x5 Gaussian to PNG (compress level 1)",
            [
                convcalc,
                "apply",
                "photo.png",
                "-k",
                "gauss5",
                "-p",
                "same",
                "--pad-mode",
                "replicate",
                "-o",
                "out.png",
                "--compress",
                "1",
                "--force",
            ],
            [PY, "-c", pillow_cv2, "photo.png", "peer.png"],
        ),
        (
            "convcalc shape 224 -k 3 -q vs python -c 'import click'",
            [convcalc, "shape", "224", "-k", "3", "-q"],
            [PY, "-c", "import click"],
        ),
    ]


def make_data(folder: str) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    np.save(os.path.join(folder, "big.npy"), rng.random((4096, 4096), dtype=np.float32))
    np.save(os.path.join(folder, "mid.npy"), rng.random((2048, 2048), dtype=np.float32))
    for k in (3, 7, 31):
        np.save(os.path.join(folder, f"k{k}.npy"), rng.random((k, k), dtype=np.float32))
    y, x = np.mgrid[0:4096, 0:4096]
    rgb = np.stack([(x * 255 // 4095), (y * 255 // 4095), ((x ^ y) & 255)], axis=2)
    Image.fromarray(rgb.astype(np.uint8)).save(os.path.join(folder, "big.png"), compress_level=1)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "samples"))
    from make_photo import photo

    Image.fromarray(photo(4096)).save(os.path.join(folder, "photo.png"), compress_level=1)


def main() -> None:
    convcalc = shutil.which("convcalc") or sys.exit("install convcalc first: pip install -e .")
    lines = [
        f"Measured {datetime.date.today()} on {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; whole processes, best of {ROUNDS} alternating "
        f"runs ({START_UP_ROUNDS} for start-up); peak RSS from wait4. Ratio = convcalc's "
        "time / the peer's (at most 1: convcalc is as fast or faster).",
        "",
        "| workload | convcalc | peer | ratio | convcalc peak RSS | peer peak RSS |",
        "|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as folder:
        # in a child process: wait4's peak RSS of a child starts from its parent's
        subprocess.run([PY, __file__, "--make-data", folder], check=True)
        for title, ours, theirs in workloads(convcalc):
            best = {"ours": (float("inf"), 0), "theirs": (float("inf"), 0)}
            for _ in range(START_UP_ROUNDS if "import click" in title else ROUNDS):
                for key, argv in (("ours", ours), ("theirs", theirs)):
                    seconds, rss = run(argv, folder)
                    best[key] = (min(best[key][0], seconds), max(best[key][1], rss))
            (t_ours, m_ours), (t_theirs, m_theirs) = best["ours"], best["theirs"]
            lines.append(
                f"| {title} | {t_ours * 1e3:.0f} ms | {t_theirs * 1e3:.0f} ms | "
                f"{t_ours / t_theirs:.2f} | {m_ours / 2**20:.0f} MiB | {m_theirs / 2**20:.0f} MiB |"
            )
            print(lines[-1], flush=True)
    text = README.read_text()
    text = re.sub(
        r"(<!-- commands -->\n).*?(<!-- /commands -->)",
        lambda m: m.group(1) + "\n".join(lines) + "\n" + m.group(2),
        text,
        flags=re.S,
    )
    README.write_text(text)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--make-data"]:
        make_data(sys.argv[2])
    else:
        main()
