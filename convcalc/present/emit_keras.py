"""`convcalc shape ... --emit keras`: the network as one Keras 3 module (source text).

``build()`` returns a ``keras.Model`` made with the Functional API on channels-last
input; run as a script, the module builds it, runs a zero input and prints the
trainable parameters and the output shape beside convcalc's. It runs on any Keras 3
backend (the frameworks check uses ``KERAS_BACKEND=torch``).

Padding is written as the result computed it: ``padding="same"`` only where the
result's padding is TensorFlow's SAME split exactly (and, for an average pool, where
the padding is left out of the count, as TensorFlow does); otherwise ``"valid"``
after an explicit ``layers.ZeroPadding2D`` (a ``MaxPadding`` of -inf before a max pool,
where a zero could win). What Keras cannot express exactly is refused, naming the
layer: L2 pooling, local response normalisation, an average pool whose last window
runs past the padded input (``ceil``, Caffe's rounding), pooling with dilation,
strides and dilation above 1 together, grouped transposed convolutions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from convcalc.calc.choices import Convention, PadRule, PoolKind
from convcalc.calc.geometry import Axis, same_padding
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
    LayerNorm,
    Mark,
    Merge,
    Pad,
    Pointwise,
    Pool,
    Scale,
    Shape,
    Spec,
    Upsample,
)
from convcalc.calc.network import NetworkResult
from convcalc.errors import ConvcalcError
from convcalc.present.emit_common import (
    DROPOUT_RATE,
    LAYER_NORM_EPS,
    LRELU_SLOPE,
    Node,
    block_note,
    block_parts,
    branch_nodes,
    crop_pairs,
    dims,
    docstring,
    is_block,
    network_nodes,
    overhang,
    padding_text,
    pads,
    refusal,
    variable_names,
)
from convcalc.present.emit_helpers import KERAS_HELPERS

FRAMEWORK = "Keras"

RESERVED = {"inputs", "keras", "layers", "ops", "math", "build", "model", "out", "params", "w"}
"""Names the module uses: a tensor named so (``@out``) gets a trailing ``_``."""

BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9
"""Batch norm as PyTorch's defaults (eps 1e-5, momentum 0.1 in PyTorch's sense)."""

Call = tuple[str, str]
"""A layer applied to the current tensor: its constructor call and a comment."""


def emit_keras(
    specs: Sequence[Spec],
    result: NetworkResult,
    input_shape: Shape,
    *,
    convention: Convention = Convention.TORCH,
    command: str = "",
) -> str:
    """The network as the source text of one self-contained Keras 3 module.

    Parameters
    ----------
    specs, result
        The layers as parsed and as `convcalc.calc.evaluation.evaluate` computed them on
        ``input_shape`` (HxWxC), with ``convention``.
    command
        The convcalc command line that made it, quoted in the module's docstring.

    Returns
    -------
    str
        Python source: ``build()`` returns a ``keras.Model`` on channels-last input with
        the trainable parameters and output shape of ``result``.

    Raises
    ------
    ConvcalcError
        A layer Keras cannot express exactly, named, with the reason.
    """
    writer = _Writer(convention, variable_names(specs, RESERVED | set(KERAS_HELPERS)))
    lines, out = writer.flow(network_nodes(specs, result), "x", "x")
    return writer.module(lines, out, input_shape, result, command)


class _Writer:
    """One emission: ``build()``'s statements, the helpers and notes they need."""

    def __init__(self, convention: Convention, names: dict[str, str]) -> None:
        self.convention = convention
        self.names = names
        self.helpers: dict[str, None] = {}
        self.notes: dict[str, None] = {}
        self.named: dict[str, Shape] = {}

    def flow(self, nodes: Sequence[Node], src: str, dst: str) -> tuple[list[str], str]:
        """The statements of ``nodes`` from the tensor ``src``, writing ``dst``; the
        tensor they end in (``src`` itself for an empty branch)."""
        lines: list[str] = []
        current = src
        for node in nodes:
            layer = node.layer
            if isinstance(layer, Mark):
                self.named[layer.name] = node.input
                lines.append(f"{self.names[layer.name]} = {current}")
                continue
            if isinstance(layer, Merge):
                tensors = [current, *(self._named(name, node, layer.crop) for name in layer.names)]
                lines.append(f"{dst} = {_merged(layer.kind, tensors)}  # {node.comment}")
            elif isinstance(layer, Group):
                branches = branch_nodes(node)
                lines += self._branches(node, layer.merge, branches, current, dst)
            elif is_block(node):
                lines += self._block(node, current, dst)
            else:
                calls = _LAYERS[type(layer)](self, node)
                lines += [
                    f"{dst} = {call}({dst if i else current})  # {comment}"
                    for i, (call, comment) in enumerate(calls)
                ]
            current = dst
        return lines, current

    def module(
        self, lines: list[str], out: str, shape: Shape, result: NetworkResult, command: str
    ) -> str:
        params = result.total_params
        inputs, outputs = _nhwc(shape, "N"), _nhwc(result.output, "N")
        expected = _nhwc(result.output, "1")
        names = "layers, ops" if "MaxPadding" in self.helpers else "layers"
        text = [
            docstring(FRAMEWORK, command, f"{inputs}, channels last", outputs, params,
                      list(self.notes)),
            "",
            "import math",
            "",
            "import keras",
            f"from keras import {names}",
            *self._helper_lines(),
            "",
            "",
            "def build() -> keras.Model:",
            f'    """The network: channels-last input {inputs} -> {outputs}; {params:,} '
            'trainable parameters."""',
            f"    inputs = keras.Input(shape={_tuple(_hwc(shape))})",
            "    x = inputs",
            *(f"    {line}" for line in lines),
            f"    return keras.Model(inputs, {out})",
            "",
            "",
            'if __name__ == "__main__":',
            "    model = build()",
            f"    out = model(keras.ops.zeros({_nhwc(shape, '1')}), training=False)",
            "    params = sum(math.prod(w.shape) for w in model.trainable_weights)",
            f'    print(f"trainable parameters: {{params:,}} (convcalc: {params:,})")',
            f'    print(f"output shape: {{tuple(out.shape)}} (convcalc: {expected})")',
        ]  # fmt: skip
        return "\n".join(text) + "\n"

    def _helper_lines(self) -> list[str]:
        """The helper classes used, each after two blank lines, in a fixed order."""
        used = [source for name, source in KERAS_HELPERS.items() if name in self.helpers]
        return [line for source in used for line in ["", "", *source.splitlines()]]

    def helper(self, name: str) -> str:
        """Use a helper layer class of the module; its name."""
        self.helpers.setdefault(name)
        return name

    def _branches(
        self, node: Node, merge: str, branches: Sequence[Sequence[Node]], src: str, dst: str
    ) -> list[str]:
        lines = [f"# {node.text}"]
        outs = []
        for i, branch in enumerate(branches, start=1):
            branch_lines, branch_out = self.flow(branch, src, f"{dst}_{i}")
            lines += branch_lines
            outs.append(branch_out)
        return [*lines, f"{dst} = {_merged(merge, outs)}  # {node.comment}"]

    def _block(self, node: Node, src: str, dst: str) -> list[str]:
        block = block_parts(node)
        self.notes.setdefault(block_note(node))
        if block.shortcut is None:
            lines, _ = self.flow(block.main, src, dst)
            return [f"# {node.comment}", *lines]
        lines = self._branches(node, "add", [block.shortcut, block.main], src, dst)
        return lines + self.flow(block.after, dst, dst)[0]

    def _named(self, name: str, node: Node, crop: bool) -> str:
        variable = self.names[name]
        cuts = crop_pairs(self.named[name], node.input) if crop else []
        if not any(lo or hi for lo, hi in cuts):
            return variable
        return f"layers.Cropping{node.rank}D({_pairs(cuts)})({variable})"


def _merged(kind: str, tensors: list[str]) -> str:
    if len(tensors) == 1:
        return tensors[0]
    layer = {"concat": "Concatenate", "add": "Add", "mul": "Multiply"}[kind]
    return f"layers.{layer}()([{', '.join(tensors)}])"


def _hwc(shape: Shape) -> list[int]:
    return [*shape.spatial, shape.c]


def _tuple(values: Sequence[int | str]) -> str:
    return f"({values[0]},)" if len(values) == 1 else f"({', '.join(map(str, values))})"


def _nhwc(shape: Shape, batch: str) -> str:
    return _tuple([batch, *map(str, _hwc(shape))])


def _pairs(pairs: Sequence[tuple[int, int]]) -> str:
    """Keras's per-axis (before, after): ``(0, 1)`` for one axis, else one pair per axis."""
    if len(pairs) == 1:
        return str(pairs[0])
    return "(" + ", ".join(str(pair) for pair in pairs) + ")"


# -- one layer -------------------------------------------------------------


def _refuse(node: Node, why: str, valid: str) -> ConvcalcError:
    return refusal(node, FRAMEWORK, why, valid)


def _call(name: str, args: Sequence[str]) -> str:
    return f"{name}({', '.join(args)})"


def _keyword(name: str, values: Sequence[int], default: int) -> list[str]:
    return [f"{name}={dims(values)}"] if any(v != default for v in values) else []


def _same(node: Node, padded: Sequence[tuple[int, int]]) -> bool:
    """True when ``padded`` is TensorFlow's SAME padding on every axis, giving ceil(n/s)."""
    return all(
        (lo, hi) == same_padding(ax.n, ax.kernel, ax.stride, ax.dilation)
        and ax.size == -(-ax.n // ax.stride)
        for ax, (lo, hi) in zip(node.axes, padded, strict=True)
    )


def _padding(node: Node, padded: Sequence[tuple[int, int]]) -> tuple[list[Call], list[str]]:
    """Zero padding as Keras writes it: none, ``padding="same"``, or a ZeroPadding layer
    before a "valid" one."""
    if not any(lo or hi for lo, hi in padded):
        return [], []
    if _same(node, padded):
        return [], ['padding="same"']
    comment = f"padding of {node.text}: {padding_text(padded)}"
    return [(f"layers.ZeroPadding{node.rank}D({_pairs(padded)})", comment)], []


def _no_strided_dilation(node: Node) -> None:
    axes = node.axes
    if any(ax.stride > 1 for ax in axes) and any(ax.dilation > 1 for ax in axes):
        raise _refuse(
            node,
            "Keras's convolutions take strides or dilation_rate above 1, not both",
            "stride 1 or dilation 1, or --emit pytorch",
        )


def _conv(w: _Writer, node: Node) -> list[Call]:
    layer = node.layer
    assert isinstance(layer, Conv | DepthwiseConv)
    _no_strided_dilation(node)
    axes = node.axes
    calls, padding = _padding(node, pads(node))
    kernel = dims([ax.kernel for ax in axes])
    rest = [*_keyword("strides", [ax.stride for ax in axes], 1), *padding]
    rest += _keyword("dilation_rate", [ax.dilation for ax in axes], 1)
    if isinstance(layer, DepthwiseConv) and node.rank <= 2:
        args = [kernel, *rest, *_keyword("depth_multiplier", [layer.multiplier], 1)]
        name = f"layers.DepthwiseConv{node.rank}D"
    else:
        groups = node.input.c if isinstance(layer, DepthwiseConv) else layer.groups
        args = [str(node.output.c), kernel, *rest, *([f"groups={groups}"] if groups > 1 else [])]
        name = f"layers.Conv{node.rank}D"
    args += [] if layer.bias else ["use_bias=False"]
    return [*calls, (_call(name, args), node.comment)]


def _deconv(w: _Writer, node: Node) -> list[Call]:
    """Keras's own "same" and "valid" where the spec says so; an explicit padding p is
    "valid" with an output_padding (the full output, extended where the size needs it),
    then cropped by the result's padding."""
    layer = node.layer
    assert isinstance(layer, Deconv)
    if layer.groups != 1:
        raise _refuse(node, "layers.Conv2DTranspose has no groups", "groups 1, or --emit pytorch")
    _no_strided_dilation(node)
    axes = node.axes
    rules = set(layer.padding)
    same = rules == {PadRule.SAME}
    if rules in ({PadRule.SAME}, {PadRule.VALID}):
        given = list(layer.output_padding) * (len(axes) // len(layer.output_padding))
        extra = given if any(given) else None
        crops = [(0, 0)] * len(axes)
    else:
        full = [(ax.n - 1) * ax.stride + ax.span for ax in axes]
        needed = [max(0, ax.size + ax.pad_lo - f) for ax, f in zip(axes, full, strict=True)]
        # without output_padding, Keras's "valid" gives n·s + max(span - s, 0)
        extra = needed if any(needed) or any(ax.span < ax.stride for ax in axes) else None
        crops = [
            (ax.pad_lo, f + e - ax.pad_lo - ax.size)
            for ax, f, e in zip(axes, full, needed, strict=True)
        ]
    given_extra = extra or [0] * len(axes)
    sizes = [
        _keras_transposed(ax, same, None if extra is None else e) - lo - hi
        for ax, e, (lo, hi) in zip(axes, given_extra, crops, strict=True)
    ]
    if extra is not None and any(e >= ax.stride for ax, e in zip(axes, extra, strict=True)):
        raise _refuse(
            node,
            f"it needs output_padding {dims(extra)}, and Keras's must be below the stride",
            "--emit pytorch",
        )
    if sizes != [ax.size for ax in axes]:
        raise _refuse(
            node,
            f"Keras's transposed convolution gives {dims(sizes)}",
            "the same output_padding on every axis, or --emit pytorch",
        )
    args = [str(node.output.c), dims([ax.kernel for ax in axes])]
    args += _keyword("strides", [ax.stride for ax in axes], 1)
    args += ['padding="same"'] if same else []
    args += [] if extra is None else [f"output_padding={dims(extra)}"]
    args += _keyword("dilation_rate", [ax.dilation for ax in axes], 1)
    args += [] if layer.bias else ["use_bias=False"]
    call = _call(f"layers.Conv{node.rank}DTranspose", args)
    if not any(lo or hi for lo, hi in crops):
        return [(call, node.comment)]
    comment = f"{node.comment} (its padding: crops {padding_text(crops)})"
    return [
        (call, f"{node.text}: the full output, cropped next"),
        (f"layers.Cropping{node.rank}D({_pairs(crops)})", comment),
    ]


def _keras_transposed(ax: Axis, same: bool, extra: int | None) -> int:
    """The size Keras's transposed convolution gives (its deconv_output_length)."""
    if extra is None:
        return ax.n * ax.stride + (0 if same else max(ax.span - ax.stride, 0))
    return (ax.n - 1) * ax.stride + ax.span - 2 * (ax.span // 2 if same else 0) + extra


def _pool(w: _Writer, node: Node) -> list[Call]:
    layer = node.layer
    assert isinstance(layer, Pool)
    axes, pairs = node.axes, pads(node)
    if layer.kind == PoolKind.L2:
        raise _refuse(
            node,
            "Keras has no L2 pooling layer",
            "maxpool or avgpool, or --emit pytorch",
        )
    if any(ax.dilation > 1 for ax in axes):
        raise _refuse(
            node,
            "Keras's pooling layers have no dilation",
            "dilation 1, or --emit pytorch",
        )
    padded = [(lo, hi + overhang(ax)) for (lo, hi), ax in zip(pairs, axes, strict=True)]
    calls: list[Call] = []
    padding: list[str] = []
    if not any(lo or hi for lo, hi in padded):
        pass
    elif _same(node, padded) and (layer.kind == PoolKind.MAX or w.convention == Convention.TF):
        padding = ['padding="same"']  # TensorFlow's max ignores it, its average leaves it out
    elif layer.kind == PoolKind.MAX:
        comment = f"padding of {node.text}: {padding_text(padded)}"
        calls = [(f"{w.helper('MaxPadding')}({_pairs_of(padded)})", comment)]
    elif w.convention == Convention.TF:
        raise _refuse(
            node,
            "TensorFlow's average leaves the padding "
            f"({padding_text(padded)}) out of the count, and Keras leaves out only "
            "SAME's",
            "padding=same, or --convention torch (padding counted as zeros)",
        )
    elif any(overhang(ax) for ax in axes):
        raise _refuse(
            node,
            "its last window runs past the padded input (rounded up), and "
            "the average of a cut window (PyTorch's ceil_mode, Caffe's rule) is not a Keras "
            "pooling",
            "no ceil, sizes the windows tile, or --emit pytorch",
        )
    else:  # the padding counts as zeros in the average (PyTorch's count_include_pad)
        comment = f"padding of {node.text}: {padding_text(padded)}"
        calls = [(f"layers.ZeroPadding{node.rank}D({_pairs(padded)})", comment)]
    if not padding and any(
        (ax.n + lo + hi - ax.kernel) // ax.stride + 1 != ax.size
        for ax, (lo, hi) in zip(axes, padded, strict=True)
    ):
        raise _refuse(node, "Keras's valid pooling gives another size", "--emit pytorch")
    kernel = [ax.kernel for ax in axes]
    args = [dims(kernel)]
    if [ax.stride for ax in axes] != kernel:
        args.append(f"strides={dims([ax.stride for ax in axes])}")
    name = "MaxPooling" if layer.kind == PoolKind.MAX else "AveragePooling"
    return [*calls, (_call(f"layers.{name}{node.rank}D", args + padding), node.comment)]


def _pairs_of(pairs: Sequence[tuple[int, int]]) -> str:
    """Per-axis (before, after) as a tuple of pairs, one axis too: ``((0, 1),)``."""
    return "(" + ", ".join(str(pair) for pair in pairs) + ("," if len(pairs) == 1 else "") + ")"


def _dense(w: _Writer, node: Node) -> list[Call]:
    layer = node.layer
    assert isinstance(layer, Dense)
    args = [str(layer.units)] + ([] if layer.bias else ["use_bias=False"])
    flatten = [] if node.input.flat else [("layers.Flatten()", f"{node.text} flattens first")]
    return [*flatten, (_call("layers.Dense", args), node.comment)]


def _pointwise(w: _Writer, node: Node) -> list[Call]:
    layer = node.layer
    assert isinstance(layer, Pointwise)
    if layer.name == "lrn":
        raise _refuse(
            node,
            "Keras has no local response normalisation layer",
            "batch norm (bn), or --emit pytorch",
        )
    if layer.name == "dropout":
        w.notes.setdefault(f"dropout: rate {DROPOUT_RATE}, PyTorch's default (a spec gives none)")
    return [(_ACTIVATIONS[layer.name], node.comment)]


_ACTIVATIONS = {
    "relu": "layers.ReLU()", "lrelu": f"layers.LeakyReLU(negative_slope={LRELU_SLOPE})",
    "relu6": "layers.ReLU(max_value=6)", "sigmoid": 'layers.Activation("sigmoid")',
    "tanh": 'layers.Activation("tanh")', "softmax": "layers.Softmax()",
    "dropout": f"layers.Dropout({DROPOUT_RATE})", "gelu": 'layers.Activation("gelu")',
    "silu": 'layers.Activation("silu")', "hardswish": 'layers.Activation("hard_swish")',
    "hsigmoid": 'layers.Activation("hard_sigmoid")', "identity": "layers.Identity()",
}  # fmt: skip


def _batch_norm(w: _Writer, node: Node) -> list[Call]:
    w.notes.setdefault(
        f"bn: epsilon {BN_EPSILON} and momentum {BN_MOMENTUM}, PyTorch's BatchNorm2d defaults"
    )
    call = f"layers.BatchNormalization(epsilon={BN_EPSILON}, momentum={BN_MOMENTUM})"
    return [(call, node.comment)]


def _layer_norm(w: _Writer, node: Node) -> list[Call]:
    w.notes.setdefault(f"ln: epsilon {LAYER_NORM_EPS}, as torchvision's ConvNeXt")
    return [(f"layers.LayerNormalization(epsilon={LAYER_NORM_EPS})", node.comment)]


def _upsample(w: _Writer, node: Node) -> list[Call]:
    layer = node.layer
    assert isinstance(layer, Upsample)
    scale = [out // n for out, n in zip(node.output.spatial, node.input.spatial, strict=True)]
    args = [f"size={dims(scale)}"]
    if layer.mode == "bilinear":
        if node.rank != 2:
            raise _refuse(
                node,
                f"layers.UpSampling{node.rank}D only repeats values",
                "mode=nearest, or --emit pytorch",
            )
        args.append('interpolation="bilinear"')
    return [(_call(f"layers.UpSampling{node.rank}D", args), node.comment)]


def _pad(w: _Writer, node: Node) -> list[Call]:
    pairs = [
        ((out - n) // 2, (out - n) // 2)
        for out, n in zip(node.output.spatial, node.input.spatial, strict=True)
    ]
    return [(f"layers.ZeroPadding{node.rank}D({_pairs(pairs)})", node.comment)]


def _global_pool(w: _Writer, node: Node) -> list[Call]:
    layer = node.layer
    assert isinstance(layer, GlobalPool)
    kind = "Max" if layer.kind == PoolKind.MAX else "Average"
    return [(f"layers.Global{kind}Pooling{node.rank}D(keepdims=True)", node.comment)]


def _adaptive_pool(w: _Writer, node: Node) -> list[Call]:
    call = f"layers.AdaptiveAveragePooling{node.rank}D({dims(node.output.spatial)})"
    return [(call, node.comment)]


_LAYERS: dict[type, Callable[[_Writer, Node], list[Call]]] = {
    Conv: _conv,
    DepthwiseConv: _conv,
    Deconv: _deconv,
    Pool: _pool,
    GlobalPool: _global_pool,
    AdaptivePool: _adaptive_pool,
    Dense: _dense,
    Flatten: lambda w, node: [("layers.Flatten()", node.comment)],
    Pointwise: _pointwise,
    BatchNorm: _batch_norm,
    LayerNorm: _layer_norm,
    Scale: lambda w, node: [(f"{w.helper('LayerScale')}()", node.comment)],
    Upsample: _upsample,
    Pad: _pad,
}
"""Layers applied one call after another (groups, blocks, names and merges are
written by `_Writer.flow`)."""
