"""``/alerts``: the alerts firing now and the latest notifications sent."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

router = APIRouter(tags=["alerts"])


@router.get("/alerts")
async def alerts(
    request: Request, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> dict[str, Any]:
    """``{"firing": [...], "recent": [...]}`` (recent: newest first, from every API replica)."""
    monitor = getattr(request.app.state, "monitor", None)
    if monitor is None:
        return {"firing": [], "recent": []}
    return {"firing": monitor.alerter.firing(),
            "recent": await monitor.alerter.history_list(limit)}
