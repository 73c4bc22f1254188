"""``/eda``: explore a data set or a file (a job); its JSON summary, HTML page and PNG plots.

The job (:func:`features.eda.explore`) writes ``index.html``, ``summary.json`` and the plots
into its folder; ``GET /eda/{id}/index.html`` shows the page, whose images load from
``/eda/{id}/<plot>.png`` next to it.

This router is the pattern for the other lifecycle jobs (training, evaluation, tuning): a
request model extending :class:`~api.sources.SourceIn`, a start route that resolves and checks the
source, then queues a function of the job context with :func:`~api.routes.jobs.accepted`, and
read routes over the job's result and files.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status
from fastapi.responses import FileResponse
from pydantic import Field

from api.deps import ApiKey, JobsDep, SettingsDep
from api.http import COMMON_RESPONSES, ERROR_RESPONSES, http_error
from api.jobs import JobContext
from api.routes.jobs import (
    KIND_LINKS,
    JobPublic,
    WaitQuery,
    accepted,
    file_response,
    job_of_kind,
    result_of,
)
from api.sources import SourceIn, checked_source
from fraudstream.errors import FraudstreamError

router = APIRouter(prefix="/eda", tags=["eda"], responses=COMMON_RESPONSES)

KIND_LINKS["eda"] = lambda rec: {"summary": f"/eda/{rec.id}",
                                 "report": f"/eda/{rec.id}/index.html"}


class EdaCreate(SourceIn):
    """What to explore."""

    nrows: int | None = Field(default=None, ge=1, description="only the first N rows")
    title: str | None = Field(default=None, max_length=200, description="the page's title")
    corr_threshold: float = Field(default=0.9, gt=0, le=1,
                                  description="flag column pairs with |r| above this")


@router.post("", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED,
             dependencies=[ApiKey], summary="Explore a data set or a file (a job)",
             responses={k: ERROR_RESPONSES[k] for k in (401, 403, 404)})
def start_eda(body: EdaCreate, jobs: JobsDep, settings: SettingsDep, response: Response,
              wait: WaitQuery = 0.0) -> JobPublic:
    """404 for an unknown data set; 422 for a bad path or mapping. The job's result holds the
    summary (``GET /eda/{id}``) and the written files."""
    try:
        path, mapping, record = checked_source(body, settings)
    except FraudstreamError as exc:
        raise http_error(exc) from exc
    title = body.title or f"EDA: {record.id if record else path.name}"

    def run(ctx: JobContext) -> dict[str, Any]:
        from features.eda import explore

        result = explore(path, mapping, ctx.folder, nrows=body.nrows, title=title,
                         corr_threshold=body.corr_threshold, progress=ctx.progress,
                         cancel=ctx.cancelled)
        return result.to_dict()

    params = {**body.model_dump(mode="json", exclude_none=True), "path": str(path)}
    return accepted(jobs, "eda", params, run, response, wait)


@router.get("/{job_id}", summary="The EDA summary (JSON)",
            responses={404: ERROR_RESPONSES[404], 409: ERROR_RESPONSES[409]})
def get_summary(job_id: str, jobs: JobsDep) -> dict[str, Any]:
    """Class balance, statistics by class, correlations (pairs above the threshold flagged),
    daily fraud rate, amount by hour, notes. 409 while the job has not succeeded."""
    return result_of(jobs, job_id, "eda", "summary")["summary"]  # type: ignore[no-any-return]


@router.get("/{job_id}/{name}", response_class=FileResponse,
            summary="The HTML report (index.html), a plot (*.png) or summary.json",
            responses={404: ERROR_RESPONSES[404]})
def get_file(job_id: str, name: str, jobs: JobsDep) -> FileResponse:
    job_of_kind(jobs, job_id, "eda")
    return file_response(jobs, job_id, name)
