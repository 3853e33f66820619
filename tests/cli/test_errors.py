"""Every bad input gets one clear line and the right exit status; nothing is ever lost."""

import os

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc.calc.evaluation import evaluate
from convcalc.calc.grammar import parse_spec
from convcalc.calc.sizes import parse_shape
from convcalc.cli.main import cli
from convcalc.compute import pipeline
from convcalc.errors import ConvcalcError
from convcalc.io import writing
from tests.conftest import SAMPLES, run

UFLDL = str(SAMPLES / "ufldl_5x5.txt")


@pytest.fixture
def bad_files(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "ragged.txt").write_text("1 2\n3\n")
    (tmp_path / "words.txt").write_text("1 a\n")
    (tmp_path / "fake.png").write_text("not an image")
    (tmp_path / "trunc.png").write_bytes((SAMPLES / "photo.png").read_bytes()[:200])
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    np.save(tmp_path / "complex.npy", np.ones((2, 2), complex))
    np.save(tmp_path / "empty.npy", np.zeros((0, 3)))
    np.save(tmp_path / "strings.npy", np.array([["a"]]))
    (tmp_path / "folder").mkdir()
    (tmp_path / "net_bad.txt").write_text("conv:6,5\n\nmaxpool:x\n")
    (tmp_path / "net_empty.txt").write_text("# only a comment\n")
    return tmp_path


CASES = [
    # sizes and shapes
    (["shape", "abc", "-k", "3"], 2, "input shape 'abc'"),
    (["shape", "0", "-k", "3"], 2, "input shape '0'"),
    (["shape", "-3", "-k", "3"], 2, "'-3' is negative"),
    (["shape", "3x", "-k", "3"], 2, "input shape '3x'"),
    (["shape", "3xx3", "-k", "3"], 2, "input shape '3xx3'"),
    (["shape", "99999999999999", "-k", "3"], 2, "between 1 and"),
    (["shape", "7", "-k", "0"], 2, "kernel '0'"),
    (["shape", "7", "-k", "2.5"], 2, "kernel '2.5'"),
    (["shape", "7", "-k", "3", "-s", "0"], 2, "stride '0'"),
    (["shape", "7", "-k", "3", "-d", "0"], 2, "dilation '0'"),
    (["shape", "7", "-k", "3", "-p", "x"], 2, "padding 'x'"),
    (["shape", "7", "-k", "9"], 2, "kernel 9"),
    (["shape", "7", "-k", "3", "--filters", "0"], 2, "filters 0"),
    (["shape", "7x7x3", "-k", "3", "--groups", "2", "--filters", "4"], 2, "groups 2"),
    (["params", "7x7x3", "-k", "3", "--units", "0"], 2, "--units"),
    (["shape", "7x7", "-k", "3x3x3x3x3"], 2, "kernel '3x3x3x3x3'"),
    # layer specs
    (["shape", "7x7", "blah:3"], 2, "unknown layer 'blah'"),
    (["shape", "7x7", "conv:3,3,q=1"], 2, "unknown key 'q'"),
    (["shape", "7x7", "conv:3"], 2, "missing kernel"),
    (["shape", "7x7", "conv:3,3,1,1,1"], 2, "too many arguments"),
    (["shape", "7x7", "conv:a,3"], 2, "'a' is not an integer"),
    (["shape", "7x7", "conv:3,3,bias=maybe"], 2, "not yes or no"),
    (["shape", "7x7", "conv:3,3,,s=2"], 2, "empty argument"),
    (["shape", "7x7", "fc:10", "conv:3,3"], 2, "flat vector"),
    (["shape", "7x7", "fc:10", "maxpool:2"], 2, "flat vector"),
    (["shape", "7x7", "conv:3,3,s=1,s=2"], 2, "given twice"),
    (["shape", "7x7", "deconv:3,3,s=2,op=2"], 2, "output_padding 2"),
    (["shape", "7x7", "maxpool:2,p=2"], 2, "pooling padding 2"),
    (["shape", "7x7x3", "conv1d:3,3"], 2, "work on 1 spatial axis"),
    (["shape", "32x32x3", "conv:6,5", "-s", "2"], 2, "write them into the spec"),
    (["shape", "32x32x3", "--net", "lenet5", "--filters", "3"], 2, "--filters"),
    # presets and network files
    (["shape", "7x7", "--net", "nosuchnet"], 2, "unknown network 'nosuchnet'"),
    (["shape", "7x7", "--net", "/no/such/net.txt"], 1, "not found"),
    # kernels
    (["apply", UFLDL, "-k", "1,2;3"], 2, "row 2 has 1 value"),
    (["apply", UFLDL, "-k", "nan,1"], 2, "not finite"),
    (["apply", UFLDL, "-k", "inf"], 2, "not finite"),
    (["apply", UFLDL, "-k", ""], 2, "empty"),
    (["apply", UFLDL, "-k", "sobelx"], 2, "did you mean 'sobel-x'"),
    (["apply", UFLDL, "-k", "9x9"], 2, "-k 9x9 is a size"),
    (["apply", UFLDL, "-k", "box5", "-k", "box3"], 2, "same size"),
    (["apply", UFLDL, "-k", "1,1|1,1"], 2, "depth 2"),
    (["apply", UFLDL, "-k", "motion"], 2, "larger than the padded input"),
    (["apply", UFLDL, "-k", "box3", "--bias", "1,x"], 2, "'x' is not a number"),
    (["apply", UFLDL, "--pool", "max", "-k", "9"], 2, "kernel 9"),
    (["apply", UFLDL, "-k", "box3", "--pad-mode", "reflect", "-p", "9"], 2, "reflect padding 9"),
    (["apply", UFLDL, "conv:k=box3", "fc:10"], 2, "cannot be applied"),
    (["apply", UFLDL, "conv:6,3"], 2, "kernel's values"),
    (["apply", UFLDL, "conv:k=box3,g=2"], 2, "g=2 does not divide the input's 1 channel"),
    (["apply", UFLDL, "deconv:k=box3,g=2"], 2, "g=2 on a transposed convolution"),
    # outputs
    (["apply", UFLDL, "-k", "box3", "-o", "/no/such/dir/x.png"], 1, "does not exist"),
    (["apply", UFLDL, "-k", "box3", "-o", "out.xyz"], 2, ".xyz"),
    (["apply", UFLDL, "-k", "box3", "-o", UFLDL], 2, "input"),
]


@pytest.mark.parametrize(("args", "status", "fragment"), CASES)
def test_bad_arguments(args, status, fragment):
    result = run(*args)
    assert result.exit_code == status, result.output
    assert fragment in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert 1 <= len(result.stderr.strip().splitlines()) <= 2


FILE_CASES = [
    ("empty.txt", 2, "empty"),
    ("ragged.txt", 2, "row 2 has 1 value"),
    ("words.txt", 2, "'a' is not a number"),
    ("fake.png", 2, "not an image"),
    ("trunc.png", 2, "truncated"),
    ("objects.npy", 2, "never loaded"),
    ("complex.npy", 2, "complex"),
    ("empty.npy", 2, "empty"),
    ("strings.npy", 2, "not numeric"),
    ("missing.png", 1, "missing.png"),
    ("folder", 1, "holds no images"),
]


@pytest.mark.parametrize(("name", "status", "fragment"), FILE_CASES)
def test_bad_input_files(bad_files, name, status, fragment):
    result = run("apply", str(bad_files / name), "-k", "box3")
    assert result.exit_code == status, result.output
    assert fragment in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("name", "status", "fragment"),
    [
        ("net_bad.txt", 2, "net_bad.txt:3"),
        ("net_empty.txt", 2, "holds no layer specs"),
        ("folder", 1, "is a directory"),
    ],
)
def test_bad_network_files(bad_files, name, status, fragment):
    result = run("shape", "32x32x3", "--net", str(bad_files / name))
    assert result.exit_code == status, result.output
    assert fragment in result.stderr


def test_empty_stdin():
    result = CliRunner().invoke(cli, ["apply", "-", "-k", "box3"], input=b"")
    assert result.exit_code == 2
    assert "empty" in result.stderr


def test_decompression_bomb_is_an_error(tmp_path, monkeypatch):
    from PIL import Image

    big = tmp_path / "big.png"
    Image.new("L", (64, 64)).save(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    result = run("apply", str(big), "-k", "box3")
    assert result.exit_code == 2
    assert "pixels" in result.stderr


def test_inputs_are_never_modified(tmp_path):
    source = tmp_path / "in.png"
    source.write_bytes((SAMPLES / "photo.png").read_bytes())
    before = (source.read_bytes(), source.stat().st_mtime_ns)
    assert run("apply", str(source), "-k", "gauss5", "-o", str(tmp_path / "out.png")).exit_code == 0
    assert run("apply", str(source), "-k", "gauss5", "-o", str(source)).exit_code == 2
    assert (source.read_bytes(), source.stat().st_mtime_ns) == before


def test_a_failed_write_keeps_the_old_output(tmp_path, monkeypatch):
    out = tmp_path / "out.png"
    out.write_bytes(b"previous result")

    def disk_full(fd, payload):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writing, "_write_all", disk_full)
    result = run("apply", UFLDL, "-k", "box3", "-o", str(out))
    assert result.exit_code == 1
    assert "No space left" in result.stderr
    assert out.read_bytes() == b"previous result"
    assert os.listdir(tmp_path) == ["out.png"]


def test_interrupt_exits_130_and_leaves_no_partial_file(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(writing, "_write_all", interrupted)
    out = tmp_path / "out.png"
    result = run("apply", UFLDL, "-k", "box3", "-o", str(out))
    assert result.exit_code == 130
    assert result.stderr.strip() == "Error: interrupted"
    assert os.listdir(tmp_path) == []


def test_interrupt_during_compute(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "run", interrupted)
    result = run("apply", UFLDL, "-k", "box3", "-o", str(tmp_path / "out.png"))
    assert result.exit_code == 130
    assert os.listdir(tmp_path) == []


def test_internal_errors_are_one_line_unless_debug(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(pipeline, "run", broken)
    result = run("apply", UFLDL, "-k", "box3")
    assert result.exit_code == 1
    assert "internal error: RuntimeError: boom" in result.stderr
    assert "Traceback" not in result.stderr
    with pytest.raises(RuntimeError):
        CliRunner().invoke(cli, ["--debug", "apply", UFLDL, "-k", "box3"], catch_exceptions=False)


# -- fuzzing: a valid result or a clean error, never an exception -------------

spec_text = st.text(alphabet="convpldefcaxmsgb0123456789:,=-x ", max_size=24)
shape_text = st.text(alphabet="0123456789x-. ", max_size=12)


@settings(max_examples=300, deadline=None)
@given(spec_text, shape_text)
def test_grammar_and_shapes_never_raise_anything_but_convcalc_errors(spec, shape):
    try:
        evaluate([parse_spec(spec)], parse_shape(shape, 2))
    except ConvcalcError as exc:
        assert str(exc)
        assert "\n" not in str(exc)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["conv", "maxpool", "avgpool", "deconv", "dwconv", "fc", "conv1d"]),
    st.lists(
        st.integers(-3, 12).map(str) | st.sampled_from(["same", "valid", "full", "x"]), max_size=4
    ),
    st.lists(st.sampled_from(["s", "p", "d", "g", "op", "m"]), max_size=2),
    st.integers(1, 20),
    st.integers(1, 6),
)
def test_structured_specs_never_crash(op, args, keys, n, c):
    text = op + ":" + ",".join(args + [f"{k}={a}" for k, a in zip(keys, args, strict=False)])
    try:
        evaluate([parse_spec(text)], parse_shape(f"{n}x{n}x{c}", 2))
    except ConvcalcError as exc:
        assert "\n" not in str(exc)


def test_a_run_that_cannot_fit_is_refused_before_work(monkeypatch, tmp_path):
    from convcalc.compute import memory

    monkeypatch.setattr(memory, "available_memory", lambda: 1000)
    result = run("apply", str(SAMPLES / "photo.png"), "-k", "box3", "-o", str(tmp_path / "o.png"))
    assert result.exit_code == 1
    assert "GiB of memory" in result.stderr
    assert os.listdir(tmp_path) == []


def test_memory_estimate_grows_with_filters_and_size():
    from convcalc.calc.layers import Conv, Spec
    from convcalc.compute.kernels import get_preset
    from convcalc.compute.pipeline import Settings, Stage, estimate_bytes

    one = [Stage(Spec("conv", Conv(None, None)), (get_preset("box3"),))]
    four = [Stage(Spec("conv", Conv(None, None)), (get_preset("box3"),) * 4)]
    small = estimate_bytes((100, 100, 3), one, Settings(), 8)
    assert small >= 100 * 100 * 3 * 8 * 3
    assert estimate_bytes((100, 100, 3), four, Settings(), 8) > small
    assert estimate_bytes((200, 200, 3), one, Settings(), 8) > 3 * small
