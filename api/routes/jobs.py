"""``/jobs``: every background job (data sets, cleaning, EDA, ...): status, progress, cancel, files.

The routers that start jobs answer ``202 Accepted`` with the job (:func:`accepted`) and a
``Location`` header; clients poll ``GET /jobs/{id}`` until ``status`` is ``succeeded``, ``failed``
or ``cancelled`` (or pass ``?wait=SECONDS`` to the starting request).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from api.deps import ApiKey, JobsDep
from api.http import COMMON_RESPONSES, ERROR_RESPONSES, http_error
from api.jobs import JobFn, JobRecord, JobRunner, JobStatus, media_type
from fraudstream.errors import FraudstreamError, JobStateError, NotFoundError

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=COMMON_RESPONSES)

#: Links of each kind of job to its own endpoints (the routers that start jobs add theirs).
KIND_LINKS: dict[str, Callable[[JobRecord], dict[str, str]]] = {}

WaitQuery = Annotated[float, Query(ge=0, le=120, description=(
    "wait up to this many seconds for the job to finish before answering (default: answer at "
    "once)"))]


class JobPublic(BaseModel):
    """A job: what was asked, where it is, and its result or error once finished."""

    id: str
    kind: str
    status: JobStatus
    progress: float = Field(description="fraction done, 0..1")
    message: str
    params: dict[str, Any]
    result: Any = Field(default=None, description="the job's JSON result once it succeeded")
    error: str | None = None
    error_type: str | None = None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    seconds: float | None = Field(description="run time so far, or in all")
    links: dict[str, str]

    @classmethod
    def of(cls, rec: JobRecord, *, with_result: bool = True) -> JobPublic:
        links = {"self": f"/jobs/{rec.id}", "files": f"/jobs/{rec.id}/files"}
        if not rec.finished:
            links["cancel"] = f"/jobs/{rec.id}/cancel"
        if rec.kind in KIND_LINKS:
            links.update(KIND_LINKS[rec.kind](rec))
        data = rec.model_dump()
        if not with_result:
            data["result"] = None
        return cls(**data, seconds=rec.seconds, links=links)


class JobFilePublic(BaseModel):
    name: str
    size_bytes: int
    media_type: str
    url: str


def accepted(jobs: JobRunner, kind: str, params: dict[str, Any], fn: JobFn,
             response: Response, wait: float = 0.0) -> JobPublic:
    """Queue a job and answer 202 with it (after waiting up to ``wait`` seconds for its end)."""
    try:
        rec = jobs.submit(kind, params, fn)
    except FraudstreamError as exc:
        raise http_error(exc) from exc
    if wait > 0:
        rec = jobs.wait(rec.id, wait)
    response.status_code = status.HTTP_202_ACCEPTED
    response.headers["Location"] = f"/jobs/{rec.id}"
    return JobPublic.of(rec)


def job_of_kind(jobs: JobRunner, job_id: str, kind: str) -> JobRecord:
    """The job ``job_id`` if it is a ``kind`` job; the HTTP error otherwise."""
    try:
        rec = jobs.get(job_id)
    except NotFoundError as exc:
        raise http_error(exc) from exc
    if rec.kind != kind:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"job {job_id!r} is a {rec.kind} job, not {kind}: see /jobs/{job_id}")
    return rec


def result_of(jobs: JobRunner, job_id: str, kind: str, what: str) -> Any:
    """The result of a succeeded ``kind`` job; 409 with the reason while it is not."""
    rec = job_of_kind(jobs, job_id, kind)
    if rec.status != "succeeded":
        detail = f"job {job_id!r} is {rec.status}: no {what}"
        if rec.error:
            detail += f" ({rec.error})"
        elif not rec.finished:
            detail += f" yet ({rec.progress:.0%}, {rec.message}); poll /jobs/{job_id}"
        raise HTTPException(status.HTTP_409_CONFLICT, detail)
    return rec.result


def file_response(jobs: JobRunner, job_id: str, name: str, *, download: bool = False) -> FileResponse:
    """One of a job's files (``download``: with a Content-Disposition attachment name)."""
    try:
        path = jobs.file(job_id, name)
    except NotFoundError as exc:
        raise http_error(exc) from exc
    return FileResponse(path, media_type=media_type(path),
                        filename=path.name if download else None)


@router.get("", response_model=list[JobPublic], summary="List jobs, newest first")
def list_jobs(
    jobs: JobsDep,
    kind: Annotated[str | None, Query(description="only this kind (dataset, cleaning, eda, ...)")] = None,
    status_: Annotated[JobStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[JobPublic]:
    """Jobs without their results (``GET /jobs/{id}`` has the result)."""
    return [JobPublic.of(r, with_result=False) for r in jobs.list(kind, status_, limit)]


@router.get("/{job_id}", response_model=JobPublic, summary="One job, with its result",
            responses={404: ERROR_RESPONSES[404]})
def get_job(job_id: str, jobs: JobsDep) -> JobPublic:
    try:
        return JobPublic.of(jobs.get(job_id))
    except NotFoundError as exc:
        raise http_error(exc) from exc


@router.post("/{job_id}/cancel", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED,
             dependencies=[ApiKey], summary="Cancel a queued or running job",
             responses={k: ERROR_RESPONSES[k] for k in (401, 403, 404, 409)})
def cancel_job(job_id: str, jobs: JobsDep,
               wait: WaitQuery = 0.0) -> JobPublic:
    """A queued job is cancelled at once; a running one stops at its next stage boundary
    (``status`` becomes ``cancelled``). 409 when the job already finished."""
    try:
        jobs.cancel(job_id)
        rec = jobs.wait(job_id, wait) if wait > 0 else jobs.get(job_id)
    except (NotFoundError, JobStateError) as exc:
        raise http_error(exc) from exc
    return JobPublic.of(rec)


@router.delete("/{job_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[ApiKey],
               summary="Delete a finished job and its files",
               responses={k: ERROR_RESPONSES[k] for k in (401, 403, 404, 409)})
def delete_job(job_id: str, jobs: JobsDep) -> Response:
    try:
        jobs.delete(job_id)
    except (NotFoundError, JobStateError) as exc:
        raise http_error(exc) from exc
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{job_id}/files", response_model=list[JobFilePublic],
            summary="The files a job wrote", responses={404: ERROR_RESPONSES[404]})
def list_files(job_id: str, jobs: JobsDep) -> list[JobFilePublic]:
    try:
        files = jobs.files(job_id)
    except NotFoundError as exc:
        raise http_error(exc) from exc
    return [JobFilePublic(name=f.name, size_bytes=f.size_bytes, media_type=f.media_type,
                          url=f"/jobs/{job_id}/files/{f.name}") for f in files]


@router.get("/{job_id}/files/{name:path}", response_class=FileResponse,
            summary="Download one of a job's files", responses={404: ERROR_RESPONSES[404]})
def get_file(job_id: str, name: str, jobs: JobsDep) -> FileResponse:
    return file_response(jobs, job_id, name, download=True)
