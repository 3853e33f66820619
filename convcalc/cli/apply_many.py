"""`convcalc apply` on several inputs: folders expanded, one output each in -o DIR/."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from convcalc.cli.apply_one import apply_one
from convcalc.cli.apply_options import Run
from convcalc.errors import ConvcalcError, RuntimeFailure

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
ARRAY_SUFFIXES = {".npy", ".txt", ".csv", ".tsv"}


def expand_inputs(inputs: Sequence[str]) -> list[str]:
    files: list[str] = []
    for item in inputs:
        path = Path(item)
        if item != "-" and path.is_dir():
            found = sorted(
                str(p)
                for p in path.iterdir()
                if p.suffix.lower() in IMAGE_SUFFIXES | ARRAY_SUFFIXES
            )
            if not found:
                raise RuntimeFailure(f"folder '{item}' holds no images or matrices")
            files += found
        else:
            files.append(item)
    return files


def apply_many(files: list[str], run: Run, jobs: int | None) -> None:
    from convcalc.compute.batch import run_batch, worker_count
    from convcalc.present.tables import progress

    output = run.out.output
    if not output or not (output.endswith(("/", os.sep)) or os.path.isdir(output)):
        raise ConvcalcError(f"{len(files)} inputs need -o DIR/ (a folder) for their outputs")
    folder = Path(output)
    if not folder.is_dir():
        raise RuntimeFailure(f"output folder '{folder}' does not exist")
    pairs = [
        (f, run._replace(out=run.out._replace(output=str(folder / _output_name(f))))) for f in files
    ]
    with progress(len(pairs)) as advance:
        run_batch(_run_pair, pairs, workers=worker_count(jobs, len(pairs)), advance=advance)


def _run_pair(pair: tuple[str, Run]) -> None:
    apply_one(*pair)


def _output_name(source: str) -> str:
    path = Path(source)
    suffix = path.suffix.lower()
    keep = suffix in (IMAGE_SUFFIXES - {".gif"}) | {".npy", ".csv", ".txt"}
    return path.name if keep else path.stem + ".png"
