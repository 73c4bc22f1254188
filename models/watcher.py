"""ChampionWatcher: what a scorer holds, the registry's champion, hot-swapped when it changes.

A scorer calls :meth:`ChampionWatcher.refresh` often (before each batch, or on a timer, or when a
``model-events`` record arrives); it costs one ``stat`` of the champion pointer at most every
``poll_interval_s``, and loads (verifies, unpickles) only when the pointer moved. The swap is one
assignment of ``current`` (a ``(model, metadata)`` pair): a batch that took ``watcher.current``
before the swap finishes with the model it started with, the next one gets the new model, no
transaction is dropped. A champion that fails to load (unsigned, tampered, pruned) is NOT
adopted: the scorer keeps the model it has, ``last_error`` says why, and that version is not
retried until the pointer moves again.

A model is only served by a scorer that computes the features it was trained on: a version whose
metrics name a ``feature_set`` (offline training records it; a version saved with a parent
inherits it) other than the watcher's ``feature_set`` is refused the same way, with the reason
in ``last_error`` (served anyway, every feature would be missing and every score the same).

Loading a large model takes time (bench/models.py: ~90 ms for a 10-tree ARF); an asyncio worker
should call :meth:`refresh` in an executor thread: it only assigns ``current`` at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fraudstream.errors import ArtifactError, NotFoundError
from models.registry import ModelRegistry, ModelVersion

__all__ = ["ChampionWatcher"]


class ChampionWatcher:
    """The champion (and optionally the challengers) of a registry, reloaded when they change."""

    def __init__(
        self,
        registry: ModelRegistry,
        *,
        poll_interval_s: float = 0.2,
        with_challengers: bool = False,
        clock: Callable[[], float] = time.monotonic,
        feature_set: str | None = None,
    ) -> None:
        self.registry = registry
        self.feature_set = feature_set
        self.poll_interval_s = poll_interval_s
        self.with_challengers = with_challengers
        self.clock = clock
        self.current: tuple[Any, ModelVersion] | None = None
        self.challengers: dict[str, tuple[Any, ModelVersion]] = {}
        self.last_error: str | None = None
        self.swaps = 0
        self._last_poll = float("-inf")
        self._bad: set[str] = set()
        self.refresh(force=True)

    @property
    def version(self) -> str | None:
        return self.current[1].version if self.current else None

    def refresh(self, force: bool = False) -> bool:
        """Poll the pointer (at most every ``poll_interval_s`` unless ``force``); True on a swap."""
        now = self.clock()
        if not force and now - self._last_poll < self.poll_interval_s:
            return False
        self._last_poll = now
        swapped = False
        v = self.registry.champion_version()
        if v is not None and v != self.version and v not in self._bad:
            loaded = self._load(v)
            if loaded is not None:
                self.current = loaded
                self.swaps += 1
                swapped = True
        if self.with_challengers:
            wanted = [c for c in self.registry.challenger_versions() if c not in self._bad]
            if set(wanted) != set(self.challengers):
                fresh = {c: self.challengers[c] for c in wanted if c in self.challengers}
                for c in wanted:
                    if c not in fresh:
                        loaded = self._load(c)
                        if loaded is not None:
                            fresh[c] = loaded
                self.challengers = fresh
        return swapped

    def _load(self, version: str) -> tuple[Any, ModelVersion] | None:
        try:
            meta = self.registry.get(version)
            trained_on = meta.metrics.get("feature_set")
            if self.feature_set and trained_on and trained_on != self.feature_set:
                raise ArtifactError(
                    f"model {version} was trained on feature set {trained_on!r}; this scorer "
                    f"computes {self.feature_set!r} (FRAUDSTREAM_FEATURE_SET): not loaded")
            return self.registry.load(version)
        except (ArtifactError, NotFoundError) as exc:
            self._bad.add(version)
            self.last_error = str(exc)
            return None
