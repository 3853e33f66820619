"""`convcalc apply`: convolution, pooling and pipelines on images and matrices.

numpy, Pillow and rich are imported inside the commands, so that `shape` and
`params`, which share the CLI module, start without them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from convcalc.errors import ConvcalcError, RuntimeFailure

BUSY_SIZE = 2**22
"""Inputs of at least this many values show a spinner on a terminal while they compute."""

SMALL_CELLS = 400
"""Results with at most this many values per channel print as a table without -o."""

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
ARRAY_SUFFIXES = {".npy", ".txt", ".csv", ".tsv"}


def choice_of(enum: Any) -> click.Choice[str]:
    """A click choice of a StrEnum's values."""
    return click.Choice([member.value for member in enum])


@dataclass(frozen=True)
class ApplyOptions:
    """Everything `apply` was told, as typed."""

    kernels: tuple[str, ...]
    bias: str | None
    stride: str | None
    padding: str | None
    dilation: str | None
    pad_mode: str
    pool: str | None
    global_pool: bool
    ceil: bool
    exclude_pad: bool
    transposed: bool
    output_padding: str
    activation: str
    channels: str
    flip: bool
    method: str
    convention: str
    gray: bool
    output: str | None
    scale: str
    sheet: bool
    force: bool
    compress: int
    jobs: int | None
    verbose: bool
    as_json: bool
    steps: bool
    at: tuple[str, ...]
    limit: int | None
    steps_layer: int
    show: bool


@click.command()
@click.argument("items", nargs=-1, required=True, metavar="INPUT... [LAYER]...")
@click.option("-k", "--kernel", "kernels", multiple=True,
              help="Kernel: a preset (convcalc kernels), a matrix '1,0,-1;2,0,-2;1,0,-1', "
                   "or a file. Repeat for several filters. With --pool: the window size.")
@click.option("--bias", help="One bias per filter, comma-separated.")
@click.option("-s", "--stride", help="Stride: N or SHxSW (pooling: the window size).")
@click.option("-p", "--padding", help="Padding: N, HxW, same, valid or full.")
@click.option("-d", "--dilation", help="Dilation: N or per axis.")
@click.option("--pad-mode", type=choice_of(PadMode), default="zero", show_default=True,
              help="What fills the padding.")
@click.option("--pool", type=choice_of(PoolKind), help="Pool instead of convolving.")
@click.option("--global", "global_pool", is_flag=True,
              help="With --pool max|avg: pool each channel to one value.")
@click.option("--ceil", is_flag=True, help="Pooling rounds up (PyTorch ceil_mode).")
@click.option("--exclude-pad", is_flag=True,
              help="Average pooling divides by real cells only (TensorFlow).")
@click.option("--transposed", is_flag=True, help="Transposed convolution (upsampling).")
@click.option("--output-padding", default="0", show_default=True,
              help="Transposed convolution: extra rows/columns after.")
@click.option("--activation", type=choice_of(Activation), default="none", show_default=True,
              help="Applied after the sum and bias.")
@click.option("--channels", type=choice_of(ChannelMode), default="each", show_default=True,
              help="A 2-D kernel on a colour image: filter each channel, or sum them.")
@click.option("--flip", is_flag=True, help="True convolution: rotate the kernel 180°.")
@click.option("--method", type=choice_of(Method), default="auto", show_default=True,
              help="Algorithm: all agree to floating-point tolerance.")
@click.option("--convention", type=choice_of(Convention), default="torch", show_default=True)
@click.option("--gray", is_flag=True, help="Convert a colour image to one channel first.")
@click.option("-o", "--output", help="Output file (.png .jpg .tif .webp .bmp .npy .csv .txt), "
                                     "'-' for PNG on stdout, or DIR/ for several inputs.")
@click.option("--scale", type=choice_of(Scale), default="auto", show_default=True,
              help="How values map to 0-255 in an image.")
@click.option("--sheet", is_flag=True, help="Several output channels as one contact sheet.")
@click.option("--force", is_flag=True, help="Allow writing over an input file.")
@click.option("--compress", type=click.IntRange(0, 9), default=1, show_default=True,
              help="PNG compression level.")
@click.option("-j", "--jobs", type=click.IntRange(min=1),
              help="Worker processes for several inputs (default: the core count).")
@click.option("-v", "--verbose", is_flag=True, help="Say which method was picked.")
@click.option("--json", "as_json", is_flag=True, help="The result as one JSON document.")
@click.option("--steps", is_flag=True, help="Each window's arithmetic, step by step.")
@click.option("--at", multiple=True, metavar="ROW,COL",
              help="With --steps: the output position to show (repeatable).")
@click.option("--limit", type=click.IntRange(min=1),
              help="With --steps: show at most this many positions.")
@click.option("--steps-layer", type=click.IntRange(min=1), default=1, show_default=True,
              help="With --steps: which layer of a pipeline to trace.")
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
    opts = ApplyOptions(**kwargs)
    inputs, spec_texts = _split_items(items)
    stages = _stages(spec_texts, opts)
    if len(stages) < opts.steps_layer:
        raise ConvcalcError(f"--steps-layer {opts.steps_layer} is past the last layer; "
                            f"valid: 1 to {len(stages)}")
    files = _expand_inputs(inputs)
    if len(files) > 1:
        if opts.steps or opts.show:
            raise ConvcalcError("--steps and --show work on one input at a time")
        _apply_many(files, stages, opts)
        return
    _apply_one(files[0], stages, opts)


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


def _stages(spec_texts: Sequence[str], opts: ApplyOptions) -> list[Any]:
    from convcalc.compute.pipeline import Stage

    if spec_texts:
        if opts.kernels or opts.pool:
            raise ConvcalcError("give either -k/--pool options or layer specs, not both")
        return [_stage_from_spec(spec, opts) for spec in parse_specs(spec_texts)]
    layer = _option_layer(opts)
    if isinstance(layer, Pool | GlobalPool):
        return [Stage(Spec(format_layer(layer), layer))]
    bias = None if opts.bias is None else _numbers(opts.bias, "--bias")
    return [Stage(Spec(format_layer(layer, opts.kernels), layer), read_kernels(opts.kernels), bias,
                  Activation(opts.activation))]


def _option_layer(opts: ApplyOptions) -> Layer:
    padding = parse_padding(opts.padding or "0")
    dilation = parse_dims(opts.dilation or "1", "dilation")
    stride = None if opts.stride is None else parse_dims(opts.stride, "stride")
    if opts.pool:
        kind = PoolKind(opts.pool)
        if opts.global_pool:
            if kind == PoolKind.L2:
                raise ConvcalcError("--global works with --pool max or avg, not l2")
            return GlobalPool(kind)
        if len(opts.kernels) != 1:
            raise ConvcalcError("--pool needs one window size: -k 2 or -k 3x3")
        return Pool(kind, parse_dims(opts.kernels[0], "pool size"), stride, padding, dilation,
                    opts.ceil)
    if not opts.kernels:
        raise ConvcalcError("no kernel: give -k PRESET|MATRIX|FILE, --pool, or layer specs",
                            "See `convcalc kernels` for the presets.")
    if opts.transposed:
        output_padding = parse_counts(opts.output_padding, "output padding")
        return Deconv(None, None, stride or (1,), padding, dilation, output_padding)
    return Conv(None, None, stride or (1,), padding, dilation)


def _stage_from_spec(spec: Spec, opts: ApplyOptions) -> Any:
    from convcalc.compute.pipeline import Stage

    layer = spec.layer
    if isinstance(layer, Conv | Deconv):
        if layer.source is None:
            raise ConvcalcError(
                f"{spec.where} ({spec.text}): apply needs the kernel's values; "
                "write conv:k=PRESET|MATRIX|FILE, e.g. conv:k=sobel-x"
            )
        return Stage(spec, read_kernels((layer.source,)))
    return Stage(spec)


def read_kernels(texts: Sequence[str]) -> tuple[Any, ...]:
    """The kernels that -k or k= name, as arrays (KHxKW or KHxKWxC).

    Kernel files are read by `imageio.read_input`, like inputs: .npy, text
    matrices, or even an image.
    """
    from convcalc.compute.kernels import parse_kernel

    return tuple(parse_kernel(text, read_file=_kernel_file) for text in texts)


def _kernel_file(path: str) -> Any:
    from convcalc.io.reading import read_input

    data = read_input(path).data
    return data[:, :, 0] if data.shape[2] == 1 else data


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
            found = sorted(str(p) for p in path.iterdir()
                           if p.suffix.lower() in IMAGE_SUFFIXES | ARRAY_SUFFIXES)
            if not found:
                raise RuntimeFailure(f"folder '{item}' holds no images or matrices")
            files += found
        else:
            files.append(item)
    return files


def _settings(opts: ApplyOptions) -> Any:
    from convcalc.compute.pipeline import Settings

    return Settings(PadMode(opts.pad_mode), Method(opts.method), ChannelMode(opts.channels),
                    opts.flip, opts.exclude_pad, Convention(opts.convention))


# -- running ----------------------------------------------------------------------


def _apply_one(path: str, stages: list[Any], opts: ApplyOptions) -> None:
    from convcalc.compute.pipeline import run
    from convcalc.io.reading import read_input
    from convcalc.io.writing import check_output, write_output

    if opts.output and opts.output != "-":
        check_output(opts.output, inputs=[path], force=opts.force, sheet=opts.sheet)
    loaded = read_input(path, gray=opts.gray)
    _check_memory(loaded.data, stages, opts)
    out_dtype = "uint8" if _writes_8bit(loaded.data, stages, opts) else None
    with busy(f"applying {len(stages)} layer(s) to {_shape(loaded.data)}", loaded.data.size):
        outcome = run(loaded.data, stages, _settings(opts), out_dtype=out_dtype)
    result = outcome.output
    notes = list(loaded.notes) + [n for n in outcome.notes if opts.verbose or "auto" not in n]
    if opts.steps:
        _print_steps(loaded.data, stages, opts)
    if opts.show:
        _print_show(loaded.data, result)
    if opts.output:
        alpha = loaded.alpha
        if alpha is not None and alpha.shape != result.shape[:2]:
            notes.append("alpha dropped: the output size differs from the input's")
            alpha = None
        report = write_output(
            opts.output, result, scale=Scale(opts.scale), alpha=alpha,
            max_value=loaded.max_value or 255.0, inputs=[path], force=opts.force,
            compress_level=opts.compress, sheet=opts.sheet,
        )
        notes += list(report.notes)
        if report.scale is not None and report.value_range is not None:
            lo, hi = report.value_range
            notes.append(f"scaled with {report.scale}: [{lo:.6g}, {hi:.6g}] → [0, "
                         f"{2 ** (report.bits or 8) - 1}]")
        written = "PNG to stdout" if opts.output == "-" else ", ".join(report.paths)
        say([*notes, f"wrote {written} ({_shape(result)})"])
        return
    _show(result, loaded.data.shape, opts, notes)


def _writes_8bit(data: Any, stages: list[Any], opts: ApplyOptions) -> bool:
    """True when the result goes to an 8-bit image unchanged, so it can be made as uint8."""
    from convcalc.compute.pipeline import stays_8bit
    from convcalc.io.writing import FileFormat, output_format

    image = opts.output and output_format(opts.output) not in (FileFormat.NPY, FileFormat.TEXT)
    return bool(image) and Scale(opts.scale) in (Scale.AUTO, Scale.CLIP) and stays_8bit(
        data, stages, _settings(opts))


def _check_memory(data: Any, stages: list[Any], opts: ApplyOptions) -> None:
    """Refuse, before any work, a run that would not fit in the memory available now."""
    from convcalc.compute.pipeline import estimate_bytes

    itemsize = 4 if data.dtype == "float32" else 8
    needed = estimate_bytes(data.shape, stages, _settings(opts), itemsize)
    available = available_memory()
    if available is not None and needed > available:
        raise RuntimeFailure(
            f"this needs about {needed / 2**30:.1f} GiB of memory and {available / 2**30:.1f} "
            "GiB is available; try a smaller input, --gray, or fewer filters"
        )


def available_memory() -> int | None:
    """Bytes of memory available now (Linux's MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def _print_steps(data: Any, stages: list[Any], opts: ApplyOptions) -> None:
    from convcalc.cli.main import emit_json, print_rich
    from convcalc.compute.traces import trace, trace_json
    from convcalc.present.steps import steps_renderable

    traced = trace(data, stages, _settings(opts), layer=opts.steps_layer,
                   at=[_position(text) for text in opts.at], limit=opts.limit)
    if opts.as_json:
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


def _show(result: Any, input_shape: tuple[int, ...], opts: ApplyOptions,
          notes: list[str]) -> None:
    from convcalc.cli.main import emit_json, print_rich
    from convcalc.present.tables import matrix_table

    small = result.shape[0] * result.shape[1] <= SMALL_CELLS and result.shape[1] <= 24
    say(notes)
    if opts.as_json and opts.steps:
        return
    if opts.as_json:
        doc: dict[str, Any] = {"input_shape": list(input_shape),
                               "output_shape": list(result.shape)}
        doc |= {"output": _plain(result)} if small else _stats(result)
        emit_json(doc)
    elif small:
        for c in range(result.shape[2]):
            title = f"output {_shape(result)}" + (f", channel {c}" if result.shape[2] > 1 else "")
            print_rich(matrix_table(result[:, :, c], title))
    else:
        stats = _stats(result)
        click.echo(f"output {_shape(result)}: min {stats['min']:.6g}, max {stats['max']:.6g}, "
                   f"mean {stats['mean']:.6g}")
        say(["too large to print; save it with -o out.png (picture) or -o out.npy (values)"])


def _apply_many(files: list[str], stages: list[Any], opts: ApplyOptions) -> None:
    if not opts.output or not (opts.output.endswith(("/", os.sep)) or os.path.isdir(opts.output)):
        raise ConvcalcError(f"{len(files)} inputs need -o DIR/ (a folder) for their outputs")
    folder = Path(opts.output)
    if not folder.is_dir():
        raise RuntimeFailure(f"output folder '{folder}' does not exist")
    jobs = [(f, str(folder / _output_name(f))) for f in files]
    workers = min(opts.jobs or os.cpu_count() or 1, len(jobs))
    from concurrent.futures import ProcessPoolExecutor

    from convcalc.present.tables import progress

    with progress(len(jobs)) as advance:
        if workers == 1:
            for job in jobs:
                _run_job(job, stages, opts)
                advance()
        else:
            with ProcessPoolExecutor(workers, initializer=_ignore_interrupts) as pool:
                futures = [pool.submit(_run_job, job, stages, opts) for job in jobs]
                try:
                    for future in futures:
                        future.result()
                        advance()
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise


def _ignore_interrupts() -> None:
    """Workers leave Ctrl-C to the parent, which stops the batch and reports it once."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_job(job: tuple[str, str], stages: list[Any], opts: ApplyOptions) -> None:
    source, target = job
    _apply_one(source, stages, ApplyOptions(**{**opts.__dict__, "output": target}))


def _output_name(source: str) -> str:
    path = Path(source)
    suffix = path.suffix.lower()
    keep = suffix in (IMAGE_SUFFIXES - {".gif"}) | {".npy", ".csv", ".txt"}
    return path.name if keep else path.stem + ".png"


@contextmanager
def busy(message: str, size: int = BUSY_SIZE) -> Iterator[None]:
    """A spinner on stderr while long work runs: only on a terminal, and only for work
    on at least ``size`` values (rich is imported only then)."""
    if size < BUSY_SIZE or not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield


def say(lines: Sequence[str]) -> None:
    """Messages for the user, on stderr: stdout carries data only."""
    for line in lines:
        click.echo(line, err=True)


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

