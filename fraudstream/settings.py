"""The one configuration object of fraudstream.

Every setting comes from the environment (prefix ``FRAUDSTREAM_``) or a ``.env`` file, is validated
when the process starts, and is passed in to whatever needs it; nothing reads the environment
anywhere else. This module is a leaf: it imports nothing else of the project.

>>> s = Settings(_env_file=None, kafka_bootstrap="127.0.0.1:9092")
>>> s.topic("transactions")
'transactions'
>>> Settings(_env_file=None, topic_prefix="t1-").topic("scored")
't1-scored'
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "change-me"  # noqa: S105 - a marker, refused outside local mode

TOPIC_NAMES = ("transactions", "scored", "labels", "transactions.dlq", "labels.dlq", "model-events",
               "labels.retry")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(value: str | float | int) -> float:
    """Seconds in a duration written as ``90``, ``1.5s``, ``10m``, ``1h``, ``7d`` or ``2w``.

    >>> parse_duration("7d"), parse_duration("10m"), parse_duration(30), parse_duration("250ms")
    (604800.0, 600.0, 30.0, 0.25)
    >>> parse_duration("soon")
    Traceback (most recent call last):
    ...
    ValueError: not a duration: 'soon' (use e.g. 30s, 10m, 1h, 7d)
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 10m, 1h, 7d)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]


class Settings(BaseSettings):
    """All of fraudstream's settings; see the README for each one's meaning."""

    model_config = SettingsConfigDict(
        env_prefix="FRAUDSTREAM_", env_file=".env", extra="ignore", validate_default=True
    )

    # -- mode and places ---------------------------------------------------------------------
    env: Literal["local", "test", "production"] = "local"
    home: Path = Field(default=Path(".fraudstream"), description="state: services, registry, jobs")
    cache_dir: Path = Field(default=Path(".cache"), description="downloads: Kafka jars")
    datasets_dir: Path | None = Field(default=None, description="unset: <home>/datasets")
    jobs_dir: Path | None = Field(default=None, description="unset: <home>/jobs (API job records)")

    # -- services ----------------------------------------------------------------------------
    kafka_bootstrap: str | None = Field(
        default=None, description="use this Kafka; when unset, the embedded one is started"
    )
    redis_url: str | None = Field(
        default=None, description="use this Redis; when unset, the embedded one is started"
    )
    kafka_port: int = 39092
    kafka_controller_port: int = 39093
    redis_port: int = 36379
    kafka_version: str = "4.1.1"
    broker: Literal["auto", "kafka", "tansu"] = "auto"
    topic_prefix: str = ""
    partitions: int = Field(default=4, ge=1)
    key_prefix: str = Field(default="fs", description="prefix of every Redis key")

    # -- the worker --------------------------------------------------------------------------
    app_id: str = "fraudstream"
    worker_web_port: int = 0
    fetch_max_wait_ms: int = Field(default=5, ge=0, le=1500)
    batch_max: int = Field(default=256, ge=1, description="largest batch the scorer takes")
    batch_within_ms: float = Field(default=2.0, gt=0, description="wait to fill a batch")
    commit_interval_s: float = 1.0
    learn: bool = Field(default=True, description="run the learning agent in this worker")

    # -- wire defaults -----------------------------------------------------------------------
    default_currency: str = "EUR"
    base_currency: str = "EUR"
    currency_rates: dict[str, float] = Field(
        default={"EUR": 1.0, "USD": 0.92, "GBP": 1.17, "CHF": 1.05, "JPY": 0.0062, "TRY": 0.027},
        description="units of base currency per unit of each currency",
    )

    # -- features ----------------------------------------------------------------------------
    feature_set: str = "default"
    allowed_lateness: str = "1h"
    snapshot_ttl: str = "45d"
    prediction_ttl: str = "45d"
    label_wait: str = Field(
        default="30s",
        description="how long (wall clock) a label whose transaction has no feature snapshot yet "
        "waits for it on the labels.retry topic (a label that overtook its transaction, e.g. in a "
        "flat-out replay) before it goes to labels.dlq; 0: at once",
    )

    # -- decisions and models ----------------------------------------------------------------
    review_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    decline_threshold: float = Field(default=0.9, ge=0.0, le=1.0)
    model: str = "logreg"
    model_params: dict[str, object] = Field(default_factory=dict)
    challengers: list[str] = Field(default_factory=list)
    registry_dir: Path | None = None
    hmac_key: str = DEFAULT_SECRET
    snapshot_every_labels: int = Field(default=500, ge=1)
    snapshot_every_s: float = Field(default=10.0, gt=0)
    registry_keep_snapshots: int = Field(
        default=20, ge=1, description="automatic online snapshots kept, besides every promoted one"
    )

    # -- online learning: rolling metrics, drift, promotion ----------------------------------
    metrics_window: int = Field(
        default=5000, ge=10, description="labels in each model's rolling prequential metrics"
    )
    metrics_days: int = Field(default=7, ge=1, description="event-time days of card precision@k kept")
    card_precision_k: int = Field(default=100, ge=1)
    promotion_judge: Literal["live", "labels"] = Field(
        default="live",
        description="live: a challenger is judged on what it and the champion said when each "
        "transaction was scored (kept until its label); labels: on predictions made when the label "
        "arrives (biased when labels arrive with class-dependent delays)",
    )
    promotion_metric: Literal["alert_recall", "average_precision", "roc_auc"] = Field(
        default="alert_recall",
        description="alert_recall (live only): share of labelled frauds each model put in its top "
        "promotion_alert_share of live traffic; needs no genuine labels",
    )
    promotion_alert_share: float = Field(
        default=0.01, gt=0.0, lt=1.0, description="the alert budget of alert_recall, a share of live traffic"
    )
    promotion_alpha: float = Field(
        default=0.05, gt=0.0, le=1.0,
        description="alert_recall: one-sided sign test on the frauds only one of the two caught",
    )
    promotion_keep_scores: int = Field(
        default=200_000, ge=1, description="transactions whose live scores are kept until their label"
    )
    promotion_rank_window: int = Field(
        default=20_000, ge=100, description="latest live scores of each model an alert rank is measured against"
    )
    promotion_window: int = Field(
        default=5000, ge=10, description="N: a challenger is judged against the champion on the latest N labels"
    )
    promotion_margin: float = Field(
        default=0.02, ge=0.0, le=1.0, description="the challenger's metric must exceed the champion's by this"
    )
    promotion_min_positives: int = Field(
        default=30, ge=1, description="frauds needed among the latest N labels before any promotion"
    )
    promotion_check_every: int = Field(default=100, ge=1, description="labels between promotion checks")
    promote_configured_challengers: bool = Field(
        default=True, description="configured challengers may be promoted too (by the same rule)"
    )
    challenger_max_labels: int = Field(
        default=50_000, ge=1, description="a drift challenger still not promoted after this many labels is dropped"
    )
    drift_detection: bool = Field(
        default=True, description="ADWIN on the champion's prequential error starts challengers "
        "(off: the champion only learns online, nothing replaces it but an operator)"
    )
    drift_classes: list[Literal["fraud", "genuine"]] = Field(
        default=["fraud"],
        description="classes whose prequential error is watched for concept drift (genuine "
        "labels arrive in the daily rhythm of maturity: their error has a daily cycle)",
    )
    drift_delta: float = Field(default=0.002, gt=0.0, lt=1.0, description="ADWIN delta of the concept drift alarm")
    drift_warning_delta: float = Field(
        default=0.05, gt=0.0, lt=1.0, description="ADWIN delta of the (more sensitive) warning detector"
    )
    drift_min_change: float = Field(
        default=0.02,
        ge=0.0,
        le=1.0,
        description="smallest rise of a class's mean prequential error that counts as concept drift",
    )
    drift_warmup: int = Field(
        default=1000, ge=0, description="labels a champion learns before its error is watched for drift"
    )
    drift_cooldown: int = Field(
        default=100, ge=0,
        description="labels fed to the concept drift detector (fresh ones of the watched classes) "
        "after an alarm during which it stays silent",
    )
    drift_label_age: str | None = Field(
        default="3d",
        description="labels reported longer than this after their transaction do not feed the concept "
        "drift detector (they tell how fraud looked then); none: every label does",
    )
    drift_challenger: Literal["continue", "fresh"] = Field(
        default="fresh",
        description="a drift challenger starts afresh with the champion's input statistics (fresh) "
        "or as the champion going on (continue); either learns the drifted class only from the drift "
        "point on (with drift_hold the champion does too, so a continue challenger is its twin)",
    )
    drift_model_params: dict[str, object] = Field(
        default_factory=dict,
        description="parameters of fresh drift challengers that differ from the champion's, e.g. "
        '{"lr": 0.05}: a conservative champion and agile challengers after a drift',
    )
    drift_signal: Literal["score", "alert"] = Field(
        default="score",
        description="what concept drift detection watches for each fresh label: the error of its "
        "transaction's live score (score: 1 - score on a fraud), or whether that score was in the "
        "top promotion_alert_share of live traffic (alert: a missed fraud is an error; immune to "
        "calibration drift, a weaker signal)",
    )
    drift_hold: bool = Field(
        default=True,
        description="at a concept drift warning the champion holds back labels of the drifted class "
        "older than the change (released if no drift follows, dropped if one does)",
    )
    warning_max_labels: int = Field(
        default=50_000, ge=1, description="a background model started at a warning is dropped after this many labels without drift"
    )
    data_drift_delta: float = Field(
        default=1e-5, gt=0.0, lt=1.0, description="ADWIN delta on the score and key feature means (no labels)"
    )
    data_drift_cooldown: int = Field(
        default=50_000, ge=0, description="scored transactions after a data drift alarm with no new one"
    )
    drift_features: list[str] = Field(
        default_factory=lambda: ["amount", "TX_AMOUNT"],
        description="features whose mean is watched for data drift (absent ones are skipped)",
    )

    # -- success criteria (problem definition) -----------------------------------------------
    max_fpr: float = Field(default=0.001, ge=0.0, le=1.0)
    max_p99_latency_ms: float = Field(default=200.0, gt=0)
    min_recall: float = Field(default=0.3, ge=0.0, le=1.0)
    min_average_precision: float = Field(default=0.3, ge=0.0, le=1.0)
    min_roc_auc: float | None = Field(default=None, ge=0.0, le=1.0, description="unset: no target")
    min_card_precision_at_100: float | None = Field(
        default=None, ge=0.0, le=1.0, description="unset: no target; needs a card column"
    )
    objective_metric: Literal[
        "average_precision", "roc_auc", "card_precision_at_100", "recall"
    ] = Field(default="average_precision", description="what model selection and tuning maximise")

    # -- API ---------------------------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_key: str = DEFAULT_SECRET
    api_job_workers: int = Field(
        default=1, ge=1, le=8,
        description="threads running lifecycle jobs (cleaning, EDA, training: CPU-heavy)",
    )
    api_data_roots: list[Path] = Field(
        default_factory=list,
        description="folders the API may read data files from (server paths); empty: any",
    )

    # -- monitoring: status, metrics, dashboard, alerts --------------------------------------
    lag_cache_s: float = Field(
        default=5.0, gt=0, description="consumer lag is read from Kafka at most this often"
    )
    worker_down_keep_s: float = Field(
        default=600.0, gt=0, description="a worker whose heartbeat stopped is reported down this long"
    )
    model_events_keep: int = Field(default=1000, ge=10, description="model events kept in Redis")
    status_series_s: int = Field(
        default=900, ge=10, description="seconds of status samples the API keeps for the dashboard"
    )
    alert_webhook_url: str | None = Field(
        default=None, description="alerts are POSTed here as JSON (and always logged)"
    )
    alert_interval_s: float = Field(default=5.0, gt=0, description="how often the API checks alerts")
    alert_for_s: float = Field(
        default=10.0, ge=0, description="a condition must hold this long before it alerts"
    )
    alert_cooldown_s: float = Field(
        default=300.0, ge=0, description="an alert still firing is sent again after this long"
    )
    criteria_min_labels: int = Field(
        default=500, ge=1,
        description="labels in the champion's rolling window before FPR, recall and AP are judged",
    )
    alert_min_latency_events: int = Field(
        default=50, ge=1, description="scored events in the window before the latency alert"
    )
    alert_dead_letters_per_min: int = Field(
        default=20, ge=1, description="dead letters in the last minute that make a spike"
    )
    alert_lag_min: int = Field(
        default=1000, ge=0, description="consumer lag below this never alerts"
    )
    alert_lag_growth_s: float = Field(
        default=30.0, gt=0, description="lag rising all through this long (and above the minimum) alerts"
    )

    # -- simulator defaults for `run` --------------------------------------------------------
    run_rate: float = Field(default=200.0, gt=0)
    seed: int = 7

    @field_validator("default_currency", "base_currency")
    @classmethod
    def _upper_currency(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z]{3}", v):
            raise ValueError(f"not an ISO 4217 code: {v!r}")
        return v.upper()

    @field_validator("allowed_lateness", "snapshot_ttl", "prediction_ttl", "label_wait")
    @classmethod
    def _duration(cls, v: str) -> str:
        parse_duration(v)
        return v

    @field_validator("drift_label_age")
    @classmethod
    def _optional_duration(cls, v: str | None) -> str | None:
        if v is None or str(v).strip().lower() in ("", "none"):
            return None
        parse_duration(v)
        return v

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.drift_warning_delta < self.drift_delta:
            raise ValueError(
                f"drift_warning_delta ({self.drift_warning_delta}) must be at least drift_delta "
                f"({self.drift_delta}): the warning detector is the more sensitive one"
            )
        if self.promotion_judge == "labels" and self.promotion_metric == "alert_recall":
            raise ValueError(
                "promotion_metric alert_recall needs promotion_judge live (alert ranks are taken "
                "among live scores); with labels use average_precision or roc_auc"
            )
        if self.review_threshold > self.decline_threshold:
            raise ValueError(
                f"review_threshold ({self.review_threshold}) must not exceed "
                f"decline_threshold ({self.decline_threshold})"
            )
        if self.env == "production":
            for name in ("hmac_key", "api_key"):
                if getattr(self, name) == DEFAULT_SECRET:
                    raise ValueError(
                        f"FRAUDSTREAM_{name.upper()} is left at its default; set a secret in production"
                    )
        return self

    # -- derived -----------------------------------------------------------------------------
    def topic(self, name: str) -> str:
        """The Kafka topic for one of :data:`TOPIC_NAMES`, with the configured prefix."""
        if name not in TOPIC_NAMES:
            raise ValueError(f"unknown topic {name!r}; known: {', '.join(TOPIC_NAMES)}")
        return f"{self.topic_prefix}{name}"

    @property
    def registry_path(self) -> Path:
        return self.registry_dir or self.home / "registry"

    @property
    def datasets_path(self) -> Path:
        """Where registered data sets are described (one JSON file each)."""
        return self.datasets_dir or self.home / "datasets"

    @property
    def jobs_path(self) -> Path:
        """Where the API keeps its jobs: one folder each (``job.json`` and ``files/``)."""
        return self.jobs_dir or self.home / "jobs"

    @property
    def allowed_lateness_s(self) -> float:
        return parse_duration(self.allowed_lateness)

    @property
    def label_wait_s(self) -> float:
        return parse_duration(self.label_wait)

    @property
    def drift_label_age_s(self) -> float | None:
        return None if self.drift_label_age is None else parse_duration(self.drift_label_age)

    @property
    def snapshot_ttl_s(self) -> int:
        return int(parse_duration(self.snapshot_ttl))

    @property
    def prediction_ttl_s(self) -> int:
        return int(parse_duration(self.prediction_ttl))

    def decision(self, score: float) -> str:
        """approve / review / decline for a score, by the configured thresholds.

        >>> s = Settings(_env_file=None)
        >>> s.decision(0.1), s.decision(0.5), s.decision(0.95)
        ('approve', 'review', 'decline')
        """
        if score >= self.decline_threshold:
            return "decline"
        if score >= self.review_threshold:
            return "review"
        return "approve"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return Settings()
