"""`convcalc apply DIR -o OUT/ --scheduler ADDRESS` on a Dask LocalCluster (2 worker
processes): the outputs are byte for byte the local run's, a failing file is named and
the others are written, nothing temporary is left behind; an unreachable scheduler, a
malformed address and a missing extra are one-line errors.

The cluster starts once for the module; its workers put their temporary files in a
folder of their own, so that the tests can see them gone.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import convcalc
from convcalc.cli import apply_cluster
from convcalc.cli.apply_many import failure_lines
from convcalc.compute import cluster as dask_cluster
from convcalc.errors import ConvcalcError, RuntimeFailure
from tests.conftest import SAMPLES, run

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def worker_temp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workers' temporary folder (their TMPDIR)."""
    return tmp_path_factory.mktemp("worker_tmp")


@pytest.fixture(scope="module")
def local_cluster(worker_temp: Path) -> Iterator[Any]:
    """A LocalCluster of 2 worker processes, closed after the module."""
    with distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        dashboard_address=":0",  # a free port: 8787 may be taken
        env={"TMPDIR": str(worker_temp)},
    ) as started:
        yield started


@pytest.fixture(scope="module")
def scheduler(local_cluster: Any) -> str:
    """The address of the LocalCluster's scheduler."""
    return str(local_cluster.scheduler_address)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of small PNGs (gray, RGB, RGBA), .npy arrays and a text matrix."""
    folder = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(16)
    for name, shape in (("gray.png", (17, 23)), ("rgb.png", (20, 16, 3)), ("rgba.png", (9, 12, 4))):
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / name)
    np.save(folder / "f32.npy", rng.normal(size=(15, 11)).astype(np.float32))
    np.save(folder / "i16.npy", rng.integers(-900, 900, (8, 9, 2)).astype(np.int16))
    (folder / "ufldl.txt").write_bytes((SAMPLES / "ufldl_5x5.txt").read_bytes())
    return folder


def contents(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def wrote(stderr: str, folder: Path) -> list[str]:
    """The "wrote ..." notes, with the output folder taken out of them."""
    lines = [line for line in stderr.splitlines() if line.startswith(("wrote", "scaled"))]
    return sorted(line.replace(str(folder), "OUT") for line in lines)


@pytest.mark.parametrize(
    "layers", [["-k", "sobel-x"], ["-k", "sobel-x", "-k", "box3", "-p", "1", "--compress", "6"]]
)
def test_outputs_are_the_local_runs_byte_for_byte(
    scheduler: str, inputs: Path, tmp_path: Path, layers: list[str]
) -> None:
    here, there = tmp_path / "here", tmp_path / "there"
    local = run("apply", str(inputs), *layers, "-o", f"{here}/", "-j", "1")
    remote = run("apply", str(inputs), *layers, "-o", f"{there}/", "--scheduler", scheduler)
    assert local.exit_code == 0, local.output
    assert remote.exit_code == 0, remote.output
    made = contents(there)
    assert made == contents(here)
    # two filters: an image's channels are one PNG each (gray_0.png …), a .npy keeps them
    assert len(made) == (6 if len(layers) == 2 else 17)
    assert wrote(remote.stderr, there) == wrote(local.stderr, here)


def test_a_corrupt_file_is_named_and_the_others_are_written(
    scheduler: str, inputs: Path, worker_temp: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for path in inputs.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "broken.png").write_bytes((inputs / "rgb.png").read_bytes()[:120])
    (folder / "words.txt").write_text("1 2\n3 x\n")
    out = tmp_path / "out"
    result = run("apply", str(folder), "-k", "box3", "-o", f"{out}/", "--scheduler", scheduler)
    assert result.exit_code == 1, result.output
    failed = sorted(line for line in result.stderr.splitlines() if " failed: " in line)
    assert failed[0] == (
        f"{folder / 'broken.png'} failed: truncated or corrupt image (image file is truncated)"
    )
    assert failed[1].startswith(f"{folder / 'words.txt'} failed: ")
    assert len(failed) == 2 and "convcalc-" not in result.stderr  # no temporary name
    assert result.stderr.splitlines()[-1] == (
        "Error: 2 of 8 inputs failed (named above); the other 6 outputs were written"
    )
    assert sorted(os.listdir(out)) == sorted(p.name for p in inputs.iterdir())
    assert list(worker_temp.iterdir()) == []  # the workers' temporary folders are gone


def test_an_input_that_cannot_be_read_here_is_named_and_the_others_go_on(
    scheduler: str, inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read = apply_cluster.input_bytes

    def vanishing(job: apply_cluster.Job) -> bytes:  # gone since the batch was checked
        if job[0].endswith("rgb.png"):
            raise RuntimeFailure(f"{job[0]}: No such file or directory")
        return read(job)

    monkeypatch.setattr(apply_cluster, "input_bytes", vanishing)
    out = tmp_path / "out"
    result = run("apply", str(inputs), "-k", "box3", "-o", f"{out}/", "--scheduler", scheduler)
    assert result.exit_code == 1, result.output
    assert f"{inputs / 'rgb.png'} failed: No such file or directory" in result.stderr
    assert len(os.listdir(out)) == len(os.listdir(inputs)) - 1


def test_an_input_is_never_overwritten(scheduler: str, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text("1 2\n3 4\n")
    (folder / "b.txt").write_text("5 6\n7 8\n")
    args = ["apply", str(folder), "-k", "2.0", "-o", f"{folder}/"]
    refused = run(*args, "--scheduler", scheduler)
    assert refused.exit_code == 2, refused.output
    assert "--force" in refused.stderr
    assert (folder / "a.txt").read_text() == "1 2\n3 4\n"
    forced = run(*args, "--scheduler", scheduler, "--force")
    assert forced.exit_code == 0, forced.output
    assert np.loadtxt(folder / "a.txt").tolist() == [[2, 4], [6, 8]]
    assert sorted(os.listdir(folder)) == ["a.txt", "b.txt"]  # no temporary file left


def test_workers_of_another_version_are_refused(
    scheduler: str, inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(convcalc, "__version__", "0.0.1")  # this client's; not the workers'
    out = tmp_path / "out"
    result = run("apply", str(inputs), "-k", "box3", "-o", f"{out}/", "--scheduler", scheduler)
    assert result.exit_code == 1, result.output
    assert "2 of 2 workers" in result.stderr and "this client: 0.0.1" in result.stderr
    assert not out.exists()


def test_an_unreachable_scheduler_fails_within_seconds(
    inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(dask_cluster, "CONNECT_SECONDS", 1.0)
    out = tmp_path / "out"
    start = time.monotonic()
    result = run(
        "apply",
        str(inputs),
        "-k",
        "box3",
        "-o",
        f"{out}/",
        "--scheduler",
        f"tcp://127.0.0.1:{port}",
    )
    assert time.monotonic() - start < 10  # a bound on a hang, not a speed claim
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[0] == (
        f"Error: cannot reach a Dask scheduler at tcp://127.0.0.1:{port}: nothing listens on "
        f"port {port} of 127.0.0.1 (connection refused)"
    )
    assert not out.exists()
    unknown = run(
        "apply",
        str(inputs),
        "-k",
        "box3",
        "-o",
        f"{out}/",
        "--scheduler",
        "no-such-host.invalid:8786",
    )
    assert unknown.exit_code == 1 and "unknown host 'no-such-host.invalid'" in unknown.stderr


def test_a_workers_address_is_not_the_schedulers(
    local_cluster: Any, inputs: Path, tmp_path: Path
) -> None:
    worker = next(iter(local_cluster.scheduler_info["workers"]))
    result = run("apply", str(inputs), "-k", "box3", "-o", f"{tmp_path}/o/", "--scheduler", worker)
    assert result.exit_code == 1, result.output
    assert f"{worker} is a Dask worker, not the scheduler" in result.stderr


def test_a_silent_server_is_not_waited_for(
    inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dask_cluster, "CONNECT_SECONDS", 1.0)
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        start = time.monotonic()
        result = run(
            "apply", str(inputs), "-k", "box3", "-o", f"{tmp_path}/o/", "--scheduler", address
        )
    assert time.monotonic() - start < 10
    assert result.exit_code == 1, result.output
    assert "no answer within 1 s" in result.stderr


@pytest.mark.parametrize(
    "address", ["foo", "tcp://host", "http://host:8786", "tcp://host:0", "host:99999"]
)
def test_a_malformed_address_names_the_valid_form(
    inputs: Path, tmp_path: Path, address: str
) -> None:
    result = run(
        "apply", str(inputs), "-k", "box3", "-o", f"{tmp_path}/out/", "--scheduler", address
    )
    assert result.exit_code == 2, result.output
    assert f"--scheduler '{address}'" in result.stderr and "tcp://HOST:PORT" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["-o", "OUT/", "-j", "2"], "-j 2 sets the local worker processes"),
        (["-o", "OUT/", "--json"], "--json work on one input at a time"),
    ],
)
def test_what_a_cluster_run_does_not_take(
    inputs: Path, tmp_path: Path, args: list[str], fragment: str
) -> None:
    args = [a.replace("OUT", str(tmp_path / "out")) for a in args]
    result = run("apply", str(inputs), "-k", "box3", *args, "--scheduler", "tcp://127.0.0.1:8786")
    assert result.exit_code == 2, result.output
    assert fragment in result.stderr


@pytest.mark.parametrize("output", [[], ["-o", "one.png"]])
def test_one_input_into_one_file_runs_here(tmp_path: Path, output: list[str]) -> None:
    result = run(
        "apply",
        str(SAMPLES / "photo.png"),
        "-k",
        "box3",
        *output,
        "--scheduler",
        "tcp://127.0.0.1:8786",
    )
    assert result.exit_code == 2, result.output
    assert "drop --scheduler, or give -o DIR/" in result.stderr


def test_without_dask_the_extra_is_named(
    inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed raises ImportError
    result = run(
        "apply",
        str(inputs),
        "-k",
        "box3",
        "-o",
        f"{tmp_path}/out/",
        "--scheduler",
        "tcp://127.0.0.1:8786",
    )
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == f"Error: {dask_cluster.MISSING_DASK}"
    assert "pip install 'convcalc[dask]'" in result.stderr


def test_a_local_batch_never_imports_dask(inputs: Path, tmp_path: Path) -> None:
    argv = ["apply", str(inputs), "-k", "box3", "-o", f"{tmp_path}/", "-j", "1"]
    code = (
        "import sys\n"
        "from convcalc.cli.main import cli\n"
        "try:\n"
        f"    cli({argv!r})\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        "print([m for m in ('dask', 'distributed') if m in sys.modules])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.stdout.strip() == "[]", proc.stderr


def test_a_failure_is_one_line_naming_the_file_then_its_hint() -> None:
    error = ConvcalcError("in/a.png: 1,000 pixels is over the limit", "Allow it with -m.")
    assert failure_lines("in/a.png", error) == [
        "in/a.png failed: 1,000 pixels is over the limit",
        "Allow it with -m.",
    ]
    assert failure_lines("b.txt", MemoryError()) == [
        "b.txt failed: not enough memory for this input; try a smaller input or --gray"
    ]
