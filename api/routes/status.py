"""``/status``: components, throughput, latency, counts and models of the running system."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import RedisDep, SettingsDep
from api.status import collect_status

router = APIRouter(tags=["status"])


@router.get("/status")
async def status(redis: RedisDep, settings: SettingsDep) -> dict[str, Any]:
    return await collect_status(redis, settings)
