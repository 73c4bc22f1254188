"""The FastAPI side API: status, metrics, the offline lifecycle, models, scoring, dashboard.

One router per resource in ``api/routes``; dependencies in ``api/deps.py``; the app is built by
:func:`api.main.create_app`.
"""

__all__ = ["create_app"]

from api.main import create_app
