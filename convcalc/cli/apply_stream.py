"""`convcalc apply` on a `.npy` input too large to hold: computed and written by strips.

A run is streamed when its input is a ``.npy`` file (HxW or HxWxC), its output
``-o X.npy``, it shows no steps, pictures or gradients, and running it in memory
would need more than `STREAM_ABOVE` bytes (`convcalc.compute.pipeline.estimate_bytes`):
smaller runs take the in-memory path as before, at its speed. The input is read
through a memory map a strip of rows at a time, each strip computed with
`convcalc.compute.strips` and its rows written in order into the temporary file
`convcalc.io.writing.replacing` renames over the output at the end, so memory
holds a few strips whatever the input's size. Everything else is as in
`convcalc.cli.apply_one`: the checks and their messages (the input's values are
checked strip by strip; a bad one leaves no output file), the notes, the JSON
document (statistics gathered over the strips).

A pipeline that is not row-local (global pooling, transposed
convolution, wrap padding after a window layer), ``--gray`` on several channels,
and a Fortran-ordered array run in memory, as before, with a note under -v.

The strip budget, `STRIP_BYTES` of working set, can be set (in bytes) with the
environment variable ``CONVCALC_STRIP_BYTES``, which also scales `STREAM_ABOVE`:
the tests use it to stream small arrays in many strips.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from convcalc.cli.apply_options import Run
from convcalc.cli.output import count_text, say
from convcalc.errors import ConvcalcError

STRIP_BYTES = 64 * 2**20
"""The working set of one strip, in bytes: the input rows it reads, their padded copy
and the output with an accumulator (as `estimate_bytes` counts them)."""

STREAM_STRIPS = 8
"""A run is streamed when in memory it would need more than this many strips' budget."""

STREAM_ABOVE = STREAM_STRIPS * STRIP_BYTES
"""The in-memory working set above which a .npy to .npy run is streamed (512 MiB)."""

BUDGET_VARIABLE = "CONVCALC_STRIP_BYTES"
"""The environment variable that sets the strip budget (tests)."""


class StreamJob(NamedTuple):
    """A run to stream: the input, its header, the strip budget, and the plan (None
    when the input or the layers are refused: `apply_streamed` says why)."""

    path: str
    header: Any
    budget: int
    plan: Any


class Plan(NamedTuple):
    """The stages' row geometry, the strips, their height and the largest working set."""

    geometry: Any
    strips: Any
    height: int
    peak: int


def stream_job(path: str, run: Run) -> StreamJob | None:
    """The streaming job for applying ``run`` to ``path``, or None to compute it in memory.

    Reads the input's header only. A refused input or layer that would stream (a
    large file with a dtype `load_npy` refuses, a layer that does not fit) gives a
    job whose errors `apply_streamed` raises, in the order the in-memory path would.
    """
    out, report = run.out, run.report
    if (
        path == "-"
        or not path.lower().endswith(".npy")
        or out.output is None
        or not out.output.lower().endswith(".npy")
        or run.settings.rank != 2
        or report.steps
        or report.show
        or report.backward
    ):
        return None
    from convcalc.io.npy_stream import NpyRows, peek_npy_header

    header = peek_npy_header(path)
    if header is None or len(header.shape) not in (2, 3):
        return None
    budget = strip_budget()
    if _in_memory_bytes(header, run) <= STREAM_STRIPS * budget:
        return None
    from convcalc.compute.strips import NotRowLocal  # only now: it costs a small run 2 ms

    if run.gray and len(header.shape) == 3 and header.shape[2] != 1:
        why = "--gray converts the whole input to one channel"
    elif header.fortran_order:
        why = "the array is stored column by column (Fortran order)"
    else:
        try:
            return StreamJob(path, header, budget, _plan(NpyRows(path, header), run, budget))
        except NotRowLocal as exc:
            why = str(exc)
        except ConvcalcError:
            return StreamJob(path, header, budget, None)
    if report.verbose:
        say([f"computed in memory, not in strips: {why}"])
    return None


def apply_streamed(job: StreamJob, run: Run) -> dict[str, Any] | None:
    """Apply ``run`` to the job's input strip by strip; the JSON document under --json.

    As `convcalc.cli.apply_one.apply_one` with a ``.npy`` output: notes on stderr,
    nothing on stdout but the JSON document, which is returned.
    """
    from convcalc.calc.choices import FileFormat
    from convcalc.cli.apply_one import SMALL_CELLS, result_doc
    from convcalc.compute.memory import require_memory
    from convcalc.compute.pipeline import not_finite_note
    from convcalc.compute.strip_runner import StripRunner, StripStats
    from convcalc.io.npy_stream import NpyRows, NpyRowWriter
    from convcalc.io.writing import check_output, replacing
    from convcalc.present.tables import progress

    out, report = run.out, run.report
    assert out.output is not None
    check_output(out.output, inputs=[job.path], force=out.force, sheet=out.sheet)
    source = NpyRows(job.path, job.header)
    plan = job.plan or _plan(source, run, job.budget)
    require_memory(plan.peak, "try a smaller input, or fewer filters")
    runner = StripRunner(plan.geometry, run.settings)
    in_shape, out_shape = plan.geometry[0].in_shape, plan.geometry[-1].out_shape
    file_shape = out_shape[:2] if out_shape[2] == 1 else out_shape
    stats = StripStats() if report.as_json else None
    kept: list[Any] | None = [] if out_shape[0] * out_shape[1] <= SMALL_CELLS else None

    def read(rows: Any) -> Any:
        values = source.read(rows.lo, rows.hi, check=not rows.far)
        return values[..., None] if values.ndim == 2 else values

    with (
        replacing(out.output, fsync=out.fsync) as temp,
        open(temp, "xb") as file,
        progress(len(plan.strips)) as advance,
    ):
        writer = NpyRowWriter(file, file_shape)
        for strip in plan.strips:
            rows = runner.run(strip, read)
            writer.write(rows.reshape(len(rows), *file_shape[1:]))
            if stats is not None:
                stats.add(rows)
            if kept is not None:
                kept.append(rows.copy())
            del rows
            advance()
        source.check_rest()
        writer.finish()
    notes = [n for n in runner.notes if report.verbose or "auto" not in n]
    if runner.missing:
        notes.append(not_finite_note(runner.missing, runner.values))
    if report.verbose:
        notes.append(
            f"computed in {len(plan.strips)} strips of at most "
            f"{count_text(plan.height, 'output row')}, the input read through a memory map"
        )
    notes.append(f"wrote {out.output} ({'x'.join(map(str, file_shape))})")
    say(notes)
    if stats is None:
        return None
    if kept is not None:
        import numpy as np

        doc = result_doc(np.concatenate(kept), in_shape)
    else:
        doc = {"input_shape": list(in_shape), "output_shape": list(out_shape)} | stats.stats()
    written = {
        "paths": [out.output],
        "format": str(FileFormat.NPY),
        "scale": None,
        "value_range": None,
        "bits": None,
    }
    return doc | {"written": written, "notes": notes}


def strip_budget() -> int:
    """The strip budget in bytes: `STRIP_BYTES`, or ``CONVCALC_STRIP_BYTES``."""
    text = os.environ.get(BUDGET_VARIABLE)
    if text is None:
        return STRIP_BYTES
    if not text.strip().isdigit() or int(text) < 1:
        raise ConvcalcError(
            f"{BUDGET_VARIABLE}={text!r} is not valid; valid: a number of bytes, at least 1"
        )
    return int(text)


# -- helpers ---------------------------------------------------------------


def _in_memory_bytes(header: Any, run: Run) -> int:
    """The working set of the in-memory run (`estimate_bytes`), or the file's size when
    its header does not describe an array apply reads."""
    from convcalc.compute.arrays import working_dtype
    from convcalc.compute.pipeline import estimate_bytes

    shape = header.shape
    if header.dtype.kind not in "biuf" or not all(type(n) is int and n > 0 for n in shape):
        return int(header.size)
    itemsize = working_dtype(header.dtype).itemsize
    return estimate_bytes(_hwc(shape), run.stages, run.settings, itemsize)


def _plan(source: Any, run: Run, budget: int) -> Plan:
    """The strips of the run on the input ``source`` (an `NpyRows`), for ``budget``.

    Raises what the in-memory run raises for layers that do not fit, and NotRowLocal.
    """
    from convcalc.compute.arrays import working_dtype
    from convcalc.compute.pipeline import estimate_bytes
    from convcalc.compute.strips import plan_strips, stage_rows, strip_height

    geometry = stage_rows(run.stages, run.settings, _hwc(source.shape))
    itemsize = working_dtype(source.dtype).itemsize

    def working(shape: tuple[int, int, int]) -> int:
        return estimate_bytes(shape, run.stages, run.settings, itemsize)

    height = strip_height(geometry, budget, working)
    strips = plan_strips(geometry, height)
    _, width, channels = geometry[0].in_shape
    tallest = max(sum(r.hi - r.lo for r in strip.spans[0].rows_in) for strip in strips)
    return Plan(geometry, strips, height, working((tallest, width, channels)))


def _hwc(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """An HxW or HxWxC shape as HxWxC."""
    return (shape[0], shape[1], shape[2] if len(shape) == 3 else 1)
