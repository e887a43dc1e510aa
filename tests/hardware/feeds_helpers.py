"""Shared pieces of the feed tests: recorded answers, DST-day answers, a source against a local server."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from hardware.emulator.feeds_server import FeedServer
from hardware.feeds.config import (
    ComfortScheduleConfig,
    FeedsConfig,
    HttpConfig,
    PricesFeedConfig,
    TariffConfig,
    WeatherFeedConfig,
)
from hardware.feeds.ote import build_response, day_slots
from hardware.feeds.source import FeedForecastSource
from tests.shared_data import API_SAMPLES
from twin.config import reference_house

OTE_FULL = (API_SAMPLES / "ote_cr" / "ote-electricity-2025-10-22.xml").read_text(encoding="utf-8")
OTE_TODAY = (API_SAMPLES / "ote_cr" / "ote-electricity-2025-10-22-today.xml").read_text(encoding="utf-8")
CNB = (API_SAMPLES / "ote_cr" / "cnb-2025-10-22.json").read_text(encoding="utf-8")
WEATHER_ISO = (API_SAMPLES / "open_meteo" / "forecast_minutely15_2025-02-24.json").read_text(encoding="utf-8")
PRAGUE = "Europe/Prague"


def weather_unixtime(shift_to: pd.Timestamp | None = None) -> str:
    """The recorded Open-Meteo answer with ``timeformat=unixtime`` times (optionally moved to start at ``shift_to``)."""
    data = json.loads(WEATHER_ISO)
    block = data["minutely_15"]
    local = pd.to_datetime(block["time"])
    utc = (local - pd.Timedelta(seconds=data["utc_offset_seconds"])).tz_localize("UTC")
    if shift_to is not None:
        utc = utc - utc[0] + shift_to.tz_convert("UTC")
    block["time"] = [int(t.timestamp()) for t in utc]
    data["minutely_15_units"]["time"] = "unixtime"
    return json.dumps(data)


def dst_day_answer(day: str, resolution: str = "PT15M") -> tuple[str, pd.Series]:
    """A recorded-schema answer for one whole local day (92/100 quarter hours on DST days)."""
    slots = day_slots(pd.Timestamp(day).date(), 15 if resolution == "PT15M" else 60, PRAGUE)
    prices = pd.Series([50.0 + (i % 17) * 3.5 for i in range(len(slots))], index=slots)
    return build_response(prices, resolution, PRAGUE), prices


def make_source(server: FeedServer, cache_dir: Path | None, *, currency: str = "EUR", events=None,  # noqa: ANN001
                comfort: ComfortScheduleConfig | None = None, learned=None,  # noqa: ANN001
                tariff: TariffConfig | None = None) -> FeedForecastSource:
    tariff = tariff or TariffConfig(currency=currency, cnb_url=server.cnb_url)
    config = FeedsConfig(prices=PricesFeedConfig(url=server.ote_url), weather=WeatherFeedConfig(url=server.weather_url),
                         tariff=tariff, http=HttpConfig(timeout_s=5.0, retries=1, backoff_s=0.0))
    return FeedForecastSource(reference_house(), config, comfort or ComfortScheduleConfig(), 48 * 3600.0, cache_dir,
                              events, learned)
