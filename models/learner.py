"""The online learner: one process learns, many score (see ARCHITECTURE.md). Transport-free.

The worker joins each label with the feature snapshot stored at scoring time and calls
:meth:`OnlineLearner.learn`; it passes every scored transaction to :meth:`OnlineLearner.observe`
(unsupervised learning, data drift), calls :meth:`OnlineLearner.tick` every second or so (saves
snapshots scorers hot-swap to, notices an operator's promotion or rollback), and publishes every
returned :class:`~models.events.ModelEvent` to ``model-events``.

For each label, prequentially: every model (the champion, the challengers, a background model)
predicts BEFORE it learns; the prediction updates its rolling metrics
(:class:`~models.metrics.RollingMetrics`); then it learns. Unless ``drift_detection`` is off, once the champion has learned
``drift_warmup`` labels (a model's error while it first learns is no concept drift), its
per-class error (the classes of ``drift_classes``: the frauds by default, see
:mod:`models.drift`) feeds the concept drift monitor (:class:`~models.drift.ConceptDriftMonitor`):

- a WARNING starts a background model (see "drift models" below) that learns from then on, in
  shadow like a challenger (it may be promoted by the same rule below: an online champion partly
  adapts to a change, so its error may fall back before ADWIN at the drift level is sure); it is
  dropped after ``warning_max_labels`` labels without drift;
- a DRIFT makes that background model a challenger (when it started at most
  ``warning_max_labels`` labels ago), or else starts a drift challenger at the drift point;
- every ``promotion_check_every`` labels, the challengers are judged against the champion (the
  promotion rule below); nothing else ever replaces the champion. A drift challenger not
  promoted after ``challenger_max_labels`` labels is dropped.

At a warning (or a drift without one) the CHAMPION also holds back the labels of the drifted
class whose transactions came before the change (``drift_hold``, :class:`Hold`): with label
delays of days to weeks, chargebacks of the old pattern keep arriving long after fraud changed,
and an online champion that goes on learning them is pulled back to the old concept while the few
fresh labels of the new one push it forward (measured in bench/drift.py: a copy of the champion
that skipped them was ahead by 0.04-0.09 average precision a day for the ten days after a
change). The held labels are kept: if no drift confirms the warning within
``warning_max_labels`` labels they are learned late (an event says so) and nothing is lost on a
false alarm; a drift confirms the hold and lets them go. The champion stays the same model: what
changes is which labels it learns, so no untested model is put in charge.

Only FRESH labels feed the concept drift detector, and what it watches is what the system did
when their transactions were SCORED (``score``, from the saved ScoredEvent), not the champion's
prediction now (it has learned other labels of the same change since): with ``drift_signal``
"score" (default) the live score's error ``1 - score``; with "alert" whether the live score was
in the top ``promotion_alert_share`` of live traffic (a missed fraud is an error). "alert" is
immune to the score's calibration drifting while a champion learns (on bench/drift.py's cold
start the fraud-class error rose from 0.3 to 0.6 over days 8-14 without any change of fraud and
raised false warnings there), but a yes/no per label is a weaker signal: on the spree drift it
warned 1-7 days later and recovered less (bench/README.md): a label reported more than
``drift_label_age`` after its transaction (a chargeback weeks later) tells how fraud looked
then, not now. Drift models (``drift_challenger``): afresh with the champion's input statistics
(``fresh``, :meth:`~models.zoo.Model.restart`, with ``drift_model_params`` overriding the
champion's parameters: a conservative champion with agile drift challengers; the default: with
``drift_hold`` a copy of the champion would learn exactly the labels the champion learns, a
twin that cannot win) or the champion going on (``continue``, a copy);
either learns the drifted class (the class whose error rose) only from transactions at or after
the drift point (the alarm's ``since``: the earliest transaction among those the change was
measured on), so late labels of the old concept do not pull it back.

The promotion rule (``promotion_judge``):

- ``live`` (default): what each model said when a transaction was SCORED. :meth:`observe`
  (with the transaction id) asks every rival (challengers, background model) and the
  champion's in-learner state (not the scorers' older snapshot: a twin would win by being
  fresher) for their scores and keeps them, with each score's alert rank among that model's
  recent scores, until the transaction's label (:mod:`models.shadow`). A challenger wins
  on the latest ``promotion_window`` labelled transactions both scored live, with at least
  ``promotion_min_positives`` frauds among them: ``alert_recall`` (the share of those frauds in
  the model's top ``promotion_alert_share`` of live traffic) ahead by ``promotion_margin`` and
  significant by a one-sided sign test at ``promotion_alpha``; or ``average_precision`` /
  ``roc_auc`` of the live scores ahead by the margin;
- ``labels``: each model's prequential ``promotion_metric`` (``average_precision``/``roc_auc``)
  on the latest N labels, predicted when the label arrived. Biased with class-dependent label
  delays: a model asked at label time has learned labels of transactions that came after the
  one it is judged on (the first fraud label of a spree tells it the card), and the latest N
  labels are not a sample of live traffic (genuine ones a week old, fraud ones hours to weeks).

Snapshots: every ``snapshot_every_labels`` labels, or ``snapshot_every_s`` seconds when anything
was learned, the champion's learned state is saved to the registry (``kind="online"``, parent =
the previous champion version) and the champion pointer advanced to it; challengers that learned
are saved too and listed as the registry's challengers. If an operator promoted or rolled back
meanwhile, the learner adopts the registry's champion instead (and says so with an event).

Duplicate labels (the same transaction id again, at-least-once delivery) are ignored.
"""

from __future__ import annotations

import copy
import itertools
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from fraudstream.errors import ArtifactError, ConfigError, NotFoundError, RegistryConflictError
from fraudstream.settings import Settings
from models.drift import Alarm, ConceptDriftMonitor, DataDriftMonitor
from models.events import ModelEvent
from models.metrics import RollingMetrics
from models.registry import ModelRegistry, ModelVersion
from models.shadow import LiveComparison, LiveRanks, ShadowBook
from models.zoo import Model, build_model

__all__ = ["LearnerConfig", "OnlineLearner", "Slot"]


@dataclass(frozen=True)
class LearnerConfig:
    """The learner's knobs; :meth:`from_settings` reads them from :class:`Settings`."""

    model: str = "logreg"
    model_params: Mapping[str, Any] = field(default_factory=dict)
    challengers: tuple[str, ...] = ()
    threshold: float = 0.5
    metrics_window: int = 5000
    metrics_days: int = 7
    card_precision_k: int = 100
    promotion_judge: str = "live"
    promotion_metric: str = "alert_recall"
    promotion_alert_share: float = 0.01
    promotion_alpha: float = 0.05
    promotion_keep_scores: int = 200_000
    promotion_rank_window: int = 20_000
    promotion_window: int = 5000
    promotion_margin: float = 0.02
    promotion_min_positives: int = 30
    promotion_check_every: int = 100
    promote_configured_challengers: bool = True
    challenger_max_labels: int = 50_000
    max_drift_challengers: int = 2
    drift_detection: bool = True
    drift_classes: tuple[str, ...] = ("fraud",)
    drift_delta: float = 0.002
    drift_warning_delta: float | None = 0.05
    drift_cooldown: int = 100
    drift_min_change: float = 0.02
    drift_warmup: int = 1000
    drift_label_age: float | None = 3 * 86400.0
    drift_challenger: str = "fresh"
    drift_model_params: Mapping[str, Any] = field(default_factory=dict)
    drift_signal: str = "score"
    warning_max_labels: int = 50_000
    drift_hold: bool = True
    hold_max_labels: int = 100_000
    data_drift_delta: float = 1e-5
    data_drift_cooldown: int = 50_000
    drift_features: tuple[str, ...] = ("amount", "TX_AMOUNT")
    snapshot_every_labels: int = 500
    snapshot_every_s: float = 10.0
    dedup_size: int = 200_000

    def __post_init__(self) -> None:
        if self.drift_challenger not in ("continue", "fresh"):
            raise ConfigError(f"drift_challenger must be continue or fresh, not {self.drift_challenger!r}")
        if self.promotion_judge not in ("live", "labels"):
            raise ConfigError(f"promotion_judge must be live or labels, not {self.promotion_judge!r}")
        if self.drift_signal not in ("alert", "score"):
            raise ConfigError(f"drift_signal must be alert or score, not {self.drift_signal!r}")
        if self.drift_model_params:  # a typo fails at start, not at the first drift
            build_model(self.model, {**self.model_params, **self.drift_model_params})
        metrics = ("alert_recall", "average_precision", "roc_auc")
        if self.promotion_metric not in metrics or (
                self.promotion_judge == "labels" and self.promotion_metric == "alert_recall"):
            raise ConfigError(
                f"promotion_metric {self.promotion_metric!r} with promotion_judge "
                f"{self.promotion_judge!r}: use one of {', '.join(metrics)} (alert_recall: live only)")

    @classmethod
    def from_settings(cls, s: Settings, **overrides: Any) -> LearnerConfig:
        values: dict[str, Any] = {
            "model": s.model,
            "model_params": dict(s.model_params),
            "challengers": tuple(s.challengers),
            "threshold": s.review_threshold,
            "metrics_window": s.metrics_window,
            "metrics_days": s.metrics_days,
            "card_precision_k": s.card_precision_k,
            "promotion_judge": s.promotion_judge,
            "promotion_metric": s.promotion_metric,
            "promotion_alert_share": s.promotion_alert_share,
            "promotion_alpha": s.promotion_alpha,
            "promotion_keep_scores": s.promotion_keep_scores,
            "promotion_rank_window": s.promotion_rank_window,
            "promotion_window": s.promotion_window,
            "promotion_margin": s.promotion_margin,
            "promotion_min_positives": s.promotion_min_positives,
            "promotion_check_every": s.promotion_check_every,
            "promote_configured_challengers": s.promote_configured_challengers,
            "challenger_max_labels": s.challenger_max_labels,
            "drift_detection": s.drift_detection,
            "drift_classes": tuple(s.drift_classes),
            "drift_delta": s.drift_delta,
            "drift_warning_delta": s.drift_warning_delta,
            "drift_cooldown": s.drift_cooldown,
            "drift_min_change": s.drift_min_change,
            "drift_warmup": s.drift_warmup,
            "drift_label_age": s.drift_label_age_s,
            "drift_challenger": s.drift_challenger,
            "drift_model_params": dict(s.drift_model_params),
            "drift_signal": s.drift_signal,
            "warning_max_labels": s.warning_max_labels,
            "drift_hold": s.drift_hold,
            "data_drift_delta": s.data_drift_delta,
            "data_drift_cooldown": s.data_drift_cooldown,
            "drift_features": tuple(s.drift_features),
            "snapshot_every_labels": s.snapshot_every_labels,
            "snapshot_every_s": s.snapshot_every_s,
        }
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown learner options: {', '.join(sorted(unknown))}")
        values.update(overrides)
        return cls(**values)


@dataclass
class Slot:
    """One model the learner runs: the champion, a challenger, or the background model."""

    label: str  # "champion", a configured challenger's name, "drift-2", "background"
    model: Model
    metrics: RollingMetrics
    origin: str  # "config" | "registry" | "drift" | "warning"
    started_at_label: int
    key: int  # unique within the learner: names the slot's column of live scores
    ranks: LiveRanks  # its latest live scores: the reference of its alert ranks
    live: LiveComparison  # against the champion, on live scores (unused for the champion)
    labels: int = 0
    version: str | None = None  # its latest registry version
    saved_at_labels: int = -1
    first_event_time: float | None = None
    last_event_time: float | None = None
    drift: dict[str, Any] = field(default_factory=dict)  # the alarm that started it
    threshold: float | None = None  # the operating threshold of the version it continues
    since: float | None = None  # a drift model learns its drifted class from this event time on
    drifted: str | None = None  # that class: "fraud" or "genuine"

    def learns(self, y: bool, event_time: float) -> bool:
        """False for a label of the drifted class older than the drift point (the old concept)."""
        if self.since is None or ("fraud" if y else "genuine") != self.drifted:
            return True
        return event_time >= self.since

    def time_range(self) -> tuple[float, float] | None:
        if self.first_event_time is None or self.last_event_time is None:
            return None
        return (self.first_event_time, self.last_event_time)


@dataclass
class Hold:
    """The champion holding back the labels of a drifted class older than ``since``.

    Started at a concept drift warning or drift (``since``: the alarm's, where the change had
    begun at the latest). While unconfirmed the held labels are kept (at most ``size``; the
    oldest go first, counted in ``dropped``): a warning that no drift follows within
    ``warning_max_labels`` labels RELEASES them (the champion learns them late, nothing is lost);
    a drift confirms the hold and they are let go (they teach the old concept).
    """

    since: float
    drifted: str
    started_at_label: int
    previous: tuple[float | None, str | None]  # the champion's own drift point before the hold
    size: int
    confirmed: bool = False
    dropped: int = 0
    held: deque[tuple[Mapping[str, Any], bool]] = field(default_factory=deque)

    def keep(self, features: Mapping[str, Any], y: bool) -> None:
        if len(self.held) >= self.size:
            self.held.popleft()
            self.dropped += 1
        self.held.append((features, y))

    def as_evidence(self) -> dict[str, Any]:
        return {"class": self.drifted, "since": self.since, "held": len(self.held),
                "dropped": self.dropped, "confirmed": self.confirmed}


class OnlineLearner:
    """The single learner's logic (see the module doc). Not thread-safe: one caller at a time."""

    def __init__(
        self,
        registry: ModelRegistry,
        config: LearnerConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.config = config or LearnerConfig()
        self.clock = clock
        c = self.config
        self._window = max(c.metrics_window, c.promotion_window)
        self.labels = 0
        self.observed = 0
        self.duplicates = 0
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._pending: list[ModelEvent] = []
        self._drift_seq = 0
        self._keys = itertools.count(1)
        self.shadow = ShadowBook(c.promotion_keep_scores)
        self.challengers: list[Slot] = []
        self.background: Slot | None = None
        self.hold: Hold | None = None  # the champion holds back old-concept labels (see the doc)
        self._in_charge_since = -math.inf  # event time from which the champion scored live
        self._live = LiveRanks(size=c.promotion_rank_window)  # the latest live scores
        self._last_event_time = -math.inf
        self.concept = ConceptDriftMonitor(
            delta=c.drift_delta,
            warning_delta=c.drift_warning_delta,
            cooldown=c.drift_cooldown,
            min_change=c.drift_min_change,
            classes=c.drift_classes,
        )
        self.data = DataDriftMonitor(
            c.drift_features, delta=c.data_drift_delta, cooldown=c.data_drift_cooldown
        )
        self.champion = self._start_champion()
        self._start_challengers()
        self._last_snapshot_at = self.clock()
        self._labels_at_snapshot = self.labels
        self._observed_at_snapshot = self.observed

    @classmethod
    def from_settings(
        cls, settings: Settings, registry: ModelRegistry | None = None, **overrides: Any
    ) -> OnlineLearner:
        """The learner of a worker: registry at ``settings.registry_path``, config from settings."""
        if registry is None:
            registry = ModelRegistry(
                settings.registry_path,
                settings.hmac_key,
                keep_online=settings.registry_keep_snapshots,
            )
        return cls(registry, LearnerConfig.from_settings(settings, **overrides))

    # -- set-up -------------------------------------------------------------------------------
    def _slot(self, label: str, model: Model, origin: str, **kw: Any) -> Slot:
        c = self.config
        return Slot(
            label=label,
            model=model,
            metrics=RollingMetrics(
                window=self._window, threshold=c.threshold, k=c.card_precision_k, days=c.metrics_days
            ),
            origin=origin,
            started_at_label=self.labels,
            key=next(self._keys),
            ranks=LiveRanks(size=c.promotion_rank_window),
            live=LiveComparison(c.promotion_window),
            **kw,
        )

    def _start_champion(self) -> Slot:
        """The registry's champion (continue learning it), or a new one saved as v1-style."""
        version = self.registry.champion_version()
        if version is not None:
            model, meta = self.registry.load(version)
            return self._slot("champion", model, "registry", version=meta.version,
                              saved_at_labels=0, threshold=meta.threshold)
        model = build_model(self.config.model, self.config.model_params)
        meta = self.registry.save(
            model, name=model.name, params=model.params, kind="online",
            threshold=self.config.threshold, note="initial champion (unfitted)",
        )
        self.registry.promote(meta.version, reason="initial champion")
        return self._slot("champion", model, "config", version=meta.version, saved_at_labels=0)

    def _start_challengers(self) -> None:
        names = list(self.config.challengers)
        for meta in self.registry.challengers():
            try:
                model, _ = self.registry.load(meta.version)
            except (ArtifactError, NotFoundError):
                continue
            label = meta.note.removeprefix("challenger ").strip() or meta.name
            if label in names:
                names.remove(label)
            self.challengers.append(
                self._slot(label, model, "registry", version=meta.version, saved_at_labels=0,
                           threshold=meta.threshold)
            )
        for name in names:
            self.challengers.append(self._slot(name, build_model(name), "config"))

    # -- properties ---------------------------------------------------------------------------
    @property
    def champion_version(self) -> str | None:
        return self.champion.version

    def slots(self) -> list[Slot]:
        """Every model learning now: champion first, then challengers, then the background one."""
        out = [self.champion, *self.challengers]
        if self.background is not None:
            out.append(self.background)
        return out

    def rivals(self) -> list[Slot]:
        """The models judged against the champion: the challengers, then the background one."""
        out = list(self.challengers)
        if self.background is not None:
            out.append(self.background)
        return out

    # -- labels -------------------------------------------------------------------------------
    def learn(
        self,
        features: Mapping[str, Any],
        is_fraud: bool,
        *,
        transaction_id: str,
        card_id: str,
        event_time: float,
        reported_at: float | None = None,
        score: float | None = None,
    ) -> list[ModelEvent]:
        """Learn one label (prequential: each model predicts before it learns); events raised.

        ``event_time`` is the transaction's, ``reported_at`` the label's (both epoch seconds);
        a label reported more than ``drift_label_age`` after its transaction does not feed the
        concept drift detector (it tells how fraud looked then, not now). ``score`` is what the
        system said when the transaction was SCORED (the saved ScoredEvent's): the concept drift
        detector watches its error, the error the fraud team lived with; the champion's
        prediction now (used when ``score`` is None, or for a transaction scored before the
        champion took charge) has meanwhile learned other labels of the same change, and hides
        part of it."""
        events = self._drain()
        tid = str(transaction_id)
        if tid in self._seen:
            self.duplicates += 1
            return events
        self._seen[tid] = None
        if len(self._seen) > self.config.dedup_size:
            self._seen.popitem(last=False)
        y = bool(is_fraud)
        self.labels += 1
        self._last_event_time = max(self._last_event_time, event_time)
        c = self.config
        p_champion = 0.0
        for slot in self.slots():
            p = slot.model.predict_proba_one(features)
            slot.metrics.update(y, p, card_id=card_id, event_time=event_time)
            if slot.learns(y, event_time):
                slot.model.learn_one(features, y)
            elif slot is self.champion and self.hold is not None and not self.hold.confirmed:
                self.hold.keep(features, y)
            slot.labels += 1
            if slot.first_event_time is None:
                slot.first_event_time = event_time
            slot.last_event_time = event_time
            if slot is self.champion:
                p_champion = p
        if self.config.promotion_judge == "live":
            self._pair(tid, y)
        fresh = (reported_at is None or c.drift_label_age is None
                 or reported_at - event_time <= c.drift_label_age)
        if c.drift_detection and fresh and self.champion.model.labels_learned > c.drift_warmup:
            if score is not None and event_time >= self._in_charge_since:
                p_champion = float(score)
                rank = self._live.rank(p_champion) if c.drift_signal == "alert" else math.nan
                if rank == rank:  # alerted (1) or not (0): the watched error is a missed fraud
                    p_champion = 1.0 if rank <= c.promotion_alert_share else 0.0
            for alarm in self.concept.update(y, p_champion, event_time):
                events.append(self._on_alarm(alarm, event_time))
        self._expire(event_time)
        if self.labels % self.config.promotion_check_every == 0:
            events.extend(self._check_promotion(event_time))
        return events

    def _pair(self, tid: str, y: bool) -> None:
        """The label of a transaction the champion and rivals scored live joins their comparisons."""
        said = self.shadow.pop(tid)
        if not said:
            return
        champ = said.get(self.champion.key)
        if champ is None:
            return
        for slot in self.rivals():
            mine = said.get(slot.key)
            if mine is not None:
                slot.live.add(y, champ[0], mine[0], champ[1], mine[1])

    def _prune_shadow(self) -> None:
        """Forget the live scores of models that are gone."""
        alive = {s.key for s in self.slots()}
        for key in self.shadow.models():
            if key not in alive:
                self.shadow.forget(key)

    def _drift_model(self, label: str, origin: str, evidence: dict[str, Any]) -> Slot:
        """A model of the concept since the drift point (see the module doc): the champion
        going on (``drift_challenger`` "continue") or afresh ("fresh"), that learns the drifted
        class only from transactions at or after the drift point (``since``)."""
        champ = self.champion.model
        fresh = self.config.drift_challenger == "fresh"
        params = self.config.drift_model_params
        if not fresh:
            model = copy.deepcopy(champ)
        else:
            try:
                model = champ.restart(params)
            except ConfigError as exc:  # the champion (from the registry) is another kind
                evidence["drift_model_params_refused"] = str(exc)
                model, params = champ.restart(), {}
        evidence["model_from"] = "fresh (the champion's input statistics)" if fresh else "the champion"
        if fresh and params:
            evidence["model_params"] = dict(params)
        return self._slot(label, model, origin, drift=evidence, since=evidence.get("since"),
                          drifted=str(evidence.get("detector", "error_fraud")).removeprefix("error_"),
                          threshold=None if fresh else self.champion.threshold)

    def _on_alarm(self, alarm: Alarm, event_time: float) -> ModelEvent:
        champ = self.champion
        evidence = {"type": "concept", **alarm.as_evidence(), "labels": self.labels}
        if self.config.drift_hold:
            self._hold(evidence, confirm=alarm.level == "drift")
        if alarm.level == "warning":
            started = self.background is None
            if started:
                self.background = self._drift_model("background", "warning", evidence)
            evidence["background_started"] = started
            return self._event("warning", champ, evidence, event_time)
        bg = self.background
        self.background = None
        self._drift_seq += 1
        label = f"drift-{self._drift_seq}"
        if bg is not None and bg.labels <= self.config.warning_max_labels:
            slot = bg
            slot.label, slot.origin = label, "warning"
            evidence["challenger_from"] = f"background model started at a warning {bg.labels} labels ago"
        else:
            slot = self._drift_model(label, "drift", evidence)
            evidence["challenger_from"] = "drift model started at the drift point"
        slot.drift = evidence
        evidence["challenger"] = label
        drift_slots = [s for s in self.challengers if s.origin in ("drift", "warning")]
        while len(drift_slots) >= self.config.max_drift_challengers:
            oldest = drift_slots.pop(0)
            self.challengers.remove(oldest)
            evidence.setdefault("dropped", []).append(oldest.label)
        self.challengers.append(slot)
        self._prune_shadow()
        return self._event("drift", champ, evidence, event_time)

    def _hold(self, evidence: dict[str, Any], *, confirm: bool) -> None:
        """Make the champion hold back old-concept labels of the drifted class (see :class:`Hold`)."""
        since = evidence.get("since")
        champ = self.champion
        hold = self.hold
        if hold is None and since is not None:
            drifted = str(evidence.get("detector", "error_fraud")).removeprefix("error_")
            hold = Hold(since=float(since), drifted=drifted, started_at_label=self.labels,
                        previous=(champ.since, champ.drifted), size=self.config.hold_max_labels)
            champ.since, champ.drifted = hold.since, drifted
            self.hold = hold
        if hold is None:
            return
        if confirm:
            hold.confirmed = True
            hold.held.clear()
            self.hold = None  # for good: the champion keeps its new drift point
        evidence["champion_holds"] = hold.as_evidence()

    def _release(self, event_time: float) -> None:
        """A warning no drift followed: the champion learns the labels it held back, late."""
        hold = self.hold
        assert hold is not None
        champ = self.champion
        champ.since, champ.drifted = hold.previous
        for x, y in hold.held:
            champ.model.learn_one(x, y)
        self.hold = None
        self._pending.append(self._event("warning", champ, {
            "type": "hold released", **hold.as_evidence(), "labels": self.labels,
            "reason": f"no concept drift within {self.config.warning_max_labels} labels of the warning",
        }, event_time))

    def _expire(self, event_time: float) -> None:
        c = self.config
        if self.hold is not None and self.labels - self.hold.started_at_label > c.warning_max_labels:
            self._release(event_time)
        before = len(self.challengers) + (self.background is not None)
        if self.background is not None and self.background.labels > c.warning_max_labels:
            self.background = None  # the warning was not followed by a drift
        self.challengers = [
            s for s in self.challengers
            if s.origin not in ("drift", "warning") or s.labels <= c.challenger_max_labels
        ]
        if len(self.challengers) + (self.background is not None) != before:
            self._prune_shadow()

    def _eligible(self, slot: Slot) -> bool:
        if slot.origin in ("drift", "warning"):  # drift challengers and the background model
            return True
        return self.config.promote_configured_challengers

    def compare(self, slot: Slot) -> dict[str, Any]:
        """The promotion rule's evidence for one challenger against the champion, right now."""
        c = self.config
        n = c.promotion_window
        if c.promotion_judge == "live":
            verdict = slot.live.verdict(
                c.promotion_metric, margin=c.promotion_margin,
                min_positives=c.promotion_min_positives, alert_share=c.promotion_alert_share,
                alpha=c.promotion_alpha)
            return {**verdict, "window": n, "challenger": slot.label,
                    "challenger_labels": slot.labels}
        champ = self.champion
        positives = champ.metrics.positives_in(n)
        ch = slot.metrics.metric(c.promotion_metric, n) if slot.labels >= n else float("nan")
        cp = champ.metrics.metric(c.promotion_metric, n)
        ready = slot.labels >= n and positives >= c.promotion_min_positives
        wins = ready and ch == ch and (cp != cp or ch - cp >= c.promotion_margin)
        return {
            "metric": c.promotion_metric,
            "window": n,
            "margin": c.promotion_margin,
            "positives": positives,
            "challenger": slot.label,
            "challenger_value": None if ch != ch else round(ch, 6),
            "champion_value": None if cp != cp else round(cp, 6),
            "challenger_labels": slot.labels,
            "ready": ready,
            "wins": bool(wins),
        }

    def _check_promotion(self, event_time: float) -> list[ModelEvent]:
        best: tuple[float, Slot, dict[str, Any]] | None = None
        candidates = list(self.challengers)
        if self.background is not None:
            candidates.append(self.background)
        for slot in candidates:
            if not self._eligible(slot):
                continue
            verdict = self.compare(slot)
            if verdict["wins"]:
                gain = verdict["challenger_value"] - (verdict["champion_value"] or 0.0)
                if best is None or gain > best[0]:
                    best = (gain, slot, verdict)
        if best is None:
            return []
        return [self._promote(best[1], best[2], event_time)]

    def _promote(self, slot: Slot, verdict: dict[str, Any], event_time: float) -> ModelEvent:
        old = self.champion
        meta = self._save(slot, parent=old.version, note=f"promoted challenger {slot.label}")
        slot.saved_at_labels = slot.labels
        judged = " (live scores)" if verdict.get("judged_on") == "live scores" else ""
        self.registry.promote(
            meta.version,
            reason=(
                f"{slot.label}: {verdict['metric']} {verdict['challenger_value']} vs champion "
                f"{verdict['champion_value']} on the latest {verdict['window']} labels{judged}"
            ),
        )
        if slot is not self.background:
            self.challengers.remove(slot)
        if slot.origin in ("drift", "warning"):  # the other drift challengers chased the old one
            self.challengers = [s for s in self.challengers if s.origin not in ("drift", "warning")]
        self.background = None
        slot.label, slot.version = "champion", meta.version
        self.champion = slot
        self.hold = None  # the new champion has its own drift point
        self._in_charge_since = max(event_time, self._last_event_time)
        for other in self.rivals():  # they were compared with the previous champion
            other.live.clear()
        self._prune_shadow()
        self.concept.reset()
        self.data.reset_score()
        self._publish_challengers()
        evidence = {
            **verdict,
            "previous": old.version,
            "previous_model": old.model.name,
            "origin": slot.origin,
            "drift": slot.drift or None,
        }
        return self._event("promotion", slot, evidence, event_time)

    # -- scored transactions ------------------------------------------------------------------
    def observe(
        self,
        features: Mapping[str, Any],
        score: float | None,
        *,
        transaction_id: str | None = None,
    ) -> list[ModelEvent]:
        """One scored transaction: what every model says of it now is kept until its label (with
        ``transaction_id``, see :meth:`compare`), unsupervised models learn, data drift is watched.

        ``score`` is what the champion said when the transaction was scored (for data drift;
        None: the learner's champion is asked now)."""
        events = self._drain()
        self.observed += 1
        if transaction_id is not None and self.config.promotion_judge == "live":
            self._shadow_score(features, str(transaction_id))
        for slot in self.slots():
            if slot.model.unsupervised:
                slot.model.observe_one(features)
        if score is not None and self.config.drift_signal == "alert":
            self._live.add(float(score))
        alarm = self.data.update(features, score)
        if alarm is not None:
            events.append(
                self._event("drift", self.champion, {"type": "data", **alarm.as_evidence(),
                                                     "observed": self.observed}, None)
            )
        return events

    def _shadow_score(self, features: Mapping[str, Any], tid: str) -> None:
        champ = self.champion
        rivals = self.rivals()
        if not rivals:
            if len(champ.ranks):
                champ.ranks.clear()  # a rival starts with a fresh reference, so does the champion
            return
        # judged on equal terms: the champion's state now, like the rivals', its alert ranks
        # among its own predictions made the same way. The live ``score`` came from the
        # scorers' snapshot, up to ``snapshot_every_labels`` labels older: an online model's
        # scores drift as it learns (measured on bench/drift.py: mean 0.120 in the snapshots
        # vs 0.098 now): against them a background copy of the champion, learning the same
        # labels, was promoted with alert recall 0.22 vs 0.06.
        p = champ.model.predict_proba_one(features)
        said: dict[Hashable, tuple[float, float]] = {champ.key: (p, champ.ranks.rank(p))}
        champ.ranks.add(p)
        for slot in rivals:
            q = slot.model.predict_proba_one(features)
            said[slot.key] = (q, slot.ranks.rank(q))
            slot.ranks.add(q)
        self.shadow.record(tid, said)

    # -- snapshots and the registry -----------------------------------------------------------
    def tick(self, now: float | None = None) -> list[ModelEvent]:
        """Call periodically: adopt an operator's promotion/rollback, save due snapshots."""
        self._pending.extend(self.sync())
        self.maybe_snapshot(now)
        return self._drain()

    def sync(self) -> list[ModelEvent]:
        """Adopt the registry's champion when someone else changed it; its event, if any."""
        v = self.registry.champion_version()
        if v is None or v == self.champion.version:
            return []
        old = self.champion
        try:
            model, meta = self.registry.load(v)
        except (ArtifactError, NotFoundError) as exc:
            return [self._event("warning", old, {"type": "registry", "error": str(exc),
                                                 "champion_version": v}, None)]
        last: dict[str, Any] = next(
            (e for e in reversed(self.registry.history(200))
             if e.get("version") == v and e.get("event") in ("promote", "rollback")),
            {},
        )
        self.champion = self._slot("champion", model, "registry", version=meta.version,
                                   saved_at_labels=0, threshold=meta.threshold)
        self.background = None
        self.hold = None
        self._in_charge_since = self._last_event_time
        self.challengers = [s for s in self.challengers if s.origin not in ("drift", "warning")]
        for other in self.challengers:
            other.live.clear()
        self._prune_shadow()
        self.concept.reset()
        self.data.reset_score()
        self._mark_snapshot(self.clock())  # nothing of the adopted champion is unsaved
        kind = "rollback" if last.get("event") == "rollback" else "promotion"
        return [self._event(kind, self.champion, {
            "source": "registry", "previous": old.version, "reason": last.get("reason", ""),
        }, None)]

    def maybe_snapshot(self, now: float | None = None, force: bool = False) -> ModelVersion | None:
        """Save the champion's learned state when due (labels or time); the new version or None.

        The champion pointer moves to it at once (scorers poll it). The snapshot event is
        returned by the next :meth:`tick`, :meth:`learn` or :meth:`observe`. ``force``: save
        whatever was learned since the last snapshot, due or not (see :meth:`save_unsaved`).
        """
        now = self.clock() if now is None else now
        c = self.config
        new_labels = self.labels - self._labels_at_snapshot
        new_obs = self.observed - self._observed_at_snapshot if self.champion.model.unsupervised else 0
        due = new_labels >= c.snapshot_every_labels or bool(new_labels or new_obs) and (
            force or now - self._last_snapshot_at >= c.snapshot_every_s
        )
        if not due:
            return None
        champ = self.champion
        parent = champ.version
        meta = self._save(champ, parent=parent, note="online snapshot")
        try:
            self.registry.advance(meta.version, expected=parent, reason="online snapshot")
        except RegistryConflictError:
            self._pending.extend(self.sync())  # an operator changed the champion meanwhile
            self._mark_snapshot(now)
            return None
        champ.version = meta.version
        champ.saved_at_labels = champ.labels
        for slot in self.challengers:
            if slot.labels != slot.saved_at_labels:
                slot.version = self._save(slot, parent=slot.version, note=f"challenger {slot.label}").version
                slot.saved_at_labels = slot.labels
        self._publish_challengers()
        self._mark_snapshot(now)
        self._pending.append(self._event("snapshot", champ, {
            "labels_learned": champ.model.labels_learned,
            "labels_since_last": new_labels,
            "observed_since_last": self.observed - self._observed_at_snapshot,
            "metrics": meta.metrics,
        }, champ.last_event_time))
        return meta

    def save_unsaved(self, now: float | None = None) -> list[ModelEvent]:
        """Snapshot what the champion learned since its last snapshot; the pending events.

        A clean stop calls it: the labels' Kafka offsets are committed when the worker stops, so
        what is not in a snapshot would be forgotten by the next learner (it starts from the
        registry's champion). Challengers are saved with it, as in every snapshot.
        """
        self.maybe_snapshot(now, force=True)
        return self._drain()

    def _mark_snapshot(self, now: float) -> None:
        self._last_snapshot_at = now
        self._labels_at_snapshot = self.labels
        self._observed_at_snapshot = self.observed

    def _save(self, slot: Slot, *, parent: str | None, note: str) -> ModelVersion:
        meta = self.registry.save(
            slot.model,
            name=slot.model.name,
            params=slot.model.params,
            parent=parent,
            labels_learned=slot.model.labels_learned,
            metrics=slot.metrics.summary(),
            time_range=slot.time_range(),
            # a version learning on keeps the operating threshold chosen for it (offline, for the
            # FPR target); a model the learner started takes the configured one
            threshold=self.config.threshold if slot.threshold is None else slot.threshold,
            kind="online",
            note=note,
        )
        return meta

    def _publish_challengers(self) -> None:
        versions = [s.version for s in self.challengers if s.version]
        if versions != self.registry.challenger_versions():
            self.registry.set_challengers(versions, reason="learner")

    # -- reporting ----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Every model's rolling metrics and the drift counters (for the API and logs)."""

        def one(s: Slot) -> dict[str, Any]:
            return {
                "label": s.label,
                "model": s.model.name,
                "version": s.version,
                "origin": s.origin,
                "labels": s.labels,
                "labels_learned": s.model.labels_learned,  # its lineage's, held labels not yet
                "metrics": s.metrics.summary(),
            }

        return {
            "labels": self.labels,
            "observed": self.observed,
            "duplicates": self.duplicates,
            "champion": one(self.champion),
            "challengers": [one(s) for s in self.challengers],
            "background": one(self.background) if self.background else None,
            "drifts": self.concept.drifts,
            "warnings": self.concept.warnings,
            "data_drifts": self.data.alarms,
        }

    def _event(
        self, kind: str, slot: Slot, evidence: dict[str, Any], event_time: float | None
    ) -> ModelEvent:
        return ModelEvent(
            kind=kind,  # type: ignore[arg-type]
            model=slot.model.name,
            version=slot.version,
            evidence=evidence,
            event_time=event_time,
        )

    def _drain(self) -> list[ModelEvent]:
        out, self._pending = self._pending, []
        return out
