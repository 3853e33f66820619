"""The command line: a thin click layer over convcalc's core.

Start-up matters here: `shape` and `params` import neither numpy nor Pillow, and
rich only when they print a table.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar, NamedTuple

import click

from convcalc import __version__
from convcalc.calc.choices import Convention, PoolKind
from convcalc.calc.grammar import (
    format_layer,
    parse_counts,
    parse_dims,
    parse_padding,
    parse_shape,
    parse_specs,
)
from convcalc.calc.layers import (
    Conv,
    Deconv,
    DepthwiseConv,
    Layer,
    Pool,
    Shape,
    Spec,
    network_rank,
)
from convcalc.calc.network import evaluate
from convcalc.calc.presets import PRESETS
from convcalc.errors import ConvcalcError
from convcalc.present.formatting import (
    comparison_json,
    explain_lines,
    single_json,
    single_text,
    solution_spec,
    solutions_json,
    stack_json,
)


class ConvcalcCommand(click.Command):
    """A click command whose short options (``-k 3``) are found at once.

    click tries every option as a long one first, and for ``-k`` builds a
    NoSuchOption (importing difflib and looking up message translations) before
    trying it as a short one: about 3 ms of `convcalc shape`'s start. Registering
    the short options under the long ones too skips that; ``-k3`` and ``-qk 3``
    still take click's short-option route.
    """

    def make_parser(self, ctx: click.Context) -> Any:
        parser = super().make_parser(ctx)
        short, long = getattr(parser, "_short_opt", None), getattr(parser, "_long_opt", None)
        if isinstance(short, dict) and isinstance(long, dict):  # click's internals, 8.1-8.3
            long.update({name: option for name, option in short.items() if name not in long})
        return parser


class ConvcalcGroup(click.Group):
    """A click group that turns every error into one line on stderr and an exit status.

    The commands that compute on arrays live in `convcalc.cli.apply` and
    `convcalc.cli.tools`, imported only when one of them runs (or help lists them),
    so `shape` and `params` start fast.
    """

    command_class = ConvcalcCommand
    lazy_commands: ClassVar[dict[str, str]] = {
        "apply": "apply", "animate": "tools", "bench": "tools", "kernels": "tools",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy_commands])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands:
            import importlib

            module = importlib.import_module(f"convcalc.cli.{self.lazy_commands[cmd_name]}")
            command: click.Command = getattr(module, cmd_name)
            return command
        return super().get_command(ctx, cmd_name)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        argv = list(sys.argv[1:] if args is None else args)
        try:
            super().main(argv, prog_name, complete_var, False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.NoSuchOption as exc:
            if re.fullmatch(r"-\d[\dx.]*", exc.option_name):
                _fail(f"'{exc.option_name}' is negative; sizes, kernels, strides and counts "
                      "must be positive numbers", _help_hint(exc.ctx), 2)
            _fail(exc.format_message(), _help_hint(exc.ctx), 2)
        except click.UsageError as exc:
            _fail(exc.format_message(), _help_hint(exc.ctx), 2)
        except ConvcalcError as exc:
            _fail(str(exc), exc.hint, exc.exit_code)
        except (KeyboardInterrupt, click.Abort):
            _fail("interrupted", None, 130)
        except BrokenPipeError:
            sys.exit(1)
        except MemoryError:
            _fail("not enough memory for this input; try a smaller input or --gray", None, 1)
        except Exception as exc:
            if "--debug" in argv:
                raise
            _fail(f"internal error: {type(exc).__name__}: {exc}",
                  "This is a bug; run again with --debug for the traceback and report it.", 1)
        sys.exit(0)


def _help_hint(ctx: click.Context | None) -> str | None:
    if ctx is None:
        return None
    return f"Try '{ctx.command_path} --help' for help."


def _fail(message: str, hint: str | None, status: int) -> None:
    click.echo(f"Error: {message}", err=True)
    if hint:
        click.echo(hint, err=True)
    sys.exit(status)


@click.group(cls=ConvcalcGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="convcalc")
@click.option("--debug", is_flag=True, expose_value=False,
              help="Show the Python traceback of an internal error (for bug reports).")
def cli() -> None:
    """Convolution calculator and visualizer: shapes, parameters, and the arithmetic."""


# -- shared options ---------------------------------------------------------


def _layer_options(fn: Any) -> Any:
    """Options describing one layer (-k, -s, -p …) and a stack (--net), shared."""
    options = [
        click.option("-k", "--kernel", help="Kernel size: N or per axis KHxKW."),
        click.option("-s", "--stride", help="Stride: N or per axis (pooling: the kernel)."),
        click.option("-p", "--padding", help="Padding: N, HxW, same, valid or full."),
        click.option("-d", "--dilation", help="Dilation: N or per axis."),
        click.option("--filters", type=int, help="Number of filters (output channels)."),
        click.option("--groups", type=int, default=1, show_default=True,
                     help="Grouped convolution: groups dividing both channel counts."),
        click.option("--no-bias", is_flag=True, help="Layers without bias terms."),
        click.option("--pool", type=click.Choice([k.value for k in PoolKind]),
                     help="A pooling layer instead of a convolution."),
        click.option("--ceil", is_flag=True, help="Pooling rounds up (PyTorch ceil_mode)."),
        click.option("--transposed", is_flag=True, help="A transposed convolution."),
        click.option("--output-padding", default="0", show_default=True,
                     help="Transposed convolution: extra rows/columns after."),
        click.option("--net", help="A network: " + ", ".join(PRESETS) + ", or a file of specs."),
        click.option("--convention", type=click.Choice([c.value for c in Convention]),
                     default="torch", show_default=True,
                     help="Whose rules where frameworks differ (pool rounding, SAME)."),
        click.option("--strict", is_flag=True,
                     help="Fail when a window does not fit its input exactly."),
        click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


class LayerOptions(NamedTuple):
    """The layer options of `shape` and `params`, as typed."""

    kernel: str | None
    stride: str | None
    padding: str | None
    dilation: str | None
    filters: int | None
    groups: int
    no_bias: bool
    pool: str | None
    ceil: bool
    transposed: bool
    output_padding: str
    net: str | None
    convention: str
    strict: bool

    @classmethod
    def take(cls, kwargs: dict[str, Any]) -> LayerOptions:
        """Pop this dataclass's fields out of a command's keyword arguments."""
        return cls(**{name: kwargs.pop(name) for name in cls._fields})


def _single_layer(opts: LayerOptions) -> Layer:
    """The one layer that -k/-s/-p/… describe."""
    assert opts.kernel is not None
    kernel = parse_dims(opts.kernel, "kernel")
    stride = None if opts.stride is None else parse_dims(opts.stride, "stride")
    padding = parse_padding(opts.padding or "0")
    dilation = parse_dims(opts.dilation or "1", "dilation")
    if opts.pool:
        return Pool(PoolKind(opts.pool), kernel, stride, padding, dilation, opts.ceil)
    if opts.transposed:
        output_padding = parse_counts(opts.output_padding, "output padding")
        return Deconv(opts.filters, kernel, stride or (1,), padding, dilation,
                      output_padding, opts.groups, not opts.no_bias)
    return Conv(opts.filters, kernel, stride or (1,), padding, dilation, opts.groups,
                not opts.no_bias, 2)


def _specs(input_text: str, spec_texts: tuple[str, ...], opts: LayerOptions) -> tuple[
    Shape, list[Spec]
]:
    """The input shape and the layers to run on it, from arguments or options."""
    if opts.kernel is not None and (spec_texts or opts.net):
        raise ConvcalcError("give either -k (one layer) or layer specs/--net, not both")
    if opts.kernel is not None:
        layer = _single_layer(opts)
        text = format_layer(layer)
        kernel_axes = len(parse_dims(opts.kernel, "kernel"))
        rank = kernel_axes if kernel_axes > 1 else None
        shape = parse_shape(input_text, rank)
        if isinstance(layer, Conv | Deconv):
            layer = replace(layer, rank=len(shape.spatial))
        return shape, [Spec(text, layer, "")]
    from convcalc.calc.presets import load_network

    ignored = [name for name, given in (
        ("-s", opts.stride), ("-p", opts.padding), ("-d", opts.dilation),
        ("--filters", opts.filters is not None), ("--groups", opts.groups != 1),
        ("--pool", opts.pool), ("--ceil", opts.ceil), ("--transposed", opts.transposed),
    ) if given]
    if ignored:
        raise ConvcalcError(
            f"{', '.join(ignored)} describe one layer given with -k; with layer specs or "
            "--net, write them into the spec instead (e.g. conv:6,5,s=2,p=1)"
        )
    specs = load_network(opts.net) if opts.net else []
    specs += parse_specs(spec_texts)
    if not specs:
        raise ConvcalcError(
            "nothing to compute: give a kernel with -k, layer specs such as conv:6,5, "
            "or --net NAME"
        )
    return parse_shape(input_text, network_rank([s.layer for s in specs])), specs


def emit_json(document: dict[str, Any]) -> None:
    """Write one JSON document on stdout."""
    import json

    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


def print_rich(*renderables: Any) -> None:
    """Print rich renderables on stdout; off a terminal, wide enough not to wrap."""
    from rich.console import Console

    console = Console(highlight=False)
    for item in renderables:
        if not console.is_terminal:
            wide = console.options.update_width(1000)
            console.width = max(80, console.measure(item, options=wide).maximum)
        console.print(item)


# -- shape ------------------------------------------------------------------


@cli.command()
@click.argument("input_shape", metavar="INPUT")
@click.argument("layers", nargs=-1, metavar="[LAYER]...")
@_layer_options
@click.option("--target", type=int, help="Which kernel/stride/padding/dilation give this size?")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="With --target: how many answers to show.")
@click.option("--explain", is_flag=True, help="Each layer's formula with the numbers filled in.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the output shape.")
def shape(input_shape: str, layers: tuple[str, ...], **kwargs: Any) -> None:
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
    """
    target, limit = kwargs.pop("target"), kwargs.pop("limit")
    explain, quiet, as_json = kwargs.pop("explain"), kwargs.pop("quiet"), kwargs.pop("as_json")
    opts = LayerOptions.take(kwargs)
    if target is not None:
        _shape_target(input_shape, target, opts, limit, as_json, quiet)
        return
    shape_in, specs = _specs(input_shape, layers, opts)
    result = evaluate(specs, shape_in, convention=Convention(opts.convention),
                      strict=opts.strict)
    single = opts.kernel is not None
    if quiet:
        click.echo(str(result.output))
    elif as_json:
        doc = single_json(result, opts.convention) if single else stack_json(result,
                                                                             opts.convention)
        emit_json(doc)
    elif single and not explain:
        click.echo(single_text(result, opts.convention))
    else:
        from convcalc.present.tables import stack_table

        print_rich(stack_table(result, opts.convention))
        if explain:
            print_rich("\n".join(explain_lines(result)))


def _shape_target(
    input_text: str, target: int, opts: LayerOptions, limit: int, as_json: bool, quiet: bool
) -> None:
    n = parse_dims(input_text, "input")
    if len(n) != 1:
        raise ConvcalcError(f"--target works on one axis; give the input as one number, "
                            f"not '{input_text}'")
    fixed = {
        "kernels": opts.kernel, "strides": opts.stride, "dilations": opts.dilation,
    }
    from convcalc.calc.geometry import find_targets

    ranges = {key: parse_dims(value, key[:-1]) for key, value in fixed.items() if value}
    solutions = find_targets(n[0], target, **ranges)
    if opts.padding is not None:
        wanted = parse_padding(opts.padding)[0]
        solutions = [sol for sol in solutions if sol.padding == wanted]
    if as_json:
        emit_json(solutions_json(n[0], target, solutions))
    elif not solutions:
        raise ConvcalcError(
            f"no kernel 1-11, stride 1-4, dilation 1-3 takes {n[0]} to {target}; "
            "valid targets lie between 1 and about 4× the input"
        )
    elif quiet:
        click.echo("\n".join(solution_spec(sol) for sol in solutions[:limit]))
    else:
        from convcalc.present.tables import solutions_table

        print_rich(solutions_table(n[0], target, solutions, limit))


# -- params -----------------------------------------------------------------


@cli.command()
@click.argument("input_shape", metavar="INPUT")
@click.argument("layers", nargs=-1, metavar="[LAYER]...")
@_layer_options
@click.option("--units", type=click.IntRange(min=1),
              help="Also compare with a fully connected layer of this many units.")
def params(input_shape: str, layers: tuple[str, ...], **kwargs: Any) -> None:
    """Weights with and without weight sharing, against fully connected layers.

    \b
    Examples:
      convcalc params 32x32x3 -k 5 --filters 10 -p 2
      convcalc params 100x100x3 -k 10 --filters 10 --units 100
      convcalc params 32x32x3 --net lenet5
    """
    from convcalc.calc.compare import compare

    units, as_json = kwargs.pop("units"), kwargs.pop("as_json")
    opts = LayerOptions.take(kwargs)
    if opts.pool or opts.transposed:
        raise ConvcalcError("params compares convolutions; drop --pool/--transposed")
    shape_in, specs = _specs(input_shape, layers, opts)
    result = evaluate(specs, shape_in, convention=Convention(opts.convention),
                      strict=opts.strict)
    if opts.no_bias:
        specs = [replace(s, layer=_without_bias(s.layer)) for s in specs]
    inputs = [result.input] + [layer.output for layer in result.layers[:-1]]
    found = [
        (spec, compare(spec.layer, shape_before, layer.output, units=units))
        for spec, shape_before, layer in zip(specs, inputs, result.layers, strict=True)
        if isinstance(spec.layer, Conv | DepthwiseConv)
    ]
    if not found:
        raise ConvcalcError("no convolution to compare: params needs conv or dwconv layers")
    if as_json:
        docs = [comparison_json(c) | {"layer": spec.text} for spec, c in found]
        emit_json(docs[0] if opts.kernel is not None else {"layers": docs})
        return
    from convcalc.present.tables import comparison_table

    print_rich(*(comparison_table(c, f"{spec.text}: {c.input} → {c.output}") for spec, c in found))


def _without_bias(layer: Layer) -> Layer:
    return replace(layer, bias=False) if isinstance(layer, Conv | DepthwiseConv) else layer


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="convcalc")

