"""Keras models read from their files with json and zipfile alone: no Keras, no
TensorFlow.

Two files hold a model's architecture: a Keras 3 ``.keras`` zip (``model.save``),
whose ``config.json`` is read and whose weights are not, and the ``.json`` text of
``model.to_json()`` (Keras 3, or Keras 2's ``tf.keras``). Sequential and Functional
models are read, nested ones (a model used as a layer) opened in place, and every
layer call becomes a `convcalc.calc.dag.Node`; `convcalc.calc.dag.graph_specs`
turns the graph into specs with groups and named merges.

How each layer class becomes convcalc's layers, and where the two differ, is
`convcalc.io.keras_layers`; `convcalc.io.keras_graph` holds the nodes as they are
written.

Notes
-----
Keras's ``padding="same"`` is TensorFlow's rule: the network comes back with
`Convention.TF`. A layer called more than once with weights is refused: convcalc would
count its weights once per call. Frozen layers (``trainable: false``) count as
trainable. A layer convcalc cannot size is an error naming its class and its name.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterator
from typing import Any

from convcalc.calc.choices import Convention
from convcalc.calc.dag import graph_specs
from convcalc.calc.files import check_regular_file, read_regular_file
from convcalc.calc.layers import (
    BatchNorm,
    Conv,
    Deconv,
    Dense,
    DepthwiseConv,
    Layer,
    LayerNorm,
    Scale,
    Shape,
)
from convcalc.errors import ConvcalcError, RuntimeFailure
from convcalc.io.keras_graph import Call, Config, GraphWriter
from convcalc.io.keras_layers import CONVERTERS
from convcalc.io.network_files import ImportedNetwork

MAX_CONFIG_BYTES = 2**26
"""The largest model configuration read (64 MiB; keras.applications' are under 1 MiB)."""


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


class _Reader(GraphWriter):
    """Walks a model's layers, emitting nodes; tensors are named ``[model/]layer``."""

    def __init__(self, source: str) -> None:
        super().__init__(source)
        self.input_shape: Shape | None = None
        self.inputs = 0

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
        call = Call(output, kind, config, reads, output, shape)
        convert = CONVERTERS.get(kind)
        if convert is None:
            raise ConvcalcError(
                f"{self.source}: layer '{output}' is a {kind}, which convcalc cannot size",
                f"Layers read: {', '.join(sorted(CONVERTERS))}.",
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


_HOLDS_WEIGHTS = frozenset({"filters", "units", "kernel_size", "depth_multiplier", "axis"})
"""Config keys of layers with weights (a frozen one of those is worth a note)."""

# -- helpers ----------------------------------------------------------------------


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
