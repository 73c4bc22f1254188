"""Domain errors of fraudstream, one place, each building its own message.

The CLI prints ``str(error)`` and exits non-zero; the API maps them to 4xx responses in its routes.
This module is a leaf.
"""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "Cancelled",
    "ConfigError",
    "DataError",
    "FeatureDefinitionError",
    "FraudstreamError",
    "JobStateError",
    "NotFoundError",
    "RegistryConflictError",
    "ServiceError",
]


class FraudstreamError(Exception):
    """Base of every error fraudstream raises on purpose."""

    exit_code = 1


class ConfigError(FraudstreamError):
    """A setting or an option is wrong."""

    exit_code = 2


class ServiceError(FraudstreamError):
    """Kafka, Redis or another service could not be started or reached."""

    exit_code = 3


class DataError(FraudstreamError):
    """An input file or record cannot be used."""

    exit_code = 4


class FeatureDefinitionError(ConfigError):
    """A feature definition is invalid."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"feature {name!r}: {problem}")
        self.name = name
        self.problem = problem


class NotFoundError(FraudstreamError):
    """A named thing (model version, dataset, job, prediction) does not exist."""

    exit_code = 5

    def __init__(self, kind: str, key: str, hint: str = "") -> None:
        super().__init__(f"{kind} {key!r} not found" + (f": {hint}" if hint else ""))
        self.kind = kind
        self.key = key


class ArtifactError(FraudstreamError):
    """A model artifact is unsigned, tampered with or unreadable."""

    exit_code = 6


class Cancelled(FraudstreamError):
    """A long-running job (cleaning, EDA, training ...) stopped because its cancel check said so."""

    exit_code = 7

    def __init__(self, what: str = "job") -> None:
        super().__init__(f"{what} cancelled")
        self.what = what


class RegistryConflictError(FraudstreamError):
    """The registry changed under a writer (e.g. the champion was promoted or rolled back meanwhile)."""

    exit_code = 8


class JobStateError(FraudstreamError):
    """A job cannot do what was asked in its current state (e.g. cancel a finished job)."""

    exit_code = 9

    def __init__(self, job_id: str, status: str, wanted: str) -> None:
        super().__init__(f"job {job_id!r} is {status}: cannot {wanted}")
        self.job_id = job_id
        self.status = status
        self.wanted = wanted
