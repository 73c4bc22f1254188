"""The model registry: versioned, signed model snapshots on disk, and which one is in charge.

Layout under ``root`` (one folder, shared by the learner, the scorers, the API and the CLI)::

    .lock                 fcntl lock: one writer at a time, across processes
    state.json            {"next": 7, "champion": "v6", "previous": ["v2", "v5"],
                           "challengers": ["v4"], "protected": ["v2", "v5", "v6"]}
    CHAMPION              "v6\\n": the champion pointer, the one file scorers poll
    CHALLENGERS           "v4\\n": the challengers scorers shadow-score, one per line
    history.jsonl         one JSON event per line: save, promote, advance, rollback, ...
    versions/v6/model.pkl the pickled :class:`models.zoo.Model`
    versions/v6/model.sig HMAC-SHA256 of model.pkl's bytes (hex), keyed with ``hmac_key``
    versions/v6/meta.json the :class:`ModelVersion` (name, params, parent, labels, metrics, ...)

Every file is written to a temporary name and renamed into place (a reader sees the old file or
the new one, never half of one); a new version is assembled in a temporary folder and renamed to
``versions/vN`` whole. Writers (save, promote, advance, rollback, challengers, prune) hold the
lock; readers take none. Versions are ``v1, v2, ...`` from a counter in ``state.json``, so they
only grow, even after pruning.

``load`` verifies the signature BEFORE unpickling: a missing signature or one that does not match
the bytes (tampered, or signed with another key) raises :class:`ArtifactError` and nothing is
unpickled. Metadata is not signed: it never executes anything.

Champion changes: ``promote`` (a new model line takes over; the old champion is remembered for
``rollback``), ``advance`` (the champion's own newer online snapshot replaces it: not a
promotion, no rollback point; refused when the champion is no longer the snapshot's parent, so
a learner never overwrites an operator's promotion or rollback) and ``rollback``.
``champion_version()`` costs one ``stat`` when nothing changed (scorers poll it).

Pruning (after each online save): online snapshots beyond the latest ``keep_online`` are deleted,
except the champion, the challengers, and every version ever promoted to champion or replaced by
a promotion (the rollback points). Batch and manual versions are never pruned.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import pickle
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fraudstream.errors import ArtifactError, ConfigError, NotFoundError, RegistryConflictError
from fraudstream.files import write_atomic

__all__ = ["ModelRegistry", "ModelVersion"]

_VERSION = re.compile(r"^v?([1-9][0-9]*)$")


class ModelVersion(BaseModel):
    """The metadata of one saved model version."""

    model_config = ConfigDict(frozen=True)

    version: str
    number: int
    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    kind: str = "online"
    parent: str | None = None
    labels_learned: int = 0
    metrics: dict[str, Any] = Field(default_factory=dict)
    time_range: tuple[datetime, datetime] | None = None
    threshold: float | None = None
    note: str = ""
    created_at: datetime
    sha256: str
    size_bytes: int


def _now() -> datetime:
    return datetime.now(UTC)


def _as_datetime(v: float | datetime) -> datetime:
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(v), tz=UTC)


class ModelRegistry:
    """File-based registry of signed model versions (see the module doc)."""

    def __init__(self, root: Path | str, hmac_key: str, *, keep_online: int = 20) -> None:
        if not hmac_key:
            raise ConfigError("the registry needs a non-empty HMAC key (FRAUDSTREAM_HMAC_KEY)")
        if keep_online < 1:
            raise ConfigError(f"keep_online must be at least 1, not {keep_online}")
        self.root = Path(root)
        self._key = hmac_key.encode()
        self.keep_online = keep_online
        self._versions = self.root / "versions"
        self._versions.mkdir(parents=True, exist_ok=True)
        self._state_path = self.root / "state.json"
        self._champion_path = self.root / "CHAMPION"
        self._challengers_path = self.root / "CHALLENGERS"
        self._history_path = self.root / "history.jsonl"
        self._lock_path = self.root / ".lock"
        self._pointer_cache: dict[Path, tuple[tuple[int, int, int], Any]] = {}

    # -- signing ------------------------------------------------------------------------------
    def sign(self, data: bytes) -> str:
        """HMAC-SHA256 of ``data`` with this registry's key, hex."""
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()

    def _verify(self, version: str, data: bytes, sig_path: Path) -> None:
        try:
            signature = sig_path.read_text().strip()
        except FileNotFoundError:
            raise ArtifactError(
                f"model {version} is unsigned ({sig_path.name} is missing): refusing to load it"
            ) from None
        if not signature or not hmac.compare_digest(signature, self.sign(data)):
            raise ArtifactError(
                f"model {version}: signature does not match the artifact (tampered, or signed "
                "with another key): refusing to load it"
            )

    # -- reading ------------------------------------------------------------------------------
    @staticmethod
    def normalize(version: str) -> str:
        """``"v3"`` for ``"v3"`` or ``"3"``; ConfigError otherwise."""
        m = _VERSION.match(str(version).strip())
        if not m:
            raise ConfigError(f"not a model version: {version!r} (use e.g. v3)")
        return f"v{int(m.group(1))}"

    def _dir(self, version: str) -> Path:
        return self._versions / self.normalize(version)

    def get(self, version: str) -> ModelVersion:
        """The metadata of one version; NotFoundError when it does not exist."""
        v = self.normalize(version)
        try:
            text = (self._versions / v / "meta.json").read_text()
        except FileNotFoundError:
            known = ", ".join(m.version for m in self.list()[-5:]) or "none yet"
            raise NotFoundError("model version", v, f"latest: {known}") from None
        return ModelVersion.model_validate_json(text)

    def list(self) -> list[ModelVersion]:
        """Every stored version, oldest first."""
        out = []
        for d in self._versions.iterdir():
            if d.name.startswith(".") or not _VERSION.match(d.name):
                continue
            try:
                out.append(ModelVersion.model_validate_json((d / "meta.json").read_text()))
            except FileNotFoundError:
                continue  # pruned meanwhile
        return sorted(out, key=lambda m: m.number)

    def load(self, version: str) -> tuple[Any, ModelVersion]:
        """The model and its metadata; the signature is checked before anything is unpickled."""
        v = self.normalize(version)
        d = self._versions / v
        try:
            data = (d / "model.pkl").read_bytes()
        except FileNotFoundError:
            raise NotFoundError("model version", v, "no artifact (never saved, or pruned)") from None
        self._verify(v, data, d / "model.sig")
        meta = self.get(v)
        try:
            model = pickle.loads(data)
        except Exception as exc:  # signed but unreadable: a version of the code that cannot read it
            raise ArtifactError(f"model {v} is signed but cannot be unpickled: {exc}") from exc
        return model, meta

    def _pointer(self, path: Path) -> Any:
        """A pointer file's content, cached by (inode, mtime, size): one stat when unchanged."""
        try:
            st = os.stat(path)
        except FileNotFoundError:
            self._pointer_cache.pop(path, None)
            return None
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = self._pointer_cache.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        value = path.read_text().split()
        self._pointer_cache[path] = (key, value)
        return value

    def champion_version(self) -> str | None:
        """The champion's version, cheaply (one stat when unchanged): scorers poll this."""
        value = self._pointer(self._champion_path)
        return value[0] if value else None

    def challenger_versions(self) -> builtins.list[str]:
        """The challengers' versions, as cheaply as :meth:`champion_version`."""
        return list(self._pointer(self._challengers_path) or [])

    def champion(self) -> ModelVersion | None:
        v = self.champion_version()
        return self.get(v) if v else None

    def challengers(self) -> builtins.list[ModelVersion]:
        return [self.get(v) for v in self.challenger_versions()]

    def previous_champions(self) -> builtins.list[str]:
        """The rollback stack: champions replaced by promotions, most recent last."""
        return list(self._state()["previous"])

    def history(self, last: int | None = None) -> builtins.list[dict[str, Any]]:
        """The registry's events, oldest first (the latest ``last`` when given)."""
        try:
            lines = self._history_path.read_text().splitlines()
        except FileNotFoundError:
            return []
        if last is not None:
            lines = lines[-last:] if last > 0 else []
        return [json.loads(line) for line in lines if line.strip()]

    # -- writing ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        with open(self._lock_path, "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _state(self) -> dict[str, Any]:
        try:
            state = json.loads(self._state_path.read_text())
        except FileNotFoundError:
            state = {}
        state.setdefault("next", 1)
        state.setdefault("champion", None)
        state.setdefault("previous", [])
        state.setdefault("challengers", [])
        state.setdefault("protected", [])
        return state

    def _write_state(self, state: dict[str, Any]) -> None:
        write_atomic(self._state_path, json.dumps(state, indent=1), durable=True)
        champion = state["champion"]
        write_atomic(self._champion_path, f"{champion}\n" if champion else "", durable=True)
        write_atomic(self._challengers_path, "".join(f"{v}\n" for v in state["challengers"]),
                     durable=True)

    def _event(self, event: str, **fields: Any) -> dict[str, Any]:
        record = {"event": event, "at": _now().isoformat(), **fields}
        with open(self._history_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, default=str) + "\n")
        return record

    def _require(self, version: str) -> str:
        v = self.normalize(version)
        if not (self._versions / v / "meta.json").exists():
            self.get(v)  # raises NotFoundError with a hint
        return v

    def save(
        self,
        model: Any,
        *,
        name: str,
        params: dict[str, Any] | None = None,
        parent: str | None = None,
        labels_learned: int = 0,
        metrics: dict[str, Any] | None = None,
        time_range: tuple[float | datetime, float | datetime] | None = None,
        threshold: float | None = None,
        kind: str = "online",
        note: str = "",
    ) -> ModelVersion:
        """Pickle, sign and store a model as the next version; returns its metadata."""
        try:
            data = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise ArtifactError(f"cannot pickle model {name!r}: {exc}") from exc
        signature = self.sign(data)
        tr = (_as_datetime(time_range[0]), _as_datetime(time_range[1])) if time_range else None
        metrics = dict(metrics or {})
        if parent and "feature_set" not in metrics:  # a model learning on goes on with its inputs
            try:
                inherited = self.get(self.normalize(parent)).metrics.get("feature_set")
            except (NotFoundError, ArtifactError):
                inherited = None
            if inherited:
                metrics["feature_set"] = inherited
        with self._lock():
            state = self._state()
            number = int(state["next"])
            version = f"v{number}"
            meta = ModelVersion(
                version=version,
                number=number,
                name=name,
                params=dict(params or {}),
                kind=kind,
                parent=self.normalize(parent) if parent else None,
                labels_learned=int(labels_learned),
                metrics=metrics,
                time_range=tr,
                threshold=threshold,
                note=note,
                created_at=_now(),
                sha256=hashlib.sha256(data).hexdigest(),
                size_bytes=len(data),
            )
            tmp = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=self._versions))
            try:
                for fname, content in (
                    ("model.pkl", data),
                    ("model.sig", (signature + "\n").encode()),
                    ("meta.json", meta.model_dump_json(indent=1).encode()),
                ):
                    with open(tmp / fname, "wb") as fh:
                        fh.write(content)
                        fh.flush()
                        os.fsync(fh.fileno())
                os.rename(tmp, self._versions / version)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            state["next"] = number + 1
            self._write_state(state)
            self._event(
                "save", version=version, name=name, kind=kind, parent=meta.parent,
                labels_learned=meta.labels_learned, note=note,
            )
            if kind == "online":
                self._prune(state)
        return meta

    def promote(self, version: str, reason: str = "") -> ModelVersion:
        """Make ``version`` the champion; the current champion becomes a rollback point."""
        with self._lock():
            v = self._require(version)
            state = self._state()
            previous = state["champion"]
            if previous != v:
                if previous:
                    state["previous"].append(previous)
                state["champion"] = v
                state["challengers"] = [c for c in state["challengers"] if c != v]
                state["protected"] = sorted(
                    {*state["protected"], v, *([previous] if previous else [])}, key=_num
                )
                self._write_state(state)
            self._event("promote", version=v, previous=previous, reason=reason)
        return self.get(v)

    def advance(self, version: str, *, expected: str | None, reason: str = "snapshot") -> ModelVersion:
        """Move the champion pointer to ``version``, a newer snapshot of the same model line.

        ``expected`` is the champion the caller believes is in charge (the snapshot's parent);
        when the champion changed meanwhile (an operator promoted or rolled back), this raises
        RegistryConflictError and changes nothing. Not a promotion: no rollback point is added.
        """
        with self._lock():
            v = self._require(version)
            state = self._state()
            current = state["champion"]
            if current != (self.normalize(expected) if expected else None):
                raise RegistryConflictError(
                    f"champion is {current}, not {expected}: not advancing to {v}"
                )
            state["champion"] = v
            self._write_state(state)
            self._event("advance", version=v, previous=current, reason=reason)
        return self.get(v)

    def rollback(self, to: str | None = None, reason: str = "") -> ModelVersion:
        """Make an earlier version the champion: the one before the last promotion, or ``to``."""
        with self._lock():
            state = self._state()
            current = state["champion"]
            stack: builtins.list[str] = state["previous"]
            if to is None:
                target = None
                while stack:
                    candidate = stack.pop()
                    if candidate != current and (self._versions / candidate / "meta.json").exists():
                        target = candidate
                        break
                if target is None:
                    raise NotFoundError(
                        "previous champion", str(current), "nothing to roll back to"
                    )
            else:
                target = self._require(to)
                if target in stack:  # forget what came after it
                    del stack[len(stack) - 1 - stack[::-1].index(target) :]
            state["champion"] = target
            state["challengers"] = [c for c in state["challengers"] if c != target]
            state["protected"] = sorted(
                {*state["protected"], target, *([current] if current else [])}, key=_num
            )
            self._write_state(state)
            self._event("rollback", version=target, previous=current, reason=reason)
        return self.get(target)

    def set_challengers(self, versions: Sequence[str], reason: str = "") -> builtins.list[ModelVersion]:
        """Replace the list of challengers (scorers shadow-score them)."""
        with self._lock():
            vs = [self._require(v) for v in versions]
            state = self._state()
            state["challengers"] = [v for v in dict.fromkeys(vs) if v != state["champion"]]
            self._write_state(state)
            self._event("challengers", versions=state["challengers"], reason=reason)
        return [self.get(v) for v in vs]

    def add_challenger(self, version: str, reason: str = "") -> ModelVersion:
        return self.set_challengers([*self.challenger_versions(), version], reason)[-1]

    def prune(self) -> builtins.list[str]:
        """Delete old online snapshots (see the module doc); returns the deleted versions."""
        with self._lock():
            return self._prune(self._state())

    def _prune(self, state: dict[str, Any]) -> builtins.list[str]:
        keep = {*state["protected"], *state["previous"], *state["challengers"]}
        if state["champion"]:
            keep.add(state["champion"])
        online = [m for m in self.list() if m.kind == "online"]
        recent = {m.version for m in online[-self.keep_online :]}
        deleted = []
        for m in online:
            if m.version in keep or m.version in recent:
                continue
            d = self._versions / m.version
            tomb = self._versions / f".deleted-{m.version}-{time.monotonic_ns()}"
            os.rename(d, tomb)  # atomic: readers see the whole version or none of it
            shutil.rmtree(tomb, ignore_errors=True)
            deleted.append(m.version)
        if deleted:
            self._event("prune", versions=deleted)
        return deleted


def _num(v: str) -> int:
    return int(v[1:])
