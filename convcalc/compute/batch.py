"""Many inputs at once: one job per input, on a pool of worker processes."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

Job = TypeVar("Job")


def worker_count(requested: int | None, jobs: int) -> int:
    """Workers for ``jobs`` jobs: as requested (default the core count), at most one a job."""
    return max(1, min(requested or os.cpu_count() or 1, jobs))


def run_batch(
    work: Callable[[Job], None], jobs: Sequence[Job], *, workers: int, advance: Callable[[], None]
) -> None:
    """Run ``work(job)`` for every job, calling ``advance`` after each one finishes.

    With one worker the jobs run here, in order; otherwise in ``workers`` processes
    (``work`` and the jobs must pickle). The first failure stops the batch: jobs not
    started are cancelled, running ones finish, and the exception is raised here.
    Workers ignore Ctrl-C, which the parent alone handles and reports once.
    """
    if workers == 1:
        for job in jobs:
            work(job)
            advance()
        return
    with ProcessPoolExecutor(workers, initializer=_ignore_interrupts) as pool:
        futures = [pool.submit(work, job) for job in jobs]
        try:
            for future in futures:
                future.result()
                advance()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
