"""One router per resource.

:func:`lifecycle_routers` lists the offline lifecycle's, the models' and scoring's routers, in the
order the app includes them. A router of a new kind of job follows ``api/routes/eda.py``.
"""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["lifecycle_routers"]


def lifecycle_routers() -> list[APIRouter]:
    """datasets, cleaning, eda, training, evaluation, tuning, jobs, models, criteria,
    predictions, score."""
    from api.routes import (
        cleaning,
        criteria,
        datasets,
        eda,
        evaluation,
        jobs,
        models,
        predictions,
        score,
        training,
        tuning,
    )

    return [datasets.router, cleaning.router, eda.router, training.router, evaluation.router,
            tuning.router, jobs.router, models.router, criteria.router, predictions.router,
            score.router]
