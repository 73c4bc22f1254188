"""``/models``: the registry's versions, the champion and challengers, promotion, rollback, history.

The registry (:mod:`models.registry`) is the one the workers use: a promotion or rollback made
here moves the champion pointer, and scorers swap models within a second without a restart
(the learner adopts it at its next tick). A version is promoted (or rolled back to, or made a
challenger) only after its artifact loads: an unsigned or tampered one is refused with 409 and
the registry's message.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field

from api.deps import ApiKey, RegistryDep
from api.http import COMMON_RESPONSES, ERROR_RESPONSES, http_error
from fraudstream.errors import ConfigError, FraudstreamError, NotFoundError
from models.registry import ModelRegistry, ModelVersion

router = APIRouter(prefix="/models", tags=["models"], responses=COMMON_RESPONSES)

Role = Literal["champion", "challenger", "previous champion"] | None


class ModelVersionPublic(ModelVersion):
    """A model version's metadata and its role now."""

    time_range: list[datetime] | None = Field(  # type: ignore[assignment]
        default=None, description="first and last event time of the data it learned from")

    role: Role = Field(default=None, description="champion, challenger, previous champion "
                       "(a rollback point) or none")


class ModelsPublic(BaseModel):
    champion: str | None
    challengers: list[str]
    rollback_points: list[str] = Field(description="champions replaced by promotions, latest last")
    versions: list[ModelVersionPublic] = Field(description="oldest first")


class ChampionChange(BaseModel):
    """Why the champion changes (kept in the registry's history)."""

    reason: str = Field(default="", max_length=500)


class RollbackCreate(ChampionChange):
    to: str | None = Field(default=None, description="a version; default: the champion before "
                           "the last promotion", examples=["v3"])


class ChallengersUpdate(ChampionChange):
    versions: list[str] = Field(description="the new challengers (replacing the list)",
                                examples=[["v4", "v7"]])


class ChampionPublic(BaseModel):
    champion: ModelVersionPublic
    previous: str | None = Field(description="the champion before this change")


def _public(reg: ModelRegistry, meta: ModelVersion) -> ModelVersionPublic:
    champion = reg.champion_version()
    if meta.version == champion:
        role: Role = "champion"
    elif meta.version in reg.challenger_versions():
        role = "challenger"
    elif meta.version in reg.previous_champions():
        role = "previous champion"
    else:
        role = None
    return ModelVersionPublic(**meta.model_dump(), role=role)


def _get(reg: ModelRegistry, version: str) -> ModelVersion:
    """A version by the name in the path: a malformed name is as unknown as a missing one."""
    try:
        return reg.get(version)
    except ConfigError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"model version {version!r} not found: "
                            f"{exc}") from exc
    except NotFoundError as exc:
        raise http_error(exc) from exc


def _verify(reg: ModelRegistry, version: str) -> None:
    """Refuse a version whose artifact does not load (404 unknown, 409 unsigned / tampered)."""
    _get(reg, version)
    try:
        reg.load(version)
    except FraudstreamError as exc:
        raise http_error(exc) from exc


@router.get("", response_model=ModelsPublic, summary="Every version, the champion, challengers")
def list_models(reg: RegistryDep) -> ModelsPublic:
    return ModelsPublic(champion=reg.champion_version(), challengers=reg.challenger_versions(),
                        rollback_points=reg.previous_champions(),
                        versions=[_public(reg, m) for m in reg.list()])


@router.get("/champion", response_model=ModelVersionPublic, summary="The champion",
            responses={404: ERROR_RESPONSES[404]})
def get_champion(reg: RegistryDep) -> ModelVersionPublic:
    meta = reg.champion()
    if meta is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            "no champion yet: a worker creates an initial one when it starts, "
                            "or promote a version (POST /models/{version}/promote)")
    return _public(reg, meta)


@router.get("/challengers", response_model=list[ModelVersionPublic],
            summary="The challengers (scored in shadow by the workers)")
def get_challengers(reg: RegistryDep) -> list[ModelVersionPublic]:
    return [_public(reg, m) for m in reg.challengers()]


@router.put("/challengers", response_model=list[ModelVersionPublic], dependencies=[ApiKey],
            summary="Replace the challengers",
            responses={k: ERROR_RESPONSES[k] for k in (401, 403, 404, 409)})
def set_challengers(body: ChallengersUpdate, reg: RegistryDep) -> list[ModelVersionPublic]:
    """Each version must load (signed, intact); the champion is left out of the list."""
    for v in body.versions:
        _verify(reg, v)
    try:
        reg.set_challengers(body.versions, reason=body.reason or "set through the API")
    except FraudstreamError as exc:
        raise http_error(exc) from exc
    return [_public(reg, m) for m in reg.challengers()]


@router.get("/history", summary="The registry's events (save, promote, rollback, ...), oldest first")
def get_history(reg: RegistryDep,
                last: Annotated[int, Query(ge=1, le=10_000)] = 100) -> list[dict[str, Any]]:
    return reg.history(last)


@router.post("/rollback", response_model=ChampionPublic, dependencies=[ApiKey],
             summary="Back to the champion before the last promotion, or to a version",
             responses={k: ERROR_RESPONSES[k] for k in (401, 403, 404, 409)})
def rollback(reg: RegistryDep, body: RollbackCreate | None = None) -> ChampionPublic:
    """404 for an unknown ``to``; 409 when there is nothing to roll back to, or when the target's
    artifact is unsigned or tampered."""
    body = body or RollbackCreate()
    previous = reg.champion_version()
    if body.to is not None:
        _verify(reg, body.to)
    else:
        stack = [v for v in reg.previous_champions() if v != previous]
        if stack:
            _verify(reg, stack[-1])
    try:
        meta = reg.rollback(body.to, reason=body.reason or "rolled back through the API")
    except NotFoundError as exc:  # nothing to roll back to: a state, not a missing resource
        raise http_error(exc, status.HTTP_409_CONFLICT) from exc
    except FraudstreamError as exc:
        raise http_error(exc) from exc
    return ChampionPublic(champion=_public(reg, meta), previous=previous)


@router.get("/{version}", response_model=ModelVersionPublic, summary="One version's metadata",
            responses={404: ERROR_RESPONSES[404]})
def get_model(version: str, reg: RegistryDep) -> ModelVersionPublic:
    return _public(reg, _get(reg, version))


@router.post("/{version}/promote", response_model=ChampionPublic, dependencies=[ApiKey],
             summary="Make a version the champion",
             responses={k: ERROR_RESPONSES[k] for k in (401, 403, 404, 409)})
def promote(version: str, reg: RegistryDep, body: ChampionChange | None = None) -> ChampionPublic:
    """The artifact is loaded first: 409 with the registry's message when it is unsigned or
    tampered. The replaced champion becomes a rollback point."""
    body = body or ChampionChange()
    _verify(reg, version)
    previous = reg.champion_version()
    try:
        meta = reg.promote(version, reason=body.reason or "promoted through the API")
    except FraudstreamError as exc:
        raise http_error(exc) from exc
    return ChampionPublic(champion=_public(reg, meta), previous=previous)
