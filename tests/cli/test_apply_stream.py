"""`convcalc apply big.npy ... -o out.npy` by strips: the in-memory result, file and JSON."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from convcalc.cli.apply_stream import BUDGET_VARIABLE
from convcalc.compute import memory
from convcalc.io import npy_stream, writing
from tests.conftest import ROOT, run

BUDGET = "4000"
"""A strip budget (bytes) that streams the small arrays below, a few rows a strip."""


def save(tmp_path, array, name="in.npy"):
    path = tmp_path / name
    np.save(path, array)
    return str(path)


def in_strips(monkeypatch, *args):
    """``convcalc apply ARGS -v`` with the small strip budget."""
    monkeypatch.setenv(BUDGET_VARIABLE, BUDGET)
    try:
        return run("apply", *args, "-v")
    finally:
        monkeypatch.delenv(BUDGET_VARIABLE)


def streamed(result):
    return "strips of at most" in result.stderr


RNG = np.random.default_rng(0)
GRAY = RNG.normal(size=(61, 47)).astype(np.float32)
COLOUR = RNG.normal(size=(45, 38, 3))


@pytest.mark.parametrize(
    ("array", "args"),
    [
        (GRAY, ["-k", "box3", "-p", "1", "-s", "2"]),
        (GRAY, ["--pool", "max", "-k", "2"]),
        (GRAY, ["--pool", "avg", "-k", "3", "-s", "2", "-p", "1", "--ceil", "--exclude-pad"]),
        (GRAY, ["-k", "gauss5", "-p", "2", "--pad-mode", "reflect"]),
        (GRAY, ["-k", "sobel-x", "-p", "3", "-d", "2", "--pad-mode", "wrap"]),
        (GRAY, ["-k", "sobel-x", "-k", "sobel-y", "--bias", "1,2", "--activation", "relu"]),
        (COLOUR, ["conv:k=sobel-x,p=1", "relu", "maxpool:3,s=2,ceil", "conv:k=box3,s=2"]),
        (COLOUR, ["-k", "laplace4", "-p", "same", "--pad-mode", "replicate", "--channels", "sum"]),
        ((GRAY * 40).astype(np.uint8), ["-k", "gauss3", "-p", "1"]),
        (GRAY > 0, ["--pool", "l2", "-k", "2", "-s", "1"]),
    ],
)
def test_strips_write_the_in_memory_file(tmp_path, monkeypatch, array, args):
    source = save(tmp_path, array)
    whole = run("apply", source, *args, "-o", str(tmp_path / "whole.npy"))
    strips = in_strips(monkeypatch, source, *args, "-o", str(tmp_path / "strips.npy"))
    assert whole.exit_code == strips.exit_code == 0, strips.output
    assert streamed(strips) and not streamed(whole)
    assert (tmp_path / "strips.npy").read_bytes() == (tmp_path / "whole.npy").read_bytes()
    assert strips.stdout == ""
    assert sorted(os.listdir(tmp_path)) == ["in.npy", "strips.npy", "whole.npy"]


@pytest.mark.parametrize("args", [["-k", "box3", "-p", "1"], ["--pool", "max", "-k", "15"]])
def test_json_is_the_in_memory_document(tmp_path, monkeypatch, args):
    # a large result gives statistics (the mean within a rounding); a small one its values
    source = save(tmp_path, COLOUR)
    out = str(tmp_path / "o.npy")
    whole = run("apply", source, *args, "-o", out, "--json")
    strips = in_strips(monkeypatch, source, *args, "-o", out, "--json")
    assert whole.exit_code == strips.exit_code == 0, strips.output
    doc, expected = json.loads(strips.stdout), json.loads(whole.stdout)
    assert streamed(strips)
    doc["notes"] = [n for n in doc["notes"] if "auto" not in n and "strips" not in n]
    assert doc.pop("mean", 0) == pytest.approx(expected.pop("mean", 0), rel=1e-12)
    assert doc == expected


def test_layers_that_need_the_whole_input_run_in_memory_with_a_note(tmp_path, monkeypatch):
    source = save(tmp_path, COLOUR)
    args = [source, "conv:k=box3", "gap", "-o", str(tmp_path / "o.npy")]
    result = in_strips(monkeypatch, *args)
    assert result.exit_code == 0, result.output
    assert "computed in memory, not in strips: layer 2 (gap) needs the whole input" in (
        result.stderr
    )
    assert np.load(tmp_path / "o.npy").shape == (1, 1, 3)


def test_a_value_not_finite_midway_leaves_the_old_output(tmp_path, monkeypatch):
    array = GRAY.copy()
    array[50, 7] = np.nan
    source = save(tmp_path, array)
    out = tmp_path / "o.npy"
    out.write_bytes(b"previous result")
    whole = run("apply", source, "-k", "box3", "-o", str(out))
    strips = in_strips(monkeypatch, source, "-k", "box3", "-o", str(out))
    assert whole.exit_code == strips.exit_code == 2
    assert strips.stderr == whole.stderr
    assert "the value nan at index (50, 7) is not finite" in strips.stderr
    assert out.read_bytes() == b"previous result"
    assert sorted(os.listdir(tmp_path)) == ["in.npy", "o.npy"]


def test_a_refused_dtype_gets_the_in_memory_message(tmp_path, monkeypatch):
    source = save(tmp_path, GRAY.astype(np.complex64))
    whole = run("apply", source, "-k", "box3", "-o", str(tmp_path / "o.npy"))
    strips = in_strips(monkeypatch, source, "-k", "box3", "-o", str(tmp_path / "o.npy"))
    assert whole.exit_code == strips.exit_code == 2
    assert strips.stderr == whole.stderr and "is complex" in strips.stderr


def test_an_input_over_half_the_memory_runs_in_strips(tmp_path, monkeypatch):
    source = save(tmp_path, GRAY)  # 11 KiB
    args = [source, "-k", "box3", "-p", "1", "-o"]
    assert run("apply", *args, str(tmp_path / "whole.npy")).exit_code == 0
    monkeypatch.setattr(memory, "available_memory", lambda: 15_000)
    refused = run("apply", *args, str(tmp_path / "o.npy"))
    assert refused.exit_code == 1 and "memory available" in refused.stderr
    result = in_strips(monkeypatch, *args, str(tmp_path / "o.npy"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o.npy").read_bytes() == (tmp_path / "whole.npy").read_bytes()


def test_only_a_few_strips_of_rows_are_read_at_once(tmp_path, monkeypatch):
    source = save(tmp_path, GRAY)
    reads: list[tuple[int, int]] = []
    real = npy_stream.NpyRows.read

    def spy(self, lo, hi, **kwargs):
        reads.append((lo, hi))
        return real(self, lo, hi, **kwargs)

    monkeypatch.setattr(npy_stream.NpyRows, "read", spy)
    result = in_strips(monkeypatch, source, "-k", "box5", "-p", "2", "-o", str(tmp_path / "o.npy"))
    assert result.exit_code == 0, result.output
    assert len(reads) > 10
    assert max(hi - lo for lo, hi in reads) <= 61 // len(reads) + 1 + 4  # a strip, its halo
    assert sum(hi - lo for lo, hi in reads) <= 61 + 4 * len(reads)


def test_fsync_is_honoured(tmp_path, monkeypatch):
    flushed = []
    monkeypatch.setattr(writing, "_flush_file", flushed.append)
    source = save(tmp_path, GRAY)
    result = in_strips(monkeypatch, source, "-k", "box3", "-o", str(tmp_path / "o.npy"), "--fsync")
    assert result.exit_code == 0 and streamed(result)
    assert len(flushed) == 1 and flushed[0].endswith(".tmp")


STRIPS_HELD = """
import sys, time
from convcalc.compute import strip_runner

run = strip_runner.StripRunner.run
done = []

def slow(self, strip, read):  # after two strips the run waits for a signal
    done.append(strip)
    if len(done) == 3:
        print("ready", file=sys.stderr, flush=True)
        time.sleep(60)
    return run(self, strip, read)

strip_runner.StripRunner.run = slow
from convcalc.cli.main import main
sys.argv[0] = "convcalc"
main()
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_midway_leaves_no_temporary_file_and_the_old_output(tmp_path, signum, status):
    save(tmp_path, GRAY)
    (tmp_path / "o.npy").write_bytes(b"previous result")
    child = subprocess.Popen(
        [sys.executable, "-c", STRIPS_HELD, "apply", "in.npy", "-k", "box3", "-o", "o.npy"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        env={**os.environ, BUDGET_VARIABLE: BUDGET, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stderr is not None
        assert child.stderr.readline().strip() == b"ready"
        assert any(name.endswith(".tmp") for name in os.listdir(tmp_path))
        child.send_signal(signum)
        _, err = child.communicate(timeout=10)
    finally:
        child.kill()
    assert child.returncode == status, err
    assert sorted(os.listdir(tmp_path)) == ["in.npy", "o.npy"]
    assert (tmp_path / "o.npy").read_bytes() == b"previous result"
