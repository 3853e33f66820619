"""Many inputs at once on an existing Dask cluster (``pip install 'convcalc[dask]'``).

The files stay with this process, the client: it reads each job's bytes and ships
them to a worker with the job; the worker computes and returns a result (for
`convcalc apply`, the encoded output files), which the client hands to ``finish``
(it writes them). So the workers need no file system shared with the client, only
the same convcalc installed; :func:`connect` checks their version before any work,
and each task again (a worker may join later).

A job that fails (an exception in ``load``, on the worker, or in ``finish``) is
handed to ``failed`` and the others go on. dask is imported here only, and only
when a cluster is asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from convcalc.errors import ConvcalcError, RuntimeFailure

if TYPE_CHECKING:
    from distributed import Client, Future

Job = TypeVar("Job")
Result = TypeVar("Result")

CONNECT_SECONDS = 5.0
"""How long the scheduler (and, when it has none yet, a first worker) gets to answer."""

MISSING_DASK = "running on a Dask cluster needs dask.distributed: pip install 'convcalc[dask]'"

SCHEMES = ("tcp", "tls", "ws", "wss")
"""The address schemes distributed connects with on its own (no extra package)."""

START_HINT = (
    "Start one with `dask scheduler` (it listens on port 8786) and its workers with "
    "`dask worker tcp://HOST:8786`."
)

_ADDRESS = re.compile(
    r"(?:(?P<scheme>[a-z]+)://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[\w.-]+):(?P<port>\d{1,5})"
)


def scheduler_address(text: str) -> str:
    """The scheduler address ``text`` names: ``SCHEME://HOST:PORT``, with a scheme of
    :data:`SCHEMES`, or ``HOST:PORT`` (distributed's default scheme, tcp).

    Raises ConvcalcError naming the valid forms for anything else.
    """
    found = _ADDRESS.fullmatch(text)
    if (
        found is None
        or (found["scheme"] or "tcp") not in SCHEMES
        or not 0 < int(found["port"]) < 2**16
    ):
        others = ", ".join(f"{scheme}://" for scheme in SCHEMES[1:])
        raise ConvcalcError(
            f"'{text}' is not a Dask scheduler's address; valid: tcp://HOST:PORT such as "
            f"tcp://10.0.0.5:8786 (or {others})"
        )
    return text


class Session:
    """A connection to a Dask cluster, from :func:`connect`."""

    def __init__(self, client: Client, address: str, version: str) -> None:
        self._client = client
        self._address = address
        self._version = version

    def run_jobs(
        self,
        work: Callable[[bytes, Job], Result],
        jobs: Sequence[Job],
        *,
        load: Callable[[Job], bytes],
        finish: Callable[[Job, Result], None],
        failed: Callable[[Job, Exception], None],
        advance: Callable[[], None],
    ) -> None:
        """Run ``work(load(job), job)`` on the workers for every job; ``finish(job,
        result)`` here as each result arrives, or ``failed(job, error)``; then ``advance()``.

        ``work`` and the jobs must pickle (``work`` is found by name on the workers).
        A ConvcalcError raised by ``work`` reaches ``failed`` as one (a RuntimeFailure
        or a ConvcalcError, with its message and hint); a worker that died running a
        job as a RuntimeFailure. Jobs are loaded as they are submitted, at most two per
        worker thread ahead, so the client holds a few inputs at a time.
        """
        from distributed import as_completed

        client = self._client
        waiting = iter(jobs)
        running: dict[Future[Result], tuple[Job, Future[bytes]]] = {}
        finished = as_completed(loop=client.loop)
        done = 0

        def step() -> None:
            nonlocal done
            done += 1
            advance()

        def submit_next() -> None:
            for job in waiting:
                try:
                    payload = load(job)
                except Exception as exc:  # the file could not be read: the others go on
                    failed(job, exc)
                    step()
                    continue
                with self._lost_on_error():
                    data = client.scatter(payload, hash=False)
                    task = client.submit(_run_task, work, self._version, data, job, pure=False)
                running[task] = (job, data)
                finished.add(task)
                return

        for _ in range(max(2, 2 * sum(client.nthreads().values()))):
            submit_next()
        for task in finished:
            job, data = running.pop(task)
            try:
                finish(job, _outcome(task))
            except _Lost as lost:
                raise _Lost(f"{lost} at {self._address} ({done} of {len(jobs)} done)") from None
            except Exception as exc:
                failed(job, exc)
            finally:
                task.release()
                data.release()
            step()
            submit_next()

    @contextlib.contextmanager
    def _lost_on_error(self) -> Iterator[None]:
        """Any error of the cluster's (the scheduler gone, say) as :class:`_Lost`."""
        try:
            yield
        except Exception as exc:
            raise _Lost(
                f"the Dask cluster at {self._address} stopped taking work ({_one_line(exc)})"
            ) from None


@contextlib.contextmanager
def connect(address: str, *, seconds: float | None = None) -> Iterator[Session]:
    """A session on the Dask cluster whose scheduler is at ``address``, closed after.

    The scheduler must answer within ``seconds`` (default :data:`CONNECT_SECONDS`),
    have at least one worker (or get one within ``seconds``), and its workers must run
    this convcalc version.

    Raises
    ------
    RuntimeFailure
        dask.distributed is not installed (:data:`MISSING_DASK`); nothing answers at
        ``address``, or not as a Dask scheduler; the cluster has no workers; a
        worker cannot import convcalc or has another version.
    """
    try:
        import distributed
    except ImportError:
        raise RuntimeFailure(MISSING_DASK) from None
    from convcalc import __version__

    seconds = CONNECT_SECONDS if seconds is None else seconds
    workers = _probe(address, seconds)
    try:
        client = distributed.Client(address, timeout=seconds, set_as_default=False)
    except Exception as exc:
        raise RuntimeFailure(
            f"cannot connect to the Dask scheduler at {address} ({_one_line(exc)})"
        ) from None
    with client:
        if not workers:
            try:
                client.wait_for_workers(1, timeout=seconds)
            except Exception:
                raise RuntimeFailure(
                    f"the Dask scheduler at {address} has no workers (waited {seconds:g} s)",
                    f"Start them with `dask worker {address}`.",
                ) from None
        _check_versions(client, address, __version__)
        yield Session(client, address, __version__)


def installed_version() -> str:
    """The convcalc version of the process this runs in (on a worker, by the client)."""
    from convcalc import __version__

    return __version__


# ----------------------------------------------------------------- helpers


class _Refused(NamedTuple):
    """A ConvcalcError raised on a worker, sent back as a value (its hint kept)."""

    message: str
    hint: str | None
    exit_code: int


class _Lost(RuntimeFailure):
    """The cluster stopped taking or returning work: no job can run any more."""


def _run_task(work: Callable[[bytes, Job], Result], version: str, data: bytes, job: Job) -> Any:
    """``work(data, job)`` on a worker, once its convcalc is known to be the client's;
    a ConvcalcError comes back as a :class:`_Refused` value."""
    try:
        mine = installed_version()
        if mine != version:
            raise RuntimeFailure(
                f"this worker runs convcalc {mine} and the client {version}; install "
                f"convcalc {version} on every worker"
            )
        return work(data, job)
    except ConvcalcError as exc:
        return _Refused(str(exc), exc.hint, exc.exit_code)


def _outcome(task: Future[Any]) -> Any:
    """A finished task's result; its failure raised as the exception ``failed`` gets."""
    from distributed import CancelledError, KilledWorker

    try:
        result = task.result()
    except CancelledError:  # never by this client: the scheduler is gone
        raise _Lost("lost the connection to the Dask scheduler") from None
    except KilledWorker as exc:
        raise RuntimeFailure(
            f"every worker that ran it died ({exc.allowed_failures + 1} tried; out of memory?)"
        ) from None
    if isinstance(result, _Refused):
        kind = RuntimeFailure if result.exit_code == RuntimeFailure.exit_code else ConvcalcError
        raise kind(result.message, result.hint)
    return result


def _probe(address: str, seconds: float) -> int:
    """The number of workers of the Dask scheduler at ``address``, asked within
    ``seconds``; RuntimeFailure when nothing, or not a scheduler, answers.

    distributed's own client bounds the connection but not the handshake after it: a
    server that accepts and stays silent (a dashboard's HTTP port) would hold it for
    ever. So the scheduler is asked who it is first, with a bound on the whole.
    """
    from distributed import Security, rpc

    _refuse_closed_port(address, seconds)

    async def identity() -> dict[str, Any]:
        args = Security().get_connection_args("client")
        async with rpc(address, timeout=seconds, connection_args=args) as scheduler:
            info: dict[str, Any] = await scheduler.identity()
            return info

    try:
        info = asyncio.run(asyncio.wait_for(identity(), seconds))
    except (OSError, TimeoutError, asyncio.TimeoutError):  # refused, no such host, silent
        raise RuntimeFailure(
            f"cannot reach a Dask scheduler at {address}: no answer within {seconds:g} s",
            START_HINT,
        ) from None
    except MemoryError:  # a frame length read from bytes that are not Dask's protocol
        raise RuntimeFailure(
            f"cannot reach a Dask scheduler at {address}: what answers there does not speak "
            "Dask's protocol (is it the dashboard's port?)",
            START_HINT,
        ) from None
    except Exception as exc:  # a TLS address without certificates configured, say
        raise RuntimeFailure(
            f"cannot reach a Dask scheduler at {address}: {_one_line(exc)}"
        ) from None
    if info.get("type") != "Scheduler":
        what = str(info.get("type", "server")).lower()
        raise RuntimeFailure(
            f"{address} is a Dask {what}, not the scheduler; give the scheduler's address"
        )
    return len(info.get("workers", {}))


def _refuse_closed_port(address: str, seconds: float) -> None:
    """RuntimeFailure at once when nothing listens at ``address``'s port or its host is
    unknown (distributed's connect would retry a refused port until its timeout)."""
    found = _ADDRESS.fullmatch(address)
    assert found is not None  # checked by scheduler_address
    host, port = found["host"].strip("[]"), int(found["port"])
    try:
        socket.create_connection((host, port), timeout=seconds).close()
    except ConnectionRefusedError:
        raise RuntimeFailure(
            f"cannot reach a Dask scheduler at {address}: nothing listens on port {port} "
            f"of {host} (connection refused)",
            START_HINT,
        ) from None
    except socket.gaierror:
        raise RuntimeFailure(
            f"cannot reach a Dask scheduler at {address}: unknown host '{host}'", START_HINT
        ) from None
    except OSError:  # a timeout, an unreachable network: distributed says it below
        return


def _check_versions(client: Client, address: str, version: str) -> None:
    """Refuse workers that cannot import convcalc, or run another version of it."""
    try:
        found = client.run(installed_version)
    except Exception as exc:
        raise RuntimeFailure(
            f"the workers of {address} cannot run convcalc ({_one_line(exc)}); install "
            f"convcalc {version} on every worker: pip install 'convcalc[dask]=={version}'"
        ) from None
    other = {worker: v for worker, v in found.items() if v != version}
    if other:
        worker, theirs = next(iter(other.items()))
        raise RuntimeFailure(
            f"{len(other)} of {len(found)} workers of {address} run another convcalc (worker "
            f"{worker}: {theirs}; this client: {version}); install convcalc {version} on "
            "every worker"
        )


def _one_line(exc: BaseException) -> str:
    """An exception as one line: its message (or its type's name), newlines folded."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
