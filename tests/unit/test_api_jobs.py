"""The API's job runner without the API: states, progress, cancel, persistence, files."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from api.jobs import JobContext, JobRunner, jsonable
from fraudstream.errors import DataError, JobStateError, NotFoundError, ServiceError
from fraudstream.progress import Tracker


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[JobRunner]:
    r = JobRunner(tmp_path / "jobs", workers=1, progress_write_s=0.0)
    yield r
    r.shutdown(5)


def staged(stages: int = 5, pause: float = 0.0, gate: threading.Event | None = None):  # type: ignore[no-untyped-def]
    """A job function in the library's style: a Tracker, a step per stage."""

    def run(ctx: JobContext) -> dict:
        tracker = Tracker(ctx.progress, ctx.cancelled, what="test job")
        for i in range(stages):
            if gate is not None:
                gate.wait(5)
            tracker.step(i / stages, f"stage {i}")
            time.sleep(pause)
        (ctx.folder / "out.txt").write_text("written")
        tracker.done()
        return {"stages": stages, "value": np.float64(0.25)}

    return run


def test_a_job_runs_reports_progress_and_persists(runner: JobRunner) -> None:
    seen: list[tuple[float, str]] = []
    original = runner._progress

    def spy(job_id: str, fraction: float, message: str) -> None:
        seen.append((fraction, message))
        original(job_id, fraction, message)

    runner._progress = spy  # type: ignore[method-assign]
    job = runner.submit("demo", {"n": 1, "arr": np.arange(2)}, staged())
    assert job.status in ("queued", "running") and job.params == {"n": 1, "arr": [0, 1]}
    done = runner.wait(job.id, 10)
    assert done.status == "succeeded" and done.result == {"stages": 5, "value": 0.25}
    assert done.progress == 1.0 and done.message == "done" and done.seconds is not None
    assert [m for _, m in seen] == [f"stage {i}" for i in range(5)] + ["done"]
    record = json.loads((runner.root / job.id / "job.json").read_text())
    assert record["status"] == "succeeded" and record["result"]["value"] == 0.25
    assert [f.name for f in runner.files(job.id)] == ["out.txt"]
    assert runner.file(job.id, "out.txt").read_text() == "written"


def test_failures_keep_the_reason(runner: JobRunner) -> None:
    def bad_data(ctx: JobContext) -> None:
        raise DataError("column 'x' is not numeric")

    def bug(ctx: JobContext) -> None:
        raise ZeroDivisionError("division by zero")

    a = runner.wait(runner.submit("demo", {}, bad_data).id, 10)
    assert (a.status, a.error, a.error_type) == ("failed", "column 'x' is not numeric", "DataError")
    b = runner.wait(runner.submit("demo", {}, bug).id, 10)
    assert (b.status, b.error, b.error_type) == ("failed", "division by zero", "ZeroDivisionError")
    ok = runner.wait(runner.submit("demo", {}, staged()).id, 10)
    assert ok.status == "succeeded"  # the worker thread survived both


def test_cancel_running_and_queued(runner: JobRunner) -> None:
    gate = threading.Event()
    running = runner.submit("demo", {}, staged(stages=50, gate=gate))
    queued = runner.submit("demo", {}, staged())
    deadline = time.monotonic() + 5
    while runner.get(running.id).status != "running":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert runner.cancel(queued.id).status == "cancelled"
    rec = runner.cancel(running.id)
    assert rec.status == "running" and rec.cancel_requested and rec.message.startswith("cancelling")
    gate.set()
    done = runner.wait(running.id, 10)
    assert done.status == "cancelled" and done.error_type == "Cancelled"
    assert done.progress < 1.0 and runner.files(running.id) == []
    with pytest.raises(JobStateError, match="is cancelled: cannot cancel it"):
        runner.cancel(running.id)
    assert runner.get(queued.id).started_at is None


def test_list_wait_delete_and_unknown_ids(runner: JobRunner) -> None:
    gate = threading.Event()
    a = runner.submit("alpha", {}, staged(gate=gate))
    b = runner.submit("beta", {}, staged())
    assert runner.wait(a.id, 0.05).status in ("queued", "running")  # timed out: not finished
    assert [j.id for j in runner.list()] == [b.id, a.id]
    assert [j.id for j in runner.list(kind="alpha")] == [a.id]
    with pytest.raises(JobStateError, match="cancel it first"):
        runner.delete(a.id)
    gate.set()
    runner.wait(b.id, 10)
    assert [j.id for j in runner.list(status="succeeded")] == [a.id, b.id][::-1]
    runner.delete(a.id)
    assert not (runner.root / a.id).exists()
    for bad in (a.id, "nope", "../etc", "demo-20240101-000000-zzzzzz"):
        with pytest.raises(NotFoundError):
            runner.get(bad)
    with pytest.raises(ValueError, match="bad job kind"):
        runner.submit("Bad Kind", {}, staged())


def test_files_stay_inside_the_job_folder(runner: JobRunner, tmp_path: Path) -> None:
    job = runner.wait(runner.submit("demo", {}, staged()).id, 10)
    (tmp_path / "secret.txt").write_text("no")
    for name in ("../job.json", "../../secret.txt", "/etc/passwd", "missing.txt", ".", ""):
        with pytest.raises(NotFoundError, match="it has: out.txt"):
            runner.file(job.id, name)


def test_records_survive_and_interrupted_jobs_fail(tmp_path: Path) -> None:
    root = tmp_path / "jobs"
    first = JobRunner(root)
    done = first.wait(first.submit("demo", {"x": 1}, staged()).id, 10)
    gate = threading.Event()
    stuck = first.submit("demo", {}, staged(gate=gate))
    while first.get(stuck.id).status != "running":
        time.sleep(0.01)
    first.shutdown(0.2)  # the job is still blocked: it stays 'running' on disk, like a crash
    assert json.loads((root / stuck.id / "job.json").read_text())["status"] == "running"
    (root / "junk-20240101-000000-aaaaaa").mkdir()
    (root / "junk-20240101-000000-aaaaaa" / "job.json").write_text("{not json")
    with pytest.raises(ServiceError, match="shutting down"):
        first.submit("demo", {}, staged())

    second = JobRunner(root)
    try:
        assert second.recovered == [stuck.id]
        again = second.get(done.id)
        assert again.status == "succeeded" and again.result == done.result
        lost = second.get(stuck.id)
        assert lost.status == "failed" and lost.error_type == "Interrupted"
        assert "the API stopped while this job was running" in (lost.error or "")
        assert {j.id for j in second.list()} == {done.id, stuck.id}
    finally:
        gate.set()
        second.shutdown(5)
    # the old thread, released after the restart, does not overwrite the new record
    time.sleep(0.2)
    assert json.loads((root / stuck.id / "job.json").read_text())["status"] == "failed"


def test_shutdown_cancels_running_and_queued(tmp_path: Path) -> None:
    runner = JobRunner(tmp_path / "jobs")
    running = runner.submit("demo", {}, staged(stages=100, pause=0.01))
    queued = runner.submit("demo", {}, staged())
    while runner.get(running.id).status != "running":
        time.sleep(0.01)
    runner.shutdown(5)
    assert runner.get(running.id).status == "cancelled"
    assert runner.get(queued.id).status == "cancelled"
    assert runner.get(queued.id).message == "the API shut down before it started"


def test_jsonable() -> None:
    assert jsonable({"p": Path("/a"), "s": {1}, "t": (1, 2), "n": np.int64(3),
                     "arr": np.array([0.5, np.nan])}) == {
        "p": "/a", "s": [1], "t": [1, 2], "n": 3, "arr": [0.5, None]}
