"""Many inputs at once: one job per input, on a pool of worker processes."""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from types import FrameType
from typing import TypeVar

from convcalc.compute.arrays import set_threads

Job = TypeVar("Job")

STOP_SECONDS = 5.0
"""How long stopped workers get to clean up (remove their temporary files) before
they are killed."""


def worker_count(requested: int | None, jobs: int) -> int:
    """Workers for ``jobs`` jobs: as requested (default the core count), at most one a job."""
    return max(1, min(requested or os.cpu_count() or 1, jobs))


def run_batch(
    work: Callable[[Job], None],
    jobs: Sequence[Job],
    *,
    workers: int,
    advance: Callable[[], None],
    failed: Callable[[Job, Exception], None] | None = None,
) -> None:
    """Run ``work(job)`` for every job, calling ``advance`` after each one finishes.

    With one worker the jobs run here, in order; otherwise in ``workers`` processes
    (``work`` and the jobs must pickle). A job that fails (an exception) is handed to
    ``failed`` with its exception, and the others go on; without ``failed`` the first
    failure stops the batch: jobs not started are cancelled, running ones finish, and
    the exception is raised here. An interruption (KeyboardInterrupt, or any other
    BaseException such as the CLI's SIGTERM/SIGHUP exception) stops the workers at
    once: each gets SIGTERM, unwinds (a write in progress removes its temporary file)
    and exits; one still running after :data:`STOP_SECONDS` is killed. No worker
    outlives the call.

    Workers ignore SIGINT (Ctrl-C reaches the whole process group; the parent alone
    handles it and reports it once) and turn SIGTERM and SIGHUP into an exit that
    unwinds their job first. Each runs its operations on the cores divided by the
    workers (`convcalc.compute.arrays.set_threads`): the processes already share them.
    """
    if workers == 1:
        for job in jobs:
            _finish(functools.partial(work, job), job, failed)
            advance()
        return
    before = {child.pid for child in multiprocessing.active_children()}
    share = max(1, (os.cpu_count() or 1) // workers)  # threads per worker process
    with ProcessPoolExecutor(workers, initializer=_start_worker, initargs=(share,)) as pool:
        try:
            futures = [pool.submit(_run_job, work, job) for job in jobs]
            for future, job in zip(futures, jobs, strict=True):
                _finish(future.result, job, failed)
                advance()
        except BaseException as failure:
            try:
                if not isinstance(failure, Exception):  # interrupted: stop at once
                    _stop(_children_since(before))
                pool.shutdown(wait=True, cancel_futures=True)  # else running jobs finish
            except BaseException:  # interrupted while they finish
                _stop(_children_since(before))
                raise
            raise


def _finish(
    result: Callable[[], object], job: Job, failed: Callable[[Job, Exception], None] | None
) -> None:
    """Wait for one job's result; hand its exception to ``failed`` when there is one."""
    if failed is None:
        result()
        return
    try:
        result()
    except Exception as error:  # an interruption (BaseException) still stops the batch
        failed(job, error)


class _WorkerStopped(SystemExit):
    """Raised in a worker by SIGTERM or SIGHUP; exits quietly with status 128 + signal."""


def _start_worker(threads: int) -> None:
    set_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for signum in _STOPPING:
        signal.signal(signum, _stop_worker)


def _stop_worker(signum: int, frame: FrameType | None) -> None:
    for other in _STOPPING:  # the cleanup that follows runs undisturbed
        signal.signal(other, signal.SIG_IGN)
    raise _WorkerStopped(128 + signum)


def _run_job(work: Callable[[Job], None], job: Job) -> None:
    try:
        work(job)
    except _WorkerStopped as stop:
        # The job has unwound (its temporary files are gone); leave now, rather than
        # let the pool hand this worker its next job.
        os._exit(stop.code if isinstance(stop.code, int) else 1)


def _children_since(before: set[int | None]) -> list[multiprocessing.process.BaseProcess]:
    """The pool's processes, found through public API: the children not there before it."""
    return [child for child in multiprocessing.active_children() if child.pid not in before]


def _stop(workers: Sequence[multiprocessing.process.BaseProcess]) -> None:
    """SIGTERM to every worker; wait for them to clean up and exit; kill the late ones."""
    for worker in workers:
        if worker.is_alive():
            worker.terminate()
    deadline = time.monotonic() + STOP_SECONDS
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            worker.kill()
            worker.join()


_STOPPING = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
