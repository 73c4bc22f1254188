"""Features: declarative definitions, the Redis online store, the offline twin, selection.

A library shared by the worker and the API; it never imports the Faust app, the agents or the API.

* :mod:`features.definitions`: every feature definition and the ``default`` / ``handbook`` sets;
* :mod:`features.plan`: bucket groups, raw columns and the one finalizer both computations share;
* :mod:`features.store` (+ :mod:`features.lua`): the online store, one Redis round trip per batch;
* :mod:`features.offline`: the offline twin on a DataFrame; :mod:`features.parity` compares them;
* :mod:`features.selection`: correlation, importance, L1 and recursive elimination;
* :mod:`features.columns`: column mappings of historical files.

Submodules are imported where used (the CLI stays fast), e.g.
``from features.store import OnlineFeatureStore``.
"""

__all__ = ["columns", "commands", "definitions", "lua", "offline", "parity", "plan", "selection",
           "store"]
