"""`apply --steps`: the traced arithmetic, its JSON, and its rendering (golden files).

`pytest --update-golden` rewrites tests/golden/*.txt from the current output.
"""

import io
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from convcalc.calc.choices import Activation, ChannelMode, Convention, PadMode
from convcalc.calc.grammar import parse_spec
from convcalc.calc.layers import Conv, Spec
from convcalc.compute.kernels import get_preset
from convcalc.compute.pipeline import Settings, Stage, run
from convcalc.compute.traces import DEFAULT_SHOWN, ConvStep, PoolStep, trace, trace_json
from convcalc.errors import ConvcalcError
from convcalc.present.steps import steps_renderable
from tests.conftest import CS231N_W0, CS231N_W1, CS231N_X

UFLDL = np.array(
    [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]]
)[:, :, None]
MAXPOOL = np.array([[1, 3, 2, 1], [2, 9, 1, 1], [1, 3, 2, 3], [5, 6, 1, 2]])[:, :, None]
EDGE = np.array([[10] * 3 + [0] * 3] * 6)[:, :, None]


def stage(text, *kernels, bias=None, activation=Activation.NONE, layer=None):
    """A stage from a spec; ``layer`` stands for what the CLI builds from -k options."""
    spec = parse_spec(text) if layer is None else Spec(text, layer)
    return Stage(spec, tuple(np.asarray(k, float) for k in kernels), bias, activation)


def cs231n_stage():
    return stage(
        "conv:k=cs231n_w0.txt,k=cs231n_w1.txt,s=2,p=1",
        CS231N_W0,
        CS231N_W1,
        bias=(1.0, 0.0),
        layer=Conv(None, None, (2,), (1,)),
    )


def render(t, width=100):
    console = Console(width=width, no_color=True, record=True, file=io.StringIO())
    console.print(steps_renderable(t))
    return console.export_text()


def assert_matches_run(x, stages, config=None, layer=1, exact=True, **kw):
    """Every traced step's value equals the feature map pipeline.run computes."""
    config = config or Settings()
    t = trace(x, stages, config, layer=layer, **kw)
    out = run(x, stages[:layer], config).output
    assert tuple(out.shape) == t.output_shape
    doc = json.loads(json.dumps(trace_json(t), allow_nan=False))
    assert len(doc["steps"]) == len(t.steps) == len(t.positions) * out.shape[2]
    for s, d in zip(t.steps, doc["steps"], strict=True):
        channel = s.output_channel if isinstance(s, ConvStep) else s.channel
        expected = out[(*s.position, channel)]
        assert d["value"] == pytest.approx(
            float(expected), rel=1e-6 if not exact else 1e-12, abs=1e-9
        )
        if exact:
            assert d["value"] == expected
        if isinstance(s, ConvStep):
            assert s.total == pytest.approx(sum(c.sum for c in s.channels) + s.bias)
            for c in s.channels:
                assert c.sum == pytest.approx(float(np.sum(c.products)))
    return t


# -- golden renderings ----------------------------------------------------------------

GOLDEN_CASES = {
    "cs231n": (CS231N_X, [cs231n_stage()]),
    "ufldl": (
        UFLDL,
        [
            stage(
                "conv:k=1,0,1;0,1,0;1,0,1",
                [[1, 0, 1], [0, 1, 0], [1, 0, 1]],
                layer=Conv(None, None),
            )
        ],
    ),
    "maxpool": (MAXPOOL, [Stage(parse_spec("maxpool:2"))]),
    "edge": (EDGE, [stage("conv:k=edge-v", get_preset("edge-v"))]),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_rendering(name, golden):
    x, stages = GOLDEN_CASES[name]
    golden(name, render(trace(x, stages, Settings())))


def test_cs231n_first_output_is_three_as_published():
    t = trace(CS231N_X, [cs231n_stage()], Settings())
    first = t.steps[0]
    assert isinstance(first, ConvStep)
    assert [c.sum for c in first.channels] == [2, 2, -2] and first.value == 3
    text = render(t)
    assert "channels + bias: 2 + 2 + (−2) + 1 = 3" in text
    assert "0×1 + 0×0 + 0×1 + 0×(−1) + 2×1 + 0×1 + 0×1 + 0×0 + 0×0 = 2" in text


def test_padding_mask_marks_exactly_the_padding():
    t = trace(CS231N_X, [cs231n_stage()], Settings(), at=[(0, 0), (2, 2), (1, 1)])
    masks = {
        s.position: s.channels[0].padding.tolist()
        for s in t.steps
        if isinstance(s, ConvStep) and s.filter == 0
    }
    assert masks[(0, 0)] == [[True] * 3, [True, False, False], [True, False, False]]
    assert masks[(2, 2)] == [[False, False, True], [False, False, True], [True] * 3]
    assert masks[(1, 1)] == [[False] * 3] * 3
    assert "·0 ·0 ·0" in render(t)


def test_reflect_padding_shows_the_mirrored_values():
    x = np.arange(16).reshape(4, 4, 1)
    t = assert_matches_run(
        x,
        [stage("conv:k=box3,p=1", np.ones((3, 3)))],
        Settings(pad_mode=PadMode.REFLECT),
        at=[(0, 0)],
    )
    window = t.steps[0].channels[0].window
    assert window.tolist() == [[5, 4, 5], [1, 0, 1], [5, 4, 5]]
    assert t.steps[0].channels[0].padding[0].all()


# -- values equal the computed feature map ---------------------------------------

CONFIGS = [
    ("padding", UFLDL, [stage("conv:k=x,p=1", [[1, 0, -1], [2, 0, -2], [1, 0, -1]])], Settings()),
    ("stride 2, same", UFLDL, [stage("conv:k=x,s=2,p=same", np.ones((2, 2)))], Settings()),
    (
        "dilation 2",
        np.arange(49).reshape(7, 7, 1) % 5,
        [stage("conv:k=x,d=2,p=1", [[1, 2, 0], [0, -1, 3], [1, 1, 1]])],
        Settings(),
    ),
    (
        "reflect",
        np.arange(30).reshape(5, 6, 1),
        [stage("conv:k=x,p=2", np.arange(9).reshape(3, 3) - 4)],
        Settings(pad_mode=PadMode.REFLECT),
    ),
    (
        "replicate, wrap",
        np.arange(30).reshape(5, 6, 1),
        [stage("conv:k=x,p=2", np.eye(3))],
        Settings(pad_mode=PadMode.WRAP),
    ),
    ("cs231n", CS231N_X, [cs231n_stage()], Settings()),
    (
        "each, two filters, bias",
        CS231N_X,
        [
            stage(
                "conv:k=a,k=b,p=1",
                [[1, 0], [0, -1]],
                [[2, 1], [1, 0]],
                bias=(1.0, -2.0),
                layer=Conv(None, None, padding=(1,)),
            )
        ],
        Settings(),
    ),
    (
        "sum mode, flip, relu",
        CS231N_X,
        [
            stage(
                "conv:k=a,p=1",
                [[1, 2, 3], [0, 0, 0], [-1, -2, -5]],
                bias=(-3.0,),
                activation=Activation.RELU,
            )
        ],
        Settings(channels=ChannelMode.SUM, flip=True),
    ),
    (
        "max pool, ceil, padding",
        np.arange(35).reshape(5, 7, 1) % 11,
        [Stage(parse_spec("maxpool:3,s=2,p=1,ceil"))],
        Settings(),
    ),
    (
        "avg pool, ceil",
        np.arange(35).reshape(5, 7, 1) % 11,
        [Stage(parse_spec("avgpool:2,s=3,p=1,ceil"))],
        Settings(),
    ),
    (
        "avg pool, exclude pad",
        np.arange(35).reshape(5, 7, 1) % 11,
        [Stage(parse_spec("avgpool:3,s=2,p=1"))],
        Settings(exclude_pad=True),
    ),
    (
        "avg pool, tf same",
        np.arange(36).reshape(6, 6, 1) % 7,
        [Stage(parse_spec("avgpool:3,s=2,p=same"))],
        Settings(convention=Convention.TF),
    ),
    ("l2 pool", MAXPOOL, [Stage(parse_spec("l2pool:2"))], Settings()),
    ("global", CS231N_X, [Stage(parse_spec("gap"))], Settings()),
    ("global max", CS231N_X, [Stage(parse_spec("gmp"))], Settings()),
    (
        "deconv",
        np.arange(6).reshape(2, 3, 1) + 1,
        [stage("deconv:k=x,s=2,p=1,op=1", np.arange(9).reshape(3, 3) - 2)],
        Settings(),
    ),
    (
        "deconv, each, dilation",
        CS231N_X[:3, :3],
        [stage("deconv:k=x,s=2,d=2", [[1, -1], [2, 3]], bias=(0.5,))],
        Settings(),
    ),
    (
        "deconv, depth, flip",
        CS231N_X[:3, :4],
        [stage("deconv:k=x,s=3", CS231N_W0)],
        Settings(flip=True),
    ),
]


@pytest.mark.parametrize(("name", "x", "stages", "config"), CONFIGS, ids=[c[0] for c in CONFIGS])
def test_step_values_equal_the_feature_map(name, x, stages, config):
    out = run(x, stages, config).output
    every = [(r, c) for r in range(out.shape[0]) for c in range(out.shape[1])]
    whole = np.all(out == np.round(out))
    assert_matches_run(x, stages, config, at=every, exact=bool(whole))


def test_pipeline_layer_traces_the_output_of_the_layers_before():
    stages = [
        stage("conv:k=sobel-x,p=1", get_preset("sobel-x")),
        Stage(parse_spec("relu")),
        Stage(parse_spec("maxpool:2")),
    ]
    x = np.arange(64).reshape(8, 8, 1) % 7
    t = assert_matches_run(x, stages, layer=3, at=[(r, c) for r in range(4) for c in range(4)])
    assert t.layer == 3 and t.input_shape == (8, 8, 1)
    with pytest.raises(ConvcalcError, match=r"layer 2 \(relu\) has no windows"):
        trace(x, stages, Settings(), layer=2)
    with pytest.raises(ConvcalcError, match="layer 4 is not valid; valid: 1 to 3"):
        trace(x, stages, Settings(), layer=4)
    big = [*stages[:2], Stage(parse_spec("maxpool:9"))]
    with pytest.raises(ConvcalcError, match=r"^layer 3 \(maxpool:9\): kernel 9 is larger"):
        trace(x, big, Settings(), layer=3)


@st.composite
def conv_configs(draw):
    h, w, c = draw(st.integers(3, 6)), draw(st.integers(3, 6)), draw(st.integers(1, 3))
    k = draw(st.integers(1, 3))
    d = draw(st.integers(1, 2)) if k > 1 else 1
    p = draw(st.integers(0, 2))
    s = draw(st.integers(1, 2))
    if (h + 2 * p - d * (k - 1) - 1) < 0 or (w + 2 * p - d * (k - 1) - 1) < 0:
        p = d * (k - 1)
    mode = draw(st.sampled_from(list(PadMode)))
    if mode == PadMode.REFLECT:
        p = min(p, min(h, w) - 1)
        if min(h, w) + 2 * p < d * (k - 1) + 1:
            mode = PadMode.ZERO
    filters = draw(st.integers(1, 2))
    deep = draw(st.booleans()) and c > 1
    values = st.integers(-3, 3)
    kernels = [
        np.array(
            draw(
                st.lists(
                    values, min_size=k * k * (c if deep else 1), max_size=k * k * (c if deep else 1)
                )
            ),
            float,
        ).reshape((k, k, c) if deep else (k, k))
        for _ in range(filters)
    ]
    bias = tuple(float(draw(values)) for _ in range(filters)) if draw(st.booleans()) else None
    x = np.array(draw(st.lists(values, min_size=h * w * c, max_size=h * w * c))).reshape(h, w, c)
    stages = [
        stage(
            f"conv:k=x,s={s},p={p},d={d}",
            *kernels,
            bias=bias,
            activation=draw(st.sampled_from([Activation.NONE, Activation.RELU])),
            layer=Conv(None, None, (s,), (p,), (d,)),
        )
    ]
    if draw(st.booleans()):
        stages.append(
            Stage(
                parse_spec(
                    draw(st.sampled_from(["maxpool:2,ceil", "avgpool:2,s=1,p=1", "l2pool:2"]))
                )
            )
        )
    config = Settings(
        pad_mode=mode, channels=draw(st.sampled_from(list(ChannelMode))), flip=draw(st.booleans())
    )
    return x, stages, config


@settings(max_examples=60, deadline=None)
@given(conv_configs(), st.data())
def test_random_configs_agree_with_the_pipeline(config, data):
    x, stages, opts = config
    layer = data.draw(st.integers(1, len(stages)))
    try:
        out = run(x, stages[:layer], opts).output
    except ConvcalcError:
        with pytest.raises(ConvcalcError):
            trace(x, stages, opts, layer=layer)
        return
    every = [(r, c) for r in range(out.shape[0]) for c in range(out.shape[1])]
    exact = "l2pool" not in stages[layer - 1].spec.text
    assert_matches_run(x, stages, opts, layer=layer, at=every, exact=exact)


# -- positions, limits, JSON, layout -----------------------------------------------


def test_position_out_of_range_names_it_and_the_valid_range():
    with pytest.raises(
        ConvcalcError,
        match=r"position \(3, 0\) is outside the 3x3 output; "
        r"valid: rows 0 to 2, columns 0 to 2",
    ):
        trace(UFLDL, GOLDEN_CASES["ufldl"][1], Settings(), at=[(0, 0), (3, 0)])
    with pytest.raises(ConvcalcError, match=r"position \(0, -1\)"):
        trace(UFLDL, GOLDEN_CASES["ufldl"][1], Settings(), at=[(0, -1)])
    with pytest.raises(ConvcalcError, match="limit 0 is not valid"):
        trace(UFLDL, GOLDEN_CASES["ufldl"][1], Settings(), limit=0)


def test_small_outputs_show_everything_large_ones_the_first_few():
    k = [stage("conv:k=box3", np.ones((3, 3)))]
    six = trace(np.ones((8, 8, 1)), k, Settings())  # 6x6 = 36 positions: all
    assert six.omitted == 0 and len(six.steps) == 36
    seven = trace(np.ones((9, 9, 2)), k, Settings())  # 7x7, two output channels
    assert seven.positions == ((0, 0), (0, 1), (0, 2), (0, 3))
    assert seven.omitted == 49 - DEFAULT_SHOWN and len(seven.steps) == 2 * DEFAULT_SHOWN
    assert [s.output_channel for s in seven.steps] == [0] * 4 + [1] * 4  # filter-major
    assert "4 of 49 positions shown; use --at ROW,COL or --limit N for others" in render(seven)
    limited = trace(np.ones((9, 9, 1)), k, Settings(), limit=2)
    assert limited.positions == ((0, 0), (0, 1)) and limited.omitted == 47
    picked = trace(np.ones((9, 9, 1)), k, Settings(), at=[(6, 6), (1, 2), (6, 6)], limit=5)
    assert picked.positions == ((6, 6), (1, 2)) and picked.omitted == 47
    assert "of 36 positions" not in render(six)


def test_json_shape_and_integers():
    doc = trace_json(trace(CS231N_X, [cs231n_stage()], Settings(), at=[(0, 0)]))
    assert doc["output_shape"] == [3, 3, 2]
    first = doc["steps"][0]
    assert set(first) >= {"position", "filter", "channels", "bias", "value"}
    assert first["position"] == [0, 0] and first["filter"] == 0
    assert first["channels"][0] == {
        "channel": 0,
        "window": [[0, 0, 0], [0, 2, 0], [0, 0, 0]],
        "kernel": [[1, 0, 1], [-1, 1, 1], [1, 0, 0]],
        "sum": 2,
        "padding_mask": [[True] * 3, [True, False, False], [True, False, False]],
    }
    assert type(first["value"]) is int and first["value"] == 3 and first["bias"] == 1
    pooled = trace_json(trace(MAXPOOL, [Stage(parse_spec("avgpool:2"))], Settings()))
    assert pooled["steps"][0] | {"padding_mask": None} == {
        "position": [0, 0],
        "channel": 0,
        "origin": [0, 0],
        "window": [[1, 3], [2, 9]],
        "op": "avg",
        "value": 3.75,
        "divisor": 4,
        "padding_mask": None,
    }
    floats = trace_json(trace(UFLDL * 0.5, GOLDEN_CASES["ufldl"][1], Settings()))
    assert type(floats["steps"][0]["value"]) is float


def test_max_pool_padding_is_minus_infinity_and_null_in_json():
    t = trace(-MAXPOOL, [Stage(parse_spec("maxpool:3,s=2,p=1"))], Settings(), at=[(0, 0)])
    step = t.steps[0]
    assert isinstance(step, PoolStep) and step.value == -1 and step.argmax == (1, 1)
    assert trace_json(t)["steps"][0]["window"][0] == [None, None, None]
    assert "*−1" in render(t) and "max(−∞, −∞, −∞, −∞, −1, −3, −∞, −2, −9) = −1" in render(t)


def test_dilated_kernels_show_their_holes():
    x = np.arange(49).reshape(7, 7, 1)
    t = trace(x, [stage("conv:k=x,d=3", [[1, 2], [3, 4]])], Settings(), at=[(1, 2)])
    channel = t.steps[0].channels[0]
    assert channel.window.tolist() == [[9, 12], [30, 33]]  # only the tapped cells
    lines = render(t).splitlines()
    grid = lines[lines.index("  window         kernel") + 1 :][:4]
    assert grid == [
        "   9  ∘  ∘ 12    1 ∘ ∘ 2",
        "   ∘  ∘  ∘  ∘    ∘ ∘ ∘ ∘",
        "   ∘  ∘  ∘  ∘    ∘ ∘ ∘ ∘",
        "  30  ∘  ∘ 33    3 ∘ ∘ 4",
    ]
    assert "rows 1..4 every 3, columns 2..5 every 3" in render(t)


def test_lines_fit_the_console_and_big_windows_are_not_drawn():
    x = np.arange(400).reshape(20, 20, 1) - 200.5
    t = trace(x, [stage("conv:k=gauss", np.full((15, 15), -0.25))], Settings(), limit=1)
    for width in (40, 60, 100):
        lines = render(t, width).splitlines()
        assert max(len(line) for line in lines) <= width
        assert len(lines) < 30
    text = render(t, 100)
    assert "15x15, too large to draw" in text and "(225 terms, 211 not shown)" in text
    narrow = render(trace(CS231N_X, [cs231n_stage()], Settings(), at=[(0, 0)]), 30)
    assert max(len(line) for line in narrow.splitlines()) <= 30
