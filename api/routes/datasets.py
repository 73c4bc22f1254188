"""``/datasets``: register a historical file (a job: it is read and profiled), list, show, delete.

A registered data set is a file on the server, how to read it (a preset or a column mapping) and
its profile: schema, row count, time range, label rate, which of card / terminal / amount it has,
the extra numeric columns that become features, and notes on what is skipped
(:mod:`features.datasets`). Cleaning, EDA, training, evaluation and tuning take ``dataset_id``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, Field

from api.deps import ApiKey, JobsDep, SettingsDep
from api.http import COMMON_RESPONSES, ERROR_RESPONSES, http_error
from api.jobs import JobContext
from api.routes.jobs import KIND_LINKS, JobPublic, WaitQuery, accepted
from api.sources import MappingIn, check_path, preflight
from features import datasets as ds
from fraudstream.errors import FraudstreamError

router = APIRouter(prefix="/datasets", tags=["datasets"], responses=COMMON_RESPONSES)

KIND_LINKS["dataset"] = lambda rec: {"dataset": f"/datasets/{rec.params['id']}"}

DatasetId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$",
                                 description="lower-case letters, digits, . _ - (64 at most)")]


class DatasetCreate(BaseModel):
    """A file on the server and how to read it."""

    path: str = Field(description="absolute path of a CSV or Parquet file (gzip allowed)",
                      examples=["/data/fdh/transactions_raw.csv.gz"])
    mapping: MappingIn
    name: str | None = Field(default=None, description="default: the file name")
    id: DatasetId | None = Field(default=None, description="default: made from the name")
    replace: bool = Field(default=False, description="replace a data set with that id")


class DatasetPublic(ds.DatasetRecord):
    """A registered data set and its profile."""


@router.post("", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED,
             dependencies=[ApiKey], summary="Register a file (a job: read and profiled)",
             responses={k: ERROR_RESPONSES[k] for k in (401, 403, 409)})
def create_dataset(body: DatasetCreate, jobs: JobsDep, settings: SettingsDep,
                   response: Response, wait: WaitQuery = 0.0) -> JobPublic:
    """The path and mapping are checked on a sample first (422 with the reason); the job's
    result is the data set's record. 409 when the id is taken (unless ``replace``)."""
    try:
        path = check_path(body.path, settings)
        mapping = body.mapping.to_mapping()
        preflight(path, mapping)
    except FraudstreamError as exc:
        raise http_error(exc) from exc
    name = body.name or path.name
    dataset_id = body.id or ds.slugify(name)
    root = settings.datasets_path
    if not body.replace and (root / f"{dataset_id}.json").exists():
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"dataset {dataset_id!r} is already registered; set replace: true "
                            "or another id")

    def run(ctx: JobContext) -> dict[str, Any]:
        record = ds.register_dataset(path, mapping, root, name=name, dataset_id=dataset_id,
                                     replace=body.replace, progress=ctx.progress,
                                     cancel=ctx.cancelled)
        return record.to_dict()

    params = {**body.model_dump(mode="json"), "id": dataset_id, "path": str(path)}
    return accepted(jobs, "dataset", params, run, response, wait)


@router.get("", response_model=list[DatasetPublic], summary="Every registered data set")
def list_datasets(settings: SettingsDep) -> list[DatasetPublic]:
    try:
        records = ds.list_datasets(settings.datasets_path)
    except FraudstreamError as exc:
        raise http_error(exc) from exc
    return [DatasetPublic.model_validate(r.to_dict()) for r in records]


@router.get("/{dataset_id}", response_model=DatasetPublic, summary="One data set's record",
            responses={404: ERROR_RESPONSES[404]})
def get_dataset(dataset_id: str, settings: SettingsDep) -> DatasetPublic:
    try:
        record = ds.get_dataset(settings.datasets_path, dataset_id)
    except FraudstreamError as exc:
        raise http_error(exc) from exc
    return DatasetPublic.model_validate(record.to_dict())


@router.delete("/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[ApiKey],
               summary="Forget a data set (the file itself is left alone)",
               responses={k: ERROR_RESPONSES[k] for k in (401, 403, 404)})
def delete_dataset(dataset_id: str, settings: SettingsDep) -> Response:
    try:
        ds.remove_dataset(settings.datasets_path, dataset_id)
    except FraudstreamError as exc:
        raise http_error(exc) from exc
    return Response(status_code=status.HTTP_204_NO_CONTENT)
