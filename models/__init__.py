"""Models: the River zoo, batch models, reason codes, metrics, drift detection, the registry, the
online learner (and its live shadow scores, :mod:`models.shadow`), and the offline lifecycle
(training, evaluation, tuning).

A library shared by the worker and the API; it never imports the Faust app, the agents or the API.
Import the modules themselves (``from models.zoo import build_model``); this package imports
nothing heavy on its own.

Offline lifecycle: :mod:`models.data` (a file's features and labels), :mod:`models.protocols`
(the time split with a label-delay gap, prequential streaming), :mod:`models.batch`
(scikit-learn / LightGBM / XGBoost behind the zoo's ``Model``), :mod:`models.evaluation`
(metrics, leaderboard, curves), :mod:`models.training` (evaluate, train and register),
:mod:`models.tuning` (grid, random, Bayesian search), :mod:`models.training_commands` (the CLI).
"""

__all__ = [
    "batch", "commands", "criteria", "data", "drift", "evaluation", "events", "learner",
    "metrics", "protocols", "reasons", "registry", "shadow", "training", "training_commands",
    "tuning", "watcher", "zoo",
]
