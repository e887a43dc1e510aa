"""OTE day-ahead reader and retail tariff (scenarios.prices)."""

from __future__ import annotations

import csv
import datetime as dt
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from scenarios.prices import Tariff, apply_tariff, bundled_ote_prices, read_ote_dayahead
from twin.errors import ScenarioError

PRAGUE = ZoneInfo("Europe/Prague")
BUNDLED = Path(str(resources.files("scenarios").joinpath("data", "ote_cz_dayahead_2024.csv")))
SHARED_SOURCE = Path("/work/shared/data/ote_cz_dayahead/cz_da-hourly_2024.csv")
HEADER = "date,hour,interval_start,price_eur_mwh,volume_mwh\n"


def raw_rows(path: Path = BUNDLED) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def expected_start(date: str, hour: str) -> pd.Timestamp:
    """Independent reading of a row: ``hour`` whole hours after local midnight of ``date``."""
    midnight = dt.datetime.fromisoformat(date).replace(tzinfo=PRAGUE)
    utc = midnight.astimezone(dt.UTC) + dt.timedelta(hours=int(hour))
    return pd.Timestamp(utc).tz_convert("Europe/Prague")


@pytest.fixture(scope="module")
def prices() -> tuple[pd.Series, dict]:
    return read_ote_dayahead(BUNDLED)


def write(tmp_path: Path, lines: list[str], name: str = "ote.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def day_rows(date: str, n: int, price: float = 50.0, skip: tuple[int, ...] = ()) -> list[str]:
    return [f"{date},{h},{date}T{h:02d}:00:00,{price + h},1000.0" for h in range(n) if h not in skip]


# -- the bundled 2024 data -------------------------------------------------------------

def test_every_raw_row_lands_on_its_hour(prices):
    series, _ = prices
    rows = raw_rows()
    assert len(rows) == 8783
    stamps = pd.DatetimeIndex([expected_start(r["date"], r["hour"]) for r in rows])
    expected = np.array([float(r["price_eur_mwh"]) for r in rows]) / 1000.0
    assert_allclose(series.reindex(stamps).to_numpy(), expected, rtol=0, atol=1e-12)


def test_series_is_gapless_hourly_and_tz_aware(prices):
    series, meta = prices
    assert str(series.index.tz) == "Europe/Prague"
    assert series.index.freq == pd.Timedelta(hours=1)
    assert series.index[0] == pd.Timestamp("2024-01-01 00:00", tz="Europe/Prague")
    assert meta["end"] == pd.Timestamp("2025-01-01 00:00", tz="Europe/Prague")
    assert len(series) == 366 * 24  # 23-hour and 25-hour days cancel out
    assert np.isfinite(series.to_numpy()).all()
    assert (np.diff(series.index.asi8) == np.diff(series.index.asi8)[0]).all()
    assert meta["rows"] == 8783


def test_dst_days_have_23_and_25_hours(prices):
    series, _ = prices
    per_day = pd.Series(1, index=series.index).groupby(series.index.date).sum()
    assert per_day[dt.date(2024, 3, 31)] == 23
    assert per_day[dt.date(2024, 10, 27)] == 25
    assert (per_day.drop([dt.date(2024, 3, 31), dt.date(2024, 10, 27)]) == 24).all()


def test_dst_rows_by_position(prices):
    # Values read off the raw CSV: 2024-03-31 hour 2 = 44.68, 2024-10-27 hours 2, 3, 23 = 82.23, 80.43, 114.42
    series, _ = prices
    assert series[pd.Timestamp("2024-03-31 03:00+02:00")] == pytest.approx(0.04468)
    assert series[pd.Timestamp("2024-10-27 02:00+02:00")] == pytest.approx(0.08223)
    assert series[pd.Timestamp("2024-10-27 02:00+01:00")] == pytest.approx(0.08043)
    assert series[pd.Timestamp("2024-10-27 22:00+01:00")] == pytest.approx(0.11442)


def test_missing_fall_back_hour_is_filled_and_reported(prices):
    series, meta = prices
    missing = pd.Timestamp("2024-10-27 23:00+01:00")
    assert meta["filled"] == [missing]
    assert series[missing] == series[missing - pd.Timedelta(hours=1)]
    assert series[missing + pd.Timedelta(hours=1)] == pytest.approx(0.09589)  # 2024-10-28 hour 0


def test_negative_hours_survive(prices):
    series, _ = prices
    raw = np.array([float(r["price_eur_mwh"]) for r in raw_rows()])
    assert (series < 0).sum() == (raw < 0).sum() == 315  # 315: the shared data README
    assert series.min() == pytest.approx(raw.min() / 1000.0) == pytest.approx(-0.13875)


def test_bundled_helper_returns_copies():
    first, meta = bundled_ote_prices()
    first.iloc[0] = 99.0
    meta["filled"].clear()
    again, meta_again = bundled_ote_prices()
    assert again.iloc[0] != 99.0
    assert len(meta_again["filled"]) == 1
    assert "OTE" in meta_again["source_description"]


@pytest.mark.skipif(not SHARED_SOURCE.exists(), reason="shared source data not available")
def test_bundled_excerpt_equals_the_source(prices):
    source, _ = read_ote_dayahead(SHARED_SOURCE)  # unsorted, with volume_mwh
    pd.testing.assert_series_equal(source, prices[0])
    assert {(r["date"], r["hour"], r["price_eur_mwh"]) for r in raw_rows(SHARED_SOURCE)} == {
        (r["date"], r["hour"], r["price_eur_mwh"]) for r in raw_rows()}


# -- reader on small files --------------------------------------------------------------

def test_rows_in_any_order(tmp_path):
    lines = day_rows("2024-06-03", 24) + day_rows("2024-06-04", 24)
    forward, _ = read_ote_dayahead(write(tmp_path, lines, "a.csv"))
    backward, _ = read_ote_dayahead(write(tmp_path, lines[::-1], "b.csv"))
    pd.testing.assert_series_equal(forward, backward)
    assert forward[pd.Timestamp("2024-06-04 05:00+02:00")] == pytest.approx(0.055)


def test_extra_and_missing_optional_columns(tmp_path):
    path = tmp_path / "min.csv"
    path.write_text("price_eur_mwh,hour,date\n" + "".join(f"{h},{h},2024-02-01\n" for h in range(24)))
    series, meta = read_ote_dayahead(path)
    assert len(series) == 24 and meta["filled"] == []
    assert series.iloc[23] == pytest.approx(0.023)


@pytest.mark.parametrize(
    ("lines", "match"),
    [
        (["2024-06-03,0,2024-06-03T00:00:00,abc,1"] + day_rows("2024-06-03", 24)[1:],
         r"ote\.csv: column 'price_eur_mwh' row 2: 'abc'"),
        (day_rows("2024-06-03", 23) + ["2024-06-03,x,2024-06-03T23:00:00,5,1"],
         r"column 'hour' row 25: 'x' is not a whole hour"),
        (["2024-13-03,0,2024-13-03T00:00:00,5,1"], r"column 'date' row 2: '2024-13-03' is not a date"),
        (day_rows("2024-06-03", 24) + ["2024-06-03,5,2024-06-03T05:00:00,5,1"],
         r"column 'hour' row 26: hour 5 of 2024-06-03 appears twice"),
        (day_rows("2024-06-03", 24, skip=(7,)),
         r"column 'hour': hour 2024-06-03 07:00:00\+02:00 is missing"),
        (day_rows("2024-06-03", 24) + day_rows("2024-06-05", 24),
         r"column 'date': day 2024-06-04 is missing"),
        (day_rows("2024-03-31", 24),
         r"column 'hour' row 25: hour 23 does not exist on 2024-03-31, a 23-hour"),
        (day_rows("2024-06-03", 23) + ["2024-06-03,23,2024-06-03T22:00:00,5,1"],
         r"column 'interval_start' row 25: '2024-06-03T22:00:00' does not match"),
        (day_rows("2024-06-03", 23) + ["2024-06-03,23,2024-06-03T23:00:00,inf,1"],
         r"column 'price_eur_mwh' row 25"),
    ],
    ids=["price", "hour", "date", "duplicate", "gap", "missing-day", "spring-hour-23", "interval-start",
         "inf"],
)
def test_broken_file_names_file_column_and_row(tmp_path, lines, match):
    with pytest.raises(ScenarioError, match=match):
        read_ote_dayahead(write(tmp_path, lines))


def test_missing_column_and_missing_file(tmp_path):
    path = tmp_path / "cols.csv"
    path.write_text("date,hour,interval_start,volume_mwh\n2024-06-03,0,2024-06-03T00:00:00,1\n")
    with pytest.raises(ScenarioError, match=r"cols\.csv: missing column\(s\) \['price_eur_mwh'\]"):
        read_ote_dayahead(path)
    with pytest.raises(ScenarioError, match="not found"):
        read_ote_dayahead(tmp_path / "nope.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text(HEADER)
    with pytest.raises(ScenarioError, match="no data rows"):
        read_ote_dayahead(empty)


def test_fall_back_day_with_all_25_hours_needs_no_filling(tmp_path):
    series, meta = read_ote_dayahead(write(tmp_path, day_rows("2024-10-27", 25)))
    assert meta["filled"] == []
    assert len(series) == 25
    assert series[pd.Timestamp("2024-10-27 23:00+01:00")] == pytest.approx(0.074)


# -- tariff ----------------------------------------------------------------------------

def test_tariff_defaults_and_arithmetic():
    tariff = Tariff()
    assert (tariff.network_fee_per_kwh, tariff.supplier_margin_per_kwh, tariff.vat_rate,
            tariff.export_fee_per_kwh) == (0.08, 0.01, 0.21, 0.01)
    imp, exp = apply_tariff(0.10, tariff)
    assert imp == pytest.approx((0.10 + 0.01 + 0.08) * 1.21)  # 0.2299
    assert exp == pytest.approx(0.09)
    imp, exp = apply_tariff(-0.13875, tariff)  # the most negative hour of 2024
    assert imp == pytest.approx(-0.04875 * 1.21)
    assert exp == pytest.approx(-0.14875)


def test_tariff_keeps_input_type():
    hours = pd.date_range("2024-05-01", periods=2, freq="h", tz="Europe/Prague")
    spot = pd.Series([0.05, -0.02], index=hours)
    imp, exp = apply_tariff(spot, Tariff(network_fee_per_kwh=0.0, supplier_margin_per_kwh=0.0, vat_rate=0.0,
                                         export_fee_per_kwh=0.0))
    pd.testing.assert_series_equal(imp, spot)
    pd.testing.assert_series_equal(exp, spot)
    imp, exp = apply_tariff(np.array([0.0, 1.0]), Tariff())
    assert isinstance(imp, np.ndarray)
    assert_allclose(imp, [0.09 * 1.21, 1.09 * 1.21])
    assert_allclose(exp, [-0.01, 0.99])


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("vat_rate", 1.5, r"vat_rate = 1.5 is outside the allowed range \[0.0, 1.0\]"),
        ("network_fee_per_kwh", -0.1,
         r"network_fee_per_kwh = -0.1 is outside the allowed range \[0.0, 1.0\]"),
        ("export_fee_per_kwh", float("nan"), r"export_fee_per_kwh = nan is outside"),
        ("supplier_margin_per_kwh", "0.01", r"supplier_margin_per_kwh must be a number, got '0.01'"),
    ],
)
def test_tariff_rejects_bad_values(field, value, match):
    with pytest.raises(ValueError, match=match):
        Tariff(**{field: value})


@given(
    spot=st.floats(-1.0, 2.0),
    delta=st.floats(0.0, 1.0),
    fee=st.floats(0.0, 1.0),
    margin=st.floats(-0.5, 1.0),
    vat=st.floats(0.0, 1.0),
    export_fee=st.floats(-0.5, 1.0),
)
def test_tariff_is_affine_in_the_spot_price(spot, delta, fee, margin, vat, export_fee):
    tariff = Tariff(network_fee_per_kwh=fee, supplier_margin_per_kwh=margin, vat_rate=vat,
                    export_fee_per_kwh=export_fee)
    imp0, exp0 = apply_tariff(spot, tariff)
    imp1, exp1 = apply_tariff(spot + delta, tariff)
    assert imp1 - imp0 == pytest.approx(delta * (1 + vat), abs=1e-9)
    assert exp1 - exp0 == pytest.approx(delta, abs=1e-9)
    assert exp0 == pytest.approx(spot - export_fee, abs=1e-12)
    # Import costs at least the spot price plus fees before VAT whenever that sum is positive.
    if spot + margin + fee >= 0:
        assert imp0 >= spot + margin + fee - 1e-12
