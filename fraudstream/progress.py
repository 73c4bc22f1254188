"""Progress and cancellation for long-running library functions (the API runs them as jobs).

A function that may take long accepts ``progress: Callable[[float, str], None] | None`` (a
fraction in [0, 1] and a short message) and ``cancel: Callable[[], bool] | None`` (true once the
caller wants it to stop; ``threading.Event().is_set`` fits). It wraps both in a :class:`Tracker`,
calls :meth:`Tracker.step` between stages, and so stops with :class:`~fraudstream.errors.Cancelled`
at the next stage boundary. This module is a leaf.

>>> seen = []
>>> t = Tracker(lambda f, m: seen.append((f, m)), what="eda")
>>> t.step(0.5, "plots"); t.done()
>>> seen
[(0.5, 'plots'), (1.0, 'done')]
>>> Tracker(cancel=lambda: True, what="eda").step(0.1, "x")
Traceback (most recent call last):
...
fraudstream.errors.Cancelled: eda cancelled
"""

from __future__ import annotations

from collections.abc import Callable

from fraudstream.errors import Cancelled

__all__ = ["CancelFn", "ProgressFn", "Tracker"]

ProgressFn = Callable[[float, str], None]
CancelFn = Callable[[], bool]


class Tracker:
    """Forwards progress (never going backwards, clipped to [0, 1]) and checks for cancellation."""

    def __init__(
        self, progress: ProgressFn | None = None, cancel: CancelFn | None = None, what: str = "job"
    ) -> None:
        self._progress = progress
        self._cancel = cancel
        self.what = what
        self.fraction = 0.0

    def check(self) -> None:
        """Raise :class:`Cancelled` when the caller asked to stop."""
        if self._cancel is not None and self._cancel():
            raise Cancelled(self.what)

    def step(self, fraction: float, message: str) -> None:
        """Check for cancellation, then report ``fraction`` done with ``message``."""
        self.check()
        self.fraction = max(self.fraction, min(1.0, max(0.0, fraction)))
        if self._progress is not None:
            self._progress(self.fraction, message)

    def done(self, message: str = "done") -> None:
        self.fraction = 1.0
        if self._progress is not None:
            self._progress(1.0, message)
