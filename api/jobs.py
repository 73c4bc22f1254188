"""Background jobs: the offline lifecycle's long-running functions, run in a small thread pool.

A job is one call of a library function that may take minutes (register a data set, clean a file,
explore it, train, evaluate, tune). The API answers at once with the job's record; the function
runs in one of ``workers`` daemon threads (settings ``api_job_workers``, default 1: the functions
are CPU-heavy pandas/numpy/River code, and the machine's cores also serve the API and the
scorers). Each record says::

    id, kind, params           what was asked
    status                     queued -> running -> succeeded | failed | cancelled
    progress, message          a fraction in [0, 1] and a short text, from the function itself
    result | error             the function's JSON result, or the error's message and type
    created_at, started_at, finished_at

Progress and cancellation use the library's own protocol (:mod:`fraudstream.progress`): the
function gets ``progress=ctx.progress`` and ``cancel=ctx.cancelled`` and stops with
:class:`~fraudstream.errors.Cancelled` at its next stage boundary once :meth:`JobRunner.cancel`
set the job's flag. A queued job is cancelled at once.

Layout under ``root`` (``settings.jobs_path``, by default ``<home>/jobs``)::

    <id>/job.json     the record; rewritten atomically on every change of status, and at most
                      every ``progress_write_s`` while the progress moves
    <id>/files/...    whatever the job wrote (EDA pages and PNGs, cleaned files, reports);
                      listed by :meth:`JobRunner.files`, served by the API

Records survive a restart of the API: a new runner reads every ``job.json``; a job that was
queued or running when the previous process stopped is marked ``failed`` with that reason (the
work was lost; submit it again).

Adding a kind of job (training, evaluation, tuning) is a route and a function of the job's
context, e.g.::

    def run(ctx: JobContext) -> dict[str, Any]:
        result = train(path, mapping, out_dir=ctx.folder, progress=ctx.progress,
                       cancel=ctx.cancelled)
        return result.to_dict()

    record = runner.submit("training", body.model_dump(mode="json"), run)

(see ``api/routes/eda.py`` for a complete router of that shape). The runner keeps its records in
memory and is one per API process: run the API with one uvicorn worker process.

>>> import tempfile
>>> runner = JobRunner(tempfile.mkdtemp(), workers=1)
>>> job = runner.submit("square", {"x": 7}, lambda ctx: {"y": ctx.params["x"] ** 2})
>>> done = runner.wait(job.id, timeout=10)
>>> done.status, done.result, done.progress
('succeeded', {'y': 49}, 1.0)
>>> runner.shutdown(); shutil.rmtree(runner.root)
"""

from __future__ import annotations

import builtins
import json
import logging
import mimetypes
import queue
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ValidationError

from fraudstream.errors import (
    Cancelled,
    FraudstreamError,
    JobStateError,
    NotFoundError,
    ServiceError,
)
from fraudstream.files import write_atomic

__all__ = [
    "FINAL",
    "JobContext",
    "JobFile",
    "JobFn",
    "JobRecord",
    "JobRunner",
    "JobStatus",
    "jsonable",
    "media_type",
]

log = logging.getLogger("fraudstream.api.jobs")

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_ID = re.compile(r"^[a-z][a-z0-9_]{0,31}-\d{8}-\d{6}-[0-9a-f]{6}$")


class JobRecord(BaseModel):
    """Everything known about one job; what ``job.json`` holds."""

    id: str
    kind: str
    params: dict[str, Any]
    status: JobStatus
    progress: float = 0.0
    message: str = ""
    result: Any = None
    error: str | None = None
    error_type: str | None = None
    cancel_requested: bool = False
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINAL

    @property
    def seconds(self) -> float | None:
        """Run time so far (or in all, once finished); None while queued."""
        if self.started_at is None:
            return None
        end = self.finished_at or datetime.now(UTC)
        return round((end - self.started_at).total_seconds(), 3)


@dataclass(frozen=True)
class JobFile:
    """One file a job wrote, relative to its ``files`` folder."""

    name: str
    size_bytes: int
    media_type: str


@dataclass
class JobContext:
    """What a job's function gets: its id and params, its folder, progress and the cancel flag."""

    id: str
    kind: str
    params: dict[str, Any]
    folder: Path
    _runner: JobRunner = field(repr=False)
    _flag: threading.Event = field(repr=False)

    def progress(self, fraction: float, message: str) -> None:
        """Report ``fraction`` (0..1) done with ``message``; pass as ``progress=ctx.progress``."""
        self._runner._progress(self.id, fraction, message)

    def cancelled(self) -> bool:
        """True once the job should stop; pass as ``cancel=ctx.cancelled``."""
        return self._flag.is_set()

    def check(self) -> None:
        """Raise :class:`~fraudstream.errors.Cancelled` when the job should stop."""
        if self._flag.is_set():
            raise Cancelled(f"job {self.id}")


JobFn = Callable[[JobContext], Any]


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: numpy numbers and arrays, paths, pydantic models,
    dataclasses and datetimes converted; NaN and infinities become None.

    >>> import numpy as np
    >>> jsonable({"a": np.float64(0.5), "b": [np.int64(3)], "c": float("nan"), 1: Path("/x")})
    {'a': 0.5, 'b': [3], 'c': None, '1': '/x'}
    >>> jsonable({"big": 2 ** 70, "a": np.arange(2)})
    {'big': 1180591620717411303424, 'a': [0, 1]}
    """
    try:
        return orjson.loads(orjson.dumps(
            value, default=_default, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS))
    except TypeError:  # an integer beyond 64 bits: the standard library's json takes it
        return json.loads(json.dumps(value, default=_default))


def _default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy, for the standard library's json
        return value.tolist()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def _now() -> datetime:
    return datetime.now(UTC)


class JobRunner:
    """Runs jobs in ``workers`` daemon threads and keeps their records under ``root``."""

    def __init__(self, root: str | Path, workers: int = 1, *, progress_write_s: float = 0.5) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.workers = workers
        self.progress_write_s = progress_write_s
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._records: dict[str, JobRecord] = {}
        self._flags: dict[str, threading.Event] = {}
        self._fns: dict[str, JobFn] = {}
        self._written: dict[str, float] = {}
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._closed = False
        self.recovered = self._recover()
        self._threads = [
            threading.Thread(target=self._work, name=f"fraudstream-job-{i + 1}", daemon=True)
            for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    # -- records on disk -------------------------------------------------------------------------
    def _dir(self, job_id: str) -> Path:
        return self.root / job_id

    def _persist(self, rec: JobRecord) -> None:
        """Write ``rec`` (the caller holds the lock)."""
        if self._closed:
            return  # a job still running after shutdown stays 'running' on disk: failed at restart
        path = self._dir(rec.id) / "job.json"
        try:
            write_atomic(path, rec.model_dump_json(indent=1))
        except FileNotFoundError:
            pass  # deleted meanwhile
        self._written[rec.id] = time.monotonic()

    def _recover(self) -> list[str]:
        """Load every record; jobs that were queued or running are failed now. Their ids."""
        lost = []
        for path in sorted(self.root.glob("*/job.json")):
            try:
                rec = JobRecord.model_validate_json(path.read_bytes())
            except (OSError, ValidationError) as exc:
                log.warning("skipping unreadable job record %s: %s", path, exc)
                continue
            if not rec.finished:
                was = rec.status
                rec.status = "failed"
                rec.error = (f"the API stopped while this job was {was} (restart or crash); "
                             "the work is lost: submit it again")
                rec.error_type = "Interrupted"
                rec.finished_at = _now()
                self._persist(rec)
                lost.append(rec.id)
            self._records[rec.id] = rec
        if lost:
            log.warning("%d job(s) interrupted by the last stop marked failed: %s",
                        len(lost), ", ".join(lost))
        return lost

    # -- the public API --------------------------------------------------------------------------
    def submit(self, kind: str, params: dict[str, Any], fn: JobFn) -> JobRecord:
        """Queue ``fn(context)``; its return value (JSON-able) becomes the job's result."""
        if not _KIND.match(kind):
            raise ValueError(f"bad job kind {kind!r}")
        job_id = f"{kind}-{_now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        rec = JobRecord(id=job_id, kind=kind, params=jsonable(params), status="queued",
                        message="queued", created_at=_now())
        with self._lock:
            if self._closed:
                raise ServiceError("the job runner is shutting down")
            (self._dir(job_id) / "files").mkdir(parents=True)
            self._records[job_id] = rec
            self._flags[job_id] = threading.Event()
            self._fns[job_id] = fn
            self._persist(rec)
            out = rec.model_copy()
        self._queue.put(job_id)
        log.info("job %s queued", job_id)
        return out

    def get(self, job_id: str) -> JobRecord:
        """The record of ``job_id``; NotFoundError when there is none."""
        with self._lock:
            return self._get(job_id).model_copy()

    def _get(self, job_id: str) -> JobRecord:
        rec = self._records.get(job_id) if _ID.match(job_id) else None
        if rec is None:
            raise NotFoundError("job", job_id, "GET /jobs lists the known jobs")
        return rec

    def list(self, kind: str | None = None, status: str | None = None,
             limit: int = 100) -> builtins.list[JobRecord]:
        """Records, newest first, optionally of one kind and one status."""
        with self._lock:
            recs = [r for r in self._records.values()
                    if (kind is None or r.kind == kind) and (status is None or r.status == status)]
            recs.sort(key=lambda r: (r.created_at, r.id), reverse=True)
            return [r.model_copy() for r in recs[:limit]]

    def cancel(self, job_id: str) -> JobRecord:
        """Stop a job: a queued one at once, a running one at its next stage boundary."""
        with self._lock:
            rec = self._get(job_id)
            if rec.finished:
                raise JobStateError(job_id, rec.status, "cancel it")
            rec.cancel_requested = True
            self._flags[job_id].set()
            if rec.status == "queued":
                self._finish(rec, "cancelled", message="cancelled before it started")
            else:
                rec.message = f"cancelling ({rec.message})"
                self._persist(rec)
            return rec.model_copy()

    def delete(self, job_id: str) -> None:
        """Forget a finished job and delete its folder."""
        with self._lock:
            rec = self._get(job_id)
            if not rec.finished:
                raise JobStateError(job_id, rec.status, "delete it (cancel it first)")
            del self._records[job_id]
            self._written.pop(job_id, None)
            shutil.rmtree(self._dir(job_id), ignore_errors=True)

    def wait(self, job_id: str, timeout: float | None = None) -> JobRecord:
        """Block until the job is finished or ``timeout`` seconds passed; its record then."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                rec = self._get(job_id)
                if rec.finished:
                    return rec.model_copy()
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return rec.model_copy()
                self._changed.wait(left)

    def folder(self, job_id: str) -> Path:
        """The folder the job writes its files into."""
        self.get(job_id)
        return self._dir(job_id) / "files"

    def files(self, job_id: str) -> builtins.list[JobFile]:
        """Every file the job wrote, by name (sub-folders as ``a/b.png``)."""
        base = self.folder(job_id)
        out = []
        for p in sorted(base.rglob("*")):
            if p.is_file() and not p.name.startswith("."):
                out.append(JobFile(p.relative_to(base).as_posix(), p.stat().st_size, media_type(p)))
        return out

    def file(self, job_id: str, name: str) -> Path:
        """The path of one of the job's files; NotFoundError for anything else."""
        base = self.folder(job_id).resolve()
        target = (base / name).resolve()
        if not target.is_relative_to(base) or not target.is_file() or target.name.startswith("."):
            names = [f.name for f in self.files(job_id)]
            hint = f"it has: {', '.join(names[:20])}" if names else "it wrote no files"
            raise NotFoundError(f"file of job {job_id}", name, hint)
        return target

    def shutdown(self, wait_s: float = 10.0) -> None:
        """Cancel queued and running jobs and stop the threads (waiting up to ``wait_s``)."""
        with self._lock:
            if self._closed:
                return
            for rec in self._records.values():
                if rec.status == "queued":
                    self._finish(rec, "cancelled", message="the API shut down before it started")
                elif rec.status == "running":
                    rec.cancel_requested = True
                    self._flags[rec.id].set()
        for _ in self._threads:
            self._queue.put(None)
        deadline = time.monotonic() + wait_s
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._closed = True
            busy = [r.id for r in self._records.values() if r.status == "running"]
        if busy:
            log.warning("jobs still running at shutdown (they will be marked failed at the "
                        "next start): %s", ", ".join(busy))

    # -- the worker threads ----------------------------------------------------------------------
    def _progress(self, job_id: str, fraction: float, message: str) -> None:
        with self._lock:
            rec = self._records.get(job_id)
            if rec is None or rec.finished:
                return
            rec.progress = max(rec.progress, min(1.0, max(0.0, float(fraction))))
            rec.message = message
            if time.monotonic() - self._written.get(job_id, 0.0) >= self.progress_write_s:
                self._persist(rec)

    def _finish(self, rec: JobRecord, status: JobStatus, *, message: str, result: Any = None,
                error: BaseException | None = None) -> None:
        """Set a final status (the caller holds the lock) and wake waiters."""
        rec.status = status
        rec.message = message
        rec.finished_at = _now()
        if status == "succeeded":
            rec.progress = 1.0
            rec.result = result
        if error is not None:
            rec.error = str(error) or type(error).__name__
            rec.error_type = type(error).__name__
        self._fns.pop(rec.id, None)
        self._persist(rec)
        self._changed.notify_all()

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            with self._lock:
                rec = self._records.get(job_id)
                fn = self._fns.get(job_id)
                if rec is None or rec.status != "queued" or fn is None:
                    continue  # cancelled or deleted while queued
                rec.status = "running"
                rec.started_at = _now()
                rec.message = "started"
                self._persist(rec)
                ctx = JobContext(job_id, rec.kind, rec.params, self._dir(job_id) / "files",
                                 self, self._flags[job_id])
            log.info("job %s started", job_id)
            try:
                value = jsonable(fn(ctx))
            except Cancelled as exc:
                with self._lock:
                    self._finish(rec, "cancelled", message="cancelled", error=exc)
            except FraudstreamError as exc:
                with self._lock:
                    self._finish(rec, "failed", message="failed", error=exc)
            except Exception as exc:  # noqa: BLE001 - a job's bug must not kill the worker thread
                log.exception("job %s failed", job_id)
                with self._lock:
                    self._finish(rec, "failed", message="failed (unexpected error)", error=exc)
            else:
                with self._lock:
                    self._finish(rec, "succeeded", message="done", result=value)
            log.info("job %s %s", job_id, rec.status)


def media_type(path: Path) -> str:
    """The content type a file is served with.

    >>> media_type(Path("index.html")), media_type(Path("x.png")), media_type(Path("d.parquet"))
    ('text/html', 'image/png', 'application/octet-stream')
    """
    name = path.name.lower()
    if name.endswith(".csv"):
        return "text/csv"
    if name.endswith(".json"):
        return "application/json"
    guessed, encoding = mimetypes.guess_type(name)
    if encoding == "gzip":
        return "application/gzip"
    return guessed or "application/octet-stream"
