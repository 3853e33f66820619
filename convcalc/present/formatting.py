"""Plain-text and JSON forms of computed results (no rich: these paths start fast)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from convcalc.calc.axes import axis_names
from convcalc.calc.geometry import Axis, Solution
from convcalc.calc.grammar import format_layer
from convcalc.calc.layers import Conv, Deconv
from convcalc.calc.merging import UNTRACKED, ReceptiveField
from convcalc.calc.network import LayerResult, NetworkResult, initial_field
from convcalc.present.numbers import count, number, per_axis

if TYPE_CHECKING:  # only annotations: shape starts without these modules
    from convcalc.calc.training import TrainingCost


def field_text(rf: ReceptiveField | None) -> tuple[str, str, str]:
    """Receptive field (size, jump, start) as table cells; one value if axes agree."""
    if rf is None:
        return "all", "—", "—"
    if rf == UNTRACKED:
        return "?", "—", "—"
    return per_axis(rf.size), per_axis(rf.jump), per_axis(tuple(map(_start, rf.start)))


def axis_lines(axes: tuple[Axis, ...]) -> list[tuple[str, str]]:
    """(axis names, formula) pairs; axes with identical formulas share a line."""
    names = axis_names(len(axes))
    grouped: dict[str, list[str]] = {}
    for name, ax in zip(names, axes, strict=True):
        grouped.setdefault(ax.formula, []).append(name)
    return [(" and ".join(group), formula) for formula, group in grouped.items()]


def single_text(result: NetworkResult, convention: str) -> str:
    """A one-layer result: output shape, formula with numbers, notes, counts."""
    layer = result.layers[0]
    lines = [f"{result.input} → {layer.output}    ({layer.spec}, {convention} rules)"]
    lines += [f"  {names}: {formula}" for names, formula in axis_lines(layer.axes)]
    lines += [f"  padding {pads}" for pads in _padding_text(layer.axes)]
    lines += [f"  note: {note}" for note in layer.notes]
    if layer.params:
        lines.append(
            f"  parameters {count(layer.params)}; MACs {count(layer.macs)} "
            f"(FLOPs = 2 × MACs = {count(2 * layer.macs)})"
        )
    return "\n".join(lines)


def explain_lines(result: NetworkResult, wheres: Sequence[str] = ()) -> list[str]:
    """Each layer's formulas with the numbers filled in, and the receptive-field step;
    ``wheres`` (one per layer) say where each was written, e.g. a file's node name."""
    lines = []
    previous = initial_field(len(result.input.spatial))
    for i, layer in enumerate(result.layers, start=1):
        where = f"  ({wheres[i - 1]})" if i <= len(wheres) and "node '" in wheres[i - 1] else ""
        lines.append(f"{i:>3}  {layer.spec}  → {layer.output}{where}")
        lines += [f"       {names}: {formula}" for names, formula in axis_lines(layer.axes)]
        lines += [f"       padding {pads}" for pads in _padding_text(layer.axes)]
        tracked = previous not in (None, UNTRACKED) and layer.receptive_field not in (
            None,
            UNTRACKED,
        )
        if layer.axes and previous is not None and tracked:
            lines.append(f"       receptive field: {_field_step(previous, layer)}")
        if layer.merged_fields:
            lines.append(f"       receptive field at the {layer.op}: {_union_text(layer)}")
        lines += [f"       note: {note}" for note in layer.notes]
        previous = layer.receptive_field
    return lines


def single_json(result: NetworkResult, convention: str) -> dict[str, Any]:
    """The JSON document of a one-layer result."""
    layer = result.layers[0]
    return {
        "input_shape": result.input.as_list(),
        "layer": layer.spec,
        "output_shape": layer.output.as_list(),
        "exact": all(ax.exact for ax in layer.axes),
        "formula": "; ".join(
            f"{n}: {f}" if len(layer.axes) > 1 else f for n, f in axis_lines(layer.axes)
        ),
        "axes": [_axis_json(ax) for ax in layer.axes],
        "params": layer.params,
        "macs": layer.macs,
        "flops": 2 * layer.macs,
        "convention": convention,
        "notes": list(layer.notes),
    }


def stack_json(result: NetworkResult, convention: str) -> dict[str, Any]:
    """The JSON document of a stack: one entry per layer spec, then totals."""
    return {
        "input_shape": result.input.as_list(),
        "output_shape": result.output.as_list(),
        "convention": convention,
        "layers": [_layer_json(layer) for layer in result.layers],
        "total_params": result.total_params,
        "total_buffers": result.total_buffers,
        "total_macs": result.total_macs,
        "total_flops": 2 * result.total_macs,
        "total_memory_bytes": result.total_memory,
    }


def ops_json(other: list[int] | None) -> dict[str, Any]:
    """``--ops all``: each layer's operations other than MACs, and their total."""
    if other is None:
        return {}
    return {"other_ops": other, "total_other_ops": sum(other)}


def training_json(cost: TrainingCost | None) -> dict[str, Any]:
    """The ``training`` object of ``shape --training --json`` (empty without it): bytes
    and MACs for the whole batch."""
    if cost is None:
        return {}
    return {
        "training": {
            "batch": cost.batch,
            "dtype": cost.dtype.value,
            "optimizer": cost.optimizer.value,
            "weights_bytes": cost.weights_bytes,
            "gradients_bytes": cost.gradients_bytes,
            "optimizer_bytes": cost.optimizer_bytes,
            "activations_bytes": cost.activations_bytes,
            "total_bytes": cost.total_bytes,
            "forward_macs": cost.forward_macs,
            "backward_macs": cost.backward_macs,
            "layers": [
                {
                    "kept_bytes": layer.kept_bytes * cost.batch,
                    "backward_macs": layer.backward_macs * cost.batch,
                }
                for layer in cost.layers
            ],
        }
    }


def solutions_json(n: int, target: int, solutions: list[Solution], limit: int) -> dict[str, Any]:
    """The JSON document of a ``--target`` search: the best ``limit`` answers, and how
    many were found in all."""
    return {
        "input": n,
        "target": target,
        "found": len(solutions),
        "solutions": [
            {
                "transposed": sol.transposed,
                "kernel": sol.kernel,
                "stride": sol.stride,
                "padding": str(sol.padding),
                "dilation": sol.dilation,
                "output_padding": sol.output_padding,
                "exact": sol.exact,
                "layer": solution_spec(sol),
            }
            for sol in solutions[:limit]
        ],
    }


def solution_spec(sol: Solution) -> str:
    """A target solution written as a layer spec: ``conv:_,3,s=2,p=1``."""
    if sol.transposed:
        return format_layer(
            Deconv(
                None,
                (sol.kernel,),
                (sol.stride,),
                (sol.padding,),
                (sol.dilation,),
                (sol.output_padding,),
            )
        )
    return format_layer(Conv(None, (sol.kernel,), (sol.stride,), (sol.padding,), (sol.dilation,)))


def _layer_json(layer: LayerResult) -> dict[str, Any]:
    rf = layer.receptive_field
    return {
        "op": layer.op,
        "spec": layer.spec,
        "output_shape": layer.output.as_list(),
        "params": layer.params,
        "buffers": layer.buffers,
        "macs": layer.macs,
        "receptive_field": None
        if rf is None or rf == UNTRACKED
        else {
            "size": list(rf.size),
            "jump": list(rf.jump),
            "start": list(rf.start),
        },
        "memory_bytes": layer.memory,
        "exact": layer.exact,
        "notes": list(layer.notes),
    } | (
        {"branches": [[_layer_json(p.result) for p in branch] for branch in layer.branches]}
        if layer.branches
        else {}
    )


def _axis_json(ax: Axis) -> dict[str, Any]:
    return {
        "input": ax.n,
        "kernel": ax.kernel,
        "stride": ax.stride,
        "dilation": ax.dilation,
        "padding": [ax.pad_lo, ax.pad_hi],
        "output": ax.size,
        "exact": ax.exact,
        "uncovered": ax.uncovered,
        "rounding": ax.rounding.value,
        "formula": ax.formula,
    }


def _padding_text(axes: tuple[Axis, ...]) -> list[str]:
    if not any(ax.pad_lo != ax.pad_hi for ax in axes):
        return []
    names = axis_names(len(axes))
    return [
        ", ".join(
            f"{name} {ax.pad_lo} before / {ax.pad_hi} after"
            for name, ax in zip(names, axes, strict=False)
        )
    ]


def _field_step(before: ReceptiveField, layer: LayerResult) -> str:
    after = layer.receptive_field
    assert after is not None
    ax = layer.axes[0]
    return (
        f"r = {before.size[0]} + ({ax.span} − 1)·{before.jump[0]} = {after.size[0]}, "
        f"j = {before.jump[0]}·{ax.stride} = {after.jump[0]}, "
        f"start = {_start(before.start[0])} + (({ax.span} − 1)/2 − {ax.pad_lo})·{before.jump[0]}"
        f" = {_start(after.start[0])}" + ("  (first axis)" if len(layer.axes) > 1 else "")
    )


def _union_text(layer: LayerResult) -> str:
    """The union a merge makes of its inputs' fields, on the first axis:
    ``[−2, 2] ∪ [−1, 1] = [−2, 2], size 5, start 0``."""
    spans = " ∪ ".join(_span(field) for field in layer.merged_fields)
    merged = layer.receptive_field
    if merged is None:
        return f"{spans} = the whole input"
    if merged == UNTRACKED:
        return f"{spans} = not tracked"
    first = "  (first axis)" if len(merged.size) > 1 else ""
    return (
        f"{spans} = {_span(merged)}, size {merged.size[0]}, start {_start(merged.start[0])}{first}"
    )


def _span(field: ReceptiveField | None) -> str:
    """The input pixels a field covers on the first axis, ``[lo, hi]``."""
    if field is None:
        return "the whole input"
    if field == UNTRACKED:
        return "not tracked"
    half = (field.size[0] - 1) / 2
    return f"[{_start(field.start[0] - half)}, {_start(field.start[0] + half)}]"


def _start(x: float) -> str:
    """A receptive field's centre: whole, or a half (``2.5``)."""
    return number(x, 6)
