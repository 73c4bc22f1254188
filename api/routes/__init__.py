"""One router per resource.

:func:`lifecycle_routers` lists the offline lifecycle's, the models' and scoring's routers, in the
order the app includes them. Training, evaluation and tuning routers go here too (see
``api/routes/eda.py`` for the pattern).
"""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["lifecycle_routers"]


def lifecycle_routers() -> list[APIRouter]:
    """datasets, cleaning, eda, jobs, models, criteria, predictions, score."""
    from api.routes import cleaning, criteria, datasets, eda, jobs, models, predictions, score

    return [datasets.router, cleaning.router, eda.router, jobs.router, models.router,
            criteria.router, predictions.router, score.router]
