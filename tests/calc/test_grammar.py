"""The text forms: shapes, layer specs, network files."""

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from convcalc.calc.choices import PadRule, PoolKind
from convcalc.calc.grammar import format_layer, looks_like_spec, parse_spec
from convcalc.calc.layers import (
    AdaptivePool,
    BatchNorm,
    Conv,
    Deconv,
    Dense,
    DepthwiseConv,
    Flatten,
    GlobalPool,
    InvertedResidual,
    Pointwise,
    Pool,
    ResBlock,
    Shape,
)
from convcalc.calc.sequence import parse_network
from convcalc.calc.sizes import channels_first_hint, parse_counts, parse_padding, parse_shape
from convcalc.errors import ConvcalcError


@pytest.mark.parametrize(
    ("text", "rank", "shape"),
    [
        ("7", None, Shape((7,))),
        ("28x28", None, Shape((28, 28))),
        ("224x224x3", None, Shape((224, 224), 3)),
        ("16x112x112x3", None, Shape((16, 112, 112), 3)),
        ("224", 1, Shape((224,))),
        ("100x16", 1, Shape((100,), 16)),
        ("32x32x32", 3, Shape((32, 32, 32))),
    ],
)
def test_shapes(text, rank, shape):
    assert parse_shape(text, rank) == shape


@pytest.mark.parametrize(("text", "rank"), [("224", 2), ("7", 2), ("32", 3)])
def test_one_number_is_one_axis_never_silently_a_square(text, rank):
    with pytest.raises(ConvcalcError, match=rf"'{text}' is one axis .* valid: {text}x{text}"):
        parse_shape(text, rank)


def test_shape_as_text_and_list():
    assert str(parse_shape("224x224x3")) == "224x224x3"
    assert Shape((), 120).as_list() == [120] and str(Shape((), 120)) == "120"


@given(st.lists(st.integers(1, 5000), min_size=1, max_size=4))
def test_shapes_round_trip(numbers):
    text = "x".join(map(str, numbers))
    assert str(parse_shape(text)) == text


@pytest.mark.parametrize(
    ("spec", "layer"),
    [
        ("conv:6,5", Conv(6, (5,))),
        ("conv:64,3,2,1", Conv(64, (3,), (2,), (1,))),
        (
            "conv:64,3x5,stride=2,padding=same,dilation=2,groups=2,bias=no",
            Conv(64, (3, 5), (2,), (PadRule.SAME,), (2,), 2, False),
        ),
        ("conv1d:4,5", Conv(4, (5,), rank=1)),
        ("conv3d:8,3", Conv(8, (3,), rank=3)),
        ("conv:k=sobel-x,s=2", Conv(None, None, (2,), source=("sobel-x",))),
        ("conv:k=1,0,-1;1,0,-1,s=2", Conv(None, None, (2,), source=("1,0,-1;1,0,-1",))),
        (
            "conv:k=1,0;0,1|0,1;1,0,k=box:size=2|box:size=2,g=2",
            Conv(None, None, groups=2, source=("1,0;0,1|0,1;1,0", "box:size=2|box:size=2")),
        ),
        ("conv:8,k=3", Conv(8, (3,))),
        ("dwconv:3,m=2", DepthwiseConv((3,), 2)),
        ("deconv:16,4,s=2,p=1,op=1", Deconv(16, (4,), (2,), (1,), output_padding=(1,))),
        ("maxpool:2", Pool(PoolKind.MAX, (2,))),
        ("maxpool:3,2", Pool(PoolKind.MAX, (3,), (2,))),
        ("avgpool:3,s=2,p=1,ceil", Pool(PoolKind.AVG, (3,), (2,), (1,), ceil=True)),
        ("l2pool:2", Pool(PoolKind.L2, (2,))),
        ("gap", GlobalPool(PoolKind.AVG)),
        ("gmp", GlobalPool(PoolKind.MAX)),
        ("fc:10", Dense(10)),
        ("linear:10,bias=no", Dense(10, False)),
        ("dense:10", Dense(10)),
        ("relu", Pointwise("relu")),
        ("bn", BatchNorm()),
        ("basic:128,s=2", ResBlock("basic", 128, 2)),
        ("bottleneck:64", ResBlock("bottleneck", 64, 1)),
        ("invres:24,t=6,s=2", InvertedResidual(24, 6, 2)),
        ("CONV:6,5", Conv(6, (5,))),
    ],
)
def test_specs(spec, layer):
    assert parse_spec(spec).layer == layer


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("blah:3", "unknown layer 'blah'"),
        ("conv:6", "missing kernel"),
        ("conv:6,5,q=1", "unknown key 'q'"),
        ("conv:6,5,s=1,s=2", "given twice"),
        ("conv:6,5,1,1,1", "too many arguments"),
        ("conv:6,,5", "empty argument"),
        ("fc:0", "between 1 and"),
        ("relu:3", "too many arguments"),
        ("basic:64,s=2x2", "must be one number"),
        ("conv:6,5,p=-1", "padding '-1'"),
    ],
)
def test_bad_specs(spec, fragment):
    with pytest.raises(ConvcalcError, match=fragment):
        parse_spec(spec)


def test_spec_errors_carry_a_hint_with_the_form():
    with pytest.raises(ConvcalcError) as caught:
        parse_spec("conv:6")
    assert caught.value.hint == "Write it as conv:OUT,K[,s=S][,p=P][,d=D][,g=G][,bias=no]."


def test_network_files_take_comments_blank_lines_and_several_specs_a_line():
    specs = parse_network("# LeNet\nconv:6,5  maxpool:2  # first block\n\nfc:10\n", "net.txt")
    assert [s.text for s in specs] == ["conv:6,5", "maxpool:2", "fc:10"]
    assert [s.where for s in specs] == ["net.txt:2", "net.txt:2", "net.txt:4"]
    with pytest.raises(ConvcalcError, match=r"net\.txt:2"):
        parse_network("conv:6,5\nconv:x\n", "net.txt")


def test_padding_and_counts():
    assert parse_padding("same") == (PadRule.SAME,)
    assert parse_padding("1x2") == (1, 2)
    assert parse_counts("0", "output padding") == (0,)
    with pytest.raises(ConvcalcError):
        parse_counts("-1", "output padding")


def test_looks_like_spec():
    assert looks_like_spec("relu") and looks_like_spec("conv:k=box3")
    assert not looks_like_spec("photo.png") and not looks_like_spec("samples/x.txt")


# -- writing specs back: format_layer is parse_spec's inverse ---------------------

_sizes = st.integers(1, 9)
_dims = st.lists(_sizes, min_size=1, max_size=3).map(tuple)
_pads = st.one_of(
    st.sampled_from(list(PadRule)).map(lambda r: (r,)),
    st.lists(
        st.integers(0, 4) | st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=1, max_size=3
    ).map(tuple),
)
_window = {"stride": _dims, "padding": _pads, "dilation": _dims}

LAYERS = st.one_of(
    st.builds(
        Conv,
        out=st.none() | _sizes,
        kernel=_dims,
        groups=_sizes,
        bias=st.booleans(),
        rank=st.sampled_from([1, 2, 3]),
        **_window,
    ),
    st.builds(
        Conv,
        out=st.none() | _sizes,
        kernel=st.none(),
        source=st.lists(
            st.sampled_from(["sobel-x", "gauss:sigma=2,size=5", "1,0;0,1"]), min_size=1, max_size=3
        ).map(tuple),
        **_window,
    ),
    st.builds(
        Deconv,
        out=st.none() | _sizes,
        kernel=_dims,
        output_padding=_dims.map(lambda d: tuple(v - 1 for v in d)),
        groups=_sizes,
        bias=st.booleans(),
        **_window,
    ),
    st.builds(DepthwiseConv, kernel=_dims, multiplier=_sizes, bias=st.booleans(), **_window),
    st.builds(
        Pool,
        kind=st.sampled_from(list(PoolKind)),
        kernel=_dims,
        stride=st.none() | _dims,
        padding=_pads,
        dilation=_dims,
        ceil=st.booleans(),
    ),
    st.builds(GlobalPool, kind=st.sampled_from([PoolKind.AVG, PoolKind.MAX])),
    st.builds(AdaptivePool, size=_dims),
    st.builds(Dense, units=_sizes, bias=st.booleans()),
    st.just(Flatten()),
    st.just(BatchNorm()),
    st.sampled_from(["relu", "lrelu", "relu6", "sigmoid", "tanh", "softmax", "dropout", "lrn"]).map(
        Pointwise
    ),
    st.builds(ResBlock, kind=st.sampled_from(["basic", "bottleneck"]), width=_sizes, stride=_sizes),
    st.builds(InvertedResidual, out=_sizes, expand=_sizes, stride=_sizes),
)


@given(LAYERS)
def test_format_layer_is_the_inverse_of_parse_spec(layer: Any) -> None:
    text = format_layer(layer)
    assert parse_spec(text).layer == layer, text


def test_format_layer_leaves_defaults_out_and_writes_each_kernel_source() -> None:
    assert format_layer(parse_spec("conv:64,3,stride=1,padding=0,dilation=1").layer) == "conv:64,3"
    layer = parse_spec("conv:k=a.txt,s=2,k=b.txt,p=1").layer
    assert format_layer(layer) == "conv:k=a.txt,k=b.txt,s=2,p=1"
    assert format_layer(parse_spec("maxpool:3,2").layer) == "maxpool:3,s=2"


def test_a_generated_kernel_keeps_its_own_keys_inside_k() -> None:
    layer = parse_spec("conv:k=gauss:sigma=2,size=5,s=2").layer
    assert layer == Conv(None, None, (2,), source=("gauss:sigma=2,size=5",))


# -- a shape that reads like channels-first ------------------------------------


@pytest.mark.parametrize(
    ("text", "meant"),
    [("3x224x224", "224x224x3"), ("1x28x28", "28x28x1"), ("3x16x112x112", "16x112x112x3")],
)
def test_channels_first_shapes_get_a_note_naming_the_channels_last_form(text, meant):
    hint = channels_first_hint(parse_shape(text))
    assert hint is not None
    assert hint.startswith(f"input {text} is read as")
    assert hint.endswith(f"channels go last: {meant}")


@pytest.mark.parametrize("text", ["224x224x3", "3x3x512", "3x5x5", "28x28", "7", "16x112x112x3"])
def test_channels_last_shapes_get_no_note(text):
    assert channels_first_hint(parse_shape(text)) is None


@given(st.integers(5, 4096), st.integers(1, 4096), st.integers(1, 4096))
def test_no_note_when_the_first_axis_is_too_long_to_be_channels(h, w, c):
    assert channels_first_hint(parse_shape(f"{h}x{w}x{c}")) is None
