"""Rich rendering of a `convcalc.compute.backward_traces.BackwardTrace`: each gradient
value's arithmetic, ``dL/dW[0,0] = 1×1 + 1×1 + … = 6``.

Imported only when backward steps are printed. Numbers, products and line wrapping
are those of the forward steps (`convcalc.present.steps`).
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console, ConsoleOptions, ConsoleRenderable, RenderResult
from rich.text import Text

from convcalc.calc.choices import Activation
from convcalc.compute.backward_traces import BackwardTrace, GradStep
from convcalc.present.numbers import per_axis
from convcalc.present.steps import cell_text, factor_text, wrapped_terms


def backward_steps_renderable(
    trace: BackwardTrace, upstream: str = "all ones"
) -> ConsoleRenderable:
    """The trace as lines of text fitted to the console's width at render time.

    A header names the layer and dL/dY (``upstream``); then the kernel gradient's
    values (``dL/dW[i,j] = dL/dY×X + …``) and the input gradient's
    (``dL/dX[r,c] = dL/dY×W + …``), each section closing with how many were left out.
    """
    return _View(trace, upstream)


@dataclass(frozen=True)
class _View:
    trace: BackwardTrace
    upstream: str

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from backward_steps_lines(self.trace, options.max_width, self.upstream)


def backward_steps_lines(
    trace: BackwardTrace, width: int, upstream: str = "all ones"
) -> list[Text]:
    """The rendered lines of a backward trace, none wider than ``width`` cells."""
    lines = _header(trace, upstream)
    kernel = [s for s in trace.steps if s.grad == "kernel"]
    cells = [s for s in trace.steps if s.grad == "input"]
    rows, cols = trace.axes
    lines += [
        Text(""),
        Text(
            f"dL/dW: each kernel value sums, over the {rows.size}x{cols.size} output "
            "positions, dL/dY × the input value its tap reads (terms dL/dY×X)",
            style="bold",
        ),
    ]
    lines += [line for s in kernel for line in _step_lines(trace, s, width)]
    lines += _omitted(trace.kernel_total - trace.kernel_omitted, trace.kernel_total, "kernel taps")
    lines += [
        Text(""),
        Text(
            "dL/dX: each input cell sums, over the windows that read it, dL/dY × the kernel "
            "value at the tap that reads it: the full convolution of dL/dY with the kernel "
            "rotated 180° (terms dL/dY×W)",
            style="bold",
        ),
    ]
    lines += [line for s in cells for line in _step_lines(trace, s, width)]
    lines += _omitted(trace.input_total - trace.input_omitted, trace.input_total, "input cells")
    return lines


def _header(trace: BackwardTrace, upstream: str) -> list[Text]:
    shape_in, shape_out = ("x".join(map(str, s)) for s in (trace.input_shape, trace.output_shape))
    rows, cols = trace.axes
    facts = [
        f"kernel {rows.kernel}x{cols.kernel}",
        f"stride {per_axis((str(rows.stride), str(cols.stride)))}",
    ]
    padded = any(a.pad_lo or a.pad_hi for a in trace.axes)
    pads = per_axis(
        tuple(
            f"{a.pad_lo}" if a.pad_lo == a.pad_hi else f"{a.pad_lo}/{a.pad_hi}" for a in trace.axes
        )
    )
    facts.append(f"padding {pads} ({trace.pad_mode})" if padded else "no padding")
    if (rows.dilation, cols.dilation) != (1, 1):
        facts.append(f"dilation {per_axis((str(rows.dilation), str(cols.dilation)))}")
    if trace.flip:
        facts.append("kernel flipped")
    lines = [
        Text(f"backward through {trace.layer_text}: {shape_in} → {shape_out}", style="bold"),
        Text(", ".join(facts)),
        Text(f"dL/dY = {upstream}"),
    ]
    if trace.activation != Activation.NONE:
        lines.append(
            Text(
                f"dL/dY below is taken before the {trace.activation}: "
                f"dL/dY × {trace.activation}′ at each output"
            )
        )
    return lines


def _step_lines(trace: BackwardTrace, step: GradStep, width: int) -> list[Text]:
    index = ",".join(map(str, step.position))
    if step.grad == "kernel":
        name = f"dL/dW[{index}{'' if step.channel is None else f',{step.channel}'}]"
        if trace.filters > 1:
            name = f"filter {step.filter}: {name}"
    else:
        name = f"dL/dX[{index}{f',{step.channel}' if trace.input_shape[2] > 1 else ''}]"
    terms = [f"{factor_text(a)}×{factor_text(b)}" for a, b in step.terms] or ["0"]
    return wrapped_terms(f"{name} = ", terms, " + ", f" = {cell_text(step.value)}", 2, width)


def _omitted(shown: int, total: int, what: str) -> list[Text]:
    if shown == total:
        return []
    return [
        Text(
            f"  {shown} of {total} {what} shown, {total - shown} left out; use --at ROW,COL "
            "or --limit N for others",
            style="italic",
        )
    ]
