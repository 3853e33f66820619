"""`convcalc kernels`: the named kernels, and the values of one."""

from __future__ import annotations

import click

from convcalc.cli.command import ConvcalcCommand
from convcalc.cli.output import emit_json, print_rich


@click.command(cls=ConvcalcCommand)
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def kernels(name: str | None, as_json: bool) -> None:
    """The named kernels, or the values of one (a preset or gauss:sigma=S,size=N).

    \b
    Examples:
      convcalc kernels
      convcalc kernels sobel-x
      convcalc kernels gauss:sigma=1.5,size=7
    """
    from convcalc.compute import kernels as presets
    from convcalc.compute.factoring import separable_factors
    from convcalc.io.kernels import parse_kernel
    from convcalc.present.tables import kernel_list_table, matrix_table

    if name is None:
        rows = [
            (n, presets.describe(n), presets.get_preset(n).shape) for n in presets.preset_names()
        ]
        if as_json:
            emit_json(
                {
                    "kernels": [
                        {"name": n, "description": d, "shape": list(s)} for n, d, s in rows
                    ],
                    "parameterised": [
                        {"syntax": s, "description": d} for s, d in presets.parameterised_kernels()
                    ],
                }
            )
            return
        print_rich(kernel_list_table(rows, presets.parameterised_kernels()))
        return
    values = parse_kernel(name)
    separable = values.ndim == 2 and separable_factors(values) is not None
    if as_json:
        emit_json(
            {
                "name": name,
                "shape": list(values.shape),
                "values": values.tolist(),
                "separable": separable,
            }
        )
        return
    title = f"{name}  ({'x'.join(map(str, values.shape))}" + (", separable)" if separable else ")")
    print_rich(matrix_table(values, title))
