"""Path counts from one unit back to the input, against a brute-force recursion."""

from __future__ import annotations

import math
from collections import Counter
from functools import cache

import numpy as np
import pytest

from convcalc.calc.evaluation import evaluate
from convcalc.calc.layers import Shape
from convcalc.calc.network import NetworkResult
from convcalc.calc.sequence import parse_specs
from convcalc.compute.fields import path_counts
from convcalc.errors import ConvcalcError


def brute_force(result: NetworkResult, layer: int, unit: tuple[int, int]) -> np.ndarray:
    """Follow every window tap of every layer from the unit down to the input."""

    @cache
    def reach(depth: int, row: int, col: int) -> Counter[tuple[int, int]]:
        if depth == 0:
            return Counter({(row, col): 1})
        axes = result.layers[depth - 1].axes
        if not axes:  # a layer without windows: the same cell
            return reach(depth - 1, row, col)
        total: Counter[tuple[int, int]] = Counter()
        rows, cols = axes
        for tr in range(rows.kernel):
            r = row * rows.stride + tr * rows.dilation - rows.pad_lo
            for tc in range(cols.kernel):
                c = col * cols.stride + tc * cols.dilation - cols.pad_lo
                if 0 <= r < rows.n and 0 <= c < cols.n:
                    total.update(reach(depth - 1, r, c))
        return total

    grid = np.zeros(result.input.spatial)
    for (r, c), n in reach(layer, *unit).items():
        grid[r, c] = n
    return grid


def field_box(result: NetworkResult, layer: int, unit: tuple[int, int]) -> tuple[int, ...]:
    """The receptive field as (top, left, bottom, right), clipped to the input."""
    field = result.layers[layer - 1].receptive_field
    assert field is not None
    box = []
    for side in (-1, 1):
        for s, j, r, i, n in zip(
            field.start, field.jump, field.size, unit, result.input.spatial, strict=True
        ):
            edge = s + i * j + side * (r - 1) / 2
            box.append(min(n - 1, max(0, math.floor(edge) if side > 0 else math.ceil(edge))))
    return tuple(box)


def support_box(counts: np.ndarray) -> tuple[int, ...]:
    rows, cols = np.nonzero(counts)
    return rows.min(), cols.min(), rows.max(), cols.max()


STACKS = [
    (["conv:4,3", "conv:4,3,s=2", "maxpool:2"], (17, 15)),
    (["conv:4,3,p=1", "conv:4,3,s=2,p=1", "maxpool:2"], (16, 16)),
    (["conv:4,5,s=2,p=2", "avgpool:3,s=2,p=1", "conv:4,2"], (19, 21)),
    (["conv:4,1x3", "relu", "maxpool:3,s=1,p=1", "conv:4,3,s=3"], (14, 12)),
]


@pytest.mark.parametrize(("layers", "size"), STACKS)
def test_counts_match_brute_force_at_every_unit(layers, size):
    specs = parse_specs(layers)
    result = evaluate(specs, Shape(size, 1))
    for layer in range(1, len(layers) + 1):
        rows, cols = result.layers[layer - 1].output.spatial
        for unit in [(0, 0), (rows // 2, cols // 2), (rows - 1, cols - 1), (0, cols - 1)]:
            counts = path_counts(specs, result, layer, unit)
            assert counts.shape == size
            np.testing.assert_array_equal(counts, brute_force(result, layer, unit))


@pytest.mark.parametrize(("layers", "size"), STACKS)
def test_the_support_is_the_receptive_field_box(layers, size):
    specs = parse_specs(layers)
    result = evaluate(specs, Shape(size, 1))
    rows, cols = result.output.spatial
    for unit in [(0, 0), (rows // 2, cols // 2), (rows - 1, cols - 1)]:
        counts = path_counts(specs, result, len(layers), unit)
        assert support_box(counts) == field_box(result, len(layers), unit)
        top, left, bottom, right = support_box(counts)
        assert (counts[top : bottom + 1, left : right + 1] > 0).all()  # no holes


def test_dilation_leaves_holes_inside_the_box():
    specs = parse_specs(["conv:1,3,d=2"])
    result = evaluate(specs, Shape((9, 9), 1))
    counts = path_counts(specs, result, 1, (2, 2))
    np.testing.assert_array_equal(counts, brute_force(result, 1, (2, 2)))
    assert support_box(counts) == field_box(result, 1, (2, 2)) == (2, 2, 6, 6)
    assert np.count_nonzero(counts) == 9


def test_a_group_adds_its_branches_and_the_identity():
    specs = parse_specs(["( | conv:1,3,p=1 ) add"])
    result = evaluate(specs, Shape((7, 7), 1))
    counts = path_counts(specs, result, 1, (3, 3))
    expected = np.zeros((7, 7))
    expected[2:5, 2:5] = 1
    expected[3, 3] += 1
    np.testing.assert_array_equal(counts, expected)


def test_a_resnet_block_adds_its_shortcut():
    specs = parse_specs(["basic:4,s=2"])
    result = evaluate(specs, Shape((8, 8), 4))
    counts = path_counts(specs, result, 1, (1, 1))
    main = path_counts(
        parse_specs(["conv:4,3,s=2,p=1", "conv:4,3,p=1"]),
        evaluate(parse_specs(["conv:4,3,s=2,p=1", "conv:4,3,p=1"]), Shape((8, 8), 4)),
        2,
        (1, 1),
    )
    main[2, 2] += 1  # the 1x1 stride-2 shortcut
    np.testing.assert_array_equal(counts, main)


def test_a_global_pool_reaches_every_pixel():
    specs = parse_specs(["conv:2,3", "( | gap conv:2,1 sigmoid ) mul", "gap"])
    result = evaluate(specs, Shape((6, 6), 2))
    counts = path_counts(specs, result, 2, (1, 1))
    assert (counts > 0).all()
    whole = path_counts(specs, result, 3, (0, 0))
    assert (whole > 0).all()


def test_a_unet_skip_and_nearest_upsampling():
    specs = parse_specs(["conv:1,3,p=1", "@a", "maxpool:2", "upsample:2", "concat:a"])
    result = evaluate(specs, Shape((8, 8), 1))
    counts = path_counts(specs, result, 4, (4, 4))
    np.testing.assert_array_equal(counts, brute_force_skip(result))


def brute_force_skip(result: NetworkResult) -> np.ndarray:
    """The concat unit (4, 4): the upsampled pool of cells 4-5, plus the skip's (4, 4)."""
    conv = np.zeros((8, 8))
    conv[4:6, 4:6] = 1  # maxpool 2 window of the upsampled unit
    conv[4, 4] += 1  # the skip
    grid = np.zeros((8, 8))
    for r, c in zip(*np.nonzero(conv), strict=True):
        grid[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2] += conv[r, c]
    return grid


@pytest.mark.parametrize(
    ("layers", "layer", "unit", "message"),
    [
        (["conv:1,3"], 1, (5, 0), "outside layer 1's output"),
        (["conv:1,3"], 2, (0, 0), "valid: 1 to 1"),
        (["conv:1,3", "fc:3"], 2, (0, 0), "no spatial output"),
        (["deconv:1,3,s=2", "conv:1,3"], 2, (0, 0), "transposed"),
        (["upsample:2,mode=bilinear"], 1, (0, 0), "bilinear"),
    ],
)
def test_errors_name_the_problem(layers, layer, unit, message):
    specs = parse_specs(layers)
    result = evaluate(specs, Shape((6, 6), 1))
    with pytest.raises(ConvcalcError, match=message):
        path_counts(specs, result, layer, unit)
