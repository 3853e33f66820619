"""Shapes, parameters, MACs and receptive fields of a stack of layers.

Counting rules (they match torchvision's trainable parameters):

* convolution: ``KH·KW·(C_in/groups)·C_out`` weights + ``C_out`` biases;
  MACs ``H_out·W_out·C_out·KH·KW·C_in/groups`` (biases are not MACs);
* transposed convolution: the same weights; MACs count input positions,
  ``H_in·W_in·C_in·KH·KW·C_out/groups``;
* fully connected: ``N_in·N`` weights + ``N`` biases, ``N_in·N`` MACs;
* batch normalisation: ``2·C`` trainable parameters; its ``2·C`` running
  statistics are buffers, reported apart and never added to the parameters;
* pooling and pointwise layers hold no parameters and count no MACs.

Receptive field per axis, with s, p_lo and the dilated kernel span k of a layer
(size r, jump j, start = centre of the first output's field in input pixels):
``j' = j·s``, ``r' = r + (k-1)·j``, ``start' = start + ((k-1)/2 - p_lo)·j``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from convcalc.calc.axes import axis_names, singular
from convcalc.calc.choices import Convention, Rounding
from convcalc.calc.geometry import Axis, Padding, conv_axis, pool_axis, transposed_axis
from convcalc.calc.grammar import format_layer
from convcalc.calc.layers import (
    AdaptivePool,
    BatchNorm,
    Conv,
    Deconv,
    Dense,
    DepthwiseConv,
    Flatten,
    GlobalPool,
    Group,
    InvertedResidual,
    Layer,
    LayerNorm,
    Mark,
    Merge,
    Pad,
    Pointwise,
    Pool,
    ResBlock,
    Scale,
    Shape,
    Spec,
    Upsample,
)
from convcalc.calc.merging import UNTRACKED, ReceptiveField, centre_crop, merged_shape, union
from convcalc.errors import ConvcalcError

BYTES_PER_VALUE = 4
"""Activation memory is counted in float32."""


class LayerResult(NamedTuple):
    """One layer of a stack, computed."""

    spec: str
    output: Shape
    params: int
    buffers: int
    macs: int
    receptive_field: ReceptiveField | None
    axes: tuple[Axis, ...] = ()
    notes: tuple[str, ...] = ()
    exact: bool = True
    inner: tuple[Placed, ...] = ()
    """A block's or group's own layers, in order (a block's shortcut last)."""
    merges: bool = False
    """True when the block's output is a new tensor (the sum of its paths)."""
    branches: tuple[tuple[Placed, ...], ...] = ()
    """A group's branches, each its layers in order (an empty one: the identity)."""
    merge: str = ""
    """A group's merge: concat, add or mul."""
    merged_fields: tuple[ReceptiveField | None, ...] = ()
    """The receptive fields a group's branches end with, united by the merge."""

    @property
    def op(self) -> str:
        """The operation's name as written (``conv``, ``maxpool`` …; a group's merge)."""
        return self.merge or self.spec.split(":", 1)[0]

    @property
    def memory(self) -> int:
        """Bytes of the activations the layer produces (float32): its output, or for a
        block every tensor inside it (expanded ones included) and the sum it ends in."""
        if not self.inner:
            return self.output.volume * BYTES_PER_VALUE
        own = self.output.volume * BYTES_PER_VALUE if self.merges else 0
        return own + sum(placed.result.memory for placed in self.inner)


class Placed(NamedTuple):
    """A layer where it sits in a network: as written, its input, its result."""

    text: str
    layer: Layer
    input: Shape
    result: LayerResult


class NetworkResult(NamedTuple):
    """A whole stack computed: the input and one result per layer spec."""

    input: Shape
    layers: tuple[LayerResult, ...]

    @property
    def output(self) -> Shape:
        """The stack's final output shape."""
        return self.layers[-1].output if self.layers else self.input

    @property
    def total_params(self) -> int:
        """Trainable parameters, summed over layers."""
        return sum(layer.params for layer in self.layers)

    @property
    def total_buffers(self) -> int:
        """Non-trainable running statistics (batch normalisation), summed."""
        return sum(layer.buffers for layer in self.layers)

    @property
    def total_macs(self) -> int:
        """Multiply-accumulates of one forward pass; FLOPs are twice this."""
        return sum(layer.macs for layer in self.layers)

    @property
    def total_memory(self) -> int:
        """Bytes of every layer's output activations (float32), summed."""
        return sum(layer.memory for layer in self.layers)


class _Context(NamedTuple):
    convention: Convention
    strict: bool
    names: dict[str, tuple[Shape, ReceptiveField | None]]
    """The tensors named so far (``@NAME``): their shapes and receptive fields."""


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
    ctx = _Context(convention, strict, {})
    placed, _, _ = _run(specs, input_shape, initial_field(len(input_shape.spatial)), ctx)
    return NetworkResult(input_shape, tuple(p.result for p in placed))


class _Placing(ConvcalcError):
    """An error already placed (a layer inside a group): not placed a second time."""


def _run(
    specs: Sequence[Spec], shape: Shape, rf: ReceptiveField | None, ctx: _Context
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


def per_axis(values: tuple[Any, ...], rank: int, what: str) -> tuple[Any, ...]:
    """A per-axis value spread over ``rank`` axes (one entry means every axis)."""
    if len(values) == 1:
        return values * rank
    if len(values) != rank:
        shown = "x".join(str(v) for v in values)
        raise ConvcalcError(
            f"{what} {shown} has {len(values)} axes but the input has {rank} spatial "
            f"axes; valid: one value or {rank} separated by x"
        )
    return values


def two_axes(values: tuple[Any, ...], what: str) -> tuple[Any, Any]:
    """A per-axis value spread over the two axes of an image: (rows, columns)."""
    rows, columns = per_axis(values, 2, what)
    return rows, columns


def conv_fan_in(kernel: Sequence[int], channels: int, groups: int = 1) -> int:
    """The inputs one output value of a convolution reads: ``KH·KW·C_in/groups``.

    Also the weights of one filter, and the MACs of one output value.

    Parameters
    ----------
    kernel : sequence of int
        The kernel's size per spatial axis (KH, KW; one entry for 1-D).
    channels : int
        C_in, the input's channel count.
    groups : int
        Grouped convolution; it divides ``channels``.

    Examples
    --------
    >>> conv_fan_in((5, 5), 3)
    75
    >>> conv_fan_in((3, 3), 32, groups=32)
    9
    """
    return _product(kernel) * channels // groups


# -- one layer -------------------------------------------------------------

_Step = Callable[[Any, Shape, "ReceptiveField | None", _Context], LayerResult]


def _step(layer: Layer, shape: Shape, rf: ReceptiveField | None, ctx: _Context) -> LayerResult:
    return _STEPS[type(layer)](layer, shape, rf, ctx)


def _conv(layer: Conv, shape: Shape, rf: ReceptiveField | None, ctx: _Context) -> LayerResult:
    if layer.kernel is None:
        raise ConvcalcError("no kernel size: give one, as in conv:OUT,K")
    _need_spatial(shape, layer.rank)
    out = shape.c if layer.out is None else layer.out
    _check_groups(shape.c, out, layer.groups)
    axes = _window_axes(layer, shape, ctx)
    output = Shape(tuple(ax.size for ax in axes), _out_channels(shape, layer.out))
    fan_in = conv_fan_in(_kernel(layer, shape), shape.c, layer.groups)
    params = fan_in * out + (out if layer.bias else 0)
    macs = _product(output.spatial) * out * fan_in
    return _result(output, params, macs, _window_field(rf, axes), axes, ctx)


def _depthwise(
    layer: DepthwiseConv, shape: Shape, rf: ReceptiveField | None, ctx: _Context
) -> LayerResult:
    out = shape.c * layer.multiplier
    conv = Conv(
        out,
        layer.kernel,
        layer.stride,
        layer.padding,
        layer.dilation,
        shape.c,
        layer.bias,
        layer.rank,
    )
    return _conv(conv, shape, rf, ctx)


def _deconv(layer: Deconv, shape: Shape, rf: ReceptiveField | None, ctx: _Context) -> LayerResult:
    if layer.kernel is None:
        raise ConvcalcError("no kernel size: give one, as in deconv:OUT,K")
    _need_spatial(shape, layer.rank)
    out = shape.c if layer.out is None else layer.out
    _check_groups(shape.c, out, layer.groups)
    rank = len(shape.spatial)
    kernel = per_axis(layer.kernel, rank, "kernel")
    axes = tuple(
        transposed_axis(n, k, stride=s, padding=p, dilation=d, output_padding=op)
        for n, k, s, p, d, op in zip(
            shape.spatial,
            kernel,
            per_axis(layer.stride, rank, "stride"),
            per_axis(layer.padding, rank, "padding"),
            per_axis(layer.dilation, rank, "dilation"),
            per_axis(layer.output_padding, rank, "output_padding"),
            strict=True,
        )
    )
    output = Shape(tuple(ax.size for ax in axes), _out_channels(shape, layer.out))
    # the weights of a C_in to C_out convolution; the MACs are counted per input
    # position, since each input value is scattered through the whole kernel
    fan_in = conv_fan_in(kernel, shape.c, layer.groups)
    params = fan_in * out + (out if layer.bias else 0)
    macs = _product(shape.spatial) * fan_in * out
    notes = ("receptive field is not tracked through a transposed convolution",)
    return LayerResult("", output, params, 0, macs, UNTRACKED, axes, notes)


def _pool(layer: Pool, shape: Shape, rf: ReceptiveField | None, ctx: _Context) -> LayerResult:
    _need_spatial(shape, None)
    axes = _window_axes(layer, shape, ctx)
    output = Shape(tuple(ax.size for ax in axes), shape.channels)
    return _result(output, 0, 0, _window_field(rf, axes), axes, ctx)


def _global_pool(
    layer: GlobalPool, shape: Shape, rf: ReceptiveField | None, ctx: _Context
) -> LayerResult:
    _need_spatial(shape, None)
    output = Shape(tuple(1 for _ in shape.spatial), shape.channels)
    return LayerResult("", output, 0, 0, 0, None)


def _adaptive_pool(
    layer: AdaptivePool, shape: Shape, rf: ReceptiveField | None, ctx: _Context
) -> LayerResult:
    """Average pooling to a fixed size, with PyTorch's windows: output i of n -> out
    averages inputs floor(i·n/out) to ceil((i+1)·n/out) - 1. Where n is a multiple of
    out these are a pool of kernel = stride = n/out; elsewhere their sizes vary, and
    the receptive field counts the largest."""
    _need_spatial(shape, None)
    size = per_axis(layer.size, len(shape.spatial), "size")
    output = Shape(size, shape.channels)
    pairs = list(zip(shape.spatial, size, strict=True))
    if all(n % out == 0 for n, out in pairs):
        axes = tuple(pool_axis(n, n // out, stride=n // out) for n, out in pairs)
        return LayerResult("", output, 0, 0, 0, _window_field(rf, axes), axes)
    field = rf
    if rf is not None and rf != UNTRACKED:
        largest = [
            max(-(-(i + 1) * n // out) - i * n // out for i in range(out)) for n, out in pairs
        ]
        first = [-(-n // out) for n, out in pairs]
        field = ReceptiveField(
            tuple(
                round(r + (k - 1) * j) for r, k, j in zip(rf.size, largest, rf.jump, strict=True)
            ),
            tuple(_exact(j * n / out) for j, (n, out) in zip(rf.jump, pairs, strict=True)),
            tuple(s + (k - 1) / 2 * j for s, k, j in zip(rf.start, first, rf.jump, strict=True)),
        )
    note = "adaptive pooling windows of uneven size: the receptive field counts the largest"
    return LayerResult("", output, 0, 0, 0, field, (), (note,))


def _dense(layer: Dense, shape: Shape, rf: ReceptiveField | None, ctx: _Context) -> LayerResult:
    if layer.units < 1:
        raise ConvcalcError(f"units {layer.units} is not valid: it must be at least 1")
    weights = shape.volume * layer.units
    params = weights + (layer.units if layer.bias else 0)
    return LayerResult("", Shape((), layer.units), params, 0, weights, None)


def _flatten(layer: Flatten, shape: Shape, rf: ReceptiveField | None, ctx: _Context) -> LayerResult:
    return LayerResult("", Shape((), shape.volume), 0, 0, 0, None)


def _pointwise(
    layer: Pointwise, shape: Shape, rf: ReceptiveField | None, ctx: _Context
) -> LayerResult:
    return LayerResult("", shape, 0, 0, 0, rf)


def _batchnorm(
    layer: BatchNorm, shape: Shape, rf: ReceptiveField | None, ctx: _Context
) -> LayerResult:
    return LayerResult("", shape, 2 * shape.c, 2 * shape.c, 0, rf)


def _resblock(
    layer: ResBlock, shape: Shape, rf: ReceptiveField | None, ctx: _Context
) -> LayerResult:
    _need_spatial(shape, 2)
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
    layer: InvertedResidual, shape: Shape, rf: ReceptiveField | None, ctx: _Context
) -> LayerResult:
    _need_spatial(shape, 2)
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


def _group(layer: Group, shape: Shape, rf: ReceptiveField | None, ctx: _Context) -> LayerResult:
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


def _merge(layer: Merge, shape: Shape, rf: ReceptiveField | None, ctx: _Context) -> LayerResult:
    """The current tensor merged with named ones (each centre-cropped first with crop)."""
    tensors = [(shape, rf)]
    for name in layer.names:
        if name not in ctx.names:
            known = ", ".join(f"@{n}" for n in ctx.names) or "none yet"
            raise ConvcalcError(f"no tensor is named '{name}'; named so far: {known}")
        named, field = ctx.names[name]
        if layer.crop:
            named = centre_crop(named, shape.spatial, name)
        tensors.append((named, field))
    output = merged_shape(layer.kind, [t[0] for t in tensors])
    fields = tuple(t[1] for t in tensors)
    return LayerResult("", output, 0, 0, 0, union(fields), merge=layer.kind, merged_fields=fields)


def _upsample(
    layer: Upsample, shape: Shape, rf: ReceptiveField | None, ctx: _Context
) -> LayerResult:
    """Each value repeated ``scale`` times per axis (nearest) or interpolated between
    two neighbours (bilinear, whose field is one input pixel wider)."""
    _need_spatial(shape, None)
    scale = per_axis(layer.scale, len(shape.spatial), "scale")
    output = Shape(tuple(n * s for n, s in zip(shape.spatial, scale, strict=True)), shape.channels)
    field = rf
    if rf is not None and rf != UNTRACKED:
        wider = 1 if layer.mode == "bilinear" else 0
        field = ReceptiveField(
            tuple(r + wider * int(j) for r, j in zip(rf.size, rf.jump, strict=True)),
            tuple(_exact(j / s) for j, s in zip(rf.jump, scale, strict=True)),
            rf.start,
        )
    return LayerResult("", output, 0, 0, 0, field)


def _pad(layer: Pad, shape: Shape, rf: ReceptiveField | None, ctx: _Context) -> LayerResult:
    _need_spatial(shape, None)
    pads = per_axis(layer.padding, len(shape.spatial), "padding")
    output = Shape(
        tuple(n + 2 * p for n, p in zip(shape.spatial, pads, strict=True)), shape.channels
    )
    field = rf
    if rf is not None and rf != UNTRACKED:
        starts = tuple(st - p * j for st, p, j in zip(rf.start, pads, rf.jump, strict=True))
        field = ReceptiveField(rf.size, rf.jump, starts)
    return LayerResult("", output, 0, 0, 0, field)


def _exact(value: float) -> float:
    """A whole jump as an int (printed ``2``, not ``2.0``)."""
    return int(value) if float(value).is_integer() else value


_STEPS: dict[type, _Step] = {
    Conv: _conv,
    DepthwiseConv: _depthwise,
    Deconv: _deconv,
    Pool: _pool,
    GlobalPool: _global_pool,
    AdaptivePool: _adaptive_pool,
    Group: _group,
    Merge: _merge,
    Upsample: _upsample,
    Pad: _pad,
    LayerNorm: lambda layer, shape, rf, ctx: LayerResult("", shape, 2 * shape.c, 0, 0, rf),
    Scale: lambda layer, shape, rf, ctx: LayerResult("", shape, shape.c, 0, 0, rf),
    Dense: _dense,
    Flatten: _flatten,
    Pointwise: _pointwise,
    BatchNorm: _batchnorm,
    ResBlock: _resblock,
    InvertedResidual: _inverted_residual,
}


# -- helpers ---------------------------------------------------------------


def initial_field(rank: int) -> ReceptiveField | None:
    """The receptive field of the input itself: size 1, jump 1, start 0 per axis."""
    if rank == 0:
        return None
    return ReceptiveField((1,) * rank, (1,) * rank, (0.0,) * rank)


def _window_axes(layer: Conv | Pool, shape: Shape, ctx: _Context) -> tuple[Axis, ...]:
    rank = len(shape.spatial)
    kernel = _kernel(layer, shape)
    padding: tuple[Padding, ...] = per_axis(layer.padding, rank, "padding")
    dilation = per_axis(layer.dilation, rank, "dilation")
    if isinstance(layer, Pool):
        strides = kernel if layer.stride is None else per_axis(layer.stride, rank, "stride")
        return tuple(
            pool_axis(
                n, k, stride=s, padding=p, dilation=d, ceil=layer.ceil, convention=ctx.convention
            )
            for n, k, s, p, d in zip(shape.spatial, kernel, strides, padding, dilation, strict=True)
        )
    strides = per_axis(layer.stride, rank, "stride")
    return tuple(
        conv_axis(n, k, stride=s, padding=p, dilation=d, convention=ctx.convention)
        for n, k, s, p, d in zip(shape.spatial, kernel, strides, padding, dilation, strict=True)
    )


def _kernel(layer: Conv | Pool, shape: Shape) -> tuple[int, ...]:
    assert layer.kernel is not None
    return per_axis(layer.kernel, len(shape.spatial), "kernel")


def _window_field(rf: ReceptiveField | None, axes: tuple[Axis, ...]) -> ReceptiveField | None:
    if rf is None or rf == UNTRACKED:
        return rf
    return ReceptiveField(
        tuple(
            round(r + (ax.span - 1) * j) for r, j, ax in zip(rf.size, rf.jump, axes, strict=True)
        ),
        tuple(_exact(j * ax.stride) for j, ax in zip(rf.jump, axes, strict=True)),
        tuple(
            start + ((ax.span - 1) / 2 - ax.pad_lo) * j
            for start, j, ax in zip(rf.start, rf.jump, axes, strict=True)
        ),
    )


def _result(
    output: Shape,
    params: int,
    macs: int,
    rf: ReceptiveField | None,
    axes: tuple[Axis, ...],
    ctx: _Context,
) -> LayerResult:
    notes = [note for ax in axes for note in ax.notes]
    fit = _fit_notes(axes)
    lost = [note for note in fit if "never covered" in note]
    if lost and ctx.strict:  # padding alone left over loses no input: strict lets it be
        raise ConvcalcError(lost[0], "Drop --strict, or change the padding or the stride.")
    notes = list(dict.fromkeys(notes + fit))
    return LayerResult("", output, params, 0, macs, rf, axes, tuple(notes), not fit)


def _fit_notes(axes: tuple[Axis, ...]) -> list[str]:
    """Say, per axis (axes alike together), where the windows do not tile exactly."""
    grouped: dict[tuple[str, int], list[str]] = {}
    for name, ax in zip(axis_names(len(axes)), axes, strict=True):
        if ax.exact:
            continue
        reach = ax.n + ax.pad_lo + ax.pad_hi - ax.span
        quotient = f"{reach}/{ax.stride} = {reach / ax.stride:.4g}"
        if ax.rounding == Rounding.CEIL and (ax.size - 1) * ax.stride + ax.span > (
            ax.n + ax.pad_lo + ax.pad_hi
        ):
            text = f"not exact ({quotient}): rounded up, the last window runs past the input"
        elif ax.rounding == Rounding.CEIL:
            text = (
                f"not exact ({quotient}): rounded up, then less one (a window may not "
                "start inside the padding)"
            )
        else:
            text = f"not exact ({quotient}): rounded down"
        grouped.setdefault((text, ax.uncovered), []).append(name)
    notes = []
    for (text, uncovered), names in grouped.items():
        if uncovered:
            units = "/".join(names if uncovered > 1 else [singular(n) for n in names])
            text += f"; the last {uncovered} input {units} never covered"
        elif "rounded down" in text:
            text += "; only padding is left uncovered, no input is lost"
        notes.append(f"{' and '.join(names)}: {text}")
    return notes


def _branches(
    main: list[Layer],
    shortcut: list[Layer] | None,
    shape: Shape,
    rf: ReceptiveField | None,
    ctx: _Context,
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


def _need_spatial(shape: Shape, rank: int | None) -> None:
    if shape.flat:
        raise ConvcalcError(
            f"needs a spatial input but gets the flat vector {shape}; valid: put "
            "convolution and pooling before flatten and fully connected layers"
        )
    if rank is not None and len(shape.spatial) != rank:
        raise ConvcalcError(
            f"works on {rank} spatial axes but the input {shape} has {len(shape.spatial)}"
        )


def _check_groups(c_in: int, c_out: int, groups: int) -> None:
    if groups < 1 or c_in % groups or c_out % groups:
        raise ConvcalcError(
            f"groups {groups} must be at least 1 and divide both the input channels "
            f"{c_in} and the output channels {c_out}"
        )


def _out_channels(shape: Shape, out: int | None) -> int | None:
    if out is not None and out < 1:
        raise ConvcalcError(f"filters {out} is not valid: it must be at least 1")
    return shape.channels if out is None else out


def _product(values: Sequence[int]) -> int:
    total = 1
    for v in values:
        total *= v
    return total
