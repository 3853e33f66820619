"""What a training step costs: the activations autograd keeps, backward MACs, memory.

For a batch of N in a dtype of b bytes per element (fp32 4, fp16 and bf16 2, int8 1):

* activations kept for the backward pass, as PyTorch's autograd keeps them, op by
  op: a convolution or fully connected layer its input, batch and layer norm their
  input, an in-place ReLU its output (which is its input's storage), max
  pooling its input and its int64 indices, average pooling its input, dropout its
  one-byte mask, a sigmoid its output, ReLU6, GELU, hard-swish, SiLU and hard-sigmoid
  their input (they are not in place in torchvision), a gate (mul) both its inputs;
  an add, a concat, a flatten or an upsample keeps nothing. A tensor kept by two
  layers (a ReLU's output feeding a convolution) counts once, for the first;
* backward MACs: a convolution or fully connected layer computes the gradient of
  its weights (as many MACs as its forward pass) and of its input (as many again),
  except a layer reading the network's input, which needs no input gradient;
* weights and gradients b bytes per parameter each, optimizer state none for sgd,
  one copy of the weights for momentum, two for adam and adamw;
* the peak: weights, gradients, optimizer state and kept activations together, an
  upper bound (backward frees activations as it fills gradients).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from convcalc.calc.choices import DType, Optimizer
from convcalc.calc.layers import (
    AdaptivePool,
    BatchNorm,
    Conv,
    Deconv,
    Dense,
    DepthwiseConv,
    GlobalPool,
    Group,
    InvertedResidual,
    Layer,
    LayerNorm,
    Mark,
    Merge,
    Pointwise,
    Pool,
    ResBlock,
    Scale,
    Spec,
)
from convcalc.calc.network import LayerResult, NetworkResult

ELEMENT_BYTES = {DType.FP32: 4, DType.FP16: 2, DType.BF16: 2, DType.INT8: 1}
OPTIMIZER_COPIES = {Optimizer.SGD: 0, Optimizer.MOMENTUM: 1, Optimizer.ADAM: 2, Optimizer.ADAMW: 2}
INDEX_BYTES = 8
"""Max pooling keeps its argmax as int64."""
MASK_BYTES = 1
"""Dropout keeps a one-byte mask per element."""

IN_PLACE = frozenset({"relu", "identity"})
"""Pointwise layers whose output is their input's storage: ReLU, which torchvision's
ResNets, VGG, GoogLeNet, Inception and DenseNet run in place (its other activations,
ReLU6 in MobileNetV2 among them, make a new tensor)."""

KEEPS_OUTPUT = frozenset({"relu", "sigmoid", "tanh", "softmax"})
"""Pointwise layers whose backward needs their output."""
KEEPS_INPUT = frozenset({"relu6", "gelu", "hardswish", "silu", "hsigmoid", "lrelu", "lrn"})
"""Pointwise layers whose backward needs their input."""


class LayerCost(NamedTuple):
    """One layer's part of a training step, per sample: bytes it keeps, backward MACs."""

    kept_bytes: int
    backward_macs: int


class TrainingCost(NamedTuple):
    """A training step of the whole network for a batch (the DESIGN's JSON keys)."""

    batch: int
    dtype: DType
    optimizer: Optimizer
    weights_bytes: int
    gradients_bytes: int
    optimizer_bytes: int
    activations_bytes: int
    forward_macs: int
    backward_macs: int
    layers: tuple[LayerCost, ...]

    @property
    def total_bytes(self) -> int:
        """The peak: weights, gradients, optimizer state and kept activations together."""
        return (
            self.weights_bytes + self.gradients_bytes + self.optimizer_bytes
            + self.activations_bytes
        )  # fmt: skip


def training_cost(
    specs: Sequence[Spec],
    result: NetworkResult,
    *,
    batch: int = 1,
    dtype: DType = DType.FP32,
    optimizer: Optimizer = Optimizer.SGD,
) -> TrainingCost:
    """The cost of one training step of an evaluated network (module docstring).

    Examples
    --------
    >>> from convcalc.calc.sizes import parse_shape
    >>> from convcalc.calc.evaluation import evaluate
    >>> from convcalc.calc.sequence import parse_specs
    >>> specs = parse_specs(["conv:8,3,p=1", "relu", "conv:8,3,p=1"])
    >>> cost = training_cost(specs, evaluate(specs, parse_shape("4x4x1")))
    >>> [layer.kept_bytes for layer in cost.layers]  # input, relu's output (once)
    [64, 512, 0]
    """
    size = ELEMENT_BYTES[dtype]
    walk = _Walk(size, result.input.volume)
    layers, _ = walk.sequence(specs, result.layers, 0)
    params = result.total_params
    return TrainingCost(
        batch,
        dtype,
        optimizer,
        params * size,
        params * size,
        params * size * OPTIMIZER_COPIES[optimizer],
        batch * sum(cost.kept_bytes for cost in layers),
        batch * result.total_macs,
        batch * sum(cost.backward_macs for cost in layers),
        tuple(layers),
    )


# -- following tensors through the network -------------------------------------------


class _Walk:
    """Tensors as numbers (0: the network's input) with the bytes each holds per
    sample, the ones already kept, and the named ones."""

    def __init__(self, element: int, input_volume: int) -> None:
        self.element = element
        self.sizes: dict[int, int] = {0: input_volume * element}
        self.kept: set[int] = set()
        self.names: dict[str, int] = {}

    def sequence(
        self, specs: Sequence[Spec], results: Sequence[LayerResult], tensor: int
    ) -> tuple[list[LayerCost], int]:
        """Each layer's cost in a row of layers reading ``tensor``, and the last tensor.
        ``results`` are the layers' results, `Mark` specs having none."""
        costs = []
        steps = iter(results)
        for spec in specs:
            if isinstance(spec.layer, Mark):
                self.names[spec.layer.name] = tensor
                continue
            cost, tensor = self._layer(spec.layer, next(steps), tensor)
            costs.append(cost)
        return costs, tensor

    def _layer(self, layer: Layer, result: LayerResult, tensor: int) -> tuple[LayerCost, int]:
        if isinstance(layer, Group):
            return self._group(layer, result, tensor)
        if isinstance(layer, Merge):
            return self._merge(layer, tensor, result.output.volume)
        if isinstance(layer, ResBlock | InvertedResidual):
            return self._block(result, tensor)
        in_place = isinstance(layer, Pointwise) and layer.name in IN_PLACE
        output = tensor if in_place else self._new(result.output.volume)
        keeps = _KEEPS.get(_kind(layer), _nothing)(tensor, output)
        kept = sum(self._keep(t) for t in keeps) + _extra(layer, result)
        backward = result.macs if tensor == 0 else 2 * result.macs
        return LayerCost(kept, backward), output

    def _group(self, layer: Group, result: LayerResult, tensor: int) -> tuple[LayerCost, int]:
        costs, outputs = [], []
        for specs, placed in zip(layer.branches, result.branches, strict=True):
            branch, out = self.sequence(specs, [p.result for p in placed], tensor)
            costs += branch
            outputs.append(out)
        if layer.merge == "mul":
            costs.append(LayerCost(sum(self._keep(t) for t in outputs), 0))
        output = self._new(result.output.volume) if result.merges else outputs[0]
        return _added(costs), output

    def _merge(self, layer: Merge, tensor: int, volume: int) -> tuple[LayerCost, int]:
        inputs = [tensor, *(self.names[name] for name in layer.names)]
        kept = sum(self._keep(t) for t in inputs) if layer.kind == "mul" else 0
        return LayerCost(kept, 0), self._new(volume)

    def _block(self, result: LayerResult, tensor: int) -> tuple[LayerCost, int]:
        """A ResNet or MobileNet block: the main path, then the shortcut, from ``tensor``."""
        costs, ends = [], []
        for path in (False, True):
            out = tensor
            for placed in result.inner:
                if placed.text.startswith("shortcut") == path:
                    cost, out = self._layer(placed.layer, placed.result, out)
                    costs.append(cost)
            ends.append(out)
        return _added(costs), self._new(result.output.volume) if result.merges else ends[0]

    def _new(self, volume: int) -> int:
        number = len(self.sizes)
        self.sizes[number] = volume * self.element
        return number

    def _keep(self, tensor: int) -> int:
        """The bytes of ``tensor`` if no layer has kept it yet, else 0."""
        if tensor in self.kept:
            return 0
        self.kept.add(tensor)
        return self.sizes[tensor]


def _kind(layer: Layer) -> type | str:
    """A layer's key in `_KEEPS`: its type, or a pointwise layer's name."""
    return layer.name if isinstance(layer, Pointwise) else type(layer)


def _nothing(tensor: int, output: int) -> tuple[int, ...]:
    return ()


def _its_input(tensor: int, output: int) -> tuple[int, ...]:
    return (tensor,)


def _its_output(tensor: int, output: int) -> tuple[int, ...]:
    return (output,)


KEEPS_INPUT_LAYERS = (
    Conv, DepthwiseConv, Deconv, Dense, BatchNorm, LayerNorm, Scale, Pool, AdaptivePool,
    GlobalPool,
)  # fmt: skip
"""Layers whose backward needs their input (and, for max pooling, its indices)."""

_KEEPS: dict[type | str, Callable[[int, int], tuple[int, ...]]] = {
    **dict.fromkeys(KEEPS_INPUT_LAYERS, _its_input),
    **dict.fromkeys(KEEPS_OUTPUT, _its_output),
    **dict.fromkeys(KEEPS_INPUT, _its_input),
}
"""What each kind of layer keeps for the backward pass (others keep nothing)."""


def _extra(layer: Layer, result: LayerResult) -> int:
    """Bytes kept beyond tensors: max pooling's int64 indices, dropout's mask."""
    if isinstance(layer, Pool | GlobalPool) and layer.kind == "max":
        return result.output.volume * INDEX_BYTES
    if isinstance(layer, Pointwise) and layer.name == "dropout":
        return result.output.volume * MASK_BYTES
    return 0


def _added(costs: Sequence[LayerCost]) -> LayerCost:
    return LayerCost(sum(c.kept_bytes for c in costs), sum(c.backward_macs for c in costs))
