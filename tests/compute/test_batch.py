"""The batch pool: every job runs, failures are handed back, workers share the cores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from convcalc.compute import arrays
from convcalc.compute.batch import run_batch


def _record(job: tuple[Path, int]) -> None:
    """Write the threads this worker's operations would run on; fail on job 3."""
    folder, number = job
    if number == 3:
        raise ValueError(f"job {number} fails")
    (folder / f"{number}.txt").write_text(str(arrays.threads()))


@pytest.mark.parametrize("workers", [1, 2])
def test_every_job_runs_and_a_failure_is_handed_back(tmp_path: Path, workers: int) -> None:
    failed: list[tuple[int, str]] = []
    done: list[int] = []
    run_batch(
        _record,
        [(tmp_path, n) for n in range(6)],
        workers=workers,
        advance=lambda: done.append(1),
        failed=lambda job, error: failed.append((job[1], str(error))),
    )
    assert failed == [(3, "job 3 fails")] and len(done) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{n}.txt" for n in (0, 1, 2, 4, 5)]
    threads = {int(p.read_text()) for p in tmp_path.iterdir()}
    cores = os.cpu_count() or 1
    assert threads == ({arrays.threads()} if workers == 1 else {max(1, cores // workers)})


def test_without_a_failed_callback_the_first_failure_stops_the_batch(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="job 3 fails"):
        run_batch(_record, [(tmp_path, n) for n in range(6)], workers=1, advance=lambda: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.txt", "1.txt", "2.txt"]


def test_set_threads_is_at_least_one() -> None:
    before = arrays.threads()
    try:
        arrays.set_threads(0)
        assert arrays.threads() == 1
    finally:
        arrays.set_threads(before)
