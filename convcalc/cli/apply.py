"""`convcalc apply`: convolution, pooling and pipelines on images and matrices.

numpy, Pillow and rich are imported inside the command, so that `shape` and
`params` start without them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import click

from convcalc.calc.choices import (
    Activation,
    ChannelMode,
    Convention,
    Method,
    PadMode,
    PoolKind,
    Scale,
)
from convcalc.calc.grammar import (
    format_layer,
    looks_like_spec,
    parse_counts,
    parse_dims,
    parse_padding,
    parse_specs,
)
from convcalc.calc.layers import Conv, Deconv, GlobalPool, Layer, Pool, Spec
from convcalc.cli.command import ConvcalcCommand
from convcalc.cli.output import busy, choice_of, emit_json, print_rich, say
from convcalc.cli.records import take
from convcalc.errors import ConvcalcError, RuntimeFailure

SMALL_CELLS = 400
"""Results with at most this many values per channel print as a table without -o."""

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
ARRAY_SUFFIXES = {".npy", ".txt", ".csv", ".tsv"}


class LayerChoices(NamedTuple):
    """The one layer the options describe (when no layer specs are given)."""

    kernels: tuple[str, ...]
    bias: str | None
    stride: str | None
    padding: str | None
    dilation: str | None
    pool: str | None
    global_pool: bool
    ceil: bool
    transposed: bool
    output_padding: str
    activation: str


class HowOptions(NamedTuple):
    """How every layer computes: padding fill, method, channels, rules."""

    pad_mode: str
    method: str
    channels: str
    flip: bool
    exclude_pad: bool
    convention: str


class OutputOptions(NamedTuple):
    """Where the result goes and how it is written."""

    output: str | None
    scale: str
    sheet: bool
    force: bool
    compress: int


class ReportOptions(NamedTuple):
    """What is shown besides the result."""

    verbose: bool
    as_json: bool
    steps: bool
    at: tuple[str, ...]
    limit: int | None
    steps_layer: int
    show: bool


class Run(NamedTuple):
    """Everything one input needs: the layers, how they compute, where results go."""

    stages: list[Any]
    settings: Any
    gray: bool
    out: OutputOptions
    report: ReportOptions


@click.command(cls=ConvcalcCommand)
@click.argument("items", nargs=-1, required=True, metavar="INPUT... [LAYER]...")
@click.option(
    "-k",
    "--kernel",
    "kernels",
    multiple=True,
    help="Kernel: a preset (convcalc kernels), a matrix '1,0,-1;2,0,-2;1,0,-1', "
    "or a file. Repeat for several filters. With --pool: the window size.",
)
@click.option("--bias", help="One bias per filter, comma-separated.")
@click.option("-s", "--stride", help="Stride: N or SHxSW (pooling: the window size).")
@click.option("-p", "--padding", help="Padding: N, HxW, same, valid or full.")
@click.option("-d", "--dilation", help="Dilation: N or per axis.")
@click.option(
    "--pad-mode",
    type=choice_of(PadMode),
    default="zero",
    show_default=True,
    help="What fills the padding.",
)
@click.option("--pool", type=choice_of(PoolKind), help="Pool instead of convolving.")
@click.option(
    "--global",
    "global_pool",
    is_flag=True,
    help="With --pool max|avg: pool each channel to one value.",
)
@click.option("--ceil", is_flag=True, help="Pooling rounds up (PyTorch ceil_mode).")
@click.option(
    "--exclude-pad", is_flag=True, help="Average pooling divides by real cells only (TensorFlow)."
)
@click.option("--transposed", is_flag=True, help="Transposed convolution (upsampling).")
@click.option(
    "--output-padding",
    default="0",
    show_default=True,
    help="Transposed convolution: extra rows/columns after.",
)
@click.option(
    "--activation",
    type=choice_of(Activation),
    default="none",
    show_default=True,
    help="Applied after the sum and bias.",
)
@click.option(
    "--channels",
    type=choice_of(ChannelMode),
    default="each",
    show_default=True,
    help="A 2-D kernel on a colour image: filter each channel, or sum them.",
)
@click.option("--flip", is_flag=True, help="True convolution: rotate the kernel 180°.")
@click.option(
    "--method",
    type=choice_of(Method),
    default="auto",
    show_default=True,
    help="Algorithm: all agree to floating-point tolerance.",
)
@click.option("--convention", type=choice_of(Convention), default="torch", show_default=True)
@click.option("--gray", is_flag=True, help="Convert a colour image to one channel first.")
@click.option(
    "-o",
    "--output",
    help="Output file (.png .jpg .tif .webp .bmp .npy .csv .txt), "
    "'-' for PNG on stdout, or DIR/ for several inputs.",
)
@click.option(
    "--scale",
    type=choice_of(Scale),
    default="auto",
    show_default=True,
    help="How values map to 0-255 in an image.",
)
@click.option("--sheet", is_flag=True, help="Several output channels as one contact sheet.")
@click.option("--force", is_flag=True, help="Allow writing over an input file.")
@click.option(
    "--compress",
    type=click.IntRange(0, 9),
    default=1,
    show_default=True,
    help="PNG compression level.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    help="Worker processes for several inputs (default: the core count).",
)
@click.option("-v", "--verbose", is_flag=True, help="Say which method was picked.")
@click.option("--json", "as_json", is_flag=True, help="The result as one JSON document.")
@click.option("--steps", is_flag=True, help="Each window's arithmetic, step by step.")
@click.option(
    "--at",
    multiple=True,
    metavar="ROW,COL",
    help="With --steps: the output position to show (repeatable).",
)
@click.option(
    "--limit", type=click.IntRange(min=1), help="With --steps: show at most this many positions."
)
@click.option(
    "--steps-layer",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="With --steps: which layer of a pipeline to trace.",
)
@click.option("--show", is_flag=True, help="Draw the input and the output in the terminal.")
def apply(items: tuple[str, ...], **kwargs: Any) -> None:
    """Convolution or pooling applied to an image or a matrix.

    \b
    INPUT is an image, a .npy array, a text/CSV matrix, a folder, or - (stdin).
    LAYER is a layer spec for a pipeline: conv:k=sobel-x relu maxpool:2.

    \b
    Examples:
      convcalc apply samples/ufldl_5x5.txt -k "1,0,1;0,1,0;1,0,1"
      convcalc apply samples/photo.png -k sobel-x -o edges.png
      convcalc apply samples/photo.png --pool max -k 2 -o half.png
      convcalc apply samples/photo.png conv:k=gauss5 conv:k=laplace4 relu -o out.png
      cat a.png | convcalc apply - -k gauss5 -o - > b.png
      convcalc apply samples/cs231n_5x5x3.txt -k samples/cs231n_w0.txt \\
          -k samples/cs231n_w1.txt --bias 1,0 -p 1 -s 2 --steps
    """
    from convcalc.compute.pipeline import Settings

    choices, how = take(LayerChoices, kwargs), take(HowOptions, kwargs)
    out, report = take(OutputOptions, kwargs), take(ReportOptions, kwargs)
    inputs, spec_texts = _split_items(items)
    stages = _stages(spec_texts, choices)
    if len(stages) < report.steps_layer:
        raise ConvcalcError(
            f"--steps-layer {report.steps_layer} is past the last layer; valid: 1 to {len(stages)}"
        )
    settings = Settings(
        pad_mode=PadMode(how.pad_mode),
        method=Method(how.method),
        channels=ChannelMode(how.channels),
        flip=how.flip,
        exclude_pad=how.exclude_pad,
        convention=Convention(how.convention),
    )
    run = Run(stages=stages, settings=settings, gray=kwargs.pop("gray"), out=out, report=report)
    files = _expand_inputs(inputs)
    if len(files) > 1:
        if report.steps or report.show:
            raise ConvcalcError("--steps and --show work on one input at a time")
        _apply_many(files, run, kwargs.pop("jobs"))
        return
    _apply_one(files[0], run)


# -- building the run ---------------------------------------------------------


def _split_items(items: Sequence[str]) -> tuple[list[str], list[str]]:
    """Inputs first, then layer specs; an existing path is always an input."""
    inputs: list[str] = []
    specs: list[str] = []
    for item in items:
        if item != "-" and not os.path.exists(item) and looks_like_spec(item):
            specs.append(item)
        elif specs:
            raise ConvcalcError(f"input '{item}' comes after the layer specs; put inputs first")
        else:
            inputs.append(item)
    if not inputs:
        raise ConvcalcError("no input given; valid: an image, .npy, text matrix, folder or -")
    return inputs, specs


def _stages(spec_texts: Sequence[str], choices: LayerChoices) -> list[Any]:
    from convcalc.compute.pipeline import Stage
    from convcalc.io.kernels import read_kernels

    if spec_texts:
        if choices.kernels or choices.pool:
            raise ConvcalcError("give either -k/--pool options or layer specs, not both")
        return [_stage_from_spec(spec) for spec in parse_specs(spec_texts)]
    layer = _option_layer(choices)
    if isinstance(layer, Pool | GlobalPool):
        return [Stage(spec=Spec(text=format_layer(layer), layer=layer))]
    bias = None if choices.bias is None else _numbers(choices.bias, "--bias")
    return [
        Stage(
            spec=Spec(text=format_layer(layer, choices.kernels), layer=layer),
            kernels=read_kernels(choices.kernels),
            bias=bias,
            activation=Activation(choices.activation),
        )
    ]


def _option_layer(choices: LayerChoices) -> Layer:
    padding = parse_padding(choices.padding or "0")
    dilation = parse_dims(choices.dilation or "1", "dilation")
    stride = None if choices.stride is None else parse_dims(choices.stride, "stride")
    if choices.pool:
        kind = PoolKind(choices.pool)
        if choices.global_pool:
            if kind == PoolKind.L2:
                raise ConvcalcError("--global works with --pool max or avg, not l2")
            return GlobalPool(kind=kind)
        if len(choices.kernels) != 1:
            raise ConvcalcError("--pool needs one window size: -k 2 or -k 3x3")
        return Pool(
            kind=kind,
            kernel=parse_dims(choices.kernels[0], "pool size"),
            stride=stride,
            padding=padding,
            dilation=dilation,
            ceil=choices.ceil,
        )
    if not choices.kernels:
        raise ConvcalcError(
            "no kernel: give -k PRESET|MATRIX|FILE, --pool, or layer specs",
            "See `convcalc kernels` for the presets.",
        )
    if choices.transposed:
        output_padding = parse_counts(choices.output_padding, "output padding")
        return Deconv(
            out=None,
            kernel=None,
            stride=stride or (1,),
            padding=padding,
            dilation=dilation,
            output_padding=output_padding,
        )
    return Conv(out=None, kernel=None, stride=stride or (1,), padding=padding, dilation=dilation)


def _stage_from_spec(spec: Spec) -> Any:
    from convcalc.compute.pipeline import Stage
    from convcalc.io.kernels import read_kernels

    layer = spec.layer
    if isinstance(layer, Conv | Deconv):
        if layer.source is None:
            raise ConvcalcError(
                f"{spec.where} ({spec.text}): apply needs the kernel's values; "
                "write conv:k=PRESET|MATRIX|FILE, e.g. conv:k=sobel-x"
            )
        return Stage(spec=spec, kernels=read_kernels((layer.source,)))
    return Stage(spec=spec)


def _numbers(text: str, what: str) -> tuple[float, ...]:
    values = []
    for part in text.replace(";", ",").split(","):
        try:
            value = float(part)
        except ValueError:
            raise ConvcalcError(f"{what} value '{part.strip()}' is not a number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ConvcalcError(f"{what} value '{part.strip()}' is not finite")
        values.append(value)
    return tuple(values)


def _expand_inputs(inputs: Sequence[str]) -> list[str]:
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


# -- running ----------------------------------------------------------------------


def _apply_one(path: str, run: Run) -> None:
    from convcalc.compute.pipeline import estimate_bytes
    from convcalc.compute.pipeline import run as run_pipeline
    from convcalc.io.reading import read_input
    from convcalc.io.writing import check_output

    out, report = run.out, run.report
    if out.output and out.output != "-":
        check_output(out.output, inputs=[path], force=out.force, sheet=out.sheet)
    loaded = read_input(path, gray=run.gray)
    _check_memory(loaded.data, run, estimate_bytes)
    out_dtype = "uint8" if _writes_8bit(loaded.data, run) else None
    with busy(f"applying {len(run.stages)} layer(s) to {_shape(loaded.data)}", loaded.data.size):
        outcome = run_pipeline(loaded.data, run.stages, run.settings, out_dtype=out_dtype)
    result = outcome.output
    notes = list(loaded.notes) + [n for n in outcome.notes if report.verbose or "auto" not in n]
    if report.steps:
        _print_steps(loaded.data, run)
    if report.show:
        _print_show(loaded.data, result)
    if out.output:
        say([*notes, *_write(path, loaded, result, out)])
        return
    _print_result(result, loaded.data.shape, report, notes)


def _write(path: str, loaded: Any, result: Any, out: OutputOptions) -> list[str]:
    """Write the result where -o says; the notes to print about it."""
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
    )
    notes += list(written.notes)
    if written.scale is not None and written.value_range is not None:
        lo, hi = written.value_range
        notes.append(
            f"scaled with {written.scale}: [{lo:.6g}, {hi:.6g}] → [0, "
            f"{2 ** (written.bits or 8) - 1}]"
        )
    where = "PNG to stdout" if out.output == "-" else ", ".join(written.paths)
    return [*notes, f"wrote {where} ({_shape(result)})"]


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


def _print_steps(data: Any, run: Run) -> None:
    from convcalc.compute.traces import trace, trace_json
    from convcalc.present.steps import steps_renderable

    report = run.report
    traced = trace(
        data,
        run.stages,
        run.settings,
        layer=report.steps_layer,
        at=[_position(text) for text in report.at],
        limit=report.limit,
    )
    if report.as_json:
        emit_json(trace_json(traced))
    else:
        print_rich(steps_renderable(traced))


def _position(text: str) -> tuple[int, int]:
    parts = text.replace(" ", "").split(",")
    if len(parts) != 2 or not all(p.lstrip("-").isdigit() for p in parts):
        raise ConvcalcError(f"--at '{text}' is not a position; valid: ROW,COL such as 0,1")
    return int(parts[0]), int(parts[1])


def _print_show(data: Any, result: Any) -> None:
    from rich.console import Console

    from convcalc.present.pictures import show

    console = Console(highlight=False)
    console.print(show(data, result, width=console.width, color_system=console.color_system))


def _print_result(
    result: Any, input_shape: tuple[int, ...], report: ReportOptions, notes: list[str]
) -> None:
    from convcalc.present.tables import matrix_table

    small = result.shape[0] * result.shape[1] <= SMALL_CELLS and result.shape[1] <= 24
    say(notes)
    if report.as_json and report.steps:
        return
    if report.as_json:
        doc: dict[str, Any] = {"input_shape": list(input_shape), "output_shape": list(result.shape)}
        doc |= {"output": _plain(result)} if small else _stats(result)
        emit_json(doc)
    elif small:
        for c in range(result.shape[2]):
            title = f"output {_shape(result)}" + (f", channel {c}" if result.shape[2] > 1 else "")
            print_rich(matrix_table(result[:, :, c], title))
    else:
        stats = _stats(result)
        click.echo(
            f"output {_shape(result)}: min {stats['min']:.6g}, max {stats['max']:.6g}, "
            f"mean {stats['mean']:.6g}"
        )
        say(["too large to print; save it with -o out.png (picture) or -o out.npy (values)"])


def _apply_many(files: list[str], run: Run, jobs: int | None) -> None:
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
    _apply_one(*pair)


def _output_name(source: str) -> str:
    path = Path(source)
    suffix = path.suffix.lower()
    keep = suffix in (IMAGE_SUFFIXES - {".gif"}) | {".npy", ".csv", ".txt"}
    return path.name if keep else path.stem + ".png"


def _shape(array: Any) -> str:
    """HxWxC, or HxW for one channel."""
    dims = array.shape[:2] if array.ndim == 3 and array.shape[2] == 1 else array.shape
    return "x".join(map(str, dims))


def _plain(array: Any) -> Any:
    """Nested lists of plain numbers, ints where the values are whole."""
    import numpy as np

    if np.all(np.isfinite(array)) and np.all(array == np.round(array)):
        return array.astype(np.int64).tolist()
    return array.tolist()


def _stats(array: Any) -> dict[str, float]:
    return {"min": float(array.min()), "max": float(array.max()), "mean": float(array.mean())}
