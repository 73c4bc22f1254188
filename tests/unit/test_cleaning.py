"""Cleaning: every rule on hand-built frames with exact counts, the report, the rejects, the file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.cleaning import (
    CategoryRule,
    CleaningConfig,
    DateRule,
    MissingRule,
    OutlierRule,
    UnitRule,
    clean_file,
    clean_frame,
    load_config,
    parse_amount,
    parse_dates,
)
from features.columns import HANDBOOK, ColumnMapping, read_frame
from fraudstream.errors import Cancelled, ConfigError, DataError
from stream.schemas import Transaction, parse_timestamp

RATES = {"EUR": 1.0, "USD": 0.9, "GBP": 1.2}


def cfg(**kw: object) -> CleaningConfig:
    """A config with a fixed rate table and no default outlier rule (tests ask for their own)."""
    base: dict[str, object] = {"currency_rates": RATES, "base_currency": "EUR",
                               "default_currency": "EUR", "outliers": []}
    base.update(kw)
    return CleaningConfig(**base)  # type: ignore[arg-type]


def frame(n: int, **cols: list[object]) -> pd.DataFrame:
    data: dict[str, list[object]] = {"t": [f"2024-01-01 00:00:{i:02d}" for i in range(n)]}
    data.update(cols)
    return pd.DataFrame(data)


def mapping(**cols: str) -> ColumnMapping:
    return ColumnMapping(columns={"timestamp": "t", **cols})


# -- missing tokens and missing values ------------------------------------------------------------


def test_missing_tokens_become_missing() -> None:
    raw = frame(6, city=["Paris", "", "N/A", "null", " none ", "?"])
    res = clean_frame(raw, mapping(), cfg())
    rule = res.report.rule("missing_tokens", "city")
    assert rule.count == 5
    assert res.frame["city"].isna().sum() == 5
    assert res.report.rule("missing", "city").count == 5  # kept, counted


def test_missing_policies_drop_median_constant_indicator() -> None:
    raw = frame(5, a=[1.0, np.nan, 3.0, 10.0, np.nan], b=[np.nan, 2.0, 2.0, 2.0, 2.0],
                c=["x", None, "y", "z", None], d=[1.0, 2.0, np.nan, 4.0, 5.0])
    config = cfg(missing={"a": MissingRule(policy="median", indicator=True),
                          "b": MissingRule(policy="drop"),
                          "c": MissingRule(policy="constant", value="unknown"),
                          "d": MissingRule(policy="indicator")})
    res = clean_frame(raw, mapping(), config)
    out = res.frame
    assert res.report.rows_rejected == 1 and res.report.rejected_by_reason == {"missing b": 1}
    assert res.rejects["_row"].tolist() == [0]
    # the median is taken after the drop: rows 1..4 have a = nan, 3, 10, nan -> 6.5
    assert out["a"].tolist() == [6.5, 3.0, 10.0, 6.5]
    assert out["a_missing"].tolist() == [1, 0, 0, 1]
    assert out["c"].tolist() == ["unknown", "y", "z", "unknown"]
    assert out["d_missing"].tolist() == [0, 1, 0, 0] and out["d"].isna().sum() == 1
    assert res.report.rule("missing", "a").count == 2
    assert res.report.rule("missing", "a").details == {"value": 6.5}
    assert res.report.rule("missing", "c").count == 2
    assert set(res.report.columns_added) == {"a_missing", "d_missing"}


def test_median_needs_numbers_and_constant_needs_a_value() -> None:
    raw = frame(2, c=["x", None])
    with pytest.raises(ConfigError, match="median needs a numeric"):
        clean_frame(raw, mapping(), cfg(missing={"c": MissingRule(policy="median")}))
    with pytest.raises(ConfigError, match="constant needs a value"):
        clean_frame(raw, mapping(), cfg(missing={"c": MissingRule(policy="constant")}))


# -- duplicates -------------------------------------------------------------------------------


def test_exact_and_id_duplicates_keep_the_first() -> None:
    raw = pd.DataFrame({
        "t": ["2024-01-01 00:00:00"] * 6,
        "id": ["a", "b", "a", "c", "c", "d"],
        "v": [1, 2, 1, 3, 4, 5],
    })
    raw.loc[5] = raw.loc[1]  # row 5 is an exact copy of row 1 (so its id repeats too)
    res = clean_frame(raw, mapping(transaction_id="id"), cfg())
    assert res.report.rule("duplicates", None).count == 2  # rows 2 and 5
    assert res.report.rule("duplicates", "id").count == 1  # row 4 repeats id c with v=4
    assert res.frame["id"].tolist() == ["a", "b", "c"]
    assert res.frame["v"].tolist() == [1, 2, 3]
    reasons = dict(zip(res.rejects["_row"], res.rejects["_reason"], strict=True))
    assert reasons == {2: "exact duplicate: of row 0", 4: "duplicate id: c (first at row 3)",
                       5: "exact duplicate: of row 1"}
    assert res.report.rejected_by_reason == {"duplicate id": 1, "exact duplicate": 2}


def test_duplicates_can_be_switched_off() -> None:
    raw = pd.DataFrame({"t": ["2024-01-01"] * 2, "id": ["a", "a"]})
    res = clean_frame(raw, mapping(), cfg(exact_duplicates=False, id_duplicates=False))
    assert res.report.rows_out == 2


# -- categories -------------------------------------------------------------------------------


def test_city_aliases_case_and_spaces() -> None:
    raw = frame(7, city=["New York", "new  york", "NY", "N.Y.", " paris", "PARIS", "Boston "])
    rule = CategoryRule(column="city", case="title", aliases={"NY": "New York"})
    res = clean_frame(raw, mapping(), cfg(categories=[rule]))
    assert res.frame["city"].tolist() == ["New York"] * 4 + ["Paris", "Paris", "Boston"]
    report = res.report.rule("categories", "city")
    assert report.count == 6  # everything but the first value changed
    assert report.details["distinct_before"] == 7 and report.details["distinct_after"] == 3
    assert {"before": "N.Y.", "after": "New York", "rows": 1} in report.examples


def test_channel_uses_the_streams_alias_table() -> None:
    values = ["Online", " E-Commerce ", "POS", "atm"]
    raw = frame(4, ch=values)
    res = clean_frame(raw, mapping(channel="ch"), cfg())
    wire = [Transaction.model_validate({"transaction_id": 1, "card_id": 1, "amount": 1,
                                        "timestamp": 0, "channel": v}).channel for v in values]
    assert res.frame["ch"].tolist() == wire == ["ecom", "ecom", "pos", "atm"]


# -- dates ------------------------------------------------------------------------------------


def test_every_date_format_into_utc() -> None:
    values = ["2026-04-20T10:00:00+02:00", "2026-04-20 08:00:00", "20/04/2026 08:00",
              "20.04.2026", "04/25/2026", "2026/04/20", "20 April 2026", "April 20, 2026",
              "1776672000", "1776672000000", None, "someday", "2200-01-01"]
    ts, kind = parse_dates(pd.Series(values, dtype=object))
    assert kind.tolist() == ["iso", "iso", "day_first", "day_first", "month_first", "year_first",
                             "text_month", "text_month", "epoch_s", "epoch_ms", "missing",
                             "invalid", "invalid"]
    iso = [t.isoformat() if pd.notna(t) else None for t in ts]
    assert iso[:10] == ["2026-04-20T08:00:00+00:00", "2026-04-20T08:00:00+00:00",
                        "2026-04-20T08:00:00+00:00", "2026-04-20T00:00:00+00:00",
                        "2026-04-25T00:00:00+00:00", "2026-04-20T00:00:00+00:00",
                        "2026-04-20T00:00:00+00:00", "2026-04-20T00:00:00+00:00",
                        "2026-04-20T08:00:00+00:00", "2026-04-20T08:00:00+00:00"]
    assert iso[10:] == [None, None, None]


def test_month_first_when_asked() -> None:
    ts, kind = parse_dates(pd.Series(["04/05/2026"]), dayfirst=False)
    assert (ts[0].month, ts[0].day, kind[0]) == (4, 5, "month_first")
    ts, kind = parse_dates(pd.Series(["04/05/2026"]), dayfirst=True)
    assert (ts[0].month, ts[0].day, kind[0]) == (5, 4, "day_first")


@pytest.mark.parametrize("value", [
    "2018-04-01 00:00:31", "2018-04-01T02:00:31+02:00", "2018-04-01T00:00:31Z", "2018-04-01",
    "2018-04-01T00:00:31.250", "1522540831", "1522540831000", "1522540831.5", "99999999999",
    "100000000000", "4102444800", "2100-01-01T00:00:00", "2024-02-30", "-5",
])
def test_dates_agree_with_the_stream(value: str) -> None:
    """ISO text and epochs mean the same in a file as on the wire, and are refused alike."""
    ts, kind = parse_dates(pd.Series([value], dtype=object))
    try:
        expected = parse_timestamp(value)
    except ValueError:
        assert kind[0] == "invalid" and pd.isna(ts[0])
    else:
        assert ts[0].to_pydatetime() == expected


def test_numeric_epoch_columns() -> None:
    ts, kind = parse_dates(pd.Series([1522540831, 1522540831000, -5, np.nan]))
    assert kind.tolist() == ["epoch_s", "epoch_ms", "invalid", "missing"]
    assert ts[0] == ts[1] == pd.Timestamp("2018-04-01 00:00:31", tz="UTC")


def test_bad_times_are_rejected() -> None:
    raw = pd.DataFrame({"t": ["2024-01-01", "never", None, "02/01/2024"]})
    res = clean_frame(raw, mapping(), cfg())
    assert res.report.rejected_by_reason == {"bad date": 1, "missing time": 1}
    assert res.frame["t"].tolist() == [pd.Timestamp("2024-01-01", tz="UTC"),
                                       pd.Timestamp("2024-01-02", tz="UTC")]
    reasons = res.rejects.set_index("_row")["_reason"].to_dict()
    assert reasons == {1: "bad date: t='never'", 2: "missing time: t"}
    assert res.rejects["t"].tolist()[0] == "never"  # the original value


def test_other_date_columns_keep_or_reject_unreadable_values() -> None:
    raw = frame(4, born=["1990-05-01", "x", "01/02/1980", None])
    res = clean_frame(raw, mapping(), cfg(dates=[DateRule(column="born")]))
    assert res.report.rows_rejected == 0
    assert res.report.rule("dates", "born").details["formats"] == {
        "iso": 1, "invalid": 1, "day_first": 1, "missing": 1}
    assert res.report.rule("dates", "born").count == 2
    assert res.report.rule("dates", "born").action == "parsed to UTC"
    assert res.frame["born"].tolist()[2] == pd.Timestamp("1980-02-01", tz="UTC")
    assert res.frame["born"].isna().sum() == 2
    res = clean_frame(raw, mapping(), cfg(dates=[DateRule(column="born", invalid="reject")]))
    assert res.report.rejected_by_reason == {"bad date": 1}


# -- numbers, labels, currency, units --------------------------------------------------------


def test_parse_amount_forms() -> None:
    assert parse_amount("1 234,56") == (1234.56, None)
    assert parse_amount("1.234.567") == (1234567.0, None)
    assert parse_amount("£7") == (7.0, "GBP")
    with pytest.raises(ValueError):
        parse_amount("12 apples")


def test_labels_are_read_and_invalid_ones_dropped() -> None:
    raw = frame(7, y=["1", "0", "yes", "No", "fraud", "maybe", None])
    res = clean_frame(raw, mapping(is_fraud="y"), cfg())
    assert res.frame["y"].tolist() == [1, 0, 1, 0, 1]
    assert res.frame["y"].dtype.kind == "i"
    assert res.report.rule("numbers", "y").count == 5
    assert res.report.rejected_by_reason == {"missing y": 2}


def test_currency_conversion_and_unknown_codes_flagged() -> None:
    raw = frame(6, amt=["10", "10", "$10", "10", "10", "10"],
                cur=["EUR", " usd", None, "gbp", "XYZ", "SEK"])
    res = clean_frame(raw, mapping(amount="amt", currency="cur"), cfg())
    out = res.frame
    assert out["amt"].tolist() == [10.0, 9.0, 9.0, 12.0, 10.0, 10.0]
    assert out["cur"].tolist() == ["EUR", "EUR", "EUR", "EUR", "XYZ", "SEK"]
    assert out["cur_original"].tolist() == ["EUR", "USD", "USD", "GBP", "XYZ", "SEK"]
    assert out["currency_unknown"].tolist() == [0, 0, 0, 0, 1, 1]
    assert res.report.rule("currency", "amt").count == 3  # three rows changed value
    assert res.report.rule("currency", "cur").count == 2
    assert res.report.rows_rejected == 0


def test_unknown_currency_can_be_rejected_and_default_applies() -> None:
    raw = frame(3, amt=[10.0, 10.0, 10.0], cur=["XYZ", None, "USD"])
    res = clean_frame(raw, mapping(amount="amt", currency="cur"),
                      cfg(currency_unknown="reject", default_currency="GBP"))
    assert res.report.rejected_by_reason == {"unknown currency": 1}
    assert res.frame["amt"].tolist() == [12.0, 9.0]  # missing currency -> the default, GBP


def test_units_by_column_and_suffix() -> None:
    raw = frame(4, d=[1.0, 2.0, 3.0, 4.0], u=["km", "mi", "KM", "furlong"],
                e=["5 mi", "2km", "7", "3 leagues"])
    rules = [UnitRule(column="d", unit_column="u", factors={"km": 1.0, "mi": 1.609344}, to="km"),
             UnitRule(column="e", factors={"km": 1.0, "mi": 1.609344}, to="km")]
    res = clean_frame(raw, mapping(), cfg(units=rules))
    out = res.frame
    assert out["d"].round(6).tolist() == [1.0, 3.218688, 3.0, 4.0]
    assert out["u"].tolist() == ["km", "km", "km", "furlong"]
    assert out["d_unit_unknown"].tolist() == [0, 0, 0, 1]
    assert out["e"].round(5).tolist() == [8.04672, 2.0, 7.0, 3.0]
    assert out["e_unit_unknown"].tolist() == [0, 0, 0, 1]
    assert res.report.rule("units", "d").count == 1


# -- outliers ---------------------------------------------------------------------------------


def test_outliers_flagged_by_iqr_never_dropped() -> None:
    values = [float(v) for v in range(1, 11)] + [100.0]  # q1 3.5, q3 8.5, IQR 5 -> bounds -4..16
    raw = frame(11, x=values)
    res = clean_frame(raw, mapping(), cfg(outliers=[OutlierRule(column="x")]))
    rule = res.report.rule("outliers", "x")
    assert (rule.count, rule.details["lower_bound"], rule.details["upper_bound"]) == (1, -4.0, 16.0)
    assert res.frame["x_outlier"].tolist() == [0] * 10 + [1]
    assert res.frame["x"].tolist() == values and res.report.rows_rejected == 0


def test_outliers_clipped_by_quantile() -> None:
    raw = frame(5, x=[0.0, 1.0, 2.0, 3.0, 4.0])
    rule = OutlierRule(column="x", method="quantile", lower=0.25, upper=0.75, action="clip")
    res = clean_frame(raw, mapping(), cfg(outliers=[rule]))
    assert res.frame["x"].tolist() == [1.0, 1.0, 2.0, 3.0, 3.0]
    assert res.report.rule("outliers", "x").count == 2


def test_default_outlier_rule_flags_the_amount() -> None:
    raw = frame(11, a=[float(v) for v in range(1, 11)] + [100.0])
    res = clean_frame(raw, mapping(amount="a"), CleaningConfig())
    assert res.report.rule("outliers", "a").details["method"] == "IQR x 3"
    assert res.frame["a_outlier"].sum() == 1


# -- the report, the rejects, idempotence, the file ------------------------------------------


MESSY = pd.DataFrame({
    "tx": ["1", "2", "3", "3", "4", "5", "6"],
    "when": ["2026-04-20 10:00:00", "20/04/2026", "20 April 2026", "20 April 2026", "soon",
             "1776672000", "2026-04-21"],
    "amount": ["12.50", "€1.234,50", "10 USD", "10 USD", "7", "N/A", "5"],
    "city": ["New York", "new york", "NY", "NY", "Paris", "N.Y.", None],
    "label": ["0", "1", "yes", "yes", "0", "0", "1"],
})
MESSY_MAP = ColumnMapping(columns={"transaction_id": "tx", "timestamp": "when", "amount": "amount",
                                   "city": "city", "is_fraud": "label"})


def messy_config() -> CleaningConfig:
    return cfg(categories=[CategoryRule(column="city", case="title",
                                        aliases={"NY": "New York"})],
               missing={"amount": MissingRule(policy="median")})


def test_report_numbers_add_up_and_serialise() -> None:
    res = clean_frame(MESSY, MESSY_MAP, messy_config(), origin="messy.csv")
    rep = res.report
    assert (rep.rows_in, rep.rows_out, rep.rows_rejected) == (7, 5, 2)
    assert rep.rejected_by_reason == {"bad date": 1, "exact duplicate": 1}
    assert len(res.rejects) == 2 and list(res.rejects.columns[:2]) == ["_row", "_reason"]
    assert res.rejects["amount"].tolist() == ["10 USD", "7"]  # original values, untouched
    # 10 USD at 0.9 is 9 EUR; the median of 12.5, 1234.5, 9 and 5 fills the N/A
    assert res.frame["amount"].tolist() == [12.5, 1234.5, 9.0, 10.75, 5.0]
    assert rep.rule("categories", "city").count == 4
    assert rep.rule("numbers", "amount").details["unreadable_made_missing"] == 0
    data = json.loads(json.dumps(rep.to_dict()))
    assert data["rows_rejected"] == 2 and data["rules"][0]["rule"] == "missing_tokens"
    text = rep.to_text()
    assert "7 rows in, 5 out, 2 rejected" in text and "exact duplicate: 1" in text


def test_cleaning_twice_changes_nothing(tmp_path: Path) -> None:
    once = clean_frame(MESSY, MESSY_MAP, messy_config())
    path = tmp_path / "once.parquet"
    once.frame.to_parquet(path)
    again = clean_frame(pd.read_parquet(path), MESSY_MAP, messy_config())
    assert again.report.rows_rejected == 0
    assert again.report.rule("categories", "city").count == 0
    pd.testing.assert_frame_equal(again.frame, once.frame, check_dtype=False)


def test_clean_file_writes_what_read_frame_reads(tmp_path: Path) -> None:
    src = tmp_path / "messy.csv"
    MESSY.to_csv(src, index=False)
    report = clean_file(src, MESSY_MAP, tmp_path / "clean.csv.gz", config=messy_config(),
                        rejects_path=tmp_path / "rejects.csv", report_path=tmp_path / "r.json")
    df = read_frame(tmp_path / "clean.csv.gz", MESSY_MAP)
    assert len(df) == report.rows_out == 5
    assert df["amount"].tolist() == [1234.5, 9.0, 10.75, 12.5, 5.0]  # sorted by time then id
    assert pd.read_csv(tmp_path / "rejects.csv")["_reason"].tolist() == [
        "exact duplicate: of row 2", "bad date: when='soon'"]
    assert json.loads((tmp_path / "r.json").read_text())["rows_out"] == 5


def test_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown column 'nope'"):
        clean_frame(MESSY, MESSY_MAP, cfg(outliers=[OutlierRule(column="nope")]))
    with pytest.raises(ConfigError, match="not numeric"):
        clean_frame(MESSY, MESSY_MAP, cfg(outliers=[OutlierRule(column="city")]))
    bad = tmp_path / "bad.json"
    bad.write_text('{"outliers": [{"column": "amount", "method": "zscore"}]}')
    with pytest.raises(ConfigError, match="outliers.0.method"):
        load_config(bad)
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(bad)
    with pytest.raises(ConfigError, match="no such cleaning config"):
        load_config(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="outlierz: Extra inputs"):
        load_config({"outlierz": []})
    with pytest.raises(DataError, match=r"column\(s\) \['nope'\] not found"):
        clean_frame(MESSY, ColumnMapping(columns={"timestamp": "nope"}), cfg())
    with pytest.raises(DataError, match="write .csv"):
        clean_file(tmp_path / "x.csv", MESSY_MAP, tmp_path / "out.txt")


def test_cancel_stops_cleaning() -> None:
    with pytest.raises(Cancelled):
        clean_frame(MESSY, MESSY_MAP, messy_config(), cancel=lambda: True)
    seen: list[float] = []
    clean_frame(MESSY, MESSY_MAP, messy_config(), progress=lambda f, m: seen.append(f))
    assert seen == sorted(seen) and seen[-1] == 1.0


def test_handbook_slice_is_clean(fdh_path: Path, tmp_path: Path) -> None:
    report = clean_file(fdh_path, HANDBOOK, tmp_path / "hb.parquet", nrows=20_000)
    assert (report.rows_in, report.rows_out) == (20_000, 20_000)
    assert report.rule("dates", "TX_DATETIME").details["formats"] == {"iso": 20_000}
    assert report.rule("duplicates", "TRANSACTION_ID").count == 0
    flagged = report.rule("outliers", "TX_AMOUNT")
    raw = pd.read_csv(fdh_path, nrows=20_000)
    q1, q3 = raw["TX_AMOUNT"].quantile([0.25, 0.75])
    assert flagged.count == int((raw["TX_AMOUNT"] > q3 + 3 * (q3 - q1)).sum()) > 0
    df = read_frame(tmp_path / "hb.parquet", HANDBOOK)
    assert df["is_fraud"].sum() == raw["TX_FRAUD"].sum()
