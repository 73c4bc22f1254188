"""Cleaning a historical file, with a report that counts what every rule did.

Rules run in this order, on the file's own columns (the column mapping says which column is the
time, the id, the label, the amount, the currency and the categories; rule configs may name a column
by its file name or by its canonical role, e.g. ``"amount"``):

1. **missing tokens**: ``""``, ``NA``, ``N/A``, ``null``, ``none``, ``-``, ``?`` (configurable) in
   text columns become missing values.
2. **dates**: the time column (and any configured date column) is parsed into UTC: ISO-8601 and
   epoch seconds/milliseconds exactly as the stream's :func:`stream.schemas.parse_timestamp` does,
   plus day-first (``20/04/2026``), month-first when day-first is impossible, ``2026/04/20`` and
   month names (``20 April 2026``). A row whose time cannot be read is rejected.
3. **numbers**: the amount, label and coordinates (and configured numeric columns) are read as
   numbers: ``"1,234.50"``, ``"12,50"``, ``"€12.50"``, ``"12.50 USD"``; a currency found in the
   amount text is used when the row names none. Labels accept 0/1, true/false, yes/no, fraud/genuine.
   What cannot be read becomes missing (and is counted).
4. **categories**: white space collapsed, an alias table applied (``"New York"``, ``"new york"``,
   ``"NY"``, ``"N.Y."`` -> ``"New York"``), else a case rule; the channel column uses the stream's own
   alias table, the country column upper case. The normaliser is the stream's
   :func:`stream.schemas.normalize_category`.
5. **currency and units**: amounts are converted to the base currency with the configured rate table
   (the stream's :func:`~stream.schemas.normalize_currency` and :func:`~stream.schemas.currency_rate`);
   the currency column becomes the base currency and ``<currency>_original`` keeps the code. An
   unknown code or a code without a rate is flagged (``currency_unknown`` = 1, amount unconverted) or
   rejected, never silently dropped. Unit rules convert a column with a unit column or a unit suffix
   (``"12 mi"``) by a factor table, flagging unknown units the same way.
6. **duplicates**: exact duplicates (after the steps above), then rows repeating an id; the first is
   kept, the others rejected.
7. **missing values**: a policy per column: ``keep`` (count only), ``drop`` (reject the row),
   ``median``, ``constant`` (``value``), ``indicator`` (adds ``<col>_missing`` = 0/1 and keeps the
   gap; ``indicator: true`` adds it to a fill policy too). The time, id and label columns default to
   ``drop``.
8. **outliers**: bounds by IQR (``k`` times the inter-quartile range beyond the quartiles) or by
   quantiles; values beyond are flagged (``<col>_outlier`` = 0/1) or clipped, never dropped. The
   default flags the amount beyond 3 IQR. Bounds come from the whole file: a flag column used as a
   feature carries that (small) look-ahead.

Nothing disappears silently: every removed row is counted under its reason and can be written to a
rejects file (the original values, its row number in the file and the reason). The cleaned file
keeps the file's column names, so the same mapping or preset reads it again, and cleaning it a
second time changes nothing.

A config file is JSON, e.g.::

    {"missing": {"merchant_category": {"policy": "constant", "value": "unknown"},
                 "amount": {"policy": "median", "indicator": true}},
     "categories": [{"column": "city", "case": "title",
                     "aliases": {"NY": "New York", "N.Y.": "New York"}}],
     "dates": [{"column": "signup_date"}],
     "outliers": [{"column": "amount", "method": "quantile", "upper": 0.999, "action": "clip"}]}
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from features.columns import ColumnMapping, read_raw
from fraudstream.errors import ConfigError, DataError
from fraudstream.progress import CancelFn, ProgressFn, Tracker
from stream.schemas import (
    CHANNEL_ALIASES,
    EPOCH_MS_THRESHOLD,
    alias_index,
    currency_rate,
    normalize_category,
    normalize_currency,
    parse_timestamp,
)

__all__ = [
    "CategoryRule",
    "CleaningConfig",
    "CleaningReport",
    "CleaningResult",
    "DateRule",
    "MissingRule",
    "OutlierRule",
    "RuleReport",
    "UnitRule",
    "clean_file",
    "clean_frame",
    "load_config",
    "parse_amount",
    "parse_dates",
    "write_frame",
]

MAX_EXAMPLES = 5

# -- configuration ------------------------------------------------------------------------------


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MissingRule(_Rule):
    """What to do with a column's missing values."""

    policy: Literal["keep", "drop", "median", "constant", "indicator"] = "keep"
    value: Any = None
    indicator: bool = False


class CategoryRule(_Rule):
    """Make a text column's categories consistent."""

    column: str
    case: Literal["keep", "lower", "upper", "title"] = "keep"
    aliases: dict[str, str] = Field(default_factory=dict)


class DateRule(_Rule):
    """Parse a date column into UTC."""

    column: str
    dayfirst: bool = True
    invalid: Literal["reject", "keep"] = "keep"


class UnitRule(_Rule):
    """Convert a column to one unit: ``factors`` maps each unit to its multiplier to the target."""

    column: str
    factors: dict[str, float]
    unit_column: str | None = None
    to: str | None = None
    unknown: Literal["flag", "reject"] = "flag"


class OutlierRule(_Rule):
    """Flag or clip a numeric column's values beyond bounds by IQR or by quantiles."""

    column: str
    method: Literal["iqr", "quantile"] = "iqr"
    k: float = Field(default=1.5, gt=0)
    lower: float = Field(default=0.001, ge=0, le=1)
    upper: float = Field(default=0.999, ge=0, le=1)
    action: Literal["flag", "clip"] = "flag"


class CleaningConfig(_Rule):
    """Every cleaning rule; the defaults clean the handbook file and most others sensibly."""

    missing_tokens: list[str] = Field(
        default_factory=lambda: ["", "na", "n/a", "nan", "null", "none", "-", "?"]
    )
    missing: dict[str, MissingRule] = Field(default_factory=dict)
    dayfirst: bool = True
    dates: list[DateRule] = Field(default_factory=list)
    numeric: list[str] = Field(default_factory=list)
    categories: list[CategoryRule] = Field(default_factory=list)
    currency_unknown: Literal["flag", "reject"] = "flag"
    currency_rates: dict[str, float] | None = None
    base_currency: str | None = None
    default_currency: str | None = None
    units: list[UnitRule] = Field(default_factory=list)
    exact_duplicates: bool = True
    id_duplicates: bool = True
    outliers: list[OutlierRule] | None = None  # None: flag the amount beyond 3 IQR


def load_config(source: str | Path | dict[str, Any] | None) -> CleaningConfig:
    """A :class:`CleaningConfig` from a JSON file, a dict, or the defaults (None)."""
    if source is None:
        return CleaningConfig()
    if isinstance(source, dict):
        data = source
        origin = "cleaning config"
    else:
        path = Path(source)
        origin = str(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"no such cleaning config: {path}") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc})") from exc
    try:
        return CleaningConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{origin}: {loc}: {err['msg']}") from exc


# -- the report ---------------------------------------------------------------------------------


@dataclass
class RuleReport:
    """What one rule did to one column."""

    rule: str
    column: str | None
    action: str
    count: int
    details: dict[str, Any] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "column": self.column, "action": self.action,
                "count": self.count, "details": self.details, "examples": self.examples}


@dataclass
class CleaningReport:
    """Rows in and out, rejects by reason, and every rule's effect with examples."""

    source: str
    rows_in: int
    rows_out: int
    rejected_by_reason: dict[str, int]
    rules: list[RuleReport]
    notes: list[str]
    seconds: float
    output: str | None = None
    rejects_path: str | None = None
    columns_added: list[str] = field(default_factory=list)

    @property
    def rows_rejected(self) -> int:
        return self.rows_in - self.rows_out

    def rule(self, rule: str, column: str | None = None) -> RuleReport:
        """The report of ``rule`` (on ``column``); KeyError when it did not run."""
        for r in self.rules:
            if r.rule == rule and (column is None or r.column == column):
                return r
        raise KeyError(f"{rule} {column or ''}".strip())

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "rows_in": self.rows_in, "rows_out": self.rows_out,
                "rows_rejected": self.rows_rejected,
                "rejected_by_reason": dict(self.rejected_by_reason),
                "columns_added": list(self.columns_added),
                "rules": [r.to_dict() for r in self.rules], "notes": list(self.notes),
                "seconds": round(self.seconds, 3), "output": self.output,
                "rejects_path": self.rejects_path}

    def to_text(self, width: int = 120) -> str:
        import io

        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"Cleaning {Path(self.source).name}: {self.rows_in:,} rows in, "
                      f"{self.rows_out:,} out, {self.rows_rejected:,} rejected",
                      title_justify="left")
        for col in ("rule", "column", "action", "count", "examples (before -> after)"):
            table.add_column(col, justify="right" if col == "count" else "left")
        for r in self.rules:
            ex = "; ".join(f"{_short(e.get('before'))} -> {_short(e.get('after'))}"
                           for e in r.examples[:2])
            table.add_row(r.rule, r.column or "", r.action, f"{r.count:,}", ex)
        buf = io.StringIO()
        console = Console(file=buf, width=width, color_system=None, force_terminal=False)
        console.print(table)
        if self.rejected_by_reason:
            console.print("Rejected rows by reason: " + ", ".join(
                f"{k}: {v:,}" for k, v in sorted(self.rejected_by_reason.items())))
        for note in self.notes:
            console.print(f"note: {note}")
        return buf.getvalue()


def _short(value: Any, n: int = 28) -> str:
    text = "missing" if value is None else repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= n else text[: n - 1] + "…"


@dataclass
class CleaningResult:
    """The cleaned frame (the file's column names), the rejected rows and the report."""

    frame: pd.DataFrame
    rejects: pd.DataFrame
    report: CleaningReport


# -- pure value parsers (shared with the stream where the two overlap) --------------------------

_CURRENCY_SYMBOLS = {"€": "EUR", "$": "USD", "US$": "USD", "£": "GBP", "¥": "JPY", "₺": "TRY",
                     "FR.": "CHF", "SFR": "CHF"}
_AMOUNT = re.compile(r"^(?P<pre>[^\d+\-.,]*?)\s*(?P<num>[+-]?[\d.,' ]*\d)\s*(?P<post>[^\d]*)$")
_LABEL_TRUE = {"1", "1.0", "true", "t", "yes", "y", "fraud", "fraudulent"}
_LABEL_FALSE = {"0", "0.0", "false", "f", "no", "n", "genuine", "legit", "legitimate"}


def parse_amount(text: Any) -> tuple[float, str | None]:
    """A number and the currency written with it, from amount text; ValueError when unreadable.

    With both ``,`` and ``.`` the last one is the decimal mark; a lone ``,`` followed by other than
    three digits is a decimal comma; spaces and ``'`` group thousands.

    >>> [parse_amount(t) for t in ["12.50", "1,234.50", "1.234,50 €", "12,50", "$1,234", "12 usd"]]
    [(12.5, None), (1234.5, None), (1234.5, 'EUR'), (12.5, None), (1234.0, 'USD'), (12.0, 'USD')]
    >>> parse_amount("CHF 1'000.10")
    (1000.1, 'CHF')
    >>> parse_amount("twelve")
    Traceback (most recent call last):
    ...
    ValueError: not an amount: 'twelve'
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text), None
    raw = str(text).strip()
    m = _AMOUNT.match(raw)
    if not m:
        raise ValueError(f"not an amount: {raw!r}")
    pre, num, post = m.group("pre").strip(), m.group("num"), m.group("post").strip()
    if pre and post:
        raise ValueError(f"not an amount: {raw!r}")
    token = (pre or post).upper()
    code = _CURRENCY_SYMBOLS.get(token) or (token if re.fullmatch(r"[A-Z]{3}", token) else None)
    if token and code is None:
        raise ValueError(f"not an amount: {raw!r}")
    num = num.replace(" ", "").replace("'", "")
    if "," in num and "." in num:
        decimal = "," if num.rfind(",") > num.rfind(".") else "."
        num = num.replace("." if decimal == "," else ",", "").replace(",", ".")
    elif "," in num:
        head, _, tail = num.rpartition(",")
        num = num.replace(",", "") if num.count(",") > 1 or len(tail) == 3 else f"{head}.{tail}"
    elif num.count(".") > 1:
        num = num.replace(".", "")
    try:
        return float(num), code
    except ValueError:
        raise ValueError(f"not an amount: {raw!r}") from None


_DATE_FORMATS: list[tuple[str, str]] = [
    (kind, fmt)
    for kind, base in (("day_first", "%d/%m/%Y"), ("day_first", "%d.%m.%Y"),
                       ("day_first", "%d-%m-%Y"), ("month_first", "%m/%d/%Y"),
                       ("year_first", "%Y/%m/%d"), ("text_month", "%d %B %Y"),
                       ("text_month", "%d %b %Y"), ("text_month", "%B %d, %Y"),
                       ("text_month", "%b %d, %Y"), ("text_month", "%B %d %Y"))
    for fmt in (base, base + " %H:%M", base + " %H:%M:%S")
]
_MIN_TS = pd.Timestamp("1970-01-01", tz="UTC")
_MAX_TS = pd.Timestamp("2100-01-01", tz="UTC")
_NUMERIC_TEXT = r"[+-]?\d+(?:\.\d+)?"
_ISO_TEXT = r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?(?:Z|[+-]\d{2}:?\d{2})?"


def parse_dates(values: pd.Series, dayfirst: bool = True) -> tuple[pd.Series, pd.Series]:
    """``(timestamps in UTC, kind of each value)``; unreadable values give NaT and kind
    ``"invalid"``, missing ones NaT and ``"missing"``.

    ISO-8601 text and epoch seconds/milliseconds follow the stream's
    :func:`~stream.schemas.parse_timestamp` (values without a zone are UTC; numbers at or above
    :data:`~stream.schemas.EPOCH_MS_THRESHOLD` are milliseconds; 1970..2100 only), vectorised for
    speed; the other forms are tried after, day-first before month-first when ``dayfirst``.

    >>> ts, kind = parse_dates(pd.Series(["2026-04-20T10:00:00+02:00", "20/04/2026", "04/20/2026",
    ...                                   "20 April 2026", "1776672000", None, "soon"]))
    >>> [t.isoformat() if pd.notna(t) else None for t in ts]  # doctest: +NORMALIZE_WHITESPACE
    ['2026-04-20T08:00:00+00:00', '2026-04-20T00:00:00+00:00', '2026-04-20T00:00:00+00:00',
     '2026-04-20T00:00:00+00:00', '2026-04-20T08:00:00+00:00', None, None]
    >>> kind.tolist()
    ['iso', 'day_first', 'month_first', 'text_month', 'epoch_s', 'missing', 'invalid']
    """
    n = len(values)
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    kind = pd.Series("invalid", index=values.index, dtype=object)
    if pd.api.types.is_datetime64_any_dtype(values):
        ts = values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")
        out[:] = ts.astype("datetime64[ns, UTC]")
        kind[:] = "datetime"
        kind[values.isna()] = "missing"
        return _in_range(out, kind)
    missing = values.isna()
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.astype(float)
        text_rest = pd.Series(False, index=values.index)
    else:
        text = values.astype(object).where(~missing, None).map(
            lambda v: v.strip() if isinstance(v, str) else v)
        missing = missing | text.isna() | (text == "")
        as_str = text.where(~missing, "").astype(str)
        is_num = as_str.str.fullmatch(_NUMERIC_TEXT) & ~missing
        numbers = pd.to_numeric(as_str.where(is_num, None), errors="coerce")
        text_rest = ~missing & ~is_num
    has_num = numbers.notna() & ~missing
    if has_num.any():
        x = numbers[has_num].to_numpy(dtype=float)
        finite = np.isfinite(x)
        ms = np.abs(x) >= EPOCH_MS_THRESHOLD
        secs = np.where(ms, x / 1000.0, x)
        ok = finite & (secs >= 0) & (secs < 4102444800.0)
        idx = numbers[has_num].index
        parsed = pd.to_datetime(pd.Series(secs[ok], index=idx[ok]), unit="s", utc=True)
        out.loc[idx[ok]] = parsed.astype("datetime64[ns, UTC]").to_numpy()
        kind.loc[idx[ok]] = np.where(ms[ok], "epoch_ms", "epoch_s")
    if text_rest.any():
        rest = as_str[text_rest]
        strict = rest.str.fullmatch(_ISO_TEXT)  # what fromisoformat reads the same way
        iso = pd.to_datetime(rest.where(strict, None), format="ISO8601", utc=True,
                             errors="coerce")
        got = iso.notna()
        out.loc[got[got].index] = iso[got].astype("datetime64[ns, UTC]").to_numpy()
        kind.loc[got[got].index] = "iso"
        rest = rest[~got]
        formats = _DATE_FORMATS if dayfirst else sorted(
            _DATE_FORMATS, key=lambda kf: kf[0] == "day_first")
        for fmt_kind, fmt in formats:
            if rest.empty:
                break
            parsed = pd.to_datetime(rest, format=fmt, utc=True, errors="coerce")
            got = parsed.notna()
            if got.any():
                out.loc[got[got].index] = parsed[got].astype("datetime64[ns, UTC]").to_numpy()
                kind.loc[got[got].index] = fmt_kind
                rest = rest[~got]
        if not rest.empty:  # what pandas' ISO parser refused, the stream's parser may accept
            stamps = {v: _stream_timestamp(v) for v in pd.unique(rest)}
            late = rest.map(stamps)
            got = late.notna()
            if got.any():
                out.loc[got[got].index] = pd.to_datetime(late[got], utc=True).astype(
                    "datetime64[ns, UTC]").to_numpy()
                kind.loc[got[got].index] = "iso"
    kind[missing] = "missing"
    assert len(out) == n
    return _in_range(out, kind)


def _stream_timestamp(value: str) -> pd.Timestamp | None:
    try:
        return pd.Timestamp(parse_timestamp(value))
    except ValueError:
        return None


def _in_range(out: pd.Series, kind: pd.Series) -> tuple[pd.Series, pd.Series]:
    bad = out.notna() & ((out < _MIN_TS) | (out >= _MAX_TS))
    if bad.any():
        out[bad] = pd.NaT
        kind[bad] = "invalid"
    return out, kind


# -- the cleaner --------------------------------------------------------------------------------


class _Cleaner:
    """One cleaning run: the working frame, the rejects and the report being written."""

    def __init__(self, raw: pd.DataFrame, mapping: ColumnMapping, config: CleaningConfig,
                 tracker: Tracker, origin: str) -> None:
        self.raw = raw
        self.df = raw.copy()
        self.mapping = mapping
        self.config = config
        self.tracker = tracker
        self.origin = origin
        self.rules: list[RuleReport] = []
        self.notes: list[str] = []
        self.reasons: dict[int, str] = {}
        self.added: list[str] = []
        self.rates = config.currency_rates or _settings_default("currency_rates")
        self.base = (config.base_currency or _settings_default("base_currency")).upper()
        self.default_currency = (config.default_currency
                                 or _settings_default("default_currency")).upper()
        missing = [src for src in mapping.columns.values() if src not in raw.columns]
        if missing:
            raise DataError(f"{origin}: column(s) {missing} not found; it has "
                            f"{list(map(str, raw.columns))[:20]}")

    # column resolution
    def col(self, name: str, what: str) -> str:
        if name in self.df.columns:
            return name
        src = self.mapping.columns.get(name)
        if src is not None:
            return src
        raise ConfigError(f"cleaning config: {what} names unknown column {name!r}; the file has "
                          f"{list(map(str, self.raw.columns))[:20]}")

    def role(self, canonical: str) -> str | None:
        return self.mapping.columns.get(canonical)

    # bookkeeping
    def reject(self, mask: pd.Series, reason: str | pd.Series) -> int:
        mask = mask.reindex(self.df.index, fill_value=False).astype(bool)
        n = int(mask.sum())
        if n:
            texts = reason[mask] if isinstance(reason, pd.Series) else pd.Series(reason,
                                                                                 index=mask[mask].index)
            self.reasons.update(dict(zip(mask[mask].index.tolist(), texts.tolist(), strict=True)))
            self.df = self.df.loc[~mask]
        return n

    def add(self, rule: str, column: str | None, action: str, count: int,
            details: dict[str, Any] | None = None,
            examples: list[dict[str, Any]] | None = None) -> None:
        self.rules.append(RuleReport(rule, column, action, int(count), details or {},
                                     (examples or [])[:MAX_EXAMPLES]))

    def set_column(self, name: str, values: pd.Series) -> None:
        if name not in self.df.columns and name not in self.added:
            self.added.append(name)
        self.df[name] = values

    # the steps
    def missing_tokens(self) -> None:
        tokens = {t.strip().lower() for t in self.config.missing_tokens}
        for c in self.df.columns:
            s = self.df[c]
            if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_datetime64_any_dtype(s):
                continue
            text = s.where(s.isna(), s.astype(str)).astype(object)
            hit = text.notna() & text.map(lambda v: isinstance(v, str)
                                          and v.strip().lower() in tokens).astype(bool)
            n = int(hit.sum())
            if n:
                ex = [{"row": int(i), "before": text[i], "after": None}
                      for i in hit[hit].index[:MAX_EXAMPLES]]
                self.df[c] = s.where(~hit, None)
                values = Counter(text[hit].tolist()).most_common(5)
                self.add("missing_tokens", str(c), "made missing", n,
                         {"tokens": dict(values)}, ex)

    def dates(self) -> None:
        rules = [DateRule(column=self.role("timestamp") or "", dayfirst=self.config.dayfirst,
                          invalid="reject")]
        for r in self.config.dates:
            rules.append(r.model_copy(update={"column": self.col(r.column, "dates")}))
        for r in rules:
            c = r.column
            before = self.df[c]
            ts, kind = parse_dates(before, dayfirst=r.dayfirst)
            counts = {k: int(v) for k, v in kind.value_counts().items()}
            examples = []
            for k in ("day_first", "month_first", "year_first", "text_month", "epoch_s",
                      "epoch_ms", "iso", "datetime", "invalid"):
                idx = kind.index[kind == k][:2]
                examples += [{"row": int(i), "before": _jsonable(before[i]), "after":
                              (ts[i].isoformat() if pd.notna(ts[i]) else None), "format": k}
                             for i in idx]
            parsed = int((~kind.isin(("missing", "invalid"))).sum())
            self.add("dates", c, "parsed to UTC", parsed, {"formats": counts}, examples)
            is_time = c == self.role("timestamp")
            invalid = kind == "invalid"
            bad_ex = [{"row": int(i), "before": _jsonable(before[i]), "after": None}
                      for i in invalid[invalid].index[:MAX_EXAMPLES]]
            if is_time or r.invalid == "reject":
                reasons = before[invalid].map(lambda v, c=c: f"bad date: {c}={_short(v, 40)}")
                n = self.reject(invalid, reasons)
                if n:
                    self.add("dates", c, "rejected unreadable", n, {}, bad_ex)
                if is_time:
                    none = (kind == "missing").reindex(self.df.index, fill_value=False)
                    n = self.reject(none, f"missing time: {c}")
                    if n:
                        self.add("dates", c, "rejected missing", n, {},
                                 [{"row": int(i), "before": None, "after": "rejected"}
                                  for i in none[none].index[:MAX_EXAMPLES]])
            elif invalid.any():
                self.add("dates", c, "made missing (unreadable)", int(invalid.sum()), {}, bad_ex)
            self.df[c] = ts.reindex(self.df.index)

    def numbers(self) -> None:
        amount = self.role("amount")
        label = self.role("is_fraud")
        numeric = [c for c in (amount, self.role("latitude"), self.role("longitude")) if c]
        numeric += [self.col(c, "numeric") for c in self.config.numeric]
        self.found_currency: pd.Series | None = None
        for c in dict.fromkeys(numeric):
            s = self.df[c]
            if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
                self.df[c] = s.astype(float)
                continue
            values: dict[Any, tuple[float, str | None] | None] = {}
            for v in pd.unique(s.dropna()):
                try:
                    values[v] = parse_amount(v)
                except ValueError:
                    values[v] = None
            parsed = s.astype(object).map(values)
            number = parsed.map(lambda p: p[0] if isinstance(p, tuple) else np.nan).astype(float)
            bad = s.notna() & number.isna()
            changed = s.notna() & ~bad
            ex = [{"row": int(i), "before": s[i], "after": _jsonable(number[i])}
                  for i in changed[changed].index[:3]]
            ex += [{"row": int(i), "before": s[i], "after": None} for i in bad[bad].index[:2]]
            self.add("numbers", c, "read as numbers", int(changed.sum()),
                     {"unreadable_made_missing": int(bad.sum())}, ex)
            self.df[c] = number
            if c == amount:
                codes = parsed.map(lambda p: p[1] if isinstance(p, tuple) else None)
                if codes.notna().any():
                    self.found_currency = codes
        if label:
            self._label(label)

    def _label(self, c: str) -> None:
        s = self.df[c]
        if pd.api.types.is_bool_dtype(s):
            self.df[c] = s.astype(float)
            return
        if pd.api.types.is_numeric_dtype(s):
            number = s.astype(float)
            bad = number.notna() & ~number.isin((0.0, 1.0))
        else:
            def read(v: Any) -> float:
                if v is None or v != v:
                    return np.nan
                key = str(v).strip().lower()
                return 1.0 if key in _LABEL_TRUE else 0.0 if key in _LABEL_FALSE else -1.0

            number = s.map(read).astype(float)
            bad = number == -1.0
            changed = number.notna() & ~bad
            self.add("numbers", c, "read labels as 0/1", int(changed.sum()),
                     {"values": {str(k): int(v) for k, v in s[changed].value_counts()
                                 .head(8).items()}},
                     [{"row": int(i), "before": s[i], "after": int(number[i])}
                      for i in changed[changed].index[:3]])
        if bad.any():
            self.add("numbers", c, "invalid labels made missing", int(bad.sum()), {},
                     [{"row": int(i), "before": _jsonable(s[i]), "after": None}
                      for i in bad[bad].index[:MAX_EXAMPLES]])
        self.df[c] = number.where(~bad, np.nan)

    def categories(self) -> None:
        rules: dict[str, CategoryRule] = {}
        auto = {"channel": ("lower", CHANNEL_ALIASES), "country": ("upper", {}),
                "city": ("keep", {}), "merchant_category": ("keep", {})}
        for role_name, (case, aliases) in auto.items():
            src = self.role(role_name)
            if src:
                rules[src] = CategoryRule(column=src, case=case, aliases=aliases)  # type: ignore[arg-type]
        for r in self.config.categories:
            c = self.col(r.column, "categories")
            rules[c] = r.model_copy(update={"column": c})
        for c, r in rules.items():
            s = self.df[c]
            index = alias_index(r.aliases) if r.aliases else None
            uniques = pd.unique(s.dropna())
            table = {v: normalize_category(v, index, r.case) for v in uniques}
            after = s.astype(object).map(table)
            changed = s.notna() & (after.astype(object) != s.astype(object))
            mapped = Counter(zip(s[changed].tolist(), after[changed].tolist(), strict=True))
            ex = [{"before": b, "after": a, "rows": n} for (b, a), n in mapped.most_common(
                MAX_EXAMPLES)]
            self.add("categories", c, "normalised", int(changed.sum()),
                     {"distinct_before": int(s.nunique()), "distinct_after": int(after.nunique()),
                      "case": r.case, "aliases": len(r.aliases)}, ex)
            self.df[c] = after.astype(object)

    def currency(self) -> None:
        amount = self.role("amount")
        cur = self.role("currency")
        if not amount:
            return
        if cur is None and self.found_currency is None:
            self.notes.append(f"no currency column: amounts are taken as {self.default_currency}"
                              f" (the default currency); base currency {self.base}")
            if self.default_currency == self.base:
                return
        if cur is not None:
            codes_raw = self.df[cur]
            if self.found_currency is not None:
                codes_raw = codes_raw.where(codes_raw.notna(), self.found_currency)
            original = cur + "_original"
        else:
            codes_raw = (self.found_currency.reindex(self.df.index)
                         if self.found_currency is not None
                         else pd.Series(None, index=self.df.index, dtype=object))
            cur, original = "currency", "currency_original"
        table: dict[Any, tuple[str | None, float | None]] = {}
        for v in pd.unique(codes_raw.dropna()):
            text = str(v).strip()
            text = _CURRENCY_SYMBOLS.get(text.upper(), text)
            try:
                code = normalize_currency(text)
            except ValueError:
                table[v] = (None, None)
                continue
            try:
                table[v] = (code, currency_rate(code, self.rates))
            except ValueError:
                table[v] = (code, None)
        default_rate = self.rates.get(self.default_currency)

        def lookup(v: Any) -> tuple[str | None, float | None]:
            if v is None or v != v:
                return self.default_currency, default_rate
            return table[v]

        looked = codes_raw.map(lookup)
        code = looked.map(lambda p: p[0])
        rate = looked.map(lambda p: p[1]).astype(float)
        unknown = rate.isna()
        amounts = self.df[amount]
        converted = (amounts * rate).round(6)
        new_amount = converted.where(~unknown, amounts)
        per_code = {str(k): int(v) for k, v in code.fillna("(not ISO 4217)").value_counts().items()}
        moved = ~unknown & (rate != 1.0) & amounts.notna()
        ex = [{"row": int(i), "before": f"{amounts[i]} {code[i]}",
               "after": f"{_jsonable(new_amount[i])} {self.base}"} for i in moved[moved].index[:3]]
        self.add("currency", amount, f"converted to {self.base}", int(moved.sum()),
                 {"by_currency": per_code,
                  "rates_used": {c: self.rates[c] for c in per_code if c in self.rates}}, ex)
        if unknown.any():
            bad_ex = [{"row": int(i), "before": _jsonable(codes_raw[i]), "after": "unconverted"}
                      for i in unknown[unknown].index[:MAX_EXAMPLES]]
            if self.config.currency_unknown == "reject":
                reasons = codes_raw[unknown].map(lambda v: f"unknown currency: {_short(v, 20)}")
                n = self.reject(unknown, reasons)
                self.add("currency", cur, "rejected unknown currency", n, {}, bad_ex)
            else:
                self.add("currency", cur, "flagged unknown currency (currency_unknown=1)",
                         int(unknown.sum()), {}, bad_ex)
        keep = self.df.index
        self.df[amount] = new_amount.reindex(keep)
        first_time = code.where(~unknown, codes_raw).reindex(keep).astype(object)
        if original in self.df.columns:  # cleaned before: keep the first cleaning's codes
            first_time = self.df[original].where(self.df[original].notna(), first_time)
        self.set_column(original, first_time)
        self.set_column(cur, pd.Series(self.base, index=keep, dtype=object).where(
            ~unknown.reindex(keep), codes_raw.reindex(keep)))
        if unknown.any() and self.config.currency_unknown == "flag":
            self.set_column("currency_unknown", unknown.reindex(keep).astype(int))

    def units(self) -> None:
        for r in self.config.units:
            c = self.col(r.column, "units")
            factors = {k.strip().lower(): float(v) for k, v in r.factors.items()}
            s = self.df[c]
            if r.unit_column:
                uc = self.col(r.unit_column, "units.unit_column")
                unit = self.df[uc].map(lambda v: str(v).strip().lower() if v is not None
                                       and v == v else None).astype(object)
                number = pd.to_numeric(s, errors="coerce").astype(float)
            else:
                uc = None
                split = s.astype(object).map(_split_unit)
                number = split.map(lambda p: p[0]).astype(float)
                unit = split.map(lambda p: p[1])
            unreadable = int((s.notna() & number.isna()).sum())
            factor = unit.map(factors).astype(float)
            unknown = number.notna() & unit.notna() & factor.isna()
            factor = factor.where(unit.notna(), 1.0)  # no unit: already in the target unit
            new = (number * factor).where(~unknown, number)
            moved = number.notna() & ~unknown & (factor != 1.0)
            self.add("units", c, f"converted to {r.to or 'the target unit'}", int(moved.sum()),
                     {"by_unit": {str(k): int(v) for k, v in unit.value_counts().items()},
                      "unreadable_made_missing": unreadable},
                     [{"row": int(i), "before": _jsonable(s[i]) if uc is None
                       else f"{s[i]} {unit[i]}", "after": _jsonable(new[i])}
                      for i in moved[moved].index[:3]])
            self.df[c] = new
            if uc and r.to:
                self.df[uc] = unit.where(unknown, r.to)
            if unknown.any():
                reasons = unit[unknown].map(lambda u, c=c: f"unknown unit: {c} in {u!r}")
                ex = [{"row": int(i), "before": _jsonable(s[i]), "after": "unconverted"}
                      for i in unknown[unknown].index[:MAX_EXAMPLES]]
                if r.unknown == "reject":
                    n = self.reject(unknown, reasons)
                    self.add("units", c, "rejected unknown unit", n, {}, ex)
                else:
                    self.set_column(f"{c}_unit_unknown", unknown.reindex(self.df.index).astype(int))
                    self.add("units", c, f"flagged unknown unit ({c}_unit_unknown=1)",
                             int(unknown.sum()), {}, ex)

    def duplicates(self) -> None:
        if self.config.exact_duplicates:
            dup = self.df.duplicated(keep="first")
            if dup.any():
                hashes = pd.util.hash_pandas_object(self.df, index=False)
                first = pd.Series(self.df.index, index=self.df.index).groupby(
                    hashes.to_numpy()).transform("first")
                reasons = first[dup].map(lambda i: f"exact duplicate: of row {i}")
                ex = [{"row": int(i), "before": f"same as row {int(first[i])}", "after": "rejected"}
                      for i in dup[dup].index[:MAX_EXAMPLES]]
                n = self.reject(dup, reasons)
            else:
                n, ex = 0, []
            self.add("duplicates", None, "rejected exact duplicates (first kept)", n, {}, ex)
        id_col = self.role("transaction_id")
        if self.config.id_duplicates and id_col:
            ids = self.df[id_col]
            dup = ids.notna() & ids.duplicated(keep="first")
            ex = []
            if dup.any():
                first_of = pd.Series(self.df.index, index=self.df.index).groupby(
                    ids.astype(str).to_numpy()).transform("first")
                reasons = pd.Series([f"duplicate id: {ids[i]} (first at row {first_of[i]})"
                                     for i in dup[dup].index], index=dup[dup].index)
                ex = [{"row": int(i), "before": f"id {_jsonable(ids[i])} also at row "
                       f"{int(first_of[i])}", "after": "rejected"}
                      for i in dup[dup].index[:MAX_EXAMPLES]]
                n = self.reject(dup, reasons)
            else:
                n = 0
            self.add("duplicates", id_col, "rejected repeated ids (first kept)", n, {}, ex)
        elif self.config.id_duplicates:
            self.notes.append("no id column: only exact duplicates are looked for")

    def missing(self) -> None:
        rules: dict[str, MissingRule] = {}
        for role_name in ("transaction_id", "is_fraud"):
            src = self.role(role_name)
            if src:
                rules[src] = MissingRule(policy="drop")
        for name, r in self.config.missing.items():
            rules[self.col(name, "missing")] = r
        # first every drop, so the fills' medians come from the rows that stay
        for c, r in rules.items():
            if r.policy == "drop":
                na = self.df[c].isna()
                ex = [{"row": int(i), "before": None, "after": "rejected"}
                      for i in na[na].index[:MAX_EXAMPLES]]
                n = self.reject(na, f"missing {c}")
                self.add("missing", c, "rejected rows", n, {}, ex)
        for c in self.df.columns:
            if c in self.added:
                continue
            r = rules.get(c, MissingRule())
            if r.policy == "drop":
                continue
            na = self.df[c].isna()
            n = int(na.sum())
            if r.indicator or r.policy == "indicator":
                self.set_column(f"{c}_missing", na.astype(int))
            if r.policy == "keep":
                if n:
                    self.add("missing", c, "kept (counted)", n)
                continue
            if r.policy == "indicator":
                self.add("missing", c, f"indicator {c}_missing added", n)
                continue
            if r.policy == "median":
                if not pd.api.types.is_numeric_dtype(self.df[c]):
                    raise ConfigError(f"cleaning config: missing.{c}: median needs a numeric "
                                      "column")
                fill = float(self.df[c].median())
                if fill != fill:
                    self.notes.append(f"missing: {c} has no values to take a median of; "
                                      f"{n} gap(s) left")
                    continue
            else:
                fill = r.value
                if fill is None:
                    raise ConfigError(f"cleaning config: missing.{c}: constant needs a value")
            ex = [{"row": int(i), "before": None, "after": _jsonable(fill)}
                  for i in na[na].index[:MAX_EXAMPLES]]
            self.df[c] = self.df[c].where(~na, fill)
            self.add("missing", c, f"filled with {r.policy}" + (" (+indicator)" if r.indicator
                                                                  else ""), n,
                     {"value": _jsonable(fill)}, ex)

    def outliers(self) -> None:
        rules = self.config.outliers
        if rules is None:
            amount = self.role("amount")
            rules = [OutlierRule(column=amount, k=3.0)] if amount else []
        for r in rules:
            c = self.col(r.column, "outliers")
            s = self.df[c]
            if not pd.api.types.is_numeric_dtype(s):
                raise ConfigError(f"cleaning config: outliers: column {c!r} is not numeric")
            values = s.dropna()
            if values.empty:
                self.notes.append(f"outliers: {c} has no values")
                continue
            if r.method == "iqr":
                q1, q3 = values.quantile(0.25), values.quantile(0.75)
                lo, hi = q1 - r.k * (q3 - q1), q3 + r.k * (q3 - q1)
                how = f"IQR x {r.k:g}"
            else:
                lo, hi = values.quantile(r.lower), values.quantile(r.upper)
                how = f"quantiles {r.lower:g}..{r.upper:g}"
            low, high = s < lo, s > hi
            out = low | high
            details = {"method": how, "lower_bound": float(lo), "upper_bound": float(hi),
                       "below": int(low.sum()), "above": int(high.sum())}
            if r.action == "clip":
                new = s.clip(lo, hi)
                ex = [{"row": int(i), "before": _jsonable(s[i]), "after": _jsonable(new[i])}
                      for i in out[out].index[:MAX_EXAMPLES]]
                self.df[c] = new
                self.add("outliers", c, "clipped", int(out.sum()), details, ex)
            else:
                ex = [{"row": int(i), "before": _jsonable(s[i]), "after": f"{c}_outlier=1"}
                      for i in out[out].index[:MAX_EXAMPLES]]
                self.set_column(f"{c}_outlier", out.astype(int))
                self.add("outliers", c, f"flagged ({c}_outlier=1)", int(out.sum()), details, ex)

    def run(self) -> CleaningResult:
        started = time.perf_counter()
        rows_in = len(self.df)
        steps = [("missing tokens", self.missing_tokens), ("dates", self.dates),
                 ("numbers", self.numbers), ("categories", self.categories),
                 ("currency", self.currency), ("units", self.units),
                 ("duplicates", self.duplicates), ("missing values", self.missing),
                 ("outliers", self.outliers)]
        for i, (name, step) in enumerate(steps):
            self.tracker.step(0.1 + 0.85 * i / len(steps), name)
            step()
        label = self.role("is_fraud")
        if label and self.df[label].notna().all():
            self.df[label] = self.df[label].astype(int)
        rejected = sorted(self.reasons)
        rejects = self.raw.loc[rejected].copy()
        rejects.insert(0, "_reason", [self.reasons[i] for i in rejected])
        rejects.insert(0, "_row", rejected)
        by_reason = Counter(r.split(":", 1)[0] for r in self.reasons.values())
        report = CleaningReport(
            source=self.origin, rows_in=rows_in, rows_out=len(self.df),
            rejected_by_reason=dict(sorted(by_reason.items())), rules=self.rules,
            notes=self.notes, seconds=time.perf_counter() - started,
            columns_added=list(self.added),
        )
        assert report.rows_rejected == len(rejects)
        return CleaningResult(self.df.reset_index(drop=True), rejects.reset_index(drop=True),
                              report)


def _split_unit(v: Any) -> tuple[float, str | None]:
    if v is None or (isinstance(v, float) and v != v):
        return np.nan, None
    if isinstance(v, int | float):
        return float(v), None
    m = re.fullmatch(r"\s*([+-]?\d+(?:\.\d+)?)\s*([^\d\s].*?)?\s*", str(v))
    if not m:
        return np.nan, None
    return float(m.group(1)), (m.group(2).strip().lower() if m.group(2) else None)


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, str | bool | int):
        return v
    if isinstance(v, float):
        return None if v != v else float(f"{v:.10g}")
    if isinstance(v, np.generic):
        return _jsonable(v.item())
    if isinstance(v, pd.Timestamp | datetime):
        return v.isoformat()
    return str(v)


def _settings_default(name: str) -> Any:
    from fraudstream.settings import Settings

    default = Settings.model_fields[name].default
    return dict(default) if isinstance(default, dict) else default


def clean_frame(
    raw: pd.DataFrame,
    mapping: ColumnMapping,
    config: CleaningConfig | None = None,
    *,
    origin: str = "data",
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> CleaningResult:
    """Clean ``raw`` (the file's own columns) by ``config``; nothing is dropped without a reason.

    Currency rates, the base and the default currency come from ``config`` or else from the
    settings' defaults; pass ``CleaningConfig(currency_rates=settings.currency_rates, ...)`` to use
    the running settings (:func:`clean_file` does).
    """
    tracker = Tracker(progress, cancel, what="cleaning")
    tracker.step(0.05, "checking the mapping")
    cleaner = _Cleaner(raw, mapping, config or CleaningConfig(), tracker, origin)
    result = cleaner.run()
    tracker.done(f"{result.report.rows_out:,} rows kept, {result.report.rows_rejected:,} rejected")
    return result


_WRITABLE = (".parquet", ".pq", ".csv", ".csv.gz")


def check_writable(path: str | Path) -> Path:
    """``path`` if a frame can be written there by its name; :class:`DataError` otherwise."""
    path = Path(path)
    if not path.name.lower().endswith(_WRITABLE):
        raise DataError(f"{path.name}: write .csv, .csv.gz or .parquet")
    return path


def write_frame(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as Parquet (``.parquet``/``.pq``) or CSV (``.csv``, ``.csv.gz``)."""
    path = check_writable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if path.name.lower().endswith((".parquet", ".pq")):
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot write {path}: {exc}") from exc
    return path


def clean_file(
    path: str | Path,
    mapping: ColumnMapping,
    out: str | Path,
    *,
    config: CleaningConfig | None = None,
    currency_rates: dict[str, float] | None = None,
    base_currency: str | None = None,
    default_currency: str | None = None,
    rejects_path: str | Path | None = None,
    report_path: str | Path | None = None,
    nrows: int | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> CleaningReport:
    """Clean the file at ``path`` into ``out``; write the rejects and the JSON report if asked.

    The currency arguments (from the settings) apply unless ``config`` sets its own.
    """
    tracker = Tracker(progress, cancel, what="cleaning")
    config = config or CleaningConfig()
    config = config.model_copy(update={
        "currency_rates": config.currency_rates or currency_rates,
        "base_currency": config.base_currency or base_currency,
        "default_currency": config.default_currency or default_currency,
    })
    check_writable(out)
    if rejects_path is not None:
        check_writable(rejects_path)
    tracker.step(0.0, f"reading {Path(path).name}")
    raw = read_raw(path, nrows)

    def sub(fraction: float, message: str) -> None:
        tracker.step(0.1 + 0.75 * fraction, message)

    result = clean_frame(raw, mapping, config, origin=str(path), progress=sub, cancel=cancel)
    tracker.step(0.86, f"writing {Path(out).name}")
    report = result.report
    report.output = str(write_frame(result.frame, out))
    if rejects_path is not None:
        report.rejects_path = str(write_frame(result.rejects, rejects_path))
    if report_path is not None:
        Path(report_path).parent.mkdir(parents=True, exist_ok=True)
        Path(report_path).write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n",
                                     encoding="utf-8")
    tracker.done("cleaned")
    return report
