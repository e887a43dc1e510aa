"""The feed ForecastSource against a local HTTP server answering in the services' recorded formats."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardware.emulator.feeds_server import OTE_PATH, WEATHER_PATH, FeedServer
from hardware.failsafe.events import EventKind, EventLog
from hardware.feeds.config import ComfortScheduleConfig, DaySchedule
from hardware.feeds.ote import parse_dam_prices
from tests.hardware.feeds_helpers import CNB, OTE_FULL, OTE_TODAY, PRAGUE, make_source, weather_unixtime

WHEN = pd.Timestamp("2025-10-22 14:07", tz=PRAGUE)


class Answers:
    """What the local server answers; tests change it between requests."""

    def __init__(self) -> None:
        self.ote = OTE_FULL
        self.weather = weather_unixtime(pd.Timestamp("2025-10-22 00:00", tz=PRAGUE))
        self.cnb = CNB


@pytest.fixture
def served() -> Iterator[tuple[FeedServer, Answers]]:
    answers = Answers()
    server = FeedServer(lambda a, b, r: answers.ote, lambda q: answers.weather, lambda q: answers.cnb)
    with server:
        yield server, answers


def test_published_prices_then_marked_forecast_and_the_weather_forecast(served, tmp_path: Path) -> None:
    server, _ = served
    source = make_source(server, tmp_path)
    snap = source.snapshot(WHEN.to_pydatetime())
    assert snap.times[0] == pd.Timestamp("2025-10-22 14:00", tz=PRAGUE) and len(snap.times) == 192
    published = parse_dam_prices(OTE_FULL)
    n_pub = int((snap.price_source == "published").sum())
    assert n_pub == 136  # 14:00 today … 23:45 tomorrow
    np.testing.assert_allclose(snap.spot_per_mwh[:n_pub], published.reindex(snap.times[:n_pub]).to_numpy())
    assert (snap.price_source[n_pub:] == "forecast").all()
    assert np.isfinite(snap.spot_per_mwh).all() and (snap.spot_per_mwh[n_pub:] != 0).all()
    assert (snap.weather_source[:100] == "forecast").all()
    outlook = source.outlook(WHEN.to_pydatetime())
    assert outlook.import_price_per_kwh == pytest.approx(published[snap.times[0]] / 1000.0)
    assert outlook.forecast.horizon_steps == 192
    np.testing.assert_allclose(outlook.forecast.pv_power_kw, snap.pv_kw["p50"].to_numpy())
    assert (snap.pv_kw["p10"] <= snap.pv_kw["p50"]).all() and (snap.pv_kw["p50"] <= snap.pv_kw["p90"]).all()
    assert snap.pv_kw["p50"].max() > 0.5  # October noon under the recorded sky


def test_before_publication_tomorrow_is_forecast_and_asked_again_after_13h(served, tmp_path: Path) -> None:
    server, answers = served
    answers.ote = OTE_TODAY
    source = make_source(server, tmp_path)
    morning = pd.Timestamp("2025-10-22 10:00", tz=PRAGUE)
    snap = source.snapshot(morning.to_pydatetime())
    assert (snap.price_source[:56] == "published").all() and (snap.price_source[56:] == "forecast").all()
    # The simple fallback: the same slot of the latest published day, never zero.
    today = parse_dam_prices(OTE_TODAY)
    assert snap.spot_per_mwh[56] == pytest.approx(today[pd.Timestamp("2025-10-22 00:00", tz=PRAGUE)])
    answers.ote = OTE_FULL
    after = source.snapshot((morning + pd.Timedelta(hours=3, minutes=30)).to_pydatetime())
    assert int((after.price_source == "published").sum()) == 42 + 96  # 13:30 … 24:00 today, then tomorrow


def test_outage_after_restart_uses_the_cache_then_recovers_with_alerts(served, tmp_path: Path) -> None:
    server, _ = served
    make_source(server, tmp_path).snapshot(WHEN.to_pydatetime())  # fills the on-disk cache
    server.failing |= {OTE_PATH, WEATHER_PATH}
    events = EventLog()
    restarted = make_source(server, tmp_path, events=events)  # a new process: only the disk remains
    later = WHEN + pd.Timedelta(hours=1)
    snap = restarted.snapshot(later.to_pydatetime())
    assert (snap.price_source[:132] == "cache").all()
    assert (snap.weather_source[:50] == "cache").all()
    alerts = events.take_alerts()
    assert {a.device for a in alerts} == {"prices (OTE)", "weather (Open-Meteo)"}
    assert all(a.kind is EventKind.FEED and "HTTP 503" in a.message for a in alerts)
    server.failing.clear()
    fresh = restarted.snapshot((later + pd.Timedelta(hours=1)).to_pydatetime(), force=True)
    assert (fresh.price_source[:128] == "published").all() and (fresh.weather_source[:40] == "forecast").all()
    assert {e.message for e in events.of_kind(EventKind.FEED) if not e.alert} == {"fresh data again"}


def test_outage_without_cache_gives_marked_fallbacks_never_zeros(served, tmp_path: Path) -> None:
    server, _ = served
    server.failing |= {OTE_PATH, WEATHER_PATH}
    events = EventLog()
    snap = make_source(server, None, events=events).snapshot(WHEN.to_pydatetime())
    assert (snap.price_source == "forecast").all() and (snap.spot_per_mwh == 100.0).all()
    assert (snap.weather_source == "climatology").all()
    assert np.isfinite(snap.weather.to_numpy()).all() and snap.weather["temp_c"].between(-5, 25).all()
    assert snap.base_load_kw["p50"].min() > 0
    assert len(events.take_alerts()) == 2


def test_czk_tariff_uses_the_cnb_rate(served, tmp_path: Path) -> None:
    server, _ = served
    snap_eur = make_source(server, tmp_path / "eur").snapshot(WHEN.to_pydatetime())
    snap_czk = make_source(server, tmp_path / "czk", currency="CZK").snapshot(WHEN.to_pydatetime())
    rate = next(r["rate"] for r in json.loads(CNB)["rates"] if r["currencyCode"] == "EUR")
    np.testing.assert_allclose(snap_czk.import_per_kwh, snap_eur.import_per_kwh * rate)


def test_comfort_schedule_per_room_and_weekday(served) -> None:
    server, _ = served
    comfort = ComfortScheduleConfig(wed=DaySchedule(day=("06:00-22:00",), away=("08:00-16:00",)),
                                    rooms={"living": {"wed": DaySchedule(day=("00:00-24:00",))}})
    source = make_source(server, None, comfort=comfort)
    snap = source.snapshot(WHEN.to_pydatetime())  # a Wednesday, 14:00
    house = source.house
    living = [r.name for r in house.rooms].index("living")
    other = next(i for i, r in enumerate(house.rooms) if r.name != "living")
    assert snap.comfort_lower_c[0, living] == house.rooms[living].comfort.day.lower_c
    assert snap.comfort_lower_c[0, other] == house.rooms[other].comfort.away.lower_c
    at_23h = 4 * 9
    assert snap.comfort_lower_c[at_23h, other] == house.rooms[other].comfort.night.lower_c


hostile = st.one_of(
    st.binary(max_size=2000).map(lambda b: b.decode("latin-1")),
    st.text(max_size=2000),
    st.sampled_from([OTE_FULL[:-200], OTE_FULL.replace("<Price>", "<Price>-", 5), "<a>" * 5000,
                     OTE_FULL.replace("PT15M", "PT5M"), '{"minutely_15": {"time": [1, 1]}}', "null", "[]",
                     '{"minutely_15": {"time": "x"}, "minutely_15_units": {}}']),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ote=hostile, weather=hostile)
def test_hostile_answers_give_a_marked_fallback_and_no_crash(served, ote: str, weather: str) -> None:
    server, answers = served
    answers.ote, answers.weather = ote, weather
    source = make_source(server, None)
    snap = source.snapshot(WHEN.to_pydatetime())
    assert np.isfinite(snap.spot_per_mwh).all() and np.isfinite(snap.weather.to_numpy()).all()
    assert set(snap.price_source) <= {"published", "forecast"}
    assert set(snap.weather_source) <= {"forecast", "climatology"}
    assert set(source.health.failing) <= {"prices (OTE)", "weather (Open-Meteo)"}


def test_a_trained_load_forecaster_replaces_the_daily_shape(served) -> None:
    from controllers.forecasting.boosting import BoostingParams
    from controllers.forecasting.features import Calendar
    from controllers.forecasting.load import LoadForecaster
    from hardware.feeds.source import LearnedForecasters
    from twin.registry import load_scenario

    year = load_scenario("year-v1").data
    issued = pd.Timestamp("2024-03-01 00:00", tz=PRAGUE)
    history = year.loc[issued - pd.Timedelta(days=28):issued - pd.Timedelta(minutes=15), ["base_load_kw"]]
    forecaster = LoadForecaster(Calendar(PRAGUE), params=BoostingParams(rounds=20, max_depth=3),
                                horizon_hours=48.0, issue_every_hours=12.0).fit(history)
    server, _ = served
    learned = LearnedForecasters(history=lambda: history, load=forecaster)
    snap = make_source(server, None, learned=learned).snapshot(issued.to_pydatetime())
    direct = forecaster.predict(history, issued, len(snap.times))
    np.testing.assert_allclose(snap.base_load_kw["p50"].to_numpy(), np.clip(direct.quantiles[0.5], 0, None))
    assert (snap.base_load_kw["p10"] <= snap.base_load_kw["p90"]).all()
    # A forecaster that cannot answer (an hourly history for a 15-min model) falls back, no crash.
    stale = LearnedForecasters(history=lambda: history.resample("1h").mean(), load=forecaster)
    fallback = make_source(server, None, learned=stale).snapshot(issued.to_pydatetime())
    assert fallback.base_load_kw["p50"].sum() * 0.25 == pytest.approx(16.0)  # the 8 kWh/day shape over 48 h


def test_hourly_products_before_october_2025_hold_for_their_four_quarter_hours(served) -> None:
    from hardware.feeds.ote import build_response, day_slots

    server, answers = served
    hours = [pd.Series(np.arange(len(day_slots(d, 60, PRAGUE)), dtype=float) + 40.0, index=day_slots(d, 60, PRAGUE))
             for d in (pd.Timestamp("2025-09-15").date(), pd.Timestamp("2025-09-16").date())]
    answers.ote = build_response(pd.concat(hours), "PT60M", PRAGUE)
    snap = make_source(server, None).snapshot(pd.Timestamp("2025-09-15 22:00", tz=PRAGUE).to_pydatetime())
    assert ("POST", "/services/PublicDataService") in server.requests
    assert (snap.price_source[:8] == "published").all()
    np.testing.assert_allclose(snap.spot_per_mwh[:8], [62.0] * 4 + [63.0] * 4)  # 22:00 and 23:00, each ×4
    assert snap.price_source[8] == "published" and snap.spot_per_mwh[8] == 40.0  # the 16th, in the same answer
