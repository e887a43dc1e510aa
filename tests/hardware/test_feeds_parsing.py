"""OTE, Open-Meteo and CNB answers: the recorded ones, DST days, hourly products and every defect."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from hardware.feeds.config import TariffConfig
from hardware.feeds.http import FeedError
from hardware.feeds.open_meteo import parse_forecast
from hardware.feeds.ote import build_response, day_slots, parse_dam_prices, requests_for
from hardware.feeds.tariff import parse_cnb_eur_rate, retail_prices
from tests.hardware.feeds_helpers import CNB, OTE_FULL, OTE_TODAY, PRAGUE, WEATHER_ISO, dst_day_answer, weather_unixtime


def test_recorded_ote_answer_gives_three_whole_days_of_quarter_hours() -> None:
    prices = parse_dam_prices(OTE_FULL)
    assert len(prices) == 3 * 96
    assert prices.index[0] == pd.Timestamp("2025-10-21 00:00", tz=PRAGUE)
    assert prices.index[-1] == pd.Timestamp("2025-10-23 23:45", tz=PRAGUE)
    assert prices.iloc[0] == pytest.approx(86.15)
    assert (np.diff(prices.index.as_unit("ns").asi8) == 15 * 60 * 10**9).all()


def test_answer_before_publication_ends_with_today_and_is_not_zero_filled() -> None:
    prices = parse_dam_prices(OTE_TODAY)
    assert len(prices) == 192
    assert prices.index[-1] == pd.Timestamp("2025-10-22 23:45", tz=PRAGUE)
    full = parse_dam_prices(OTE_FULL)
    assert prices.equals(full[prices.index])


@pytest.mark.parametrize(("day", "quarters", "hours"), [("2025-10-26", 100, 25), ("2026-03-29", 92, 23),
                                                        ("2025-10-22", 96, 24)])
def test_dst_days_have_92_or_100_quarter_hours_placed_in_real_time(day: str, quarters: int, hours: int) -> None:
    text, sent = dst_day_answer(day)
    prices = parse_dam_prices(text)
    assert len(prices) == quarters
    assert prices.equals(sent)
    assert (np.diff(prices.index.as_unit("ns").asi8) == 15 * 60 * 10**9).all()  # no hole, no overlap in UTC
    assert (prices.index[-1] + pd.Timedelta(minutes=15) - prices.index[0]) == pd.Timedelta(hours=hours)
    hourly_text, hourly = dst_day_answer(day, "PT60M")
    assert len(parse_dam_prices(hourly_text)) == hours


def test_requests_split_at_the_switch_to_quarter_hours() -> None:
    assert requests_for(date(2025, 9, 30), date(2025, 10, 1)) == [
        (date(2025, 9, 30), date(2025, 9, 30), "PT60M"), (date(2025, 10, 1), date(2025, 10, 1), "PT15M")]


def _drop_item(text: str, index: int, day: str) -> str:
    start = text.index(f"<Date>{day}</Date><PeriodResolution>PT15M</PeriodResolution><PeriodIndex>{index}<")
    begin = text.rindex("<Item>", 0, start)
    end = text.index("</Item>", start) + len("</Item>")
    return text[:begin] + text[end:]


@pytest.mark.parametrize("defect", ["missing", "duplicated", "extra", "nan", "units", "xml", "empty", "dtd"])
def test_defective_ote_answers_are_refused_with_the_defect_named(defect: str) -> None:
    text, prices = dst_day_answer("2025-10-22")
    item = text[text.index("<Item>"):text.index("</Item>") + len("</Item>")]
    broken = {
        "missing": lambda: _drop_item(text, 40, "2025-10-22"),
        "duplicated": lambda: text.replace(item, item + item),
        "extra": lambda: text.replace("</Result>", item.replace("<PeriodIndex>1<", "<PeriodIndex>97<") + "</Result>"),
        "nan": lambda: text.replace(item, item.replace("<Price>50.00<", "<Price>NaN<")),
        "units": lambda: build_response(prices * 1000.0),  # EUR/GWh (or a currency mix-up) where EUR/MWh is expected
        "xml": lambda: text[: len(text) // 2],
        "empty": lambda: text.replace(text[text.index("<Result>"):text.index("</Result>")], "<Result>"),
        "dtd": lambda: '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>' + text.split("?>", 1)[1],
    }[defect]()
    with pytest.raises(FeedError) as err:
        parse_dam_prices(broken)
    words = {"missing": "missing", "duplicated": "duplicated", "extra": "beyond", "nan": "nan", "units": "units",
             "xml": "malformed", "empty": "no prices", "dtd": "dtd"}
    assert words[defect] in str(err.value).lower()
    assert str(err.value).startswith("feed prices (OTE)")


def test_open_meteo_iso_and_unixtime_answers_agree() -> None:
    iso = parse_forecast(WEATHER_ISO)
    unix = parse_forecast(weather_unixtime())
    pd.testing.assert_frame_equal(iso, unix)
    assert iso.index[0] == pd.Timestamp("2025-02-23 23:00", tz="UTC")  # local midnight at UTC+1
    assert set(iso.columns) == {"temp_c", "ghi_w_m2", "dni_w_m2", "dhi_w_m2", "cloud_cover_pct"}


@pytest.mark.parametrize("defect", ["units", "length", "duplicate", "hole", "json", "missing_var"])
def test_defective_weather_answers_are_refused(defect: str) -> None:
    data = json.loads(weather_unixtime())
    block = data["minutely_15"]
    if defect == "units":
        data["minutely_15_units"]["temperature_2m"] = "°F"
    elif defect == "length":
        block["cloud_cover"] = block["cloud_cover"][:-3]
    elif defect == "duplicate":
        block["time"][5] = block["time"][4]
    elif defect == "hole":
        block["temperature_2m"][50] = None
    elif defect == "missing_var":
        del block["diffuse_radiation_instant"]
    text = json.dumps(data) if defect != "json" else WEATHER_ISO[:500]
    with pytest.raises(FeedError, match="weather"):
        parse_forecast(text)


def test_weather_horizon_ending_early_is_cut_not_zeroed() -> None:
    data = json.loads(weather_unixtime())
    for name in ("temperature_2m", "shortwave_radiation_instant"):
        data["minutely_15"][name][-10:] = [None] * 10
    frame = parse_forecast(json.dumps(data))
    assert len(frame) == len(data["minutely_15"]["time"]) - 10
    assert frame.notna().all().all()


def test_cnb_rate_and_a_two_rate_czk_tariff() -> None:
    rate = parse_cnb_eur_rate(CNB)
    assert 20 < rate < 30
    tariff = TariffConfig(currency="CZK", supplier_margin_per_kwh=0.3, distribution_high_per_kwh=2.0,
                          distribution_low_per_kwh=0.5, low_rate_hours=("22:00-06:00",), fees_per_kwh=0.1,
                          vat_fraction=0.21, export_fee_per_kwh=0.4)
    times = pd.DatetimeIndex([pd.Timestamp("2025-10-22 23:00", tz=PRAGUE), pd.Timestamp("2025-10-22 12:00", tz=PRAGUE)])
    prices = retail_prices(np.array([100.0, 100.0]), times, tariff, rate)
    spot = 100.0 / 1000.0 * rate
    assert prices.import_per_kwh[0] == pytest.approx((spot + 0.3 + 0.5 + 0.1) * 1.21)
    assert prices.import_per_kwh[1] == pytest.approx((spot + 0.3 + 2.0 + 0.1) * 1.21)
    assert prices.export_per_kwh == pytest.approx(np.full(2, spot - 0.4))


@pytest.mark.parametrize("bad", ['{"rates": []}', "not json", '{"rates": [{"currencyCode": "EUR", "amount": 1, '
                                 '"rate": 2450.0}]}'])
def test_cnb_defects(bad: str) -> None:
    with pytest.raises(FeedError, match="CNB"):
        parse_cnb_eur_rate(bad)


def test_day_slots_dst() -> None:
    assert len(day_slots(date(2025, 10, 26), 15)) == 100
    assert len(day_slots(date(2026, 3, 29), 60)) == 23
