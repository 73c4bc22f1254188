"""Models: the River zoo, reason codes, metrics, drift detection, the registry, the online learner.

A library shared by the worker and the API; it never imports the Faust app, the agents or the API.
Import the modules themselves (``from models.zoo import build_model``); this package imports
nothing heavy on its own.
"""

__all__ = ["drift", "events", "learner", "metrics", "reasons", "registry", "watcher", "zoo"]
