"""convcalc.compute.cluster without a cluster: addresses, what a task sends back, how a
finished task's failure reaches the client, and the scheduler's answer bounded in time.
(tests/cli/test_apply_cluster.py runs jobs on a LocalCluster.)"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import convcalc
from convcalc.compute import cluster
from convcalc.errors import ConvcalcError, RuntimeFailure

distributed = pytest.importorskip("distributed")


@pytest.mark.parametrize(
    "address",
    [
        "tcp://127.0.0.1:8786",
        "tls://scheduler.example.org:8786",
        "ws://10.0.0.5:1",
        "wss://host-1:65535",
        "tcp://[::1]:8786",
        "127.0.0.1:8786",  # distributed's default scheme: tcp
    ],
)
def test_scheduler_addresses_distributed_takes_pass(address: str) -> None:
    assert cluster.scheduler_address(address) == address


@pytest.mark.parametrize(
    "address",
    [
        "foo",
        "tcp://host",
        "tcp://:8786",
        "tcp://host:0",
        "tcp://host:65536",
        "http://host:8786",
        "ucx://host:8786",
        "tcp://host:8786/path",
        "tcp://a b:8786",
        "tcp://host:" + "1" * 5000,
        "",
    ],
)
def test_other_addresses_are_refused_with_the_valid_form(address: str) -> None:
    with pytest.raises(ConvcalcError) as caught:
        cluster.scheduler_address(address)
    assert caught.value.exit_code == 2
    assert str(caught.value).startswith(f"'{address}' is not a Dask scheduler's address; valid:")
    assert "tcp://HOST:PORT" in str(caught.value)


# -- a task on a worker, and its outcome on the client ------------------------------------


def _double(data: bytes, job: int) -> bytes:
    return data * job


def _refuse(data: bytes, job: str) -> bytes:
    raise ConvcalcError(f"{job}: not an image", "Try another file.")


def _fail(data: bytes, job: str) -> bytes:
    raise RuntimeFailure(f"{job}: cannot read")


def test_a_task_returns_what_its_work_returns() -> None:
    assert cluster._run_task(_double, convcalc.__version__, b"ab", 3) == b"ababab"


def test_a_refusal_comes_back_as_a_value_and_is_raised_again_with_its_hint() -> None:
    sent = cluster._run_task(_refuse, convcalc.__version__, b"", "a.png")
    assert sent == cluster._Refused("a.png: not an image", "Try another file.", 2)
    with pytest.raises(ConvcalcError) as caught:
        cluster._outcome(_Done(sent))
    assert (str(caught.value), caught.value.hint, caught.value.exit_code) == (
        "a.png: not an image",
        "Try another file.",
        2,
    )
    with pytest.raises(RuntimeFailure, match=r"a\.png: cannot read"):
        cluster._outcome(_Done(cluster._run_task(_fail, convcalc.__version__, b"", "a.png")))


def test_a_worker_of_another_version_refuses_the_task() -> None:
    sent = cluster._run_task(_double, "0.0.1", b"ab", 3)
    assert isinstance(sent, cluster._Refused) and sent.exit_code == 1
    assert f"this worker runs convcalc {convcalc.__version__} and the client 0.0.1" in sent.message


def test_a_task_whose_workers_died_is_a_runtime_failure() -> None:
    with pytest.raises(RuntimeFailure, match=r"every worker that ran it died \(4 tried"):
        cluster._outcome(_Done(distributed.KilledWorker("key", None, 3)))


def test_a_cancelled_task_means_the_cluster_is_lost() -> None:
    with pytest.raises(cluster._Lost, match="lost the connection"):
        cluster._outcome(_Done(distributed.CancelledError("key")))


class _Done:
    """A finished task as the client sees it: its result, or the exception it raises."""

    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome

    def result(self) -> Any:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


# -- connecting ---------------------------------------------------------------------------


@pytest.fixture
def babbler() -> Iterator[str]:
    """The address of a server that answers every connection with an HTTP error, as a
    web server on the scheduler's port would."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def answer() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")

    thread = threading.Thread(target=answer)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        server.close()


def test_a_server_that_is_no_scheduler_is_named_so(babbler: str) -> None:
    start = time.monotonic()
    with pytest.raises(RuntimeFailure) as caught, cluster.connect(babbler, seconds=2):
        pass
    assert time.monotonic() - start < 10  # a bound on a hang
    assert str(caught.value).startswith(f"cannot reach a Dask scheduler at {babbler}: ")
    assert caught.value.hint == cluster.START_HINT


def test_without_distributed_the_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed raises ImportError
    with pytest.raises(RuntimeFailure) as caught, cluster.connect("tcp://127.0.0.1:8786"):
        pass
    assert str(caught.value) == cluster.MISSING_DASK
