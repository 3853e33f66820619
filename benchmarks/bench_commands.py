"""Benchmark whole `convcalc` commands against the scripts a user would write instead.

Run by hand, not by CI:  pip install '.[bench,dask]' && python benchmarks/bench_commands.py
(a regular install, as a user has; the script compiles it). Each workload runs
convcalc's command and the peer script alternately as separate processes (start-up,
reading and writing included), and reports the median wall time of each, their ratio,
the median of the per-round ratios with its range, and the peak resident memory (from
wait4). The peer scripts are written into the data folder and printed with the
commands, so every row can be reproduced by hand. The "Whole commands" table in
benchmarks/README.md is rewritten.

    python benchmarks/bench_commands.py [--only WORD] [--rounds N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).with_name("README.md")
PY = sys.executable

PEERS = {
    "peer_filter.py": """\
import sys, numpy as np, cv2
x = np.load(sys.argv[1]); k = np.load(sys.argv[2])
y = cv2.filter2D(x, -1, k)
np.save(sys.argv[3], y)
""",
    "peer_pool.py": """\
import sys, numpy as np
x = np.load(sys.argv[1])
y = x.reshape(x.shape[0] // 2, 2, x.shape[1] // 2, 2).max(axis=(1, 3))
np.save(sys.argv[2], y)
""",
    "peer_png.py": """\
import sys, numpy as np, cv2
from PIL import Image
x = np.asarray(Image.open(sys.argv[1]))
g = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256
y = cv2.filter2D(x, -1, g, borderType=cv2.BORDER_REPLICATE)
Image.fromarray(y).save(sys.argv[2], compress_level=1)
""",
    "peer_folder.py": """\
import os, sys
from multiprocessing import Pool
import cv2, numpy as np

G = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256

def blur(name):
    x = cv2.imread(os.path.join(sys.argv[1], name))
    y = cv2.filter2D(x, -1, G, borderType=cv2.BORDER_REPLICATE)
    cv2.imwrite(os.path.join(sys.argv[2], name), y)

if __name__ == "__main__":
    os.makedirs(sys.argv[2], exist_ok=True)
    with Pool() as pool:
        pool.map(blur, sorted(os.listdir(sys.argv[1])))
""",
}
"""The obvious scripts: load, one OpenCV (or numpy) call, save."""

GAUSS = ["-k", "gauss5", "-p", "same", "--pad-mode", "replicate"]
FOLDER_FILES = 200
FOLDER_SIZE = (960, 1280)
"""Photo-sized: 1280x960 RGB, a phone picture scaled for the web."""


@dataclass(frozen=True)
class Workload:
    title: str
    ours: list[str]
    peer: list[str]
    rounds: int
    prepare: list[str] | None = None
    """A command run before each of ours and the peer's (outside the timing)."""


def workloads(convcalc: str, rounds: int, scheduler: str | None) -> list[Workload]:
    stream_rounds, folder_rounds = max(3, rounds // 3), max(3, rounds // 3)
    clear = [PY, "-c", "import shutil; shutil.rmtree('out', True); shutil.rmtree('peer', True)"]
    apply_npy = [convcalc, "apply", "big.npy"]
    found = [
        Workload(
            "4096x4096 float32 .npy, 3x3 kernel, same size",
            [*apply_npy, "-k", "k3.npy", "-p", "1", "-o", "out.npy", "--force"],
            [PY, "peer_filter.py", "big.npy", "k3.npy", "peer.npy"],
            rounds,
        ),
        Workload(
            "4096x4096 float32 .npy, 7x7 kernel, same size",
            [*apply_npy, "-k", "k7.npy", "-p", "3", "-o", "out.npy", "--force"],
            [PY, "peer_filter.py", "big.npy", "k7.npy", "peer.npy"],
            rounds,
        ),
        Workload(
            "2048x2048 float32 .npy, 31x31 kernel, same size",
            [convcalc, "apply", "mid.npy", "-k", "k31.npy", "-p", "15", "-o", "out.npy"],
            [PY, "peer_filter.py", "mid.npy", "k31.npy", "peer.npy"],
            rounds,
        ),
        Workload(
            "4096x4096 float32 .npy, 2x2 max pool",
            [*apply_npy, "--pool", "max", "-k", "2", "-o", "out.npy", "--force"],
            [PY, "peer_pool.py", "big.npy", "peer.npy"],
            rounds,
        ),
        Workload(
            "4096x4096 RGB PNG (gradients), 5x5 Gaussian to PNG",
            [convcalc, "apply", "big.png", *GAUSS, "-o", "out.png"],
            [PY, "peer_png.py", "big.png", "peer.png"],
            rounds,
        ),
        Workload(
            "4096x4096 photo-like RGB PNG (noisy), 5x5 Gaussian to PNG",
            [convcalc, "apply", "photo.png", *GAUSS, "-o", "out.png"],
            [PY, "peer_png.py", "photo.png", "peer.png"],
            rounds,
        ),
        Workload(
            "16384x16384 float32 .npy (1 GiB), 3x3 kernel, streamed, against cv2 in memory",
            [convcalc, "apply", "huge.npy", "-k", "k3.npy", "-p", "1", "-o", "out.npy"],
            [PY, "peer_filter.py", "huge.npy", "k3.npy", "peer.npy"],
            stream_rounds,
        ),
        Workload(
            f"folder of {FOLDER_FILES} {FOLDER_SIZE[1]}x{FOLDER_SIZE[0]} PNGs, 5x5 Gaussian, "
            "local process pool",
            [convcalc, "apply", "photos", *GAUSS, "-o", "out/"],
            [PY, "peer_folder.py", "photos", "peer"],
            folder_rounds,
            clear,
        ),
    ]
    if scheduler is not None:
        found.append(
            Workload(
                f"folder of {FOLDER_FILES} PNGs on a 2-worker LocalCluster (processes)",
                [convcalc, "apply", "photos", *GAUSS, "-o", "out/", "--scheduler", scheduler],
                [PY, "peer_folder.py", "photos", "peer"],
                folder_rounds,
                clear,
            )
        )
    found.append(
        Workload(
            "convcalc shape 224 -k 3 -q vs python -c 'import click'",
            [convcalc, "shape", "224", "-k", "3", "-q"],
            [PY, "-c", "import click"],
            max(40, rounds * 4),
        )
    )
    return found


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


def measure(work: Workload, folder: str) -> dict[str, float]:
    """Medians over alternating rounds (after one warm-up run of each), the first to run
    in a round alternating too."""
    times: dict[str, list[float]] = {"ours": [], "peer": []}
    peaks = {"ours": 0, "peer": 0}
    pair = (("ours", work.ours), ("peer", work.peer))
    for index in range(work.rounds + 1):
        for key, argv in pair if index % 2 else pair[::-1]:  # who goes first alternates
            if work.prepare:
                subprocess.run(work.prepare, cwd=folder, check=True)
            seconds, rss = run(argv, folder)
            if index:  # the first round warms the page cache and the bytecode
                times[key].append(seconds)
                peaks[key] = max(peaks[key], rss)
    ratios = [a / b for a, b in zip(times["ours"], times["peer"], strict=True)]
    return {
        "ours": statistics.median(times["ours"]),
        "peer": statistics.median(times["peer"]),
        "ratio": statistics.median(times["ours"]) / statistics.median(times["peer"]),
        "paired": statistics.median(ratios),
        "low": min(ratios),
        "high": max(ratios),
        "ours_rss": peaks["ours"],
        "peer_rss": peaks["peer"],
    }


def make_data(folder: str) -> None:
    import numpy as np
    from PIL import Image

    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    np.save(os.path.join(folder, "big.npy"), rng.random((4096, 4096), dtype=np.float32))
    np.save(os.path.join(folder, "mid.npy"), rng.random((2048, 2048), dtype=np.float32))
    huge = np.lib.format.open_memmap(
        os.path.join(folder, "huge.npy"), mode="w+", dtype=np.float32, shape=(16384, 16384)
    )
    for r in range(0, 16384, 1024):
        huge[r : r + 1024] = rng.random((1024, 16384), dtype=np.float32)
    huge.flush()
    del huge
    for k in (3, 7, 31):
        np.save(os.path.join(folder, f"k{k}.npy"), rng.random((k, k), dtype=np.float32))
    y, x = np.mgrid[0:4096, 0:4096]
    rgb = np.stack([(x * 255 // 4095), (y * 255 // 4095), ((x ^ y) & 255)], axis=2)
    Image.fromarray(rgb.astype(np.uint8)).save(os.path.join(folder, "big.png"), compress_level=1)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "samples"))
    from make_photo import photo

    Image.fromarray(photo(4096)).save(os.path.join(folder, "photo.png"), compress_level=1)
    photos = os.path.join(folder, "photos")
    os.makedirs(photos)
    big = photo(max(FOLDER_SIZE) * 2)
    for n in range(FOLDER_FILES):
        r, c = (n * 37) % FOLDER_SIZE[0], (n * 53) % FOLDER_SIZE[1]
        crop = big[r : r + FOLDER_SIZE[0], c : c + FOLDER_SIZE[1]]
        Image.fromarray(crop).save(os.path.join(photos, f"p{n:03d}.png"), compress_level=6)
    for name, text in PEERS.items():
        Path(folder, name).write_text(text)


def start_cluster(folder: str) -> tuple[subprocess.Popen[str], str] | None:
    """A 2-worker LocalCluster (processes) in a child process, and its address."""
    code = (
        "import sys, time\n"
        "from distributed import LocalCluster\n"
        "c = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, "
        "dashboard_address=None)\n"
        "print(c.scheduler_address, flush=True)\n"
        "sys.stdin.read()\n"
        "c.close()\n"
    )
    import importlib.util

    # not imported here: a child forked from a larger parent starts its peak RSS there
    if importlib.util.find_spec("distributed") is None:
        print("dask[distributed] is not installed: the cluster row is skipped", flush=True)
        return None
    proc = subprocess.Popen(
        [PY, "-c", code],
        cwd=folder,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def table(rows: list[tuple[Workload, dict[str, float]]], rounds: int) -> str:
    lines = [
        f"Measured {datetime.date.today()} on {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; whole processes alternating, medians of "
        f"{rounds} rounds after a warm-up (fewer for the 1 GiB and folder rows, more for "
        "start-up: see the commands). Ratio = convcalc's median over the peer's; paired = "
        "the median of the per-round ratios, with its range; peak RSS from wait4.",
        "",
        "| workload | convcalc | peer | ratio | paired (range) | convcalc peak RSS "
        "| peer peak RSS |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [_row(work, m) for work, m in rows]
    lines += ["", "The commands, run in the data folder (rounds in brackets):", "", "```"]
    for work, _ in rows:
        lines.append(f"[{work.rounds}] {' '.join(_short(a) for a in work.ours)}")
        lines.append(f"    vs {' '.join(_short(a) for a in work.peer)}")
    lines.append("```")
    return "\n".join(lines)


def _row(work: Workload, m: dict[str, float]) -> str:
    return (
        f"| {work.title} | {m['ours'] * 1e3:.0f} ms | {m['peer'] * 1e3:.0f} ms | "
        f"{m['ratio']:.2f} | {m['paired']:.2f} ({m['low']:.2f}-{m['high']:.2f}) | "
        f"{m['ours_rss'] / 2**20:.0f} MiB | {m['peer_rss'] / 2**20:.0f} MiB |"
    )


def _short(arg: str) -> str:
    """An argument as printed: the interpreter and convcalc by name."""
    if arg == PY:
        return "python"
    return "convcalc" if arg.endswith(os.sep + "convcalc") else arg


def compile_package() -> None:
    """Compile the convcalc that runs, as a plain install does: an editable install under
    PYTHONDONTWRITEBYTECODE=1 would compile every module on every run, and the peers'
    packages (numpy, cv2) come compiled."""
    code = "import convcalc, os; print(os.path.dirname(convcalc.__file__))"
    where = subprocess.run([PY, "-c", code], capture_output=True, text=True, check=True)
    subprocess.run([PY, "-m", "compileall", "-q", where.stdout.strip()], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run the workloads whose title contains this word")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--keep", help="make the data in this folder and keep it")
    args = parser.parse_args()
    convcalc = shutil.which("convcalc") or sys.exit("install convcalc first: pip install .")
    compile_package()
    folder = args.keep or tempfile.mkdtemp(prefix="convcalc-bench-")
    if not os.path.exists(os.path.join(folder, "photos")):
        # in a child process: wait4's peak RSS of a child starts from its parent's
        subprocess.run([PY, __file__, "--make-data", folder], check=True)
    cluster = start_cluster(folder)
    try:
        rows = []
        for work in workloads(convcalc, args.rounds, cluster[1] if cluster else None):
            if args.only and args.only not in work.title:
                continue
            rows.append((work, measure(work, folder)))
            print(_row(*rows[-1]), flush=True)
    finally:
        if cluster is not None:
            cluster[0].communicate("", timeout=60)
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    if args.only:
        print(table(rows, args.rounds))
        return
    text = README.read_text()
    text = re.sub(
        r"(<!-- commands -->\n).*?(<!-- /commands -->)",
        lambda m: m.group(1) + table(rows, args.rounds) + "\n" + m.group(2),
        text,
        flags=re.S,
    )
    README.write_text(text)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--make-data"]:
        make_data(sys.argv[2])
    else:
        main()
