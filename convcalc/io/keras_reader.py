"""Keras models read from their files with json and zipfile alone: no Keras, no
TensorFlow.

Two files hold a model's architecture: a Keras 3 ``.keras`` zip (``model.save``),
whose ``config.json`` is read and whose weights are not, and the ``.json`` text of
``model.to_json()`` (Keras 3, or Keras 2's ``tf.keras``). Sequential and Functional
models are read, nested ones (a model used as a layer) opened in place, and every
layer call becomes a `convcalc.calc.dag.Node`; `convcalc.calc.dag.graph_specs`
turns the graph into specs with groups and named merges.

Notes
-----
Keras's ``padding="same"`` is TensorFlow's rule: the network comes back with
`Convention.TF`. Where a Keras layer and convcalc's layers differ, the reader keeps
Keras's trainable parameters, MACs and output shapes:

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
* A layer called more than once with weights is refused: convcalc would count its
  weights once per call. Frozen layers (``trainable: false``) count as trainable.

A layer convcalc cannot size is an error naming its class and its name. The module
is longer than most: one converter per family of Keras layers, each short.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

from convcalc.calc.choices import Convention, PadRule, PoolKind
from convcalc.calc.dag import Node, graph_specs
from convcalc.calc.files import check_regular_file, read_regular_file
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
    Shape,
    Upsample,
)
from convcalc.errors import ConvcalcError, RuntimeFailure
from convcalc.io.network_files import ImportedNetwork

MAX_CONFIG_BYTES = 2**26
"""The largest model configuration read (64 MiB; keras.applications' are under 1 MiB)."""

Config = dict[str, Any]


def read_keras(path: str) -> ImportedNetwork:
    """The network of a Keras ``.keras`` zip or ``model.to_json()`` file.

    Parameters
    ----------
    path
        A ``.keras`` file (only its ``config.json`` is read) or a ``.json`` file.

    Returns
    -------
    ImportedNetwork
        The specs, the input shape HxWxC from the InputLayer (None when a size is
        left open), and `Convention.TF`.

    Raises
    ------
    ConvcalcError
        The file is no Keras model, or holds a layer convcalc cannot size (named).
    RuntimeFailure
        The file cannot be read.
    """
    config = _load_config(path)
    reader = _Reader(path)
    try:
        outputs = reader.model(config, "", None)
    except ConvcalcError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise ConvcalcError(
            f"{path}: the model's configuration is not as Keras writes it ({_what(exc)}); "
            "valid: a file saved by model.save or model.to_json()"
        ) from None
    if len(outputs) != 1:
        raise ConvcalcError(
            f"{path}: the model has {len(outputs)} outputs; valid: a model with one output"
        )
    output = reader.take(outputs[0], "the model's output")
    specs = graph_specs(reader.nodes, path, output)
    notes = tuple(dict.fromkeys(reader.notes))
    return ImportedNetwork(specs, reader.input_shape, Convention.TF, notes)


# -- the file ------------------------------------------------------------------


def _load_config(path: str) -> Config:
    """The model's configuration: ``config.json`` of a zip, or the whole JSON file."""
    name = f"Keras file '{path}'"
    valid = "a .keras file saved by model.save, or model.to_json() output"
    if os.path.splitext(path)[1].lower() == ".keras":
        check_regular_file(path, name=name, valid=valid)
        try:
            with zipfile.ZipFile(path) as archive:
                info = archive.getinfo("config.json")
                if info.file_size > MAX_CONFIG_BYTES:
                    raise _too_large(path, info.file_size)
                data: bytes | bytearray = archive.read(info)
        except (zipfile.BadZipFile, KeyError):
            raise ConvcalcError(
                f"{path} is not a Keras 3 .keras zip holding config.json; valid: {valid}"
            ) from None
        except OSError as exc:
            raise RuntimeFailure(f"cannot read {name}: {exc.strerror or exc}") from exc
    else:
        data = read_regular_file(
            path,
            name=name,
            valid=valid,
            max_bytes=MAX_CONFIG_BYTES,
            too_large=lambda size: _too_large(path, size),
        )
    try:
        config = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConvcalcError(f"{path} is not JSON ({exc}); valid: {valid}") from None
    if not isinstance(config, dict) or "class_name" not in config:
        raise ConvcalcError(f"{path} holds no Keras model (no class_name); valid: {valid}")
    return config


def _too_large(path: str, size: int) -> ConvcalcError:
    return ConvcalcError(
        f"{path}: the model configuration has {size:,} bytes; valid: at most {MAX_CONFIG_BYTES:,}"
    )


# -- the graph -----------------------------------------------------------------


class _Call(NamedTuple):
    """One call of a Keras layer: its name (nested models' names before it), class,
    configuration, the tensors it reads and the tensor it writes."""

    name: str
    kind: str
    config: Config
    inputs: tuple[str, ...]
    output: str
    input_shape: Any = None
    """Keras 3's ``build_config`` input shape (batch first), when the file has it."""


class _Pending(NamedTuple):
    """A tensor not yet written: ``layer`` applied to ``source`` (a ZeroPadding2D's
    Pad, None when asymmetric; the Flatten after a global pool), written when read."""

    source: str
    layer: Layer | None
    call: _Call
    pads: tuple[tuple[int, int], ...] = ()


class _Reader:
    """Walks a model's layers, emitting nodes; tensors are named ``[model/]layer``."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.nodes: list[Node] = []
        self.input_shape: Shape | None = None
        self.inputs = 0
        self.alias: dict[str, str] = {}
        self.rank: dict[str, int | None] = {}
        self.pending: dict[str, _Pending] = {}
        self.notes: list[str] = []

    # models

    def model(self, layer: Config, prefix: str, inputs: list[str] | None) -> list[str]:
        """Emit a model's layers (reading ``inputs``, or its own InputLayer at the top);
        return its output tensors."""
        kind, config = layer.get("class_name"), _config(layer)
        if kind == "Sequential":
            return [self._sequential(config, prefix, inputs)]
        if kind in ("Functional", "Model") and "layers" in config:
            return self._functional(config, prefix, inputs)
        raise ConvcalcError(
            f"{self.source}: model '{prefix}{config.get('name', '?')}' is a {kind} whose "
            "graph lives in Python code; valid: Sequential and Functional models"
        )

    def _sequential(self, config: Config, prefix: str, inputs: list[str] | None) -> str:
        tensor = inputs[0] if inputs else None
        for layer in config["layers"]:
            name = prefix + _name(layer)
            if layer.get("class_name") == "InputLayer":
                tensor = tensor or self._input(name, _config(layer))
                continue
            if tensor is None:  # Keras 2: the first layer carries the input shape
                first = {**config, **_config(layer), "build_config": layer.get("build_config")}
                tensor = self._input(prefix + "input", first)
            if _is_model(layer):
                tensor = self._one(self.model(layer, name + "/", [tensor]), name)
            else:
                tensor = self._call(layer, (tensor,), name)
        if tensor is None:
            what = prefix + str(config.get("name", ""))
            raise ConvcalcError(f"{self.source}: Sequential '{what}' holds no layers")
        return tensor

    def _functional(self, config: Config, prefix: str, inputs: list[str] | None) -> list[str]:
        tensors: dict[tuple[str, int, int], str] = {}
        entry = [ref[0] for ref in _refs(config.get("input_layers", []))]
        if inputs is not None and len(inputs) != len(entry):
            raise ConvcalcError(
                f"{self.source}: model '{prefix}' takes {len(entry)} inputs but is given "
                f"{len(inputs)}"
            )
        for layer in config["layers"]:
            name = _name(layer)
            if layer.get("class_name") == "InputLayer":
                given = inputs[entry.index(name)] if inputs and name in entry else None
                tensors[name, 0, 0] = given or self._input(prefix + name, _config(layer))
                continue
            for index, node in enumerate(layer.get("inbound_nodes", [])):
                reads = tuple(tensors[ref] for ref in _node_refs(node))
                call = prefix + name + (f":{index}" if index else "")
                before = len(self.nodes)
                if _is_model(layer):
                    outs = self.model(layer, call + "/", list(reads))
                    tensors.update({(name, index, k): t for k, t in enumerate(outs)})
                else:
                    tensors[name, index, 0] = self._call(layer, reads, call)
                if index and any(_weighted(n.layer) for n in self.nodes[before:]):
                    raise ConvcalcError(
                        f"{self.source}: layer '{prefix}{name}' ({layer.get('class_name')}) is "
                        f"called {index + 1} times with the same weights, which convcalc would "
                        "count once per call; valid: a layer called once"
                    )
        return [tensors[ref] for ref in _refs(config.get("output_layers", []))]

    def _input(self, name: str, config: Config) -> str:
        """A model input: the first sets the network's input shape."""
        self.inputs += 1
        if self.inputs > 1:
            raise ConvcalcError(
                f"{self.source}: input '{name}' is a second input; valid: a model with one input"
            )
        shape = _first(config, "batch_shape", "batch_input_shape", "build_input_shape")
        if shape is None and isinstance(config.get("build_config"), dict):
            shape = config["build_config"].get("input_shape")
        self.rank[name] = None if shape is None else len(shape) - 1
        dims = list(shape[1:]) if shape is not None else [None]
        if dims and None not in dims:
            sizes = [int(n) for n in dims if n is not None]
            self.input_shape = Shape(tuple(sizes[:-1]), sizes[-1])
        return name

    def _one(self, outputs: list[str], name: str) -> str:
        if len(outputs) != 1:
            raise ConvcalcError(
                f"{self.source}: model '{name}' has {len(outputs)} outputs inside a "
                "Sequential; valid: one"
            )
        return outputs[0]

    # layers

    def _call(self, layer: Config, reads: tuple[str, ...], output: str) -> str:
        """Emit one call of a layer, reading ``reads``, writing ``output``."""
        kind = layer.get("class_name", "?")
        config = _config(layer)
        shape = (layer.get("build_config") or {}).get("input_shape")
        call = _Call(output, kind, config, reads, output, shape)
        convert = _CONVERTERS.get(kind)
        if convert is None:
            raise ConvcalcError(
                f"{self.source}: layer '{output}' is a {kind}, which convcalc cannot size",
                f"Layers read: {', '.join(sorted(_CONVERTERS))}.",
            )
        if config.get("trainable") is False and _HOLDS_WEIGHTS.intersection(config):
            self.notes.append(
                f"layer '{output}' is frozen (trainable: false); its weights count as trainable"
            )
        if config.get("data_format", "channels_last") != "channels_last":
            raise self.refuse(call, f"has data_format={config['data_format']}", "channels_last")
        try:
            convert(self, call)
        except ConvcalcError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            problem = f"has a configuration convcalc cannot read ({_what(exc)})"
            raise self.refuse(call, problem, "one as Keras writes it") from None
        return output

    def take(self, tensor: str, reader: str) -> str:
        """The tensor to read for ``tensor``: a pending one is written now."""
        tensor = self.resolve(tensor)
        pending = self.pending.get(tensor)
        if pending is None:
            return tensor
        if pending.layer is None:
            raise ConvcalcError(
                f"{self.source}: {pending.call.kind} '{pending.call.name}' pads "
                f"asymmetrically {pending.pads}, and {reader} reads it; valid: asymmetric "
                "padding read by a convolution with padding='valid' (or pad both sides alike)"
            )
        del self.pending[tensor]
        self.nodes.append(Node(pending.call.name, pending.layer, (pending.source,), tensor))
        return tensor

    def peek(self, tensor: str) -> _Pending | None:
        """The pending layer that writes ``tensor``, left pending."""
        return self.pending.get(self.resolve(tensor))

    def resolve(self, tensor: str) -> str:
        while tensor in self.alias:
            tensor = self.alias[tensor]
        return tensor

    def read(self, call: _Call, position: int = 0) -> str:
        """The tensor ``call`` reads (its first input by default), written if pending."""
        return self.take(call.inputs[position], f"layer '{call.name}'")

    def rank_of(self, call: _Call) -> int | None:
        return self.rank.get(self.resolve(call.inputs[0]))

    def emit(
        self, call: _Call, layers: Sequence[Layer], tensor: str | None = None, *, flat: bool = False
    ) -> None:
        """``layers`` in a row from ``tensor`` (the call's input) to the call's output,
        which has the input's rank (a vector's with ``flat``)."""
        tensor = self.read(call) if tensor is None else tensor
        rank = 1 if flat else self.rank.get(tensor)
        for i, layer in enumerate(layers):
            out = call.output if i == len(layers) - 1 else f"{call.output}#{i + 1}"
            self.nodes.append(Node(call.name, layer, (tensor,), out))
            tensor = out
        self.rank[call.output] = rank
        if not layers:
            self.alias[call.output] = tensor

    def refuse(self, call: _Call, problem: str, valid: str) -> ConvcalcError:
        return ConvcalcError(
            f"{self.source}: layer '{call.name}' ({call.kind}) {problem}; valid: {valid}"
        )


# -- the layers ------------------------------------------------------------------


def _convolution(r: _Reader, call: _Call) -> None:
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


def _dense(r: _Reader, call: _Call) -> None:
    """Dense on a vector, or on the last axis of HxWxC: a 1x1 convolution."""
    c = call.config
    tensor = r.read(call)
    rank, bias = r.rank.get(tensor), bool(c.get("use_bias", True))
    layer: Layer = Dense(c["units"], bias)
    if rank is not None and rank > 1:
        layer = Conv(c["units"], (1,), bias=bias, rank=rank - 1)
    r.emit(call, [layer, *_activation(r, call, c.get("activation"))], tensor)


def _pooling(r: _Reader, call: _Call) -> None:
    c = call.config
    kernel = _dims(c["pool_size"])
    strides = kernel if c.get("strides") is None else _dims(c["strides"])
    stride = None if strides == kernel else strides  # None: the window's size, as written
    kind = PoolKind.MAX if call.kind.startswith("Max") else PoolKind.AVG
    padding = _padding(r, call, kernel, (1,))
    r.emit(call, [Pool(kind, kernel, stride, padding)])


def _global_pooling(r: _Reader, call: _Call) -> None:
    kind = PoolKind.MAX if "Max" in call.kind else PoolKind.AVG
    if call.config.get("keepdims", False):
        r.emit(call, [GlobalPool(kind)])
        return
    pooled = f"{call.output}#pool"
    r.nodes.append(Node(call.name, GlobalPool(kind), (r.read(call),), pooled))
    r.rank[pooled], r.rank[call.output] = r.rank_of(call), 1
    r.pending[call.output] = _Pending(pooled, Flatten(), call)


def _batch_norm(r: _Reader, call: _Call) -> None:
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


def _zero_padding(r: _Reader, call: _Call) -> None:
    pads = _side_pairs(call.config["padding"], r.rank_of(call))
    symmetric = all(lo == hi for lo, hi in pads)
    counts = tuple(lo for lo, _ in pads)
    layer = Pad(counts[:1] if len(set(counts)) == 1 else counts) if symmetric else None
    r.rank[call.output] = r.rank_of(call)
    r.pending[call.output] = _Pending(r.read(call), layer, call, pads)


def _cropping(r: _Reader, call: _Call) -> None:
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


def _reshape(r: _Reader, call: _Call) -> None:
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


def _merge(r: _Reader, call: _Call) -> None:
    merge = {"Multiply": "mul", "Concatenate": "concat"}.get(call.kind, "add")
    reads = tuple(r.take(t, f"layer '{call.name}'") for t in call.inputs)
    ranks = [r.rank.get(t) for t in reads]
    rank = max((n for n in ranks if n is not None), default=None)
    if merge == "concat":
        _check_last_axis(r, call, call.config.get("axis", -1), rank)
    r.nodes.append(Node(call.name, None, reads, call.output, merge))
    r.rank[call.output] = rank


def _upsampling(r: _Reader, call: _Call) -> None:
    mode = call.config.get("interpolation", "nearest")
    if mode not in ("nearest", "bilinear"):
        raise r.refuse(call, f"interpolates '{mode}'", "nearest or bilinear")
    r.emit(call, [Upsample(_dims(call.config["size"]), mode)])


def _relu(r: _Reader, call: _Call) -> None:
    c = call.config
    if c.get("max_value") == 6:
        name = "relu6"
    elif c.get("negative_slope") or c.get("alpha"):
        name = "lrelu"
    else:
        name = "relu"
    r.emit(call, [Pointwise(name)])


def _named(name: str) -> Callable[[_Reader, _Call], None]:
    """A converter for a layer that is one of convcalc's pointwise layers."""
    return lambda r, call: r.emit(call, [Pointwise(name)])


def _normalization(r: _Reader, call: _Call) -> None:
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


def _activation(r: _Reader, call: _Call, activation: Any) -> list[Layer]:
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


def _activation_layer(r: _Reader, call: _Call) -> None:
    layers = _activation(r, call, call.config.get("activation"))
    r.emit(call, layers or [Pointwise("identity")])


_HOLDS_WEIGHTS = frozenset({"filters", "units", "kernel_size", "depth_multiplier", "axis"})
"""Config keys of layers with weights (a frozen one of those is worth a note)."""

_CONVERTERS: dict[str, Callable[[_Reader, _Call], None]] = {
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
    r: _Reader, call: _Call, kernel: tuple[int, ...], dilation: tuple[int, ...]
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
    r: _Reader,
    call: _Call,
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


def _check_last_axis(r: _Reader, call: _Call, axis: Any, rank: int | None = None) -> None:
    rank = r.rank_of(call) if rank is None else rank
    axes = axis if isinstance(axis, list) else [axis]
    if axes not in ([-1], [rank]):
        raise r.refuse(call, f"works along axis {axis}", "the channels, axis -1")


def _dims(value: Any) -> tuple[int, ...]:
    """A Keras size (an int or a list, one per axis) as convcalc's per-axis tuple."""
    values = tuple(int(v) for v in value) if isinstance(value, list | tuple) else (int(value),)
    return values[:1] if len(set(values)) == 1 else values


def _what(exc: Exception) -> str:
    """A malformed configuration's error, for a message: ``KeyError: 'filters'``."""
    return f"{type(exc).__name__}: {exc}"


def _weighted(layer: Layer | None) -> bool:
    return isinstance(layer, Conv | DepthwiseConv | Deconv | Dense | BatchNorm | Scale | LayerNorm)


def _config(layer: Config) -> Config:
    config = layer.get("config", {})
    return config if isinstance(config, dict) else {"layers": config}


def _name(layer: Config) -> str:
    return str(layer.get("name") or _config(layer).get("name") or layer.get("class_name"))


def _is_model(layer: Config) -> bool:
    return layer.get("class_name") in ("Sequential", "Functional", "Model") or (
        "layers" in _config(layer)
    )


def _first(config: Config, *keys: str) -> Any:
    return next((config[key] for key in keys if config.get(key) is not None), None)


def _refs(value: Any) -> list[tuple[str, int, int]]:
    """``["x", 0, 0]`` or a list of them, as (layer, node, tensor) references."""
    if value and isinstance(value[0], str):
        return [(value[0], int(value[1]), int(value[2]))]
    return [(ref[0], int(ref[1]), int(ref[2])) for ref in value]


def _node_refs(node: Any) -> Iterator[tuple[str, int, int]]:
    """The tensors one call reads: Keras 3's ``{"args": [...]}`` with keras tensors,
    or Keras 2's list of ``[layer, node, tensor, kwargs]``."""
    if isinstance(node, dict):
        yield from _tensors(node.get("args", []))
        yield from _tensors(node.get("kwargs", {}))
        return
    for ref in node:
        yield (ref[0], int(ref[1]), int(ref[2]))


def _tensors(value: Any) -> Iterator[tuple[str, int, int]]:
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        name, node, tensor = value["config"]["keras_history"]
        yield (name, int(node), int(tensor))
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)
    elif isinstance(value, list):
        for item in value:
            yield from _tensors(item)
