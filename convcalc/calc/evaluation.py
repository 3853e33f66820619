"""A stack of layers evaluated in order: each layer's step from the shape and
receptive field before it, and groups and blocks as stacks of their own.

`evaluate` gives the `convcalc.calc.network.NetworkResult`; an error names the layer
and where it was written. ``@NAME`` records the current tensor for a later merge. A
group runs each branch from the same tensor and merges them; a block (``basic``,
``bottleneck``, ``invres``) runs its main path and its shortcut and sums them.
One layer's step is `convcalc.calc.layer_steps`.
"""

from __future__ import annotations

from collections.abc import Sequence

from convcalc.calc.choices import Convention
from convcalc.calc.grammar import format_layer
from convcalc.calc.layer_steps import LAYER_STEPS, Context, Step, need_spatial
from convcalc.calc.layers import (
    BatchNorm,
    Conv,
    DepthwiseConv,
    Group,
    InvertedResidual,
    Layer,
    Mark,
    ResBlock,
    Shape,
    Spec,
)
from convcalc.calc.merging import ReceptiveField, merged_shape, union
from convcalc.calc.network import LayerResult, NetworkResult, Placed, initial_field
from convcalc.errors import ConvcalcError


def evaluate(
    specs: Sequence[Spec],
    input_shape: Shape,
    *,
    convention: Convention = Convention.TORCH,
    strict: bool = False,
) -> NetworkResult:
    """Compute every layer of a stack on an input shape (HxWxC, n, DxHxWxC).

    Raises ConvcalcError naming the layer and where it was written when a layer
    cannot follow the one before it, or, with ``strict``, when windows that do not
    fit exactly leave input rows or columns never covered (padding alone left over
    is only noted).
    """
    ctx = Context(convention, strict, {})
    placed, _, _ = _run(specs, input_shape, initial_field(len(input_shape.spatial)), ctx)
    return NetworkResult(input_shape, tuple(p.result for p in placed))


class _Placing(ConvcalcError):
    """An error already placed (a layer inside a group): not placed a second time."""


def _run(
    specs: Sequence[Spec], shape: Shape, rf: ReceptiveField | None, ctx: Context
) -> tuple[list[Placed], Shape, ReceptiveField | None]:
    """A sequence of layers from ``shape``: each placed, and the last shape and field.
    ``@NAME`` records the current tensor under that name and makes no layer."""
    placed = []
    for position, spec in enumerate(specs, start=1):
        if isinstance(spec.layer, Mark):
            ctx.names[spec.layer.name] = (shape, rf)
            continue
        try:
            result = _step(spec.layer, shape, rf, ctx)
        except _Placing:
            raise
        except ConvcalcError as exc:
            where = spec.where or f"layer {position}"
            raise _Placing(f"{where} ({spec.text}): {exc}", exc.hint) from None
        placed.append(Placed(spec.text, spec.layer, shape, result._replace(spec=spec.text)))
        shape, rf = result.output, result.receptive_field
    return placed, shape, rf


def placed_layers(specs: Sequence[Spec], result: NetworkResult) -> list[Placed]:
    """Every layer of an evaluated network in order, each block opened into its own
    layers (written ``bottleneck:64 › conv:64,1,bias=no``)."""
    layers = [spec for spec in specs if not isinstance(spec.layer, Mark)]
    inputs = [result.input] + [layer.output for layer in result.layers[:-1]]
    return [
        leaf
        for spec, shape, layer in zip(layers, inputs, result.layers, strict=True)
        for leaf in _opened(Placed(spec.text, spec.layer, shape, layer))
    ]


def _opened(placed: Placed) -> list[Placed]:
    if not placed.result.inner:
        return [placed]
    return [
        leaf._replace(text=f"{placed.text} › {leaf.text}")
        for inner in placed.result.inner
        for leaf in _opened(inner)
    ]


# -- groups and blocks -----------------------------------------------------


def _step(layer: Layer, shape: Shape, rf: ReceptiveField | None, ctx: Context) -> LayerResult:
    """One layer's step: its own (`convcalc.calc.layer_steps`), or a group's or block's."""
    return _STEPS[type(layer)](layer, shape, rf, ctx)


def _resblock(
    layer: ResBlock, shape: Shape, rf: ReceptiveField | None, ctx: Context
) -> LayerResult:
    need_spatial(shape, 2)
    w, s = layer.width, layer.stride
    if layer.kind == "basic":
        out = w
        main: list[Layer] = [_conv3(w, s), BatchNorm(), _conv3(w, 1), BatchNorm()]
    else:
        out = 4 * w
        main = [_conv1(w, 1), BatchNorm(), _conv3(w, s), BatchNorm(), _conv1(out, 1), BatchNorm()]
    shortcut: list[Layer] = []
    if s != 1 or shape.c != out:
        shortcut = [_conv1(out, s), BatchNorm()]
    return _branches(main, shortcut, shape, rf, ctx)


def _inverted_residual(
    layer: InvertedResidual, shape: Shape, rf: ReceptiveField | None, ctx: Context
) -> LayerResult:
    need_spatial(shape, 2)
    hidden = shape.c * layer.expand
    main: list[Layer] = [_conv1(hidden, 1), BatchNorm()] if layer.expand != 1 else []
    main += [
        DepthwiseConv((3,), 1, (layer.stride,), (1,), bias=False),
        BatchNorm(),
        _conv1(layer.out, 1),
        BatchNorm(),
    ]
    residual = layer.stride == 1 and shape.c == layer.out
    return _branches(main, [] if residual else None, shape, rf, ctx)


def _group(layer: Group, shape: Shape, rf: ReceptiveField | None, ctx: Context) -> LayerResult:
    """Branches from one tensor, merged: counts are every branch's, the field their union."""
    branches, outputs, fields = [], [], []
    # strict judges the group: input is lost only if every branch loses some
    lenient = ctx._replace(strict=False)
    for branch in layer.branches:
        placed, out, out_rf = _run(branch, shape, rf, lenient)
        branches.append(tuple(placed))
        outputs.append(out)
        fields.append(out_rf)
    lost = [_lost(branch) for branch in branches]
    if ctx.strict and all(lost):
        raise ConvcalcError(lost[0][0], "Drop --strict, or change the padding or the stride.")
    output = merged_shape(layer.merge, outputs)
    inner = tuple(p for branch in branches for p in branch)
    steps = [p.result for p in inner]
    notes = list(dict.fromkeys(note for step in steps for note in step.notes))
    field = union(fields)
    if field is None and any(f is not None for f in fields):
        notes.append("receptive field: the whole input (a global pool inside a branch)")
    return LayerResult(
        "",
        output,
        sum(s.params for s in steps),
        sum(s.buffers for s in steps),
        sum(s.macs for s in steps),
        field,
        (),
        tuple(notes),
        all(s.exact for s in steps),
        inner,
        len(branches) > 1,  # one branch merges nothing: its last tensor is the output
        tuple(branches),
        layer.merge,
        tuple(fields),
    )


def _lost(branch: tuple[Placed, ...]) -> list[str]:
    """What a branch's layers say of input rows or columns they never cover."""
    return [
        note
        for placed in branch
        for leaf in _opened(placed)
        for note in leaf.result.notes
        if "never covered" in note
    ]


def _branches(
    main: list[Layer],
    shortcut: list[Layer] | None,
    shape: Shape,
    rf: ReceptiveField | None,
    ctx: Context,
) -> LayerResult:
    """A block: the main path, then the shortcut (None: no shortcut at all; empty: the
    identity), summed. Counts are both paths'; the receptive field is the main path's."""
    inner: list[Placed] = []
    out_shape, out_rf = shape, rf
    for layer in main:
        step = _step(layer, out_shape, out_rf, ctx)
        inner.append(Placed(format_layer(layer), layer, out_shape, step))
        out_shape, out_rf = step.output, step.receptive_field
    side = shape
    # the main path reads every input cell, so a strided shortcut skipping some loses
    # no input of the block: --strict judges the main path only
    lenient = ctx._replace(strict=False)
    for layer in shortcut or []:
        step = _step(layer, side, None, lenient)
        inner.append(Placed(f"shortcut {format_layer(layer)}", layer, side, step))
        side = step.output
    steps = [placed.result for placed in inner]
    notes = [
        f"shortcut {note}" if placed.text.startswith("shortcut") else note
        for placed in inner
        for note in placed.result.notes
    ]
    return LayerResult(
        "",
        out_shape,
        sum(step.params for step in steps),
        sum(step.buffers for step in steps),
        sum(step.macs for step in steps),
        out_rf,
        (),
        tuple(dict.fromkeys(notes)),
        all(step.exact for step in steps),
        tuple(inner),
        shortcut is not None,
    )


def _conv1(out: int, stride: int) -> Conv:
    return Conv(out, (1,), (stride,), (0,), bias=False)


def _conv3(out: int, stride: int) -> Conv:
    return Conv(out, (3,), (stride,), (1,), bias=False)


_STEPS: dict[type, Step] = {
    **LAYER_STEPS,
    Group: _group,
    ResBlock: _resblock,
    InvertedResidual: _inverted_residual,
}
