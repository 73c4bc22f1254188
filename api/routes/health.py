"""``/health``: the API process answers and can reach Redis."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import RedisDep

router = APIRouter(tags=["health"])


class HealthPublic(BaseModel):
    status: str
    redis: bool


@router.get("/health", response_model=HealthPublic)
async def health(redis: RedisDep) -> HealthPublic:
    try:
        ok = bool(await redis.ping())
    except Exception:  # noqa: BLE001
        ok = False
    return HealthPublic(status="ok" if ok else "degraded", redis=ok)
