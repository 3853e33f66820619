"""`convcalc params`: weights with and without weight sharing, against dense layers."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import click

from convcalc.calc.choices import Format
from convcalc.calc.evaluation import evaluate, placed_layers
from convcalc.calc.layers import Conv, DepthwiseConv, Layer
from convcalc.cli.command import ConvcalcCommand
from convcalc.cli.layer_options import LayerOptions, layer_options, network_of
from convcalc.cli.options import output_format
from convcalc.cli.output import emit_json, print_rich
from convcalc.cli.records import take
from convcalc.errors import ConvcalcError
from convcalc.present.comparisons import comparison_json, totals_json, totals_lines


@click.command(cls=ConvcalcCommand)
@click.argument("input_shape", metavar="[INPUT]", required=False)
@click.argument("layers", nargs=-1, metavar="[LAYER]...")
@layer_options
@click.option(
    "--units",
    type=click.IntRange(min=1),
    help="Also compare with a fully connected layer of this many units.",
)
def params(input_shape: str | None, layers: tuple[str, ...], **kwargs: Any) -> None:
    """Weights with and without weight sharing, against fully connected layers.

    \b
    Examples:
      convcalc params 32x32x3 -k 5 --filters 10 -p 2
      convcalc params 100x100x3 -k 10 --filters 10 --units 100
      convcalc params 32x32x3 --net lenet5
    """
    from convcalc.calc.compare import compare, totals

    units, fmt = kwargs.pop("units"), output_format(kwargs)
    opts = take(LayerOptions, kwargs)
    if opts.pool or opts.transposed:
        raise ConvcalcError("params compares convolutions; drop --pool/--transposed")
    shape_in, specs, convention = network_of(input_shape, layers, opts)
    result = evaluate(specs, shape_in, convention=convention, strict=opts.strict)
    if opts.no_bias:
        specs = [replace(s, layer=_without_bias(s.layer)) for s in specs]
        result = evaluate(specs, shape_in, convention=convention)
    found = [
        (placed.text, compare(placed.layer, placed.input, placed.result.output, units=units))
        for placed in placed_layers(specs, result)
        if isinstance(placed.layer, Conv | DepthwiseConv)
    ]
    if not found:
        raise ConvcalcError("no convolution to compare: params needs conv or dwconv layers")
    if fmt == Format.JSON:
        docs = [comparison_json(c) | {"layer": text} for text, c in found]
        total = totals_json(totals([c for _, c in found]))
        emit_json(docs[0] if opts.single else {"layers": docs, "total": total})
        return
    if fmt != Format.TABLE:
        from convcalc.present.exports import comparison_rows, write_table

        click.echo(write_table(fmt, comparison_rows(found)), nl=False)
        return
    from convcalc.present.tables import comparison_table

    tables = [comparison_table(c, f"{text}: {c.input} → {c.output}") for text, c in found]
    summary = [] if opts.single else ["\n".join(totals_lines(totals([c for _, c in found])))]
    print_rich(*tables, *summary)


def _without_bias(layer: Layer) -> Layer:
    return replace(layer, bias=False) if isinstance(layer, Conv | DepthwiseConv) else layer
