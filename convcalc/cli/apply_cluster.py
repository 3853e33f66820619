"""`convcalc apply DIR -o OUT/ --scheduler ADDRESS`: a batch on an existing Dask cluster.

Where the files are: this process (the client) reads each input and ships its bytes
with the job; the worker puts them in a private temporary folder under the input's
name, reads and computes them as a local run does, encodes the output files there and
sends their bytes back; the client writes them into OUT/ atomically, never over an
input. So the workers need no file system shared with the client, only the same
convcalc, and the outputs are byte for byte those of a local run. The work (decoding,
computing, encoding) is the workers'; the client only reads and writes files.

A file that fails is named on stderr with why, the others go on; the command then
ends with exit status 1.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from convcalc.cli.apply_many import failure_lines, refuse_failures
from convcalc.cli.apply_one import compute_result, write_result
from convcalc.cli.apply_options import Run
from convcalc.cli.output import say
from convcalc.errors import ConvcalcError

Job = tuple[str, Run]
"""An input and the run that writes its output (``run.out.output``, in OUT/)."""


class Shipped(NamedTuple):
    """What a worker sends back for one input: its output files (names in the output
    folder, and contents) and the notes to print."""

    files: list[tuple[str, bytes]]
    notes: list[str]


def apply_on_cluster(
    jobs: Sequence[Job], address: str, *, prepare: Callable[[], None] = lambda: None
) -> None:
    """Run every job on the Dask cluster at ``address``, writing each output here.

    ``prepare`` runs once connected, before the first job (it creates the output
    folder, so that an unreachable scheduler leaves nothing behind).

    Raises
    ------
    RuntimeFailure
        The cluster cannot be used (see `convcalc.compute.cluster.connect`), or some
        inputs failed (each was named on stderr as it failed; the others were written).
    """
    from convcalc.compute.cluster import connect
    from convcalc.present.tables import progress

    failures: list[str] = []

    def failed(job: Job, error: Exception) -> None:
        failures.append(job[0])
        say(failure_lines(job[0], error))

    with connect(address) as cluster:
        prepare()
        with progress(len(jobs)) as advance:
            cluster.run_jobs(
                compute_shipped,
                jobs,
                load=input_bytes,
                finish=write_shipped,
                failed=failed,
                advance=advance,
            )
    refuse_failures(failures, len(jobs))


def compute_shipped(data: bytes, job: Job) -> Shipped:
    """On a worker: the output files of one input, given its bytes, as a local run
    writes them, and the notes it prints. Errors name the input and output as the
    client knows them, not the temporary files."""
    from convcalc.io.reading import read_input

    source, run = job
    assert run.out.output is not None
    rank = run.settings.rank
    with tempfile.TemporaryDirectory(prefix="convcalc-") as folder:
        here = os.path.join(folder, "in", os.path.basename(source))
        there = os.path.join(folder, "out", "")
        os.mkdir(os.path.dirname(here))
        os.mkdir(there)
        Path(here).write_bytes(data)
        names = {here: source, there: os.path.join(os.path.dirname(run.out.output), "")}
        try:
            loaded = read_input(here, gray=run.gray, max_pixels=run.max_pixels, rank=rank)
            result, notes = compute_result(loaded, run)
            out = run.out._replace(output=there + os.path.basename(run.out.output), fsync=False)
            lines, written = write_result(here, loaded, result, out, rank)
            files = [(os.path.basename(p), Path(p).read_bytes()) for p in written["paths"]]
        except ConvcalcError as exc:
            raise type(exc)(_renamed(str(exc), names), exc.hint) from None
    return Shipped(files, [_renamed(line, names) for line in [*notes, *lines]])


def write_shipped(job: Job, shipped: Shipped) -> None:
    """On the client: write a worker's output files beside ``run.out.output``,
    atomically and never over the input (unless --force), then print its notes."""
    from convcalc.io.writing import write_bytes

    source, run = job
    assert run.out.output is not None
    folder = os.path.dirname(run.out.output)
    for name, data in shipped.files:
        write_bytes(
            os.path.join(folder, name),
            data,
            inputs=[source],
            force=run.out.force,
            fsync=run.out.fsync,
        )
    say(shipped.notes)


def input_bytes(job: Job) -> bytes:
    """On the client: the bytes of a job's input, read under the rules every input
    obeys (a regular file, at most half the memory available here)."""
    from convcalc.calc.files import read_regular_file
    from convcalc.io.reading import input_rules

    return bytes(read_regular_file(job[0], **input_rules(job[0])))


def _renamed(text: str, names: dict[str, str]) -> str:
    """``text`` with each temporary path replaced by the path it stands for."""
    for temporary, real in names.items():
        text = text.replace(temporary, real)
    return text
