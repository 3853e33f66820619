"""`convcalc apply` on several inputs: folders expanded, one output each in -o DIR/.

The whole batch is checked before any work, so that a bad batch writes nothing:
stdin (``-``) only alone; every input a readable regular file; no two inputs
writing the same output; no output that is an input unless ``--force``. Then the
output folder is created if it does not exist yet.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence

from convcalc.calc.files import describe_file_type
from convcalc.cli.apply_one import apply_one
from convcalc.cli.apply_options import Run
from convcalc.cli.output import say
from convcalc.cli.status import failure_of, internal_error
from convcalc.errors import ConvcalcError, RuntimeFailure

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
ARRAY_SUFFIXES = {".npy", ".txt", ".csv", ".tsv"}


def expand_inputs(inputs: Sequence[str]) -> list[str]:
    """The input files: each folder replaced by its images and matrices, sorted.

    Entries of a folder that are not regular files (a FIFO, a device, a link to one,
    a broken link) are skipped with a note on stderr: reading them could block or
    never end.
    """
    files: list[str] = []
    for item in inputs:
        if item != "-" and os.path.isdir(item):
            found, skipped = _folder_files(item)
            say([f"skipped {name}: {why}" for name, why in skipped])
            if not found:
                also = f" (skipped {len(skipped)} that are not regular files)" if skipped else ""
                raise RuntimeFailure(f"folder '{item}' holds no images or matrices{also}")
            files += found
        else:
            files.append(item)
    return files


def is_folder_output(output: str | None, inputs: int = 1) -> bool:
    """True when ``-o`` names a folder for ``inputs`` inputs: it ends with a slash or
    is an existing folder; for several inputs, also a new name without an output
    file extension (``-o out``)."""
    from convcalc.io.writing import OUTPUT_EXTENSIONS

    if not output or output == "-":
        return False
    if output.endswith(("/", os.sep)) or os.path.isdir(output):
        return True
    return (
        inputs > 1
        and not os.path.lexists(output)
        and os.path.splitext(output)[1].lower() not in OUTPUT_EXTENSIONS
    )


def apply_many(files: list[str], run: Run, jobs: int | None, scheduler: str | None = None) -> None:
    """Apply ``run`` to every file, writing each result into the ``-o`` folder: on
    ``jobs`` local processes, or on the Dask cluster whose scheduler is at ``scheduler``
    (see `convcalc.cli.apply_cluster`).

    Raises, before any work: ConvcalcError for stdin among several inputs, an
    ``-o`` that is not a folder, two inputs that map to the same output, an output
    that is an input (unless ``--force``), an input that is not a regular file, a
    malformed scheduler address or one given with ``-j``; RuntimeFailure for a
    missing input or a folder that cannot be created. A file that fails later is named
    and the others go on; RuntimeFailure at the end if any failed.
    """
    from convcalc.compute.batch import run_batch, worker_count
    from convcalc.present.tables import progress

    if "-" in files and len(files) > 1:
        raise ConvcalcError(
            f"'-' (stdin) cannot be one of {len(files)} inputs; valid: '-' alone, or "
            "files and folders"
        )
    if "-" in files:
        raise ConvcalcError(
            "'-' (stdin) has no name to give its output in a folder; valid: -o FILE or -o -"
        )
    if scheduler is not None:
        _check_scheduler(scheduler, jobs)
    folder = _output_folder(run.out.output, len(files))
    pairs = _plan(files, folder, force=run.out.force)
    batch = [(f, run._replace(out=run.out._replace(output=target))) for f, target in pairs]
    if scheduler is not None:
        from convcalc.cli.apply_cluster import apply_on_cluster

        apply_on_cluster(batch, scheduler, prepare=lambda: _make_folder(folder))
        return
    _make_folder(folder)
    failures: list[str] = []

    def failed(job: tuple[str, Run], error: Exception) -> None:
        failures.append(job[0])
        say(failure_lines(job[0], error))

    with progress(len(batch)) as advance:
        workers = worker_count(jobs, len(batch))
        run_batch(_run_pair, batch, workers=workers, advance=advance, failed=failed)
    refuse_failures(failures, len(batch))


def failure_lines(source: str, error: Exception) -> list[str]:
    """One line naming the input of a batch that failed and why (the error's hint, if
    any, after)."""
    failure = failure_of(error) or internal_error(error)
    why = (failure.message or type(error).__name__).removeprefix(f"{source}: ")
    return [f"{source} failed: {why}", *([failure.hint] if failure.hint else [])]


def refuse_failures(failures: Sequence[str], total: int) -> None:
    """Raise RuntimeFailure when some inputs of a batch of ``total`` failed (each was
    named on stderr as it failed; the others were written)."""
    if failures:
        raise RuntimeFailure(
            f"{len(failures)} of {total} inputs failed (named above); the other "
            f"{total - len(failures)} outputs were written"
        )


def refuse_scheduler(scheduler: str | None) -> None:
    """Refuse --scheduler for a run of one input into one file (or printed): a cluster
    runs the inputs of a batch, each into the -o folder."""
    if scheduler is not None:
        raise ConvcalcError(
            "--scheduler runs a batch of inputs into a folder (-o DIR/) on a cluster; one "
            "input with -o FILE (or printed) runs here: drop --scheduler, or give -o DIR/"
        )


def _run_pair(pair: tuple[str, Run]) -> None:
    apply_one(*pair)


def _output_name(source: str) -> str:
    name = os.path.basename(source)
    stem, suffix = os.path.splitext(name)
    keep = suffix.lower() in (IMAGE_SUFFIXES - {".gif"}) | {".npy", ".csv", ".txt"}
    return name if keep else stem + ".png"


def _folder_files(folder: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The images and matrices of a folder that are regular files, and the ones skipped
    with why."""
    found: list[str] = []
    skipped: list[tuple[str, str]] = []
    for name in sorted(os.listdir(folder)):
        if os.path.splitext(name)[1].lower() not in IMAGE_SUFFIXES | ARRAY_SUFFIXES:
            continue
        entry = os.path.join(folder, name)
        try:
            mode = os.stat(entry).st_mode  # follows links: a link to /dev/zero is a device
        except OSError:
            skipped.append((entry, "a broken link or unreadable entry"))
            continue
        if stat.S_ISREG(mode):
            found.append(entry)
        else:
            skipped.append((entry, f"{describe_file_type(mode)}, not a regular file"))
    return found, skipped


def _output_folder(output: str | None, count: int) -> str:
    """The folder ``-o`` names for ``count`` inputs (see :func:`is_folder_output`)."""
    if is_folder_output(output, count):
        assert output is not None
        return output
    need = f"{count} inputs need -o DIR/ (a folder) for their outputs"
    if not output or output == "-":
        raise ConvcalcError(need + ("" if not output else ", not stdout"))
    if os.path.lexists(output):
        raise ConvcalcError(f"{need}; '{output}' is a file")
    raise ConvcalcError(f"{need}; '{output}' names a file (write '{output}/' for a folder)")


def _plan(files: list[str], folder: str, *, force: bool) -> list[tuple[str, str]]:
    """Each input and the output it writes, checked against each other and against the
    files already in the folder (when it exists)."""
    from convcalc.io.reading import check_input
    from convcalc.io.writing import check_output

    for source in files:
        check_input(source)
    pairs = [(source, os.path.join(folder, _output_name(source))) for source in files]
    seen: dict[str, str] = {}
    for source, target in pairs:
        key = os.path.normcase(os.path.abspath(target))
        if key in seen:
            raise ConvcalcError(
                f"inputs '{seen[key]}' and '{source}' would both be written to '{target}'; "
                "valid: inputs with different names (a GIF's output is NAME.png), or one "
                "output folder each"
            )
        seen[key] = source
    if not os.path.isdir(folder):
        return pairs  # new (made by the caller) and empty: no output in it can be an input
    inputs = {_identity(source): source for source in files}  # one stat each, not N x N
    inputs.pop(None, None)
    for source, target in pairs:
        clash = inputs.get(_identity(target))
        try:
            check_output(target, inputs=[clash] if clash else [], force=force)
        except ConvcalcError as exc:
            raise type(exc)(f"the output of '{source}': {exc}", exc.hint) from None
    return pairs


def _identity(path: str) -> tuple[int, int] | None:
    """The file a path names (device and inode: links included), or None if none."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _check_scheduler(scheduler: str, jobs: int | None) -> None:
    """Refuse a malformed scheduler address, or one given with -j (local processes)."""
    from convcalc.compute.cluster import scheduler_address

    try:
        scheduler_address(scheduler)
    except ConvcalcError as exc:
        raise type(exc)(f"--scheduler {exc}", exc.hint) from None
    if jobs is not None:
        raise ConvcalcError(
            f"-j {jobs} sets the local worker processes and --scheduler sends the inputs to "
            "the cluster's workers; give one of them"
        )


def _make_folder(folder: str) -> None:
    """Create the output folder if it does not exist yet (its parent must)."""
    if os.path.isdir(folder):
        return
    try:
        os.mkdir(folder)
    except FileNotFoundError:
        parent = os.path.dirname(os.path.abspath(folder.rstrip("/" + os.sep)))
        raise RuntimeFailure(
            f"output folder '{folder}' cannot be created: its parent '{parent}' does not exist"
        ) from None
    except FileExistsError:
        raise ConvcalcError(f"'{folder}' is a file; the outputs need a folder") from None
    except OSError as exc:
        raise RuntimeFailure(
            f"output folder '{folder}' cannot be created ({exc.strerror or exc})"
        ) from exc
    say([f"created the folder {folder}"])
