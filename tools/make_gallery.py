"""Regenerate the README gallery: what each kernel does to samples/photo.png, and the
step tables of the worked examples, all made by convcalc itself.

Run from the repository root:  python tools/make_gallery.py
Writes docs/gallery/*.png (through `convcalc apply`), docs/gallery/*.svg (rich's SVG
export of `convcalc apply --steps`) and docs/gallery/*.gif (`convcalc animate`).
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent
GALLERY = ROOT / "docs" / "gallery"
PHOTO = "samples/photo.png"

KERNELS = [
    "gauss5",
    "sharpen",
    "sobel-x",
    "sobel-y",
    "laplace8",
    "emboss",
    "outline",
    "motion",
    "edge-v",
    "box5",
]

STEPS = {
    "steps_cs231n": [
        "samples/cs231n_5x5x3.txt",
        "-k",
        "samples/cs231n_w0.txt",
        "-k",
        "samples/cs231n_w1.txt",
        "--bias",
        "1,0",
        "-p",
        "1",
        "-s",
        "2",
        "--at",
        "0,0",
        "--limit",
        "1",
    ],
    "steps_ufldl": ["samples/ufldl_5x5.txt", "-k", "1,0,1;0,1,0;1,0,1", "--at", "0,0"],
    "steps_maxpool": ["samples/maxpool_4x4.txt", "--pool", "max", "-k", "2"],
}

ANIMATIONS = {
    "slide_ufldl": ["samples/ufldl_5x5.txt", "-k", "1,0,1;0,1,0;1,0,1", "--cell", "28"],
    "slide_stride2": ["samples/edge_6x6.txt", "-k", "edge-v", "-p", "1", "-s", "2", "--cell", "28"],
    "slide_maxpool": ["samples/maxpool_4x4.txt", "--pool", "max", "-k", "2", "--cell", "28"],
    "cs231n": [*STEPS["steps_cs231n"][:11], "--cell", "24", "--duration", "900"],
    "grouped": [
        "samples/grouped_4x4x4.txt",
        *("-k", "1,0;0,1|0,1;1,0", "-k", "1,1;0,0|0,0;1,1"),
        *("-k", "1,0;1,0|0,-1;0,-1", "-k", "0,1;1,0|1,0;0,1"),
        *("--groups", "2", "--cell", "24", "--duration", "700"),
    ],
    "transposed": [
        "samples/maxpool_4x4.txt",
        "--transposed",
        "-k",
        "1,1;1,1",
        "-s",
        "2",
        "--cell",
        "28",
        "--duration",
        "600",
    ],
}


def convcalc(*args: str) -> str:
    """Run the installed convcalc and return what it printed on stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "convcalc", *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def main() -> None:
    GALLERY.mkdir(parents=True, exist_ok=True)
    for name in KERNELS:
        convcalc(
            "apply",
            PHOTO,
            "-k",
            name,
            "-p",
            "same",
            "--pad-mode",
            "replicate",
            "--compress",
            "9",
            "-o",
            f"docs/gallery/{name}.png",
            "--force",
        )
    for name, args in STEPS.items():
        text = convcalc("apply", *args, "--steps")
        console = Console(record=True, width=100, file=io.StringIO())
        console.print(text, end="", markup=False, highlight=False)
        console.save_svg(str(GALLERY / f"{name}.svg"), title=f"convcalc apply {' '.join(args)}")
    for name, args in ANIMATIONS.items():
        convcalc("animate", *args, "--force", "-o", f"docs/gallery/{name}.gif")
    print(
        f"wrote {len(KERNELS)} pictures, {len(STEPS)} step tables and {len(ANIMATIONS)} "
        f"animations to {GALLERY}"
    )


if __name__ == "__main__":
    main()
