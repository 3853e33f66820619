"""The arithmetic besides multiply-accumulates (``shape --ops all``), kept apart.

MACs count only convolutions and fully connected layers. The other operations, one
per value they produce and per arithmetic step:

    bias              1 per output value of a convolution or fully connected layer
    batch norm        2 per value (scale, shift: the running statistics folded in)
    layer norm        2 per value (scale, shift) + 3 (subtract mean, divide, square)
    layer scale       1 per value
    activation        1 per value (dropout 1, identity 0)
    pooling           KH·KW - 1 per output value (max: comparisons, average: adds),
                      + 1 for average pooling's divide; global pools likewise
    add, mul          1 per value of the result for each input beyond the first
    concat, flatten, pad, nearest upsample: none; bilinear upsample 3 per value
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from convcalc.calc.choices import PoolKind
from convcalc.calc.layers import (
    AdaptivePool,
    BatchNorm,
    Conv,
    Deconv,
    Dense,
    DepthwiseConv,
    GlobalPool,
    Layer,
    LayerNorm,
    Mark,
    Merge,
    Pointwise,
    Pool,
    Scale,
    Shape,
    Spec,
    Upsample,
)
from convcalc.calc.network import LayerResult, NetworkResult, per_axis


def network_other_ops(result: NetworkResult, specs: Sequence[Spec]) -> list[int]:
    """Each top-level layer's operations other than multiply-accumulates."""
    layers = [spec.layer for spec in specs if not isinstance(spec.layer, Mark)]
    inputs = [result.input] + [layer.output for layer in result.layers[:-1]]
    return [
        other_ops(layer, layer_result, shape)
        for layer, layer_result, shape in zip(layers, result.layers, inputs, strict=True)
    ]


def other_ops(layer: Layer, result: LayerResult, input_shape: Shape) -> int:
    """The operations of one layer (a group or block: all of its layers and its merge)
    other than multiply-accumulates, as the module docstring counts them."""
    if result.branches or result.inner:
        inside = result.branches or (result.inner,)
        own = sum(other_ops(p.layer, p.result, p.input) for branch in inside for p in branch)
        merged = (len(inside) - 1) * result.output.volume if result.merge != "concat" else 0
        if result.inner and not result.branches and result.merges:
            merged = result.output.volume  # a ResNet block's sum
        return own + merged
    count = _COUNTS.get(type(layer))
    return 0 if count is None else count(layer, result, input_shape)


def _bias(layer: Conv | Deconv | Dense | DepthwiseConv, result: LayerResult, _: Shape) -> int:
    return result.output.volume if layer.bias else 0


def _pool(layer: Pool, result: LayerResult, input_shape: Shape) -> int:
    window = 1
    for k in per_axis(layer.kernel, len(input_shape.spatial), "kernel"):
        window *= k
    divide = 1 if layer.kind == PoolKind.AVG else 0
    return (window - 1 + divide) * result.output.volume


def _whole_pool(layer: GlobalPool | AdaptivePool, result: LayerResult, input_shape: Shape) -> int:
    average = isinstance(layer, AdaptivePool) or layer.kind == PoolKind.AVG
    return input_shape.volume - result.output.volume + (result.output.volume if average else 0)


def _pointwise(layer: Pointwise, result: LayerResult, _: Shape) -> int:
    return 0 if layer.name == "identity" else result.output.volume


def _merge(layer: Merge, result: LayerResult, _: Shape) -> int:
    return 0 if layer.kind == "concat" else len(layer.names) * result.output.volume


def _upsample(layer: Upsample, result: LayerResult, _: Shape) -> int:
    return 3 * result.output.volume if layer.mode == "bilinear" else 0


def _per_value(times: int) -> Callable[[Layer, LayerResult, Shape], int]:
    def count(layer: Layer, result: LayerResult, _: Shape) -> int:
        return times * result.output.volume

    return count


_COUNTS: dict[type, Callable[..., int]] = {
    Conv: _bias,
    DepthwiseConv: _bias,
    Deconv: _bias,
    Dense: _bias,
    BatchNorm: _per_value(2),
    LayerNorm: _per_value(5),
    Scale: _per_value(1),
    Pool: _pool,
    GlobalPool: _whole_pool,
    AdaptivePool: _whole_pool,
    Pointwise: _pointwise,
    Merge: _merge,
    Upsample: _upsample,
}
