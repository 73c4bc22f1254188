"""``/cleaning``: clean a data set or a file by rules (a job); the report, the cleaned file, rejects.

The rules are :class:`features.cleaning.CleaningConfig` (missing values, dates, numbers,
categories and aliases, currencies, units, duplicates, outliers); the defaults clean most files.
The job writes ``cleaned.<format>`` (the file's own column names, so the same mapping reads it),
``rejects.csv`` (every removed row with its reason) and ``report.json`` (each rule's effect with
examples; also the job's result). ``register_as`` registers the cleaned file as a new data set.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Response, status
from fastapi.responses import FileResponse
from pydantic import Field

from api.deps import ApiKey, JobsDep, SettingsDep
from api.http import COMMON_RESPONSES, ERROR_RESPONSES, http_error
from api.jobs import JobContext, JobRunner
from api.routes.datasets import DatasetId
from api.routes.jobs import (
    KIND_LINKS,
    JobPublic,
    WaitQuery,
    accepted,
    file_response,
    result_of,
)
from api.sources import SourceIn, preflight, resolve_source
from features.cleaning import CleaningConfig, clean_file
from fraudstream.errors import FraudstreamError

router = APIRouter(prefix="/cleaning", tags=["cleaning"], responses=COMMON_RESPONSES)

KIND_LINKS["cleaning"] = lambda rec: {
    "report": f"/cleaning/{rec.id}/report",
    "cleaned": f"/cleaning/{rec.id}/cleaned",
    "rejects": f"/cleaning/{rec.id}/rejects",
}


class CleaningCreate(SourceIn):
    """What to clean and how."""

    rules: CleaningConfig | None = Field(default=None, description="default: the built-in rules")
    nrows: int | None = Field(default=None, ge=1, description="only the first N rows")
    output_format: Literal["csv", "csv.gz", "parquet"] | None = Field(
        default=None, description="default: the input's format")
    register_as: DatasetId | None = Field(
        default=None, description="register the cleaned file as a data set with this id")


def _format_of(name: str) -> str:
    name = name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    return "csv.gz" if name.endswith(".gz") else "csv"


@router.post("", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED,
             dependencies=[ApiKey], summary="Clean a data set or a file (a job)",
             responses={k: ERROR_RESPONSES[k] for k in (401, 403, 404, 409)})
def start_cleaning(body: CleaningCreate, jobs: JobsDep, settings: SettingsDep,
                   response: Response, wait: WaitQuery = 0.0) -> JobPublic:
    """404 for an unknown data set; 422 for a bad path, mapping or rules; 409 when
    ``register_as`` is taken. The job's result is the cleaning report."""
    try:
        path, mapping, _ = resolve_source(body, settings)
        preflight(path, mapping, canonical=False)
    except FraudstreamError as exc:
        raise http_error(exc) from exc
    root = settings.datasets_path
    if body.register_as and (root / f"{body.register_as}.json").exists():
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"dataset {body.register_as!r} is already registered; choose "
                            "another register_as")
    fmt = body.output_format or _format_of(path.name)
    config = body.rules or CleaningConfig()

    def run(ctx: JobContext) -> dict[str, Any]:
        share = 0.75 if body.register_as else 1.0
        report = clean_file(
            path, mapping, ctx.folder / f"cleaned.{fmt}", config=config,
            currency_rates=settings.currency_rates, base_currency=settings.base_currency,
            default_currency=settings.default_currency, rejects_path=ctx.folder / "rejects.csv",
            report_path=ctx.folder / "report.json", nrows=body.nrows,
            progress=lambda f, m: ctx.progress(share * f, m), cancel=ctx.cancelled)
        result = report.to_dict()
        if body.register_as:
            from features.datasets import register_dataset

            record = register_dataset(
                ctx.folder / f"cleaned.{fmt}", mapping, root, dataset_id=body.register_as,
                name=f"{path.name} (cleaned by job {ctx.id})",
                progress=lambda f, m: ctx.progress(share + (1 - share) * f, m),
                cancel=ctx.cancelled)
            result["registered_dataset"] = record.id
        return result

    params = {**body.model_dump(mode="json", exclude_none=True), "path": str(path)}
    return accepted(jobs, "cleaning", params, run, response, wait)


@router.get("/{job_id}/report", summary="The cleaning report (each rule's effect, examples)",
            responses={404: ERROR_RESPONSES[404], 409: ERROR_RESPONSES[409]})
def get_report(job_id: str, jobs: JobsDep) -> dict[str, Any]:
    """409 while the job has not succeeded (the reason says where it is)."""
    return result_of(jobs, job_id, "cleaning", "report")  # type: ignore[no-any-return]


def _download(jobs: JobRunner, job_id: str, prefix: str) -> FileResponse:
    result_of(jobs, job_id, "cleaning", prefix + " file")
    folder = jobs.folder(job_id)
    names = sorted(p.name for p in folder.glob(f"{prefix}.*"))
    if not names:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"job {job_id!r} wrote no {prefix} file")
    return file_response(jobs, job_id, names[0], download=True)


@router.get("/{job_id}/cleaned", response_class=FileResponse, summary="Download the cleaned file",
            responses={404: ERROR_RESPONSES[404], 409: ERROR_RESPONSES[409]})
def get_cleaned(job_id: str, jobs: JobsDep) -> FileResponse:
    return _download(jobs, job_id, "cleaned")


@router.get("/{job_id}/rejects", response_class=FileResponse,
            summary="Download the rejected rows, each with its reason",
            responses={404: ERROR_RESPONSES[404], 409: ERROR_RESPONSES[409]})
def get_rejects(job_id: str, jobs: JobsDep) -> FileResponse:
    return _download(jobs, job_id, "rejects")
