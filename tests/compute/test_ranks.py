"""1-D and 3-D layers (ops.correlate_nd, ops.pool_nd, the pipeline at rank 1 and 3)
against scipy.ndimage and brute-force loops."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import ndimage

from convcalc.calc.choices import ChannelMode, PadMode, PoolKind
from convcalc.calc.geometry import PadRule, conv_axis, pool_axis
from convcalc.calc.grammar import format_layer, parse_spec
from convcalc.calc.layers import Conv, Deconv, Pool, Spec
from convcalc.compute.kernels import named_kernel
from convcalc.compute.ops import correlate, correlate_nd, pool, pool_nd
from convcalc.compute.pipeline import Settings, Stage, check_stages, run
from convcalc.errors import ConvcalcError

SCIPY_MODE = {
    PadMode.ZERO: "constant",
    PadMode.REFLECT: "mirror",
    PadMode.REPLICATE: "nearest",
    PadMode.WRAP: "wrap",
}


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def brute_nd(
    x: np.ndarray,
    w: np.ndarray,
    stride: tuple[int, ...],
    pads: tuple[int, ...],
    dilation: tuple[int, ...],
    groups: int = 1,
) -> np.ndarray:
    """Zero-padded grouped cross-correlation by loops: x (*N, C), w (*K, C/groups, F)."""
    rank = x.ndim - 1
    xp = np.pad(x, [(p, p) for p in pads] + [(0, 0)])
    kernel, (cg, filters) = w.shape[:rank], w.shape[rank:]
    out_shape = [
        (xp.shape[a] - dilation[a] * (kernel[a] - 1) - 1) // stride[a] + 1 for a in range(rank)
    ]
    y = np.zeros((*out_shape, filters))
    per_group = filters // groups
    for pos in itertools.product(*map(range, out_shape)):
        for f in range(filters):
            g = f // per_group
            total = 0.0
            for tap in itertools.product(*map(range, kernel)):
                at = tuple(pos[a] * stride[a] + tap[a] * dilation[a] for a in range(rank))
                total += float(xp[at][g * cg : (g + 1) * cg] @ w[tap][:, f])
            y[(*pos, f)] = total
    return y


def brute_pool(
    x: np.ndarray,
    kind: PoolKind,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    pads: tuple[int, ...],
) -> np.ndarray:
    """Max (padding never wins) or average (padding counted, PyTorch) pooling by loops."""
    rank = x.ndim - 1
    fill = -np.inf if kind == PoolKind.MAX else 0.0
    xp = np.pad(x, [(p, p) for p in pads] + [(0, 0)], constant_values=fill)
    out_shape = [(xp.shape[a] - size[a]) // stride[a] + 1 for a in range(rank)]
    y = np.zeros((*out_shape, x.shape[-1]))
    for pos in itertools.product(*map(range, out_shape)):
        window = xp[
            tuple(slice(p * s, p * s + k) for p, s, k in zip(pos, stride, size, strict=True))
        ]
        flat = window.reshape(-1, x.shape[-1])
        y[pos] = flat.max(axis=0) if kind == PoolKind.MAX else flat.mean(axis=0)
    return y


# -- against scipy.ndimage: every pad mode --------------------------------------------------


@pytest.mark.parametrize("mode", list(PadMode))
@pytest.mark.parametrize("k", [1, 3, 5])
def test_1d_same_matches_correlate1d(mode: PadMode, k: int) -> None:
    x, w = rng(k).normal(size=17), rng(k + 1).normal(size=k)
    got = correlate_nd(
        x[:, None],
        w[:, None, None],
        stride=(1,),
        padding=(PadRule.SAME,),
        dilation=(1,),
        pad_mode=mode,
    )
    expected = ndimage.correlate1d(x, w, mode=SCIPY_MODE[mode])
    np.testing.assert_allclose(got[:, 0], expected, atol=1e-12)


@pytest.mark.parametrize("mode", list(PadMode))
@pytest.mark.parametrize("k", [(3, 3, 3), (1, 3, 5), (5, 1, 3)])
def test_3d_same_matches_ndimage_correlate(mode: PadMode, k: tuple[int, int, int]) -> None:
    x, w = rng(1).normal(size=(6, 7, 8)), rng(2).normal(size=k)
    got = correlate_nd(
        x[..., None],
        w[..., None, None],
        stride=(1, 1, 1),
        padding=(PadRule.SAME,) * 3,
        dilation=(1, 1, 1),
        pad_mode=mode,
    )
    np.testing.assert_allclose(
        got[..., 0], ndimage.correlate(x, w, mode=SCIPY_MODE[mode]), atol=1e-12
    )


def test_3d_flip_is_ndimage_convolve() -> None:
    x, w = rng(3).normal(size=(5, 6, 4)), rng(4).normal(size=(3, 3, 3))
    got = correlate_nd(
        x[..., None],
        w[..., None, None],
        stride=(1,) * 3,
        padding=(1,) * 3,
        dilation=(1,) * 3,
        flip=True,
    )
    np.testing.assert_allclose(got[..., 0], ndimage.convolve(x, w, mode="constant"), atol=1e-12)


# -- against brute-force loops: stride, padding, dilation, channels, groups ----------------


@pytest.mark.parametrize(
    ("stride", "pads", "dilation"),
    [((1,), (0,), (1,)), ((2,), (1,), (1,)), ((3,), (2,), (2,)), ((1,), (3,), (3,))],
)
@pytest.mark.parametrize("groups", [1, 2])
def test_1d_matches_brute_force(stride, pads, dilation, groups) -> None:
    x = rng(5).integers(-3, 4, size=(19, 4)).astype(float)
    w = rng(6).integers(-2, 3, size=(3, 4 // groups, 6)).astype(float)
    got = correlate_nd(x, w, stride=stride, padding=pads, dilation=dilation, groups=groups)
    np.testing.assert_array_equal(got, brute_nd(x, w, stride, pads, dilation, groups))


@pytest.mark.parametrize(
    ("stride", "pads", "dilation"),
    [
        ((1, 1, 1), (0, 0, 0), (1, 1, 1)),
        ((2, 1, 3), (1, 0, 2), (1, 2, 1)),
        ((2, 2, 2), (1, 1, 1), (2, 1, 1)),
    ],
)
def test_3d_matches_brute_force(stride, pads, dilation) -> None:
    x = rng(7).integers(-3, 4, size=(7, 6, 8, 2)).astype(float)
    w = rng(8).integers(-2, 3, size=(3, 2, 3, 2, 3)).astype(float)
    got = correlate_nd(x, w, stride=stride, padding=pads, dilation=dilation, bias=[1, -1, 0.5])
    expected = brute_nd(x, w, stride, pads, dilation) + np.array([1, -1, 0.5])
    np.testing.assert_array_equal(got, expected)


def test_sizes_follow_calc_geometry_per_axis() -> None:
    x = np.zeros((11, 9, 10, 1))
    w = np.zeros((3, 4, 5, 1, 1))
    stride, padding, dilation = (2, 3, 1), (1, PadRule.SAME, 2), (2, 1, 3)
    got = correlate_nd(x, w, stride=stride, padding=padding, dilation=dilation)
    sizes = [
        conv_axis(n, k, stride=s, padding=p, dilation=d).size
        for n, k, s, p, d in zip(x.shape[:3], w.shape[:3], stride, padding, dilation, strict=True)
    ]
    assert list(got.shape[:3]) == sizes


def test_rank_2_agrees_with_correlate() -> None:
    x, w = rng(9).normal(size=(9, 8, 3)), rng(10).normal(size=(3, 3, 3, 2))
    args = dict(stride=(2, 1), padding=(1, PadRule.SAME), dilation=(1, 2))
    for mode in PadMode:
        np.testing.assert_allclose(
            correlate_nd(x, w, pad_mode=mode, **args),
            correlate(x, w, pad_mode=mode, **args),
            atol=1e-12,
        )


# -- pooling --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [PoolKind.MAX, PoolKind.AVG])
@pytest.mark.parametrize(
    ("size", "stride", "pads"),
    [
        ((2,), (2,), (0,)),
        ((3,), (2,), (1,)),
        ((2, 2, 2), (2, 2, 2), (0, 0, 0)),
        ((3, 2, 3), (1, 2, 2), (1, 1, 1)),
    ],
)
def test_pool_matches_brute_force(kind, size, stride, pads) -> None:
    shape = (13, 2) if len(size) == 1 else (6, 7, 5, 2)
    x = rng(11).normal(size=shape)
    got = pool_nd(x, kind, size, stride=stride, padding=pads, dilation=(1,) * len(size))
    np.testing.assert_allclose(got, brute_pool(x, kind, size, stride, pads), atol=1e-12)


def test_3d_max_pool_matches_ndimage_maximum_filter() -> None:
    x = rng(12).normal(size=(8, 6, 10))
    got = pool_nd(x[..., None], PoolKind.MAX, (2, 2, 2), padding=(0,) * 3, dilation=(1,) * 3)
    np.testing.assert_array_equal(
        got[..., 0], ndimage.maximum_filter(x, size=2, origin=-1)[::2, ::2, ::2]
    )


def test_ceil_and_exclude_pad_agree_with_2d_pool() -> None:
    x = rng(13).normal(size=(7, 9, 2))
    for kind, exclude in itertools.product([PoolKind.MAX, PoolKind.AVG], [False, True]):
        args = dict(stride=(2, 2), padding=(1, 1), ceil=True, exclude_pad=exclude)
        np.testing.assert_allclose(
            pool_nd(x, kind, (3, 3), dilation=(1, 1), **args), pool(x, kind, (3, 3), **args)
        )
    sizes = pool_nd(
        x[:, 0], PoolKind.AVG, (3,), stride=(2,), padding=(1,), dilation=(1,), ceil=True
    )
    assert sizes.shape[0] == pool_axis(7, 3, stride=2, padding=1, ceil=True).size


# -- the pipeline at rank 1 and 3 -----------------------------------------------------------


def stage(text: str, *kernels: np.ndarray) -> Stage:
    return Stage(spec=Spec(text=text, layer=parse_spec(text).layer), kernels=kernels)


def test_pipeline_smooths_a_signal_with_a_1d_box() -> None:
    x = rng(14).normal(size=50)
    box = named_kernel("box:size=5", rank=1)
    assert box is not None and box.shape == (5,)
    out = run(
        x, [stage("conv1d:k=box:5,p=same", box)], Settings(pad_mode=PadMode.REPLICATE, rank=1)
    )
    np.testing.assert_allclose(out.output[:, 0], ndimage.uniform_filter1d(x, 5, mode="nearest"))


def test_pipeline_3d_conv_then_max_pool() -> None:
    x = rng(15).normal(size=(8, 8, 8, 2))
    w = rng(16).normal(size=(3, 3, 3, 2))
    out = run(x, [stage("conv3d:k=w,p=1", w), stage("maxpool3d:2")], Settings(rank=3)).output
    conv = sum(ndimage.correlate(x[..., c], w[..., c], mode="constant") for c in range(2))
    expected = conv.reshape(4, 2, 4, 2, 4, 2).max(axis=(1, 3, 5))
    np.testing.assert_allclose(out[..., 0], expected, atol=1e-12)


@pytest.mark.parametrize("mode", list(ChannelMode))
def test_2d_style_channel_modes_at_rank_3(mode: ChannelMode) -> None:
    x = rng(17).normal(size=(4, 5, 6, 3))
    w = [rng(18).normal(size=(3, 3, 3)), rng(19).normal(size=(3, 3, 3))]
    out = run(x, [stage("conv3d:k=w,p=1", *w)], Settings(channels=mode, rank=3)).output
    per = [[ndimage.correlate(x[..., c], k, mode="constant") for c in range(3)] for k in w]
    if mode == ChannelMode.EACH:  # filter by filter, channel by channel
        expected = np.stack([p for filt in per for p in filt], axis=-1)
    else:
        expected = np.stack([sum(filt) for filt in per], axis=-1)
    np.testing.assert_allclose(out, expected, atol=1e-12)


def test_generated_kernels_take_the_rank() -> None:
    gauss3 = named_kernel("gauss:sigma=1,size=5", rank=3)
    gauss2 = named_kernel("gauss:sigma=1,size=5")
    assert gauss3 is not None and gauss2 is not None and gauss3.shape == (5, 5, 5)
    np.testing.assert_allclose(gauss3.sum(), 1)
    np.testing.assert_allclose(gauss3.sum(axis=0), gauss2)  # the same blur, one axis more
    box = named_kernel("box:size=80", rank=1)
    assert box is not None and box.shape == (80,)
    with pytest.raises(ConvcalcError, match="is 2-D"):
        named_kernel("sobel-x", rank=1)


def test_global_pool_and_activations_at_rank_3() -> None:
    x = rng(20).normal(size=(3, 4, 5, 2))
    out = run(x, [stage("relu"), stage("gmp")], Settings(rank=3)).output
    np.testing.assert_allclose(out.reshape(2), np.maximum(x, 0).max(axis=(0, 1, 2)))


def test_layers_of_another_rank_are_refused() -> None:
    with pytest.raises(ConvcalcError, match="is a 1-D layer in a 3-D run"):
        check_stages([stage("conv1d:k=1,2,1")], 3)
    with pytest.raises(ConvcalcError, match="is a 2-D layer in a 1-D run"):
        check_stages([stage("deconv:k=box3")], 1)
    transposed = Deconv(out=None, kernel=None, rank=1, source="1,2,1")
    check_stages([Stage(spec=Spec(text="deconv1d", layer=transposed))], 1)
    with pytest.raises(ConvcalcError, match="is a 1-D layer in a 3-D run"):
        check_stages([Stage(spec=Spec(text="deconv1d", layer=transposed))], 3)


def test_ranked_pool_specs_round_trip() -> None:
    for text in ("maxpool1d:3,s=2", "avgpool3d:2x2x1,p=1", "maxpool3d:2,ceil"):
        layer = parse_spec(text).layer
        assert isinstance(layer, Pool) and layer.rank == int(text[7])
        assert format_layer(layer) == text and parse_spec(format_layer(layer)).layer == layer
    assert isinstance(parse_spec("conv1d:k=1,2,1").layer, Conv)
    for text in ("deconv1d:k=1,2,1,s=2", "deconv3d:4,3,s=2,op=1"):
        layer = parse_spec(text).layer
        assert isinstance(layer, Deconv) and layer.rank == int(text[6])
        assert format_layer(layer) == text
