"""Hostile files, batches, signals and stdout: nothing hangs, nothing is lost.

What could hang (devices, FIFOs) or needs a real process (signals, a full stdout, a
cp1252 stdout) runs ``python -m convcalc`` with a timeout; the rest runs through
click's CliRunner.
"""

from __future__ import annotations

import dataclasses
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convcalc.compute import kernels, memory
from convcalc.compute.kernels import named_kernel
from convcalc.errors import ConvcalcError, RuntimeFailure
from convcalc.io.reading import read_input
from tests.conftest import SAMPLES, run

UFLDL = str(SAMPLES / "ufldl_5x5.txt")
POSIX = pytest.mark.skipif(sys.platform == "win32", reason="POSIX devices, FIFOs and signals")
PROC = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def convcalc(
    *args: str, timeout: float = 10, **options: object
) -> subprocess.CompletedProcess[bytes]:
    """``python -m convcalc ARGS`` in a child process; a hang fails the test."""
    options.setdefault("stdout", subprocess.PIPE)
    return subprocess.run(
        [sys.executable, "-m", "convcalc", *args],
        stderr=subprocess.PIPE,
        timeout=timeout,
        check=False,
        **options,  # type: ignore[call-overload]
    )


def one_line_error(proc: subprocess.CompletedProcess[bytes], status: int, *fragments: str) -> None:
    err = proc.stderr.decode()
    assert proc.returncode == status, err
    assert "Traceback" not in err and "internal error" not in err
    assert all(fragment in err for fragment in fragments), err


# ------------------------------------------------------------ only regular files are read


@POSIX
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["apply", "/dev/zero", "-k", "box3"], "/dev/zero: is a character device"),
        (["apply", "FIFO", "-k", "box3"], "a FIFO"),
        (["apply", "ZERO.png", "-k", "box3"], "a character device"),
        (["shape", "32x32x3", "--net", "/dev/zero"], "network file '/dev/zero'"),
        (["shape", "32x32x3", "--net", "FIFO"], "network file 'FIFO'"),
        (["apply", UFLDL, "-k", "/dev/zero"], "kernel file '/dev/zero'"),
        (["apply", UFLDL, "conv:k=ZERO.png"], "kernel file 'ZERO.png'"),
    ],
)
def test_devices_and_fifos_are_refused_not_read(tmp_path, args, fragment):
    os.mkfifo(tmp_path / "FIFO")
    (tmp_path / "ZERO.png").symlink_to("/dev/zero")
    proc = convcalc(*args, cwd=tmp_path)
    one_line_error(proc, 2, fragment, "not a regular file; valid:")


@POSIX
def test_stdin_from_a_device_is_refused():
    with open("/dev/zero", "rb") as zero:
        proc = convcalc("apply", "-", "-k", "box3", stdin=zero)
    one_line_error(proc, 2, "<stdin>", "character device")


@POSIX
def test_a_folder_skips_fifos_and_links_to_devices(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    os.mkfifo(folder / "pipe.png")
    (folder / "zero.npy").symlink_to("/dev/zero")
    (folder / "a.txt").write_text("1 2\n3 4\n")
    (folder / "b.txt").write_text("5 6\n7 8\n")
    proc = convcalc("apply", str(folder), "-k", "identity", "-p", "1", "-o", f"{tmp_path}/out/")
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert "skipped" in err and "pipe.png" in err and "zero.npy" in err
    assert sorted(os.listdir(tmp_path / "out")) == ["a.txt", "b.txt"]


def test_a_network_file_over_one_mib_is_refused(tmp_path):
    big = tmp_path / "big.txt"
    big.write_text("conv:6,5\n" + "#" * 2**20 + "\n")
    small = tmp_path / "small.txt"
    small.write_text("conv:6,5\n")
    result = run("shape", "32x32x3", "--net", str(big))
    assert result.exit_code == 2, result.output
    assert "big.txt" in result.stderr and "1 MiB" in result.stderr
    assert run("shape", "32x32x3", "--net", str(small)).exit_code == 0


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_inputs_larger_than_the_memory_available_are_refused(tmp_path, monkeypatch, source):
    monkeypatch.setattr(memory, "available_memory", lambda: 3000)  # inputs: half of it
    data = b"1 2\n3 4\n" * 200  # 1,600 bytes
    path = tmp_path / "m.txt"
    path.write_bytes(data)
    with pytest.raises(RuntimeFailure, match="memory available"):
        if source == "file":
            read_input(str(path))
        else:
            read_input("-", stdin=io.BytesIO(data))
    monkeypatch.setattr(memory, "available_memory", lambda: 3200)
    assert read_input(str(path)).data.shape == (400, 2, 1)
    assert read_input("-", stdin=io.BytesIO(data)).data.shape == (400, 2, 1)


# ------------------------------------------------------------ .npy headers


def npy_with_shape(path: Path, shape: str) -> str:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((2, 3)))
    path.write_bytes(buffer.getvalue().replace(b"(2, 3)", shape.encode()))
    return str(path)


@pytest.mark.parametrize(
    ("shape", "fragment"),
    [
        ("(-2, 3)", "-2x3"),
        ("(-2, -3)", "-2x-3"),
        ("(True, 3)", "Truex3"),
        ("(99999999999999999999, 3)", "truncated"),
        ("(4611686018427387904, 4611686018427387904)", "truncated"),
    ],
)
def test_npy_headers_with_bad_shapes_are_bad_values(tmp_path, shape, fragment):
    result = run("apply", npy_with_shape(tmp_path / "bad.npy", shape), "-k", "box3")
    assert result.exit_code == 2, result.output
    assert "bad.npy" in result.stderr and fragment in result.stderr
    assert "internal error" not in result.stderr


# ------------------------------------------------------------ batches


def gray_png(path: Path, value: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (12, 12), value).save(path)
    return path


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_a_batch_never_writes_two_results_to_one_file(tmp_path, force):
    folder = tmp_path / "gifdir"
    png = gray_png(folder / "a.png", 10)
    gray_png(folder / "a.gif", 200)
    before = png.read_bytes()
    result = run("apply", str(folder), "-k", "box:size=9", "-o", f"{folder}/", *force)
    assert result.exit_code == 2, result.output
    assert "a.gif" in result.stderr and "a.png" in result.stderr
    assert png.read_bytes() == before
    assert sorted(os.listdir(folder)) == ["a.gif", "a.png"]


def test_two_inputs_with_one_name_are_refused_before_any_work(tmp_path):
    first = gray_png(tmp_path / "d1" / "x.png", 1)
    second = gray_png(tmp_path / "d2" / "x.png", 2)
    out = tmp_path / "out"
    result = run("apply", str(first), str(second), "-k", "box3", "-o", f"{out}/")
    assert result.exit_code == 2, result.output
    assert str(first) in result.stderr and str(second) in result.stderr
    assert not out.exists()


def test_an_output_over_an_input_is_refused_before_any_work_unless_forced(tmp_path):
    source = tmp_path / "src" / "a.txt"  # its output, folder/a.txt, is new: fine
    source.parent.mkdir()
    source.write_text("1 2\n3 4\n")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "b.txt").write_text("5 6\n7 8\n")  # its output is itself
    args = ["apply", str(source), str(folder / "b.txt"), "-k", "identity", "-p", "2"]
    refused = run(*args, "-o", f"{folder}/")
    assert refused.exit_code == 2, refused.output
    assert "b.txt" in refused.stderr and "--force" in refused.stderr
    assert sorted(os.listdir(folder)) == ["b.txt"]  # not even a.txt's output was written
    assert (folder / "b.txt").read_text() == "5 6\n7 8\n"
    forced = run(*args, "-o", f"{folder}/", "--force")
    assert forced.exit_code == 0, forced.output
    assert np.loadtxt(folder / "b.txt").shape == (4, 4)


@pytest.mark.parametrize("output", ["new/", "new"])
def test_a_missing_output_folder_is_created(tmp_path, output):
    result = run(
        "apply", UFLDL, str(SAMPLES / "edge_6x6.txt"), "-k", "box3", "-o", str(tmp_path / output)
    )
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(tmp_path / "new")) == ["edge_6x6.txt", "ufldl_5x5.txt"]


def test_a_missing_parent_folder_is_not_created(tmp_path):
    out = tmp_path / "no" / "such" / "out"
    result = run("apply", UFLDL, str(SAMPLES / "edge_6x6.txt"), "-k", "box3", "-o", f"{out}/")
    assert result.exit_code == 1, result.output
    assert "does not exist" in result.stderr
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("inputs", [["-", UFLDL], [UFLDL, "-"]])
def test_stdin_is_never_one_of_several_inputs(tmp_path, inputs):
    result = run("apply", *inputs, "-k", "box3", "-o", f"{tmp_path}/", stdin=b"1 2\n3 4\n")
    assert result.exit_code == 2, result.output
    assert "'-' (stdin)" in result.stderr
    assert os.listdir(tmp_path) == []


def test_a_batch_with_a_missing_input_writes_nothing(tmp_path):
    out = tmp_path / "out"
    result = run("apply", UFLDL, str(tmp_path / "gone.txt"), "-k", "box3", "-o", f"{out}/")
    assert result.exit_code == 1, result.output
    assert "gone.txt" in result.stderr
    assert not out.exists()


# ------------------------------------------------------------ missing files: one rule


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["apply", "MISSING/in.png", "-k", "box3"], "in.png"),
        (["apply", UFLDL, "-k", "MISSING/k.npy"], "k.npy"),
        (["apply", UFLDL, "conv:k=MISSING/k.txt"], "k.txt"),
        (["shape", "32x32x3", "--net", "MISSING/net.txt"], "net.txt"),
        (["apply", UFLDL, "-k", "DIR/"], "is a directory"),
        (["shape", "32x32x3", "--net", "DIR"], "is a directory"),
    ],
)
def test_missing_or_unreadable_files_are_runtime_failures(tmp_path, args, fragment):
    args = [
        a.replace("MISSING", str(tmp_path / "gone")).replace("DIR", str(tmp_path)) for a in args
    ]
    result = run(*args)
    assert result.exit_code == 1, result.output
    assert fragment in result.stderr
    assert "internal error" not in result.stderr


# ------------------------------------------------------------ signals


WRITE_HELD_OPEN = """
import sys, time
from convcalc.io import writing

write_all = writing._write_all

def held_open(fd, payload):  # the write goes on until a signal ends it
    write_all(fd, payload)
    time.sleep(60)

writing._write_all = held_open
from convcalc.cli.main import main
sys.argv[0] = "convcalc"
main()
"""
"""``convcalc ARGS`` whose every file write stays open: a signal always finds one."""


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def temporary_files(folder: Path) -> list[str]:
    return [name for name in os.listdir(folder) if name.endswith(".tmp")]


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@POSIX
@PROC
@pytest.mark.parametrize(
    ("signum", "status", "word"),
    [(signal.SIGTERM, 143, "terminated"), (getattr(signal, "SIGHUP", 1), 129, "hung up")],
)
def test_a_signal_during_a_write_leaves_no_temporary_file(tmp_path, signum, status, word):
    out = tmp_path / "out"
    out.mkdir()
    (out / "o.npy").write_bytes(b"previous result")
    child = subprocess.Popen(
        [sys.executable, "-c", WRITE_HELD_OPEN, "apply", UFLDL, "-k", "box3", "-o", "out/o.npy"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: bool(temporary_files(out)))
        child.send_signal(signum)
        _, err = child.communicate(timeout=10)
    finally:
        child.kill()
    assert child.returncode == status, err
    assert err.decode().strip() == f"Error: {word} ({signal.Signals(signum).name})"
    assert os.listdir(out) == ["o.npy"]
    assert (out / "o.npy").read_bytes() == b"previous result"


@POSIX
@PROC
def test_sigterm_stops_a_batch_and_its_workers(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(4):
        (folder / f"m{i}.txt").write_text(f"{i} 0\n0 {i}\n")
    out = tmp_path / "out"
    args = ["apply", "in", "-k", "identity", "-p", "1", "-o", "out/", "-j", "2"]
    child = subprocess.Popen(
        [sys.executable, "-c", WRITE_HELD_OPEN, *args],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: out.is_dir() and len(temporary_files(out)) == 2)  # both workers write
        workers = children_of(child.pid)
        assert len(workers) >= 2
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=10)
    finally:
        child.kill()
    assert child.returncode == 143, err
    assert temporary_files(out) == []
    assert not [pid for pid in workers if running(pid)]


# ------------------------------------------------------------ stdout


FULL = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")


@FULL
@pytest.mark.parametrize(
    "args",
    [
        ["shape", "7", "-k", "3"],
        ["kernels"],
        ["apply", UFLDL, "-k", "box3", "--json"],
        ["apply", UFLDL, "-k", "box3", "-o", "-"],
    ],
)
def test_a_full_stdout_is_a_runtime_failure(args):
    with open("/dev/full", "wb") as full:
        proc = convcalc(*args, stdout=full)
    one_line_error(proc, 1)
    assert proc.stderr.decode() == "Error: cannot write to stdout: No space left on device\n"


@pytest.mark.parametrize(
    ("args", "stdout", "stderr"),
    [
        (["shape", "7", "-k", "3"], "7 -> 5", ""),  # click.echo; cp1252 has no →
        (["kernels"], "[1,2,1]^T[1,2,1]", ""),  # a rich table; nor ᵀ
        (["apply", UFLDL, "-k", "gauss:sigma=400"], "", "2·ceil(3sigma)+1"),  # nor σ
    ],
)
def test_a_cp1252_stdout_gets_ascii_for_what_it_cannot_encode(args, stdout, stderr):
    proc = convcalc(*args, env={**os.environ, "PYTHONIOENCODING": "cp1252"})
    err = proc.stderr.decode("cp1252")
    assert "Traceback" not in err and "internal error" not in err
    assert proc.returncode == (2 if stderr else 0), err
    assert stdout in proc.stdout.decode("cp1252")
    assert stderr in err


# ------------------------------------------------------------ generated kernels


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("gauss:sigma=1e-300,size=5", "sigma='1e-300'"),
        ("gauss:sigma=0.001,size=5", "sigma='0.001'"),
        ("gauss:sigma=1e200", "sigma='1e200'"),
        ("gauss:sigma=1e200,size=5", "sigma='1e200'"),
        ("gauss:1e308", "sigma='1e308'"),
    ],
)
def test_gauss_sigmas_out_of_range_are_bad_values(spec, fragment):
    result = run("apply", UFLDL, "-k", spec)
    assert result.exit_code == 2, result.output
    assert fragment in result.stderr and "from 0.01 to 10000" in result.stderr


@pytest.mark.parametrize(
    "spec",
    [
        "gauss:sigma=0.01,size=1001",
        "gauss:sigma=10000,size=1001",
        "gauss:sigma=166",
        "box:1001",
        "motion:size=1001,angle=1e300",
        "motion:size=1,angle=-1e300",
    ],
)
def test_generated_kernels_at_the_limits_are_finite(spec):
    kernel = named_kernel(spec)
    assert kernel is not None
    assert np.isfinite(kernel).all()
    assert np.isclose(kernel.sum(), 1.0)


def test_a_generated_kernel_that_is_not_finite_is_refused(monkeypatch):
    box = kernels._GENERATORS["box"]
    broken = dataclasses.replace(box, build=lambda values: np.full((3, 3), np.nan))
    monkeypatch.setitem(kernels._GENERATORS, "box", broken)
    with pytest.raises(ConvcalcError, match="not finite"):
        named_kernel("box:3")


# ------------------------------------------------------------ the pixel limit (io side)


def png_file(path: Path, side: int) -> str:
    Image.new("L", (side, side), 7).save(path)
    return str(path)


def test_max_pixels_allows_an_image_over_pillows_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    path = png_file(tmp_path / "big.png", 64)
    with pytest.raises(ConvcalcError, match="4,096 pixels") as info:
        read_input(path)
    assert "--max-pixels 4096" in (info.value.hint or "")
    assert read_input(path, max_pixels=4096).data.shape == (64, 64, 1)
    assert Image.MAX_IMAGE_PIXELS == 100  # the limit is set for one decode only


def test_max_pixels_can_also_be_stricter(tmp_path):
    path = png_file(tmp_path / "small.png", 20)
    with pytest.raises(ConvcalcError, match="limit of 399 pixels"):
        read_input(path, max_pixels=399)
    assert read_input(path, max_pixels=400).data.shape == (20, 20, 1)
    with pytest.raises(ConvcalcError, match="max pixels 0"):
        read_input(path, max_pixels=0)
