"""Drift detection with ADWIN: concept drift (on prequential error) and data drift (no labels).

:class:`Detector` is River's ``drift.ADWIN`` on one stream of numbers plus the rules that turn
its detections into ALARMS: ADWIN usually fires several times while it sheds the old part of its
window after one change, so after an alarm the detector stays silent for ``cooldown`` updates
(detections during that time are counted, not raised) and then re-arms; and it may only alarm in
one ``direction`` (a model's error going DOWN is no concept drift), and only for a change of
at least ``min_change``: with tens of thousands of transactions a day ADWIN finds changes that
are real but too small to matter (measured on the first 200,000 handbook transactions: a
logistic regression's error on genuine transactions "drifted" eleven times, mostly by less than
0.005). The size of a change is the mean of the latest ``recent`` values (50) minus ADWIN's
window mean just before the detection (ADWIN itself sheds only its oldest buckets at a
detection, so its own estimate moves little); these are the alarm's ``mean_after`` and
``mean_before``, and they give its direction.

:class:`ConceptDriftMonitor` watches the champion's prequential error per class: ``1 - p`` on
frauds and ``p`` on genuine transactions, each with its own ADWIN, because with 1 % fraud a
change that only hits the frauds barely moves the overall error. Either one going up is a drift;
the two share one cool-down, so one change is one alarm. A second pair with a larger delta (more
sensitive) gives WARNINGS: the learner starts a background model at a warning, which becomes the
challenger if the drift is confirmed. ``classes`` chooses the classes watched; the learner watches
only the frauds by default (``Settings.drift_classes``): genuine labels mature a fixed delay after
their transaction, so they arrive in the daily rhythm of the transactions, and the champion's
error on genuine transactions has that rhythm too (night spending looks riskier; measured in
bench/drift.py on the simulator: 0.03 by day, 0.06 at night), which ADWIN reports as a change
every night.

:class:`DataDriftMonitor` watches the score and the means of key features (no labels needed),
again with one shared cool-down.

>>> import random
>>> rng = random.Random(3)
>>> ramp = [rng.gauss(0.0 if i < 2000 else min(2.0, (i - 2000) / 2000), 1.0) for i in range(8000)]
>>> d = Detector("x", delta=0.002, cooldown=5000)
>>> alarms = [a for v in ramp if (a := d.update(v))]
>>> [(a.detector, a.direction, a.at) for a in alarms], d.detections
([('x', 'up', 2464)], 5)

ADWIN fired five times while the mean climbed; one alarm came out.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from river import drift

__all__ = ["Alarm", "ConceptDriftMonitor", "DataDriftMonitor", "Detector"]

Direction = Literal["up", "down", "both"]


@dataclass(frozen=True)
class Alarm:
    """One drift (or warning): where, which way, and the means before and after."""

    level: Literal["drift", "warning"]
    detector: str
    at: int  # the detector's update count when it fired
    direction: Literal["up", "down"]
    mean_before: float  # ADWIN's window mean before the detection
    mean_after: float  # the mean of the latest ``recent`` values
    window: int  # ADWIN's window width after the change
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_evidence(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "level": self.level,
            "direction": self.direction,
            "update": self.at,
            "mean_before": round(self.mean_before, 6),
            "mean_after": round(self.mean_after, 6),
            "window": self.window,
            **self.evidence,
        }


class Detector:
    """ADWIN on one stream, with a cool-down and a direction filter (see the module doc)."""

    def __init__(
        self,
        name: str,
        *,
        delta: float = 0.002,
        cooldown: int = 1000,
        direction: Direction = "both",
        level: Literal["drift", "warning"] = "drift",
        clock: int = 32,
        grace_period: int = 30,
        min_change: float = 0.0,
        recent: int = 50,
    ) -> None:
        self.name = name
        self.min_change = min_change
        self._recent: deque[float] = deque(maxlen=recent)
        self._stamps: deque[float] = deque(maxlen=recent)
        self.delta = delta
        self.cooldown = cooldown
        self.direction = direction
        self.level = level
        self.adwin = drift.ADWIN(delta=delta, clock=clock, grace_period=grace_period)
        self.n = 0
        self.detections = 0  # raw ADWIN detections
        self.suppressed = 0
        self.alarms = 0
        self._last_alarm: int | None = None

    def in_cooldown(self) -> bool:
        return self._last_alarm is not None and self.n - self._last_alarm < self.cooldown

    def update(self, value: float, *, silent: bool = False, stamp: float | None = None) -> Alarm | None:
        """Feed one value; an Alarm when this is a new change in the watched direction.

        ``silent`` (used by the monitors for a shared cool-down) records a detection without
        raising an alarm. ``stamp`` (an event time) dates the value: an alarm's evidence then
        has ``since``, the earliest stamp among the latest ``recent`` values (those the change
        was measured on): where the change is known to have begun at the latest.
        """
        self.n += 1
        adwin = self.adwin
        recent = self._recent
        recent.append(value)
        self._stamps.append(math.nan if stamp is None else float(stamp))
        before = adwin.estimation
        adwin.update(value)
        if not adwin.drift_detected:
            return None
        self.detections += 1
        after = sum(recent) / len(recent)
        way: Literal["up", "down"] = "up" if after > before else "down"
        if (
            silent
            or self.in_cooldown()
            or (self.direction != "both" and way != self.direction)
            or abs(after - before) < self.min_change
        ):
            self.suppressed += 1
            return None
        self._last_alarm = self.n
        self.alarms += 1
        stamps = [t for t in self._stamps if t == t]
        return Alarm(
            level=self.level,
            detector=self.name,
            at=self.n,
            direction=way,
            mean_before=float(before),
            mean_after=float(after),
            window=int(adwin.width),
            evidence={"since": min(stamps)} if stamps else {},
        )

    def reset(self) -> None:
        """Forget the stream (e.g. a new champion: its error is a new stream)."""
        self.adwin = self.adwin.clone()
        self._recent.clear()
        self._stamps.clear()
        self._last_alarm = None


class _Group:
    """Several detectors sharing one cool-down: at most one alarm per ``cooldown`` updates."""

    def __init__(self, cooldown: int) -> None:
        self.cooldown = cooldown
        self.n = 0
        self._last: int | None = None

    def tick(self) -> bool:
        """Count one update; True while the group is silent."""
        self.n += 1
        return self._last is not None and self.n - self._last < self.cooldown

    def fired(self) -> None:
        self._last = self.n

    def reset(self) -> None:
        self._last = None


class ConceptDriftMonitor:
    """ADWIN on the champion's per-class prequential error, with warnings (see the module doc).

    ``update(y, p)`` returns the alarms of this label: at most one ``warning`` and one ``drift``
    (a drift also starts the warning's cool-down, so no warning follows its own drift).
    """

    def __init__(
        self,
        *,
        delta: float = 0.002,
        warning_delta: float | None = 0.05,
        cooldown: int = 1000,
        fraud_clock: int = 1,
        min_change: float = 0.02,
        classes: tuple[str, ...] = ("fraud", "genuine"),
    ) -> None:
        unknown = set(classes) - {"fraud", "genuine"}
        if unknown or not classes:
            raise ValueError(f"classes must be fraud and/or genuine, not {classes!r}")
        self.cooldown = cooldown
        self.classes = tuple(classes)
        # frauds are rare: their detector checks for a cut at every update, not every 32nd, and
        # measures a change on the latest 50 (the genuine one on the latest 500: errors on genuine
        # transactions are mostly tiny with a few large ones, a mean of 50 of them is noise)
        clocks = {"fraud": fraud_clock, "genuine": 32}
        recent = {"fraud": 50, "genuine": 500}
        self._drift = {
            c: Detector(f"error_{c}", delta=delta, cooldown=cooldown, direction="up",
                        clock=clocks[c], min_change=min_change, recent=recent[c])
            for c in self.classes
        }
        self._warn = (
            {
                c: Detector(
                    f"error_{c}", delta=warning_delta, cooldown=cooldown, direction="up",
                    level="warning", clock=clocks[c], min_change=min_change,
                    recent=recent[c],
                )
                for c in self.classes
            }
            if warning_delta is not None
            else {}
        )
        self._g_drift = _Group(cooldown)
        self._g_warn = _Group(cooldown)
        self.labels = 0
        self.drifts = 0
        self.warnings = 0

    def update(self, y: bool, p: float, event_time: float | None = None) -> list[Alarm]:
        """One label and the champion's prediction; ``event_time`` (its transaction's) dates
        the alarms (their ``since``)."""
        self.labels += 1
        c = "fraud" if y else "genuine"
        err = 1.0 - p if y else p
        out: list[Alarm] = []
        if c not in self._drift:
            return out
        quiet_drift = self._g_drift.tick()
        quiet_warn = self._g_warn.tick()
        alarm = self._drift[c].update(err, silent=quiet_drift, stamp=event_time)
        if alarm is not None:
            self._g_drift.fired()
            self._g_warn.fired()
            self.drifts += 1
            out.append(_with(alarm, labels=self.labels))
        if self._warn:
            warning = self._warn[c].update(err, silent=quiet_warn or alarm is not None,
                                           stamp=event_time)
            if warning is not None:
                self._g_warn.fired()
                self.warnings += 1
                out.insert(0, _with(warning, labels=self.labels))
        return out

    def reset(self) -> None:
        """Start over on a new champion's error stream."""
        for d in (*self._drift.values(), *self._warn.values()):
            d.reset()
        self._g_drift.reset()
        self._g_warn.reset()


class DataDriftMonitor:
    """ADWIN on the score and on the mean of each key feature (absent features are skipped).

    Feature values are watched as ``sign(v) * log1p(|v|)``: ADWIN's bound assumes light tails,
    and amounts and counts are heavy-tailed (measured on 150,000 stationary log-normal amounts:
    1 to 4 false alarms on the raw values with delta 1e-5, none on the log values, seeds 10-13).
    The score, in [0, 1], is watched as it is.

    One shared cool-down: a change that moves several of them raises one alarm (the first
    detector to see it); the others' detections during the cool-down are counted as suppressed.
    """

    def __init__(
        self, features: Iterable[str] = (), *, delta: float = 1e-5, cooldown: int = 5000
    ) -> None:
        self.features = list(features)
        self.delta = delta
        self.cooldown = cooldown
        self.score = Detector("score", delta=delta, cooldown=cooldown)
        self._features = {f: Detector(f"feature:{f}", delta=delta, cooldown=cooldown) for f in self.features}
        self._group = _Group(cooldown)
        self.alarms = 0

    def reset_score(self) -> None:
        """A new champion scores differently: start the score's stream over."""
        self.score.reset()

    def update(self, features: Mapping[str, Any], score: float | None) -> Alarm | None:
        quiet = self._group.tick()
        first: Alarm | None = None
        if score is not None:
            first = self.score.update(float(score), silent=quiet)
        for name, det in self._features.items():
            v = features.get(name)
            if v is None:
                continue
            try:
                f = float(v)
            except (TypeError, ValueError):
                continue
            if f - f != 0.0:
                continue
            f = math.copysign(math.log1p(abs(f)), f)
            a = det.update(f, silent=quiet or first is not None)
            if a is not None and first is None:
                first = a
        if first is not None:
            self._group.fired()
            self.alarms += 1
        return first


def _with(alarm: Alarm, **extra: Any) -> Alarm:
    return Alarm(
        level=alarm.level,
        detector=alarm.detector,
        at=alarm.at,
        direction=alarm.direction,
        mean_before=alarm.mean_before,
        mean_after=alarm.mean_after,
        window=alarm.window,
        evidence={**alarm.evidence, **extra},
    )
