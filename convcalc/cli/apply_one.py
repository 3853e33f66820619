"""`convcalc apply` on one input: read it, run the layers, show or write the result.

With ``--json`` the document is returned rather than printed, so that stdout holds
exactly one JSON document whatever else was asked: the result (its values when small,
else statistics), or the ``--steps`` trace; with ``-o FILE`` it also says what was
written. ``--show`` then draws on stderr.
"""

from __future__ import annotations

from typing import Any

import click

from convcalc.calc.choices import Format, Scale
from convcalc.cli.apply_options import OutputOptions, Run
from convcalc.cli.output import busy, json_numbers, print_rich, say
from convcalc.errors import ConvcalcError

SMALL_CELLS = 400
"""Results with at most this many values per channel print as a table without -o."""


def apply_one(path: str, run: Run) -> dict[str, Any] | None:
    """Apply ``run`` to the input at ``path``; the JSON document under --json, else None.

    Everything but the JSON document is printed here: tables, steps and pictures on
    stdout (``--show`` on stderr under --json), notes on stderr.
    """
    from convcalc.compute.pipeline import quiet_overflow
    from convcalc.io.reading import read_input
    from convcalc.io.writing import check_output

    out, report = run.out, run.report
    if out.output and out.output != "-":
        check_output(out.output, inputs=[path], force=out.force, sheet=out.sheet)
    rank = run.settings.rank
    loaded = read_input(path, gray=run.gray, max_pixels=run.max_pixels, rank=rank)
    with busy(
        f"applying {len(run.stages)} layer(s) to {shape_text(loaded.data, rank)}",
        loaded.data.size,
    ):
        result, notes = compute_result(loaded, run)
    doc: dict[str, Any] | None = None
    if report.steps:
        with quiet_overflow():
            doc = (_backward_steps if report.backward else _steps)(loaded.data, run)
    if report.show:
        _print_show(loaded.data, result, stderr=report.as_json, rank=rank)
    if report.as_json and doc is None:
        doc = result_doc(result, loaded.data.shape, rank)
    grads = _backward(loaded.data, run) if report.backward else None
    if doc is not None and grads is not None:
        doc |= _gradients_doc(grads, run, rank)
    if out.output:
        lines, written = write_result(path, loaded, result, out, rank)
        notes += lines
        say(notes)
        if doc is not None:
            doc |= {"written": written, "notes": notes}
        return doc
    say(notes)
    if doc is not None:
        doc.setdefault("notes", notes)
    else:
        _print_result(result, Format(report.fmt), rank)
        if grads is not None:
            _print_gradients(grads, run, rank)
    return doc


def compute_result(loaded: Any, run: Run) -> tuple[Any, list[str]]:
    """The result of ``run``'s layers on an input read by ``read_input``, and the notes
    to print (the input's, then the pipeline's); refused before any work if it would
    not fit in the memory available now."""
    from convcalc.compute.pipeline import estimate_bytes
    from convcalc.compute.pipeline import run as run_pipeline

    _check_memory(loaded.data, run, estimate_bytes)
    out_dtype = "uint8" if _writes_8bit(loaded.data, run) else None
    outcome = run_pipeline(loaded.data, run.stages, run.settings, out_dtype=out_dtype)
    notes = [n for n in outcome.notes if run.report.verbose or "auto" not in n]
    return outcome.output, [*loaded.notes, *notes]


def write_result(
    path: str, loaded: Any, result: Any, out: OutputOptions, rank: int = 2
) -> tuple[list[str], dict[str, Any]]:
    """Write the result of the input ``path`` (read as ``loaded``) where ``out.output``
    says; the lines to print and what was written (for JSON). A 1-D or 3-D result keeps
    its rank in a ``.npy``."""
    write = _write if rank == 2 else _write_ranked
    return write(path, loaded, result, out)


def shape_text(array: Any, rank: int = 2) -> str:
    """HxWxC, or HxW for one channel (at rank 1 LxC or L, at rank 3 DxHxWxC or DxHxW)."""
    one = array.ndim == rank + 1 and array.shape[-1] == 1
    return "x".join(map(str, array.shape[:-1] if one else array.shape))


# -- the result ---------------------------------------------------------------


def result_doc(result: Any, input_shape: tuple[int, ...], rank: int = 2) -> dict[str, Any]:
    """``input_shape``, ``output_shape`` and the values (``output``) or statistics.

    At rank 1 and 3 the values are nested by rank (L, or DxHxW, for one channel;
    then channels last) and ``rank`` is told.
    """
    doc: dict[str, Any] = {"input_shape": list(input_shape), "output_shape": list(result.shape)}
    if rank != 2:
        values = result[..., 0] if result.shape[-1] == 1 else result
        small = _small_ranked(result)
        return {"rank": rank, **doc} | (
            {"output": json_numbers(values)} if small else _stats(result)
        )
    return doc | ({"output": json_numbers(result)} if _small(result) else _stats(result))


def _print_result(result: Any, fmt: Format, rank: int = 2) -> None:
    from convcalc.present.tables import matrix_table

    if rank != 2:
        _print_ranked(result, fmt, rank)
        return
    if fmt != Format.TABLE:
        from convcalc.present.exports import matrix_rows, write_table

        click.echo(write_table(fmt, matrix_rows(result)), nl=False)
        return
    if _small(result):
        for c in range(result.shape[2]):
            title = f"output {shape_text(result)}" + (
                f", channel {c}" if result.shape[2] > 1 else ""
            )
            print_rich(matrix_table(result[:, :, c], title))
        return
    stats = _stats(result)
    click.echo(
        f"output {shape_text(result)}: min {stats['min']:.6g}, max {stats['max']:.6g}, "
        f"mean {stats['mean']:.6g}"
    )
    say(["too large to print; save it with -o out.png (picture) or -o out.npy (values)"])


def _print_ranked(result: Any, fmt: Format, rank: int) -> None:
    """A 1-D result as a one-row table per channel; a 3-D one slice by slice (depth,
    then channel); statistics when large."""

    if fmt != Format.TABLE:
        if rank != 1:
            raise ConvcalcError(
                f"--format {fmt} writes a matrix; a 3-D result prints as tables or --json"
            )
        from convcalc.present.exports import matrix_rows, write_table

        click.echo(write_table(fmt, matrix_rows(result[None])), nl=False)
        return
    if not _small_ranked(result):
        stats = _stats(result)
        click.echo(
            f"output {shape_text(result, rank)}: min {stats['min']:.6g}, max {stats['max']:.6g}, "
            f"mean {stats['mean']:.6g}"
        )
        say(["too large to print; save it with -o out.npy (values)"])
        return
    _print_ranked_tables(result, f"output {shape_text(result, rank)}", rank)


def _print_ranked_tables(values: Any, title: str, rank: int) -> None:
    """A 1-D (*N) x C array as a one-row table per channel; a 3-D one slice by slice
    (depth, then channel), each titled ``title, depth d, channel c``."""
    from convcalc.present.tables import matrix_table

    channels = values.shape[-1]
    slices = [values[None]] if rank == 1 else list(values)
    for d, plane in enumerate(slices):
        for c in range(channels):
            where = [f"depth {d}"] if rank == 3 else []
            where += [f"channel {c}"] if channels > 1 else []
            print_rich(matrix_table(plane[..., c], ", ".join([title, *where])))


def _small_ranked(result: Any) -> bool:
    """A 1-D result of at most 24 values per channel (one row), a 3-D one of at most
    SMALL_CELLS values per channel, rows of at most 24."""
    cells = result.size // result.shape[-1]
    return bool(cells <= SMALL_CELLS and result.shape[-2] <= 24)


def _small(result: Any) -> bool:
    return bool(result.shape[0] * result.shape[1] <= SMALL_CELLS and result.shape[1] <= 24)


def _stats(array: Any) -> dict[str, float]:
    import numpy as np

    with np.errstate(over="ignore", invalid="ignore"):
        return {
            "min": float(array.min()),
            "max": float(array.max()),
            "mean": float(array.mean(dtype=np.float64)),
        }


# -- gradients ----------------------------------------------------------------


def _backward(data: Any, run: Run) -> Any:
    """The backward pass of the run, from the --grad-output file or all ones."""
    from convcalc.compute.gradients import backward
    from convcalc.compute.pipeline import quiet_overflow
    from convcalc.io.reading import read_input

    path = run.report.grad_output
    upstream = None
    if path is not None:
        upstream = read_input(path, max_pixels=run.max_pixels, rank=run.settings.rank).data
    with quiet_overflow():
        try:
            return backward(data, run.stages, run.settings, upstream)
        except ConvcalcError as exc:
            if path is not None and "upstream gradient" in str(exc):
                raise ConvcalcError(f"--grad-output {path}: {exc}", exc.hint) from None
            raise


def _gradients_doc(grads: Any, run: Run, rank: int = 2) -> dict[str, Any]:
    """``grad_input`` (HxWxC; ``grad_input_stats`` when large), and per weighted layer
    ``grad_kernel`` (one per filter) and ``grad_bias``: at the top for one such layer,
    else in ``grad_layers`` with each layer's number and spec.

    At rank 1 and 3 ``grad_input`` nests as ``output`` does (L or DxHxW for one
    channel, then channels last); each ``grad_kernel`` has its filter's shape.
    """
    grad_input = grads.grad_input
    doc: dict[str, Any] = {
        "grad_output": "ones" if run.report.grad_output is None else run.report.grad_output
    }
    if rank != 2 and _small_ranked(grad_input):
        one = grad_input.shape[-1] == 1
        doc["grad_input"] = json_numbers(grad_input[..., 0] if one else grad_input)
    elif rank == 2 and _small(grad_input):
        doc["grad_input"] = json_numbers(grad_input)
    else:
        doc["grad_input_stats"] = _stats(grad_input)
    weighted = [
        (position, run.stages[position - 1].spec.text, layer)
        for position, layer in enumerate(grads.layers, start=1)
        if layer is not None
    ]
    entries = [
        {
            "layer": position,
            "spec": text,
            "grad_kernel": [json_numbers(k) for k in layer.kernels],
            **({} if layer.bias is None else {"grad_bias": json_numbers(list(layer.bias))}),
        }
        for position, text, layer in weighted
    ]
    if len(entries) == 1:
        doc |= {key: entries[0][key] for key in ("grad_kernel", "grad_bias") if key in entries[0]}
    elif entries:
        doc["grad_layers"] = entries
    return doc


def _print_gradients(grads: Any, run: Run, rank: int = 2) -> None:
    """The gradients as tables (statistics for a large input) on stdout; at rank 1 and
    3 one-row tables and depth slices, as the output."""
    from convcalc.present.tables import matrix_table

    source = run.report.grad_output or "all ones"
    click.echo(f"gradients, with dL/dY = {source}:")
    grad_input = grads.grad_input
    title = f"dL/dX {shape_text(grad_input, rank)}"
    if rank != 2 and _small_ranked(grad_input):
        _print_ranked_tables(grad_input, title, rank)
    elif rank == 2 and _small(grad_input):
        print_rich(matrix_table(grad_input, title))
    else:
        stats = _stats(grad_input)
        click.echo(
            f"{title}: min {stats['min']:.6g}, max {stats['max']:.6g}, mean {stats['mean']:.6g}"
        )
    several = sum(layer is not None for layer in grads.layers) > 1
    for position, layer in enumerate(grads.layers, start=1):
        if layer is None:
            continue
        where = f"layer {position} ({run.stages[position - 1].spec.text}) " if several else ""
        for f, kernel in enumerate(layer.kernels):
            if rank == 2:
                print_rich(matrix_table(kernel, f"{where}dL/dW filter {f + 1}"))
            else:
                planes = kernel[..., None] if kernel.ndim == rank else kernel
                _print_ranked_tables(planes, f"{where}dL/dW filter {f + 1}", rank)
        if layer.bias is not None:
            click.echo(f"{where}dL/db: {', '.join(f'{v:.6g}' for v in layer.bias)}")


# -- writing ------------------------------------------------------------------


def _write(
    path: str, loaded: Any, result: Any, out: OutputOptions
) -> tuple[list[str], dict[str, Any]]:
    """Write the result where -o says; the notes to print and what was written (for JSON)."""
    from convcalc.io.writing import write_output

    assert out.output is not None
    notes = []
    alpha = loaded.alpha
    if alpha is not None and alpha.shape != result.shape[:2]:
        notes.append("alpha dropped: the output size differs from the input's")
        alpha = None
    written = write_output(
        out.output,
        result,
        scale=Scale(out.scale),
        alpha=alpha,
        max_value=loaded.max_value or 255.0,
        inputs=[path],
        force=out.force,
        compress_level=out.compress,
        sheet=out.sheet,
        fsync=out.fsync,
    )
    notes += list(written.notes)
    value_range = None
    if written.scale is not None and written.value_range is not None:
        lo, hi = value_range = written.value_range
        notes.append(
            f"scaled with {written.scale}: [{lo:.6g}, {hi:.6g}] → [0, "
            f"{2 ** (written.bits or 8) - 1}]"
        )
    where = "PNG to stdout" if out.output == "-" else ", ".join(written.paths)
    doc = {
        "paths": list(written.paths),
        "format": str(written.format),
        "scale": None if written.scale is None else str(written.scale),
        "value_range": None if value_range is None else list(value_range),
        "bits": written.bits,
    }
    return [*notes, f"wrote {where} ({shape_text(result)})"], doc


def _write_ranked(
    path: str, loaded: Any, result: Any, out: OutputOptions
) -> tuple[list[str], dict[str, Any]]:
    """Write a 1-D or 3-D result: a .npy keeps the rank (L, LxC, DxHxW, DxHxWxC); a
    1-D result to .csv/.txt is one row per channel."""
    from convcalc.io.writing import write_npy, write_output

    assert out.output is not None
    if not out.output.lower().endswith(".npy"):  # refused before for rank 3
        written = write_output(
            out.output, result[None], inputs=[path], force=out.force, fsync=out.fsync
        )
        where = ", ".join(written.paths)
    else:
        values = result[..., 0] if result.shape[-1] == 1 else result
        write_npy(out.output, values, inputs=[path], force=out.force, fsync=out.fsync)
        where = out.output
    doc = {"paths": [where], "format": where.rsplit(".", 1)[-1].lower()}
    return [f"wrote {where} ({shape_text(result, result.ndim - 1)})"], doc


def _writes_8bit(data: Any, run: Run) -> bool:
    """True when the result goes to an 8-bit image unchanged, so it can be made as uint8."""
    from convcalc.compute.pipeline import stays_8bit
    from convcalc.io.writing import writes_8bit_image

    return (
        run.out.output is not None
        and writes_8bit_image(run.out.output, Scale(run.out.scale))
        and stays_8bit(data, run.stages, run.settings)
    )


def _check_memory(data: Any, run: Run, estimate_bytes: Any) -> None:
    """Refuse, before any work, a run that would not fit in the memory available now."""
    from convcalc.compute.memory import require_memory

    itemsize = 4 if data.dtype == "float32" else 8
    require_memory(
        estimate_bytes(data.shape, run.stages, run.settings, itemsize),
        "try a smaller input, --gray, or fewer filters",
    )


# -- steps and pictures -------------------------------------------------------


def _steps(data: Any, run: Run) -> dict[str, Any] | None:
    """Print the traced steps; under --json return their document instead."""
    from convcalc.compute.traces import trace, trace_json
    from convcalc.present.steps import steps_renderable

    report = run.report
    traced = trace(
        data,
        run.stages,
        run.settings,
        layer=report.steps_layer,
        at=[_at(text, run.settings.rank) for text in report.at],
        limit=report.limit,
    )
    if report.as_json:
        return trace_json(traced)
    print_rich(steps_renderable(traced))
    return None


def _backward_steps(data: Any, run: Run) -> dict[str, Any] | None:
    """Print the traced gradient arithmetic; under --json return its document instead."""
    from convcalc.compute.backward_traces import backward_trace, backward_trace_json
    from convcalc.io.reading import read_input
    from convcalc.present.backward_steps import backward_steps_renderable

    report = run.report
    path = report.grad_output
    rank = run.settings.rank
    upstream = None if path is None else read_input(path, max_pixels=run.max_pixels, rank=rank).data
    try:
        traced = backward_trace(
            data,
            run.stages,
            run.settings,
            upstream,
            layer=report.steps_layer,
            at=[_at(text, rank) for text in report.at],
            limit=report.limit,
        )
    except ConvcalcError as exc:
        if path is not None and "upstream gradient" in str(exc):
            raise ConvcalcError(f"--grad-output {path}: {exc}", exc.hint) from None
        raise
    if report.as_json:
        return backward_trace_json(traced)
    print_rich(backward_steps_renderable(traced, path or "all ones"))
    return None


def _at(text: str, rank: int) -> tuple[int, ...]:
    """An --at position: N at rank 1, ROW,COL at rank 2, D,ROW,COL at rank 3."""
    from convcalc.present.steps import AT_FORMS

    parts = text.replace(" ", "").split(",")
    if len(parts) != rank or not all(p.lstrip("-").isdigit() for p in parts):
        example = {1: "3", 2: "0,1", 3: "0,1,2"}[rank]
        of = "" if rank == 2 else f" of a {rank}-D output"
        raise ConvcalcError(
            f"--at '{text}' is not a position{of}; valid: {AT_FORMS[rank]} such as {example}"
        )
    return tuple(int(p) for p in parts)


def _print_show(data: Any, result: Any, *, stderr: bool, rank: int = 2) -> None:
    """Draw input and output on stdout, or on stderr when stdout carries JSON: images
    as pictures or heatmaps, signals as plots, volumes slice by slice."""
    from rich.console import Console

    from convcalc.present.pictures import show
    from convcalc.present.ranked_pictures import show_signal, show_volume

    console = Console(highlight=False, stderr=stderr)
    draw = {1: show_signal, 2: show, 3: show_volume}[rank]
    console.print(draw(data, result, width=console.width, color_system=console.color_system))
