"""`convcalc kernels`: the named kernels, and the values of one."""

from __future__ import annotations

import os
import re

import click

from convcalc.cli.command import ConvcalcCommand
from convcalc.cli.output import emit_json, print_rich
from convcalc.errors import ConvcalcError


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
    fraction = presets.exact_fraction(values)
    if as_json:
        exact = (
            {}
            if fraction is None
            else {"fraction": {"denominator": fraction[0], "numerators": fraction[1].tolist()}}
        )
        emit_json(
            {
                "name": name,
                "shape": list(values.shape),
                "values": values.tolist(),
                "separable": separable,
            } | exact
        )  # fmt: skip
        return
    title = f"{name}  ({'x'.join(map(str, values.shape))}" + (", separable)" if separable else ")")
    if fraction is not None:  # exact: 1/256 × integers, not 0.003906
        print_rich(matrix_table(fraction[1], f"{title} = 1/{fraction[0]} ×"))
        return
    print_rich(matrix_table(values, title))


def refuse_size_kernel(text: str, where: str) -> None:
    """Refuse a convolution kernel written as a size: ``-k 3``, ``-k 3x5``.

    In `convcalc shape` ``-k 3`` is a kernel size; read as values it is a 1x1 kernel
    of value 3 that triples the image, a silently different answer. A deliberate
    1x1 kernel is written with a decimal point (``3.0``); a kernel file named ``3``
    is still read. ``where`` names the option, as in ``-k 3``.
    """
    sizes = _SIZE.fullmatch(text.strip())
    if sizes is None or os.path.isfile(text.strip()):
        return
    h, w = int(sizes[1]), int(sizes[2] or sizes[1])
    if not h or not w:
        return
    if sizes[2] is None:
        forms = "" if h == 1 else f"{kernel_forms(h, w)}; "
        raise ConvcalcError(
            f"{where} would be a 1x1 kernel of value {h} here, though `shape` reads it as a "
            f"size; {forms}to mean the 1x1 kernel, write {h}.0"
        )
    raise ConvcalcError(f"{where} is a size, not kernel values; {kernel_forms(h, w)}")


def kernel_forms(h: int, w: int) -> str:
    """How an HxW kernel's values are given: ``for a 3x3 kernel give its values …``."""
    if h == w == 1:
        return "a 1x1 kernel is written as its value with a decimal point: 1.0"
    values = ";".join([",".join(["1"] * w)] * h) if h * w <= 9 else None
    forms = [
        f"its values ('{values}')" if values else f"its values ({h} rows of {w}, ';' between rows)",
        *([f"a preset (box{h})"] if h == w and h in (3, 5) else []),
        *([f"a generated one (box:size={h})"] if h == w else []),
    ]
    either = forms[0] if len(forms) == 1 else ", ".join(forms[:-1]) + " or " + forms[-1]
    return f"for a {h}x{w} kernel give {either}"


_SIZE = re.compile(r"\+?(\d{1,9})(?:x(\d{1,9}))?")
"""A kernel size as shape takes it: N or KHxKW."""
