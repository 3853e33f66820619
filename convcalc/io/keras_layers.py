"""The Keras layer table: each layer class convcalc reads, and the layers it becomes.

One converter per family of Keras layers (`CONVERTERS`) reads a call's configuration
and writes its nodes through `convcalc.io.keras_graph.GraphWriter`. Where a Keras layer
and convcalc's layers differ, the converters keep Keras's trainable parameters, MACs
and output shapes:

* ``activation=`` inside a layer is a pointwise layer after it; SeparableConv2D is a
  depthwise convolution (no bias) then a 1x1 convolution.
* Dense on an HxWxC tensor acts on the channels alone: a 1x1 convolution.
* GlobalAveragePooling2D without ``keepdims`` gives a vector: ``gap`` then
  ``flatten``; a Reshape to 1x1xC right after it (squeeze-and-excitation) undoes the
  flatten, and the pool's row is the 1x1xC the Reshape gives. Other Reshapes: to a
  vector, ``flatten``; to the shape the tensor has, nothing; the rest are refused.
* ZeroPadding2D is ``pad:P`` when it pads both sides alike; asymmetric padding (as
  MobileNetV2's ``((0, 1), (0, 1))``) is folded, as (before, after) counts, into the
  ``valid`` convolution that reads it, and a Cropping2D of the same total after it
  cancels it (NASNet's one-pixel shift). Anything else asymmetric is refused.
* BatchNormalization without ``scale`` or ``center`` has C trainable values: a
  per-channel ``scale`` (its 2·C moving statistics are not counted); with neither,
  ``identity``; LayerNormalization likewise (``ln``). Rescaling and Normalization are
  ``identity`` (Normalization's 2·C+1 statistics are not counted either).
* keras.applications' own layers: ConvNeXt's LayerScale is ``scale``,
  InceptionResNetV2's CustomScaleLayer (a + b·scale) an ``add``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from convcalc.calc.choices import PadRule, PoolKind
from convcalc.calc.dag import Node
from convcalc.calc.geometry import Padding
from convcalc.calc.layers import (
    BatchNorm,
    Conv,
    Deconv,
    Dense,
    DepthwiseConv,
    Flatten,
    GlobalPool,
    Layer,
    LayerNorm,
    Pad,
    Pointwise,
    Pool,
    Scale,
    Upsample,
)
from convcalc.io.keras_graph import Call, GraphWriter, Pending


def _convolution(r: GraphWriter, call: Call) -> None:
    """ConvND, DepthwiseConvND, SeparableConvND, ConvNDTranspose."""
    c = call.config
    kernel = _dims(c["kernel_size"])
    stride, dilation = _dims(c.get("strides", 1)), _dims(c.get("dilation_rate", 1))
    rank = next(int(ch) for ch in call.kind if ch.isdigit())  # Conv2D: 2
    bias = bool(c.get("use_bias", True))
    if call.kind.startswith("Conv") and "Transpose" in call.kind:
        padding = _padding(r, call, kernel, dilation, transposed=True)
        extra = c.get("output_padding")
        layer: list[Layer] = [
            Deconv(c["filters"], kernel, stride, padding, dilation, _dims(extra or 0), bias=bias)
        ]
        r.emit(call, layer + _activation(r, call, c.get("activation")))
        return
    tensor, padding = _window_input(r, call, kernel, dilation)
    multiplier = int(c.get("depth_multiplier", 1))
    if call.kind.startswith("Depthwise"):
        layer = [DepthwiseConv(kernel, multiplier, stride, padding, dilation, bias, rank)]
    elif call.kind.startswith("Separable"):
        layer = [
            DepthwiseConv(kernel, multiplier, stride, padding, dilation, False, rank),
            Conv(c["filters"], (1,), bias=bias, rank=rank),
        ]
    else:
        groups = int(c.get("groups", 1))
        layer = [Conv(c["filters"], kernel, stride, padding, dilation, groups, bias, rank)]
    r.emit(call, layer + _activation(r, call, c.get("activation")), tensor)


def _dense(r: GraphWriter, call: Call) -> None:
    """Dense on a vector, or on the last axis of HxWxC: a 1x1 convolution."""
    c = call.config
    tensor = r.read(call)
    rank, bias = r.rank.get(tensor), bool(c.get("use_bias", True))
    layer: Layer = Dense(c["units"], bias)
    if rank is not None and rank > 1:
        layer = Conv(c["units"], (1,), bias=bias, rank=rank - 1)
    r.emit(call, [layer, *_activation(r, call, c.get("activation"))], tensor)


def _pooling(r: GraphWriter, call: Call) -> None:
    c = call.config
    kernel = _dims(c["pool_size"])
    strides = kernel if c.get("strides") is None else _dims(c["strides"])
    stride = None if strides == kernel else strides  # None: the window's size, as written
    kind = PoolKind.MAX if call.kind.startswith("Max") else PoolKind.AVG
    padding = _padding(r, call, kernel, (1,))
    r.emit(call, [Pool(kind, kernel, stride, padding)])


def _global_pooling(r: GraphWriter, call: Call) -> None:
    kind = PoolKind.MAX if "Max" in call.kind else PoolKind.AVG
    if call.config.get("keepdims", False):
        r.emit(call, [GlobalPool(kind)])
        return
    pooled = f"{call.output}#pool"
    r.nodes.append(Node(call.name, GlobalPool(kind), (r.read(call),), pooled))
    r.rank[pooled], r.rank[call.output] = r.rank_of(call), 1
    r.pending[call.output] = Pending(pooled, Flatten(), call)


def _batch_norm(r: GraphWriter, call: Call) -> None:
    c = call.config
    _check_last_axis(r, call, c.get("axis", -1))
    scale, center = c.get("scale", True), c.get("center", True)
    if call.kind == "LayerNormalization":
        full: Layer = LayerNorm()
    else:
        full = BatchNorm()
    layer = full if scale and center else Scale() if scale or center else Pointwise("identity")
    if layer is not full and call.kind == "BatchNormalization":
        r.notes.append(
            f"layer '{call.name}' is batch norm without scale or center: its trainable values "
            "are counted, its 2·C moving statistics are not"
        )
    r.emit(call, [layer])


def _zero_padding(r: GraphWriter, call: Call) -> None:
    pads = _side_pairs(call.config["padding"], r.rank_of(call))
    symmetric = all(lo == hi for lo, hi in pads)
    counts = tuple(lo for lo, _ in pads)
    layer = Pad(counts[:1] if len(set(counts)) == 1 else counts) if symmetric else None
    r.rank[call.output] = r.rank_of(call)
    r.pending[call.output] = Pending(r.read(call), layer, call, pads)


def _cropping(r: GraphWriter, call: Call) -> None:
    crops = _side_pairs(call.config["cropping"], r.rank_of(call))
    pending = r.peek(call.inputs[0])
    totals = [sum(pair) for pair in crops]
    if pending is not None and pending.pads and [sum(p) for p in pending.pads] == totals:
        r.alias[call.output] = pending.source  # pad then crop alike: a shift
        r.rank[call.output] = r.rank.get(pending.source)
        return
    raise r.refuse(
        call,
        f"crops {crops}, and convcalc has no cropping layer",
        "a Cropping2D right after a ZeroPadding2D of the same total per axis",
    )


def _reshape(r: GraphWriter, call: Call) -> None:
    """To a vector: flatten; to 1x1xC after a global pool: its 1x1xC output."""
    target = tuple(call.config["target_shape"])
    pending = r.peek(call.inputs[0])
    pooled = pending.source if pending and isinstance(pending.layer, Flatten) else None
    if pooled and len(target) == r.rank.get(pooled) and all(n == 1 for n in target[:-1]):
        r.alias[call.output] = pooled
        return
    if len(target) == 1:
        r.emit(call, [Flatten()], flat=True)
    elif call.input_shape is not None and tuple(call.input_shape[1:]) == target:
        r.emit(call, [])
    else:
        raise r.refuse(
            call,
            f"reshapes to {target}",
            "a reshape to a vector, to the shape it already has, or to 1x1xC after a "
            "GlobalAveragePooling2D",
        )


def _merge(r: GraphWriter, call: Call) -> None:
    merge = {"Multiply": "mul", "Concatenate": "concat"}.get(call.kind, "add")
    reads = tuple(r.take(t, f"layer '{call.name}'") for t in call.inputs)
    ranks = [r.rank.get(t) for t in reads]
    rank = max((n for n in ranks if n is not None), default=None)
    if merge == "concat":
        _check_last_axis(r, call, call.config.get("axis", -1), rank)
    r.nodes.append(Node(call.name, None, reads, call.output, merge))
    r.rank[call.output] = rank


def _upsampling(r: GraphWriter, call: Call) -> None:
    mode = call.config.get("interpolation", "nearest")
    if mode not in ("nearest", "bilinear"):
        raise r.refuse(call, f"interpolates '{mode}'", "nearest or bilinear")
    r.emit(call, [Upsample(_dims(call.config["size"]), mode)])


def _relu(r: GraphWriter, call: Call) -> None:
    c = call.config
    if c.get("max_value") == 6:
        name = "relu6"
    elif c.get("negative_slope") or c.get("alpha"):
        name = "lrelu"
    else:
        name = "relu"
    r.emit(call, [Pointwise(name)])


def _named(name: str) -> Callable[[GraphWriter, Call], None]:
    """A converter for a layer that is one of convcalc's pointwise layers."""
    return lambda r, call: r.emit(call, [Pointwise(name)])


def _normalization(r: GraphWriter, call: Call) -> None:
    r.notes.append(
        f"layer '{call.name}' (Normalization) is read as identity: its mean, variance and "
        "count are not counted"
    )
    r.emit(call, [Pointwise("identity")])


_ACTIVATIONS = {
    "relu": "relu",
    "relu6": "relu6",
    "leaky_relu": "lrelu",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "softmax": "softmax",
    "gelu": "gelu",
    "silu": "silu",
    "swish": "silu",
    "hard_swish": "hardswish",
    "hard_silu": "hardswish",
    "hard_sigmoid": "hsigmoid",
}
"""Keras's activation names that are convcalc pointwise layers."""


def _activation(r: GraphWriter, call: Call, activation: Any) -> list[Layer]:
    """The pointwise layer of ``activation=`` (none for linear)."""
    name = activation
    if isinstance(activation, dict):  # a serialized function
        name = activation.get("config") if isinstance(activation.get("config"), str) else None
        name = name or activation.get("class_name")
    if name in (None, "linear"):
        return []
    if name not in _ACTIVATIONS:
        raise r.refuse(
            call,
            f"uses the activation '{name}', which convcalc does not name",
            ", ".join(["linear", *_ACTIVATIONS]),
        )
    return [Pointwise(_ACTIVATIONS[name])]


def _activation_layer(r: GraphWriter, call: Call) -> None:
    layers = _activation(r, call, call.config.get("activation"))
    r.emit(call, layers or [Pointwise("identity")])


CONVERTERS: dict[str, Callable[[GraphWriter, Call], None]] = {
    **{
        f"{kind}{n}D{suffix}": _convolution
        for n in (1, 2, 3)
        for kind, suffix in (
            ("Conv", ""),
            ("Convolution", ""),
            ("Conv", "Transpose"),
            ("Convolution", "Transpose"),
            ("DepthwiseConv", ""),
            ("SeparableConv", ""),
            ("SeparableConvolution", ""),
        )
    },
    **{f"{kind}Pooling{n}D": _pooling for n in (1, 2, 3) for kind in ("Max", "Average")},
    **{
        f"Global{kind}Pooling{n}D": _global_pooling
        for n in (1, 2, 3)
        for kind in ("Max", "Average")
    },
    **{f"ZeroPadding{n}D": _zero_padding for n in (1, 2, 3)},
    **{f"Cropping{n}D": _cropping for n in (1, 2, 3)},
    **{f"UpSampling{n}D": _upsampling for n in (1, 2, 3)},
    **{f"SpatialDropout{n}D": _named("dropout") for n in (1, 2, 3)},
    "Dense": _dense,
    "BatchNormalization": _batch_norm,
    "LayerNormalization": _batch_norm,
    "Add": _merge,
    "Multiply": _merge,
    "Concatenate": _merge,
    "Flatten": lambda r, call: r.emit(call, [Flatten()], flat=True),
    "Reshape": _reshape,
    "Activation": _activation_layer,
    "ReLU": _relu,
    "LeakyReLU": _named("lrelu"),
    "Softmax": _named("softmax"),
    "Dropout": _named("dropout"),
    "CustomScaleLayer": _merge,  # keras.applications' InceptionResNetV2: a + b·scale
    "LayerScale": lambda r, call: r.emit(call, [Scale()]),  # keras.applications' ConvNeXt
    "Rescaling": _named("identity"),
    "Normalization": _normalization,
    "Identity": _named("identity"),
}
"""Each Keras layer class convcalc reads, and the function that emits its nodes."""


# -- helpers ----------------------------------------------------------------------


def _window_input(
    r: GraphWriter, call: Call, kernel: tuple[int, ...], dilation: tuple[int, ...]
) -> tuple[str, tuple[Padding, ...]]:
    """The tensor a convolution reads and its padding: an asymmetric ZeroPadding2D
    before a ``valid`` convolution becomes (before, after) counts of the convolution."""
    padding = _padding(r, call, kernel, dilation)
    pending = r.peek(call.inputs[0])
    if pending is None or pending.layer is not None or padding != (0,):
        return r.read(call), padding
    pads = tuple(lo if lo == hi else (lo, hi) for lo, hi in pending.pads)
    return pending.source, pads


def _padding(
    r: GraphWriter,
    call: Call,
    kernel: tuple[int, ...],
    dilation: tuple[int, ...],
    *,
    transposed: bool = False,
) -> tuple[Padding, ...]:
    """Keras's padding as convcalc's: same (TensorFlow's rule), valid, causal (1-D)."""
    padding = str(call.config.get("padding", "valid")).lower()
    if padding == "same":
        return (PadRule.SAME,)
    if padding == "valid":
        return (PadRule.VALID,) if transposed else (0,)
    if padding == "causal" and len(kernel) == 1 and not transposed:
        return ((dilation[0] * (kernel[0] - 1), 0),)
    raise r.refuse(call, f"has padding='{padding}'", "same, valid, or causal for Conv1D")


def _side_pairs(value: Any, rank: int | None) -> tuple[tuple[int, int], ...]:
    """ZeroPadding/Cropping amounts as (before, after) per axis: ``1``, ``(1, 2)``
    (per axis, both sides), ``((0, 1), (0, 1))``; 1-D ``(0, 1)`` is before and after."""
    axes = 1 if rank is None else max(rank - 1, 1)
    if isinstance(value, int):
        return ((value, value),) * axes
    if axes == 1 and len(value) == 2 and all(isinstance(v, int) for v in value):
        return ((value[0], value[1]),)
    return tuple((v, v) if isinstance(v, int) else (v[0], v[1]) for v in value)


def _check_last_axis(r: GraphWriter, call: Call, axis: Any, rank: int | None = None) -> None:
    rank = r.rank_of(call) if rank is None else rank
    axes = axis if isinstance(axis, list) else [axis]
    if axes not in ([-1], [rank]):
        raise r.refuse(call, f"works along axis {axis}", "the channels, axis -1")


def _dims(value: Any) -> tuple[int, ...]:
    """A Keras size (an int or a list, one per axis) as convcalc's per-axis tuple."""
    values = tuple(int(v) for v in value) if isinstance(value, list | tuple) else (int(value),)
    return values[:1] if len(set(values)) == 1 else values
