"""OTE day-ahead files: the 15-min format (a ``minute`` column, OTE since 2025-10-01) and empty price cells."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scenarios.historical.mapping import load_mapping
from scenarios.historical.reader import read_historical
from scenarios.prices import read_ote_dayahead
from twin.errors import ScenarioError

OTE_MAPPING = Path("scenarios/historical/mappings/ote_cz_dayahead.toml")


def _qh_file(path: Path, days: pd.DatetimeIndex, empty_at: int | None = None) -> np.ndarray:
    """A 15-min file in the collector's layout (date, hour, minute, interval_start, price_eur_mwh); positional
    hours as elapsed hours since local midnight (DST days have 92 or 100 quarter hours)."""
    rows, prices = [], []
    for day in days:
        start = pd.Timestamp(day, tz="Europe/Prague")
        n = len(pd.date_range(start, start + pd.DateOffset(days=1), freq="15min", inclusive="left"))
        for q in range(n):
            h, m = divmod(q, 4)
            price = round(50 + 40 * np.sin(len(prices) / 7.0), 2)
            prices.append(price)
            rows.append(f"{day:%Y-%m-%d},{h},{m * 15},{day:%Y-%m-%d}T{h:02d}:{m * 15:02d}:00,"
                        f"{'' if empty_at == len(prices) - 1 else price},700.0")
    path.write_text("date,hour,minute,interval_start,price_eur_mwh,volume_mwh\n" + "\n".join(rows) + "\n")
    return np.array(prices)


def test_15_min_file_across_both_dst_days(tmp_path):
    days = pd.date_range("2025-10-25", "2025-10-27", freq="D").append(
        pd.date_range("2026-03-28", "2026-03-30", freq="D"))
    for chunk, n_long in ((days[:3], 100), (days[3:], 92)):
        prices = _qh_file(tmp_path / "qh.csv", chunk)
        series, meta = read_ote_dayahead(tmp_path / "qh.csv")
        assert meta["interval_minutes"] == 15 and not meta["empty"] and not meta["filled"]
        assert len(series) == 96 * 2 + n_long  # the DST day has 100 or 92 quarter hours
        np.testing.assert_allclose(series.to_numpy(), prices / 1000.0)
        assert (np.diff(series.index.asi8) == 15 * 60 * 10**9).all()


def test_an_empty_price_is_reported_and_filled_not_a_refusal(tmp_path, caplog):
    prices = _qh_file(tmp_path / "qh.csv", pd.date_range("2026-01-05", "2026-01-06", freq="D"), empty_at=30)
    series, meta = read_ote_dayahead(tmp_path / "qh.csv")
    assert np.isnan(series.iloc[30]) and meta["empty"] == [series.index[30]]
    quarter_mapping = tmp_path / "ote15.toml"  # the bundled mapping on a 15-min grid
    quarter_mapping.write_text(OTE_MAPPING.read_text().replace("step_minutes = 60", "step_minutes = 15"))
    frame, quality = read_historical(load_mapping(quarter_mapping), tmp_path / "qh.csv")
    assert frame["spot_price_per_kwh"].notna().all() and "empty price" in caplog.text
    np.testing.assert_allclose(frame["spot_price_per_kwh"].iloc[30], (prices[29] + prices[31]) / 2 / 1000.0)
    assert any("1 interpolated" in line for line in quality.lines())
    hourly, _ = read_historical(load_mapping(OTE_MAPPING), tmp_path / "qh.csv")  # an hour: its present quarters
    np.testing.assert_allclose(hourly["spot_price_per_kwh"].iloc[7], np.mean(prices[[28, 29, 31]]) / 1000.0)


def test_a_text_price_or_a_bad_minute_is_still_an_error(tmp_path):
    _qh_file(tmp_path / "qh.csv", pd.date_range("2026-01-05", "2026-01-05", freq="D"))
    text = (tmp_path / "qh.csv").read_text().splitlines()
    bad = text.copy()
    bad[5] = bad[5].replace(",700.0", "").rsplit(",", 1)[0] + ",n/a,700.0"
    (tmp_path / "bad.csv").write_text("\n".join(bad) + "\n")
    with pytest.raises(ScenarioError, match="'n/a' is not a price"):
        read_ote_dayahead(tmp_path / "bad.csv")
    bad = text.copy()
    bad[2] = bad[2].replace(",15,", ",20,", 1)
    (tmp_path / "bad.csv").write_text("\n".join(bad) + "\n")
    with pytest.raises(ScenarioError, match="'20' is not 0, 15, 30 or 45"):
        read_ote_dayahead(tmp_path / "bad.csv")
