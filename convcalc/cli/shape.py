"""`convcalc shape`: output sizes of a layer or a stack, and which layer gives a size."""

from __future__ import annotations

from typing import Any, NamedTuple

import click

from convcalc.calc.choices import Convention, DType, Format, Optimizer
from convcalc.calc.evaluation import evaluate
from convcalc.calc.layers import Mark, Spec
from convcalc.calc.network import NetworkResult
from convcalc.calc.sizes import parse_dims, parse_padding
from convcalc.cli.command import ConvcalcCommand
from convcalc.cli.layer_options import LayerOptions, layer_options, network_of
from convcalc.cli.options import output_format
from convcalc.cli.output import choice_of, emit_json, print_rich
from convcalc.cli.records import take
from convcalc.errors import ConvcalcError


@click.command(cls=ConvcalcCommand)
@click.argument("input_shape", metavar="[INPUT]", required=False)
@click.argument("layers", nargs=-1, metavar="[LAYER]...")
@layer_options
@click.option("--target", type=int, help="Which kernel/stride/padding/dilation give this size?")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="With --target: how many answers to show.",
)
@click.option("--explain", is_flag=True, help="Each layer's formula with the numbers filled in.")
@click.option("--expand", is_flag=True, help="Show the layers inside groups and blocks.")
@click.option(
    "--coverage", is_flag=True,
    help="One layer (-k): how many windows read each input cell, as a grid.",
)  # fmt: skip
@click.option("--show", is_flag=True, help="With --coverage: draw the grid as a heatmap.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the output shape.")
@click.option(
    "--ops", type=click.Choice(["macs", "all"]), default="macs", show_default=True,
    help="all: also count the other arithmetic (batch norm, pooling, activations, adds), "
    "apart from MACs.",
)  # fmt: skip
@click.option(
    "--training", is_flag=True, help="Add what a training step keeps, computes and stores."
)
@click.option(
    "--batch", type=click.IntRange(1, 10**6), default=1, show_default=True,
    help="With --training: the batch size.",
)  # fmt: skip
@click.option(
    "--optimizer", type=choice_of(Optimizer), default="sgd", show_default=True,
    help="With --training: sgd keeps no state, momentum one copy, adam/adamw two.",
)  # fmt: skip
@click.option(
    "--dtype", type=choice_of(DType), default="fp32", show_default=True,
    help="With --training: the element type of weights, gradients, state, activations.",
)  # fmt: skip
@click.option(
    "--emit", type=click.Choice(["pytorch", "keras"]),
    help="Print the network as a PyTorch or Keras module (Python source) instead.",
)  # fmt: skip
@click.option(
    "--rf-image", metavar="IMAGE",
    help="Draw one unit's receptive field and its paths on this picture (-o FILE); "
    "INPUT, when left out, is the picture's HxWxC.",
)  # fmt: skip
@click.option(
    "--at", "rf_at", metavar="ROW,COL",
    help="With --rf-image: the unit in the layer's output (default: the centre).",
)  # fmt: skip
@click.option(
    "--layer", "rf_layer", type=click.IntRange(min=1),
    help="With --rf-image: the layer, numbered as the table's rows (default: the last "
    "with a spatial output).",
)  # fmt: skip
@click.option("-o", "--output", "rf_output", metavar="FILE", help="With --rf-image: the picture.")
@click.option("--force", "rf_force", is_flag=True, help="With --rf-image: overwrite the input.")
def shape(input_shape: str | None, layers: tuple[str, ...], **kwargs: Any) -> None:
    """Output size of a layer or a stack of layers.

    \b
    INPUT is a shape, channels last: 7, 28x28, 224x224x3 (HxWxC), 16x112x112x3.
    LAYER is a layer spec: conv:64,3,s=2,p=1  maxpool:2  fc:10  (see README).

    \b
    Examples:
      convcalc shape 7 -k 3 -s 2
      convcalc shape 224x224x3 -k 7 -s 2 -p 3 --filters 64
      convcalc shape 28x28 -k 3 -s 2 --padding same
      convcalc shape 32x32x3 conv:6,5 maxpool:2 conv:16,5 maxpool:2 fc:120 fc:84 fc:10
      convcalc shape 224x224x3 --net resnet18
      convcalc shape 224 --target 112 -k 3
      convcalc shape --net vgg16 --rf-image photo.png --at 8,8 --layer 13 -o rf.png
    """
    rf = take(RfImageOptions, kwargs)
    if rf.rf_image is not None:
        _rf_image(input_shape, layers, rf.rf_image, rf, kwargs)
        return
    if given := [flag for flag, on in rf._asdict().items() if on]:
        flags = ", ".join("-o" if f == "rf_output" else "--" + f[3:] for f in given)
        raise ConvcalcError(f"{flags} needs --rf-image (they draw a receptive field on it)")
    target, limit = kwargs.pop("target"), kwargs.pop("limit")
    explain, quiet = kwargs.pop("explain"), kwargs.pop("quiet")
    fmt = output_format(kwargs)
    as_json = fmt == Format.JSON
    expand = kwargs.pop("expand")
    coverage, show = kwargs.pop("coverage"), kwargs.pop("show")
    if show and not coverage:
        raise ConvcalcError("--show needs --coverage (it draws the coverage grid)")
    training = take(TrainingOptions, kwargs)
    all_ops = kwargs.pop("ops") == "all"
    opts = take(LayerOptions, kwargs)
    emit = kwargs.pop("emit")
    if emit is not None:
        _emit_alone(quiet, fmt, target, explain, expand, training.training, all_ops)
    if quiet and fmt != Format.TABLE:
        raise ConvcalcError(f"-q and --format {fmt} both say what stdout holds; give one of them")
    if target is not None:
        if fmt not in (Format.TABLE, Format.JSON):
            raise ConvcalcError(f"--target prints a table or JSON, not {fmt}")
        if input_shape is None:
            raise ConvcalcError("--target needs INPUT, the size of one axis, e.g. 224")
        _shape_target(input_shape, target, opts, limit, as_json, quiet)
        return
    shape_in, specs, convention = network_of(input_shape, layers, opts)
    result = evaluate(specs, shape_in, convention=convention, strict=opts.strict)
    cost = _training_cost(specs, result, training)
    other = _other_ops(specs, result) if all_ops else None
    if emit is not None:
        _emit(emit, input_shape, layers, opts, specs, result, convention)
        return
    if coverage:
        _coverage(result, convention, as_json=as_json, show=show, single=opts.single)
        return
    if quiet:  # the one answer scripts wait for: nothing more is imported for it
        click.echo(str(result.output))
        return
    from convcalc.present.formatting import (
        explain_lines,
        ops_json,
        single_json,
        single_text,
        stack_json,
        training_json,
    )

    if as_json:
        to_json = single_json if opts.single else stack_json
        emit_json(to_json(result, convention) | training_json(cost) | ops_json(other))
    elif fmt != Format.TABLE:
        from convcalc.present.exports import stack_rows, write_table

        click.echo(write_table(fmt, stack_rows(result, training=cost, other_ops=other)), nl=False)
    elif opts.single and not explain and cost is None and other is None:
        click.echo(single_text(result, convention))
    else:
        from convcalc.present.tables import stack_table

        print_rich(stack_table(result, convention, expand=expand, training=cost, other_ops=other))
        if explain:
            wheres = [s.where for s in specs if not isinstance(s.layer, Mark)]
            print_rich("\n".join(explain_lines(result, wheres)))


class RfImageOptions(NamedTuple):
    """A receptive field drawn on a picture (`shape --rf-image`)."""

    rf_image: str | None
    rf_at: str | None
    rf_layer: int | None
    rf_output: str | None
    rf_force: bool


def _rf_image(
    input_text: str | None, layers: tuple[str, ...], image: str, rf: RfImageOptions,
    kwargs: dict[str, Any],
) -> None:  # fmt: skip
    """``--rf-image``: one unit's field box and path counts drawn on the picture."""
    import re

    from convcalc.calc.choices import Scale
    from convcalc.cli.output import say
    from convcalc.compute.fields import path_counts
    from convcalc.io.network_files import is_network_file
    from convcalc.io.reading import read_input
    from convcalc.io.writing import check_output, write_output
    from convcalc.present.rf_picture import field_box, rf_picture

    others = [flag for flag, key in (
        ("--target", "target"), ("--coverage", "coverage"), ("--emit", "emit"),
        ("--training", "training"), ("--explain", "explain"), ("-q", "quiet"),
    ) if kwargs[key]]  # fmt: skip
    if others:
        raise ConvcalcError(f"--rf-image draws a picture; {', '.join(others)} cannot go with it")
    if rf.rf_output is None:
        raise ConvcalcError("--rf-image needs -o FILE.png, where the picture is written")
    check_output(rf.rf_output, inputs=(image,), force=rf.rf_force, channels=3)
    opts = take(LayerOptions, kwargs)
    loaded = read_input(image)
    height, width, channels = loaded.data.shape
    if input_text is not None and not re.fullmatch(r"\d+(x\d+)*", input_text.strip().lower()):
        layers = (input_text, *layers)  # INPUT left out: a layer came first
        input_text = None
    if input_text is None and not (opts.net and is_network_file(opts.net)):
        input_text = f"{height}x{width}x{channels}"
    shape_in, specs, convention = network_of(input_text, layers, opts)
    if shape_in.spatial != (height, width):
        raise ConvcalcError(
            f"{image} is {height}x{width} but INPUT is {shape_in}; valid: an INPUT of "
            f"{height}x{width}xC, or leave INPUT out to take the picture's"
        )
    result = evaluate(specs, shape_in, convention=convention, strict=opts.strict)
    spatial = [i for i, r in enumerate(result.layers, 1) if not r.output.flat]
    if not spatial:
        raise ConvcalcError("--rf-image: no layer has a spatial output (HxW) to pick a unit in")
    number = rf.rf_layer if rf.rf_layer is not None else spatial[-1]
    layer = result.layers[number - 1] if number <= len(result.layers) else None
    from convcalc.calc.merging import UNTRACKED

    if layer is not None and layer.receptive_field == UNTRACKED:
        raise ConvcalcError(
            f"--layer {number} ({layer.spec}): its receptive field is not tracked (it follows "
            "a transposed convolution); valid: a layer before it"
        )
    grid = layer.output.spatial if layer is not None and not layer.output.flat else (1, 1)
    unit = _unit(rf.rf_at, grid)
    counts = path_counts(specs, result, number, unit)
    assert layer is not None  # path_counts checked the layer
    field = layer.receptive_field
    box = (
        field_box(field.start, field.jump, field.size, unit, (height, width))
        if field is not None
        else field_box((0, 0), (0, 0), (2 * height, 2 * width), (0, 0), (height, width))
    )
    picture = rf_picture(loaded.data, counts, box, max_value=loaded.max_value)
    write_output(rf.rf_output, picture, scale=Scale.CLIP, inputs=(image,), force=rf.rf_force)
    reached = counts[counts > 0]
    size = "the whole input" if field is None else "x".join(map(str, field.size))
    low, high = int(reached.min()), int(reached.max())
    say([
        f"{rf.rf_output}: layer {number} ({layer.spec}), unit {unit[0]},{unit[1]} of "
        f"{layer.output}: receptive field rows {box.top}-{box.bottom}, columns "
        f"{box.left}-{box.right} ({size}); {reached.size:,} pixels reached by {low:,} to "
        f"{high:,} paths each"
    ])  # fmt: skip


def _unit(text: str | None, grid: tuple[int, ...]) -> tuple[int, int]:
    """``--at ROW,COL`` (default: the centre of the layer's output)."""
    if text is None:
        return grid[0] // 2, grid[-1] // 2
    parts = text.replace(" ", "").split(",")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ConvcalcError(f"--at '{text}' is not valid; valid: ROW,COL such as 3,4")
    return int(parts[0]), int(parts[1])


class TrainingOptions(NamedTuple):
    """What a training step is asked about (`shape --training`)."""

    training: bool
    batch: int
    optimizer: str
    dtype: str


def _training_cost(specs: list[Spec], result: NetworkResult, options: TrainingOptions) -> Any:
    """The training step's cost, or None without --training (whose options need it)."""
    if not options.training:
        given = [flag for flag, value, default in (
            ("--batch", options.batch, 1), ("--optimizer", options.optimizer, "sgd"),
            ("--dtype", options.dtype, "fp32")) if value != default]  # fmt: skip
        if given:
            raise ConvcalcError(f"{', '.join(given)} needs --training (it sizes a training step)")
        return None
    from convcalc.calc.training import training_cost

    return training_cost(
        specs, result, batch=options.batch, dtype=DType(options.dtype),
        optimizer=Optimizer(options.optimizer),
    )  # fmt: skip


def _other_ops(specs: list[Spec], result: NetworkResult) -> list[int]:
    from convcalc.calc.operations import network_other_ops

    return network_other_ops(result, specs)


def _coverage(
    result: NetworkResult, convention: Convention, *, as_json: bool, show: bool, single: bool
) -> None:
    """``--coverage``: the layer's sizes, then how many windows read each input cell."""
    from convcalc.calc.coverage import coverage_grid
    from convcalc.calc.merging import UNTRACKED
    from convcalc.present.formatting import single_json, single_text

    layer = result.layers[0]
    windows = layer.receptive_field not in (None, UNTRACKED)  # not a transposed convolution
    if not single or not layer.axes or not windows or len(layer.axes) > 2:
        raise ConvcalcError(
            "--coverage counts the windows of one convolution or pooling layer of 1 or 2 "
            "axes; valid: -k K with -s, -p, -d (not --transposed)"
        )
    try:
        grid = coverage_grid(layer.axes)
    except ValueError as exc:
        raise ConvcalcError(
            f"--coverage of {result.input}: {exc}; valid: a smaller input"
        ) from None
    if as_json:
        emit_json(single_json(result, convention) | {"coverage": grid})
        return
    from convcalc.present.coverage import coverage_renderable

    click.echo(single_text(result, convention))
    print_rich(coverage_renderable(grid, heat=show))


def _shape_target(
    input_text: str, target: int, opts: LayerOptions, limit: int, as_json: bool, quiet: bool
) -> None:
    n = parse_dims(input_text, "input")
    if len(n) != 1:
        raise ConvcalcError(
            f"--target works on one axis; give the input as one number, not '{input_text}'"
        )
    from convcalc.calc.geometry import find_targets
    from convcalc.present.formatting import solution_spec, solutions_json

    fixed = {"kernels": opts.kernel, "strides": opts.stride, "dilations": opts.dilation}
    ranges = {key: parse_dims(value, key[:-1]) for key, value in fixed.items() if value}
    solutions = find_targets(n[0], target, transposed=opts.transposed or None, **ranges)
    if opts.padding is not None:
        wanted = parse_padding(opts.padding)[0]
        solutions = [sol for sol in solutions if sol.padding == wanted]
    if as_json:
        emit_json(solutions_json(n[0], target, solutions, limit))
    elif not solutions:
        kind = "transposed convolution" if opts.transposed else "layer"
        raise ConvcalcError(
            f"no {kind} in the searched ranges takes {n[0]} to {target}; valid: fix -k, -s "
            "or -d to search other values, or drop -p"
        )
    elif quiet:
        click.echo("\n".join(solution_spec(sol) for sol in solutions[:limit]))
    else:
        from convcalc.present.tables import solutions_table

        print_rich(solutions_table(n[0], target, solutions, limit))


def _emit_alone(quiet: bool, fmt: Format, target: int | None, *flags: bool) -> None:
    """--emit writes a module on stdout: refuse what would print or ask something else."""
    explain, expand, training, all_ops = flags
    given = [flag for flag, on in (
        ("-q", quiet), (f"--format {fmt}", fmt != Format.TABLE), ("--target", target is not None),
        ("--explain", explain), ("--expand", expand), ("--training", training),
        ("--ops all", all_ops)) if on]  # fmt: skip
    if given:
        raise ConvcalcError(
            f"--emit prints a Python module on stdout; {', '.join(given)} cannot go with it"
        )


def _emit(
    target: str,
    input_text: str | None,
    layers: tuple[str, ...],
    opts: LayerOptions,
    specs: list[Spec],
    result: NetworkResult,
    convention: str,
) -> None:
    """Print the network as a PyTorch or Keras module; the network's notes on stderr."""
    from convcalc.calc.choices import Convention
    from convcalc.calc.evaluation import placed_layers
    from convcalc.cli.output import say
    from convcalc.present.emit_keras import emit_keras
    from convcalc.present.emit_pytorch import emit_pytorch

    emitter = emit_pytorch if target == "pytorch" else emit_keras
    command = _command_line(target, input_text, layers, opts, convention)
    text = emitter(specs, result, result.input, convention=Convention(convention), command=command)
    click.echo(text, nl=False)
    notes = dict.fromkeys(
        f"note: {leaf.text}: {note}"
        for leaf in placed_layers(specs, result)
        for note in leaf.result.notes
        if "receptive field" not in note and "no input is lost" not in note
    )
    say(list(notes))


def _command_line(
    target: str, input_text: str | None, layers: tuple[str, ...], opts: LayerOptions,
    convention: str,
) -> str:  # fmt: skip
    """The convcalc command that emits this module, for its docstring."""
    import shlex

    words = ["convcalc", "shape", *([input_text] if input_text else [])]
    words += ["--net", opts.net] if opts.net else []
    words += list(layers)
    if opts.single:  # the one layer's options as given
        words += [word for flag, value in (
            ("-k", opts.kernel), ("-s", opts.stride), ("-p", opts.padding), ("-d", opts.dilation),
            ("--filters", opts.filters), ("--groups", opts.groups if opts.groups != 1 else None),
            ("--pool", opts.pool),
            ("--output-padding", opts.output_padding if opts.output_padding != "0" else None),
        ) if value is not None for word in (flag, str(value))]  # fmt: skip
        words += [flag for flag, on in (("--no-bias", opts.no_bias), ("--ceil", opts.ceil),
                  ("--transposed", opts.transposed)) if on]  # fmt: skip
    words += [] if convention == "torch" else ["--convention", str(convention)]
    words += ["--strict"] if opts.strict else []
    return shlex.join([*words, "--emit", target])
