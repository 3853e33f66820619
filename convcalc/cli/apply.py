"""`convcalc apply`: convolution, pooling and pipelines on images and matrices.

numpy, Pillow and rich are imported inside the command, so that `shape` and
`params` start without them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import click
from click.core import ParameterSource

from convcalc.calc.choices import (
    Activation,
    ChannelMode,
    Convention,
    Method,
    PadMode,
    PoolKind,
    Scale,
)
from convcalc.calc.grammar import format_layer, looks_like_spec
from convcalc.calc.layers import Conv, Deconv, GlobalPool, Layer, Pool, Spec
from convcalc.calc.sequence import parse_specs
from convcalc.calc.sizes import parse_counts, parse_dims, parse_padding
from convcalc.cli.apply_many import (
    apply_many,
    expand_inputs,
    is_folder_output,
    refuse_scheduler,
)
from convcalc.cli.apply_one import apply_one
from convcalc.cli.apply_options import (
    HowOptions,
    LayerChoices,
    OutputOptions,
    ReportOptions,
    Run,
    ignored_options,
    refuse_backward_clash,
    refuse_rank_clash,
    refuse_stdout_clash,
)
from convcalc.cli.apply_stream import apply_streamed, stream_job
from convcalc.cli.command import ConvcalcCommand
from convcalc.cli.kernels import kernel_forms, refuse_size_kernel
from convcalc.cli.options import (
    channels_option,
    format_option,
    gray_option,
    groups_option,
    max_pixels_option,
    output_padding_option,
    pad_mode_option,
    parse_numbers,
    window_options,
)
from convcalc.cli.output import choice_of, emit_json
from convcalc.cli.records import take
from convcalc.errors import ConvcalcError


@click.command(cls=ConvcalcCommand)
@click.argument("items", nargs=-1, required=True, metavar="INPUT... [LAYER]...")
@click.option(
    "-k",
    "--kernel",
    "kernels",
    multiple=True,
    help="Kernel: a preset (convcalc kernels), a matrix '1,0,-1;2,0,-2;1,0,-1', "
    "or a file; a 1x1 kernel is written 3.0 (a bare 3 is refused: shape reads it as a "
    "size). Repeat for several filters. With --pool: the window size.",
)
@click.option("--bias", help="One bias per filter, comma-separated.")
@window_options
@pad_mode_option
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
@output_padding_option
@click.option(
    "--activation",
    type=choice_of(Activation),
    default="none",
    show_default=True,
    help="Applied after the sum and bias.",
)
@channels_option
@groups_option
@click.option("--flip", is_flag=True, help="True convolution: rotate the kernel 180°.")
@click.option(
    "--method",
    type=choice_of(Method),
    default="auto",
    show_default=True,
    help="Algorithm: all agree to floating-point tolerance.",
)
@click.option("--convention", type=choice_of(Convention), default="torch", show_default=True)
@click.option(
    "--rank",
    type=click.IntRange(1, 3),
    help="Spatial axes of the data and layers: 1 (a signal, L or LxC .npy), 2 (an image), "
    "3 (a volume, DxHxW[xC] .npy). Default: the layer specs' (conv1d, conv3d, maxpool3d …), "
    "else the input's (a 1-D .npy is a signal, a 4-D one a volume), else 2.",
)
@gray_option
@max_pixels_option
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
    "--fsync/--no-fsync",
    default=False,
    show_default=True,
    help="Flush each output file to the disk before it replaces the target (durable "
    "across a power loss). Without it outputs are still replaced atomically, as cp and "
    "numpy.save leave write-back to the system.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    help="Worker processes for several inputs (default: the core count).",
)
@click.option(
    "--scheduler",
    metavar="tcp://HOST:PORT",
    help="Send the inputs of a batch (-o DIR/) to the Dask cluster whose scheduler is "
    "there; its workers need convcalc, not the files (pip install 'convcalc[dask]').",
)
@click.option("-v", "--verbose", is_flag=True, help="Say which method was picked.")
@click.option("--json", "as_json", is_flag=True, help="The result as one JSON document.")
@format_option
@click.option("--steps", is_flag=True, help="Each window's arithmetic, step by step.")
@click.option(
    "--at",
    multiple=True,
    metavar="ROW,COL",
    help="With --steps: the output position to show (repeatable); N for a signal, "
    "D,ROW,COL for a volume.",
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
@click.option(
    "--backward",
    is_flag=True,
    help="Also the gradients (as PyTorch's autograd): dL/dX of the input, dL/dW of each "
    "filter, dL/db of each bias.",
)
@click.option(
    "--grad-output",
    metavar="FILE",
    help="With --backward: the upstream gradient dL/dY, a file shaped like the output "
    "(default: all ones).",
)
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
      convcalc apply samples/ufldl_5x5.txt -k "1,0,1;0,1,0;1,0,1" --backward --json
      convcalc apply signal.npy -k box:size=5 -p same     # a 1-D signal
      convcalc apply volume.npy conv3d:k=gauss:1,p=1 maxpool3d:2 -o out.npy
    """
    from convcalc.compute.pipeline import Settings, check_stages

    given = _given(click.get_current_context())
    choices, how = take(LayerChoices, kwargs), take(HowOptions, kwargs)
    if kwargs["fmt"] == "json":
        kwargs["as_json"], kwargs["fmt"] = True, "table"
    elif kwargs["as_json"] and kwargs["fmt"] != "table":
        raise ConvcalcError(f"--json and --format {kwargs['fmt']} ask for two formats; give one")
    out, report = take(OutputOptions, kwargs), take(ReportOptions, kwargs)
    refuse_stdout_clash(out, report)
    inputs, spec_texts = _split_items(items)
    rank = _run_rank(spec_texts, kwargs.pop("rank"), inputs)
    stages = _stages(spec_texts, choices, rank)
    check_stages(stages, rank)
    settings = Settings(
        pad_mode=PadMode(how.pad_mode),
        method=Method(how.method),
        channels=ChannelMode(how.channels),
        flip=how.flip,
        exclude_pad=how.exclude_pad,
        convention=Convention(how.convention),
        rank=rank,
    )
    run = Run(
        stages=stages,
        settings=settings,
        gray=kwargs.pop("gray"),
        out=out,
        report=report,
        max_pixels=kwargs.pop("max_pixels"),
    )
    ignored = ignored_options(run, choices, bool(spec_texts))
    for name, flag in given.items():
        if name in ignored:
            raise ConvcalcError(f"{flag} {ignored[name]}")
    if report.steps and len(stages) < report.steps_layer:
        raise ConvcalcError(
            f"--steps-layer {report.steps_layer} is past the last layer; valid: 1 to {len(stages)}"
        )
    files = expand_inputs(inputs)
    refuse_backward_clash(run, len(files))
    refuse_rank_clash(run, len(files))
    if len(files) > 1 or is_folder_output(out.output):
        if report.steps or report.show or report.as_json:
            raise ConvcalcError(
                f"--steps, --show and --json work on one input at a time; got {len(files)} inputs"
            )
        apply_many(files, run, kwargs.pop("jobs"), kwargs.pop("scheduler"))
        return
    refuse_scheduler(kwargs.pop("scheduler"))
    job = stream_job(files[0], run)  # a large .npy to .npy run: by strips
    doc = apply_one(files[0], run) if job is None else apply_streamed(job, run)
    if doc is not None:
        emit_json(doc)


# -- building the run ---------------------------------------------------------


def _given(ctx: click.Context) -> dict[str, str]:
    """The options given on the command line (not left at their defaults), each with
    the name it is known by (``-k``, ``--at``), in the order of ``--help``."""
    defaults = (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP, None)
    return {
        param.name: param.opts[0]
        for param in ctx.command.params
        if isinstance(param, click.Option)
        and param.name is not None
        and ctx.get_parameter_source(param.name) not in defaults
    }


def _split_items(items: Sequence[str]) -> tuple[list[str], list[str]]:
    """Inputs first, then layer specs; an existing path is always an input."""
    inputs: list[str] = []
    specs: list[str] = []
    for item in items:
        if not os.path.exists(item) and _is_graph_syntax(item):
            raise ConvcalcError(
                f"'{item}': apply runs layers one after another; branches ( A | B ), "
                "repeats *N and @names are sized by `convcalc shape`; valid here: a "
                "sequence such as conv:k=box3 relu maxpool:2"
            )
        if item != "-" and not os.path.exists(item) and looks_like_spec(item):
            specs.append(item)
        elif specs:
            raise ConvcalcError(f"input '{item}' comes after the layer specs; put inputs first")
        else:
            inputs.append(item)
    if not inputs:
        raise ConvcalcError("no input given; valid: an image, .npy, text matrix, folder or -")
    return inputs, specs


def _is_graph_syntax(item: str) -> bool:
    """True for a word of the graph grammar apply does not run: ``(``, ``|``, ``)``,
    a repeat ``relu*3``, a named tensor ``@a``."""
    word = item.strip()
    if word in ("(", "|", ")") or word.startswith(("(", "@")) or word.endswith(")"):
        return True
    head, star, count = word.rpartition("*")
    return bool(star) and count.isdigit() and looks_like_spec(head)


def _run_rank(spec_texts: Sequence[str], given: int | None, inputs: Sequence[str]) -> int:
    """The run's rank: the layer specs' (conv1d …), else --rank, else the first input's.

    A --rank that disagrees with the specs is refused.
    """
    from convcalc.compute.pipeline import layer_rank
    from convcalc.io.reading import input_rank

    specs = parse_specs(spec_texts) if spec_texts else []
    fixed = next((r for r in (layer_rank(s.layer) for s in specs) if r is not None), None)
    if fixed is not None and given is not None and fixed != given:
        first = next(s for s in specs if layer_rank(s.layer) is not None)
        raise ConvcalcError(
            f"--rank {given} and {first.text} (a {fixed}-D layer) disagree; give one of them"
        )
    if fixed is not None:
        return fixed
    return given if given is not None else input_rank(inputs[0])


def _stages(spec_texts: Sequence[str], choices: LayerChoices, rank: int = 2) -> list[Any]:
    from convcalc.compute.pipeline import Stage
    from convcalc.io.kernels import read_kernels

    if spec_texts:
        if choices.kernels or choices.pool:
            raise ConvcalcError("give either -k/--pool options or layer specs, not both")
        return [_stage_from_spec(spec, rank) for spec in parse_specs(spec_texts)]
    layer = _option_layer(choices, rank)
    if isinstance(layer, Pool | GlobalPool):
        return [Stage(spec=Spec(text=format_layer(layer), layer=layer))]
    for text in choices.kernels:
        refuse_size_kernel(text, f"-k {text}")
    bias = None if choices.bias is None else parse_numbers(choices.bias, "--bias")
    return [
        Stage(
            spec=Spec(text=format_layer(layer), layer=layer),
            kernels=read_kernels(choices.kernels, rank),
            bias=bias,
            activation=Activation(choices.activation),
        )
    ]


def _option_layer(choices: LayerChoices, rank: int = 2) -> Layer:
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
            rank=None if rank == 2 else rank,
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
            rank=rank,
            source=tuple(choices.kernels),
        )
    return Conv(
        out=None,
        kernel=None,
        stride=stride or (1,),
        padding=padding,
        dilation=dilation,
        groups=choices.groups,
        rank=rank,
        source=tuple(choices.kernels),
    )


def _stage_from_spec(spec: Spec, rank: int = 2) -> Any:
    from convcalc.compute.pipeline import Stage
    from convcalc.io.kernels import read_kernels

    layer = spec.layer
    if isinstance(layer, Conv | Deconv):
        if layer.source is None and layer.kernel:
            h, w = layer.kernel[0], layer.kernel[-1]
            raise ConvcalcError(
                f"{spec.where} ({spec.text}): apply needs the kernel's values after k=, not "
                f"its size {'x'.join(map(str, layer.kernel))}: {kernel_forms(h, w)}"
            )
        if layer.source is None:
            raise ConvcalcError(
                f"{spec.where} ({spec.text}): apply needs the kernel's values; "
                "write conv:k=PRESET|MATRIX|FILE, e.g. conv:k=sobel-x"
            )
        return Stage(spec=spec, kernels=read_kernels(layer.source, rank))
    return Stage(spec=spec)
