"""The three feeds with their refresh and freshness rules, each falling back to its cache.

* Prices: a day's published prices are final, so a cached day stays valid for that day (days
  older than a week are no longer read). Asked again every ``refresh_s`` while a needed day —
  today, and tomorrow after the publication hour — is missing.
* Weather: a forecast is used while younger than ``max_age_s`` (from the cache after a
  restart or an outage too); asked again every ``refresh_s``.
* CZK/EUR rate (only for a CZK tariff): the last rate seen, then the configured fallback.

Times here are *house* times (the emulator's clock may run faster than the wall's). Every
failure is one log line naming the feed and the defect (:class:`~hardware.feeds.http.FeedError`);
:class:`FeedHealth` turns the transitions into events/alerts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta

import pandas as pd

from hardware.failsafe.events import EventKind, EventLog
from hardware.feeds import ote
from hardware.feeds.config import FeedsConfig
from hardware.feeds.http import FeedCache, FeedError, FeedHttp, Fetched
from hardware.feeds.open_meteo import FEED as WEATHER_FEED
from hardware.feeds.open_meteo import parse_forecast, request_params
from hardware.feeds.tariff import CNB_FEED, parse_cnb_eur_rate

log = logging.getLogger(__name__)
CACHED_DAYS = 7


@dataclass
class FeedHealth:
    """Whether each feed is fresh; an alert when one falls back, an event when it recovers."""

    events: EventLog | None = None
    failing: dict[str, str] = field(default_factory=dict)

    def failed(self, feed: str, defect: str, fallback: str) -> None:
        message = f"{defect}; using {fallback}"
        log.warning("%s", message if defect.startswith("feed ") else f"feed {feed}: {message}")
        if self.failing.get(feed) != fallback:
            self.failing[feed] = fallback
            if self.events is not None:
                self.events.record(EventKind.FEED, message, device=feed, alert=True)

    def ok(self, feed: str) -> None:
        if self.failing.pop(feed, None) is not None and self.events is not None:
            self.events.record(EventKind.FEED, "fresh data again", device=feed)


class PriceFeed:
    def __init__(self, config: FeedsConfig, http: FeedHttp, cache: FeedCache, health: FeedHealth,
                 tz: str = ote.TIMEZONE) -> None:
        self.config = config.prices
        self.http, self.cache, self.health, self.tz = http, cache, health, tz
        self.days: dict[date, pd.Series] = {}  # spot EUR/MWh by slot start
        self.origin: dict[date, str] = {}  # "published" (fetched by this process) or "cache"
        self._last_attempt_s: float | None = None
        self._asked: set[date] = set()  # days asked for at least once
        self.version = 0  # bumped whenever the known prices change (the source's memo key)

    def needed_days(self, now: pd.Timestamp) -> list[date]:
        local = now.tz_convert(self.tz)
        today = local.date()
        days = [today - timedelta(days=1), today]
        if local.hour + local.minute / 60 >= self.config.publication_hour_local:
            days.append(today + timedelta(days=1))
        return days

    def _load_cached(self, days: list[date]) -> None:
        for day in days:
            if day in self.days:
                continue
            fetched = self.cache.load(f"ote-day-{day.isoformat()}")
            if fetched is None:
                continue
            try:
                series = ote.parse_dam_prices(fetched.text, self.tz)
            except FeedError as exc:
                log.warning("feed cache: %s; ignored", exc)
                continue
            self.days[day] = series
            self.origin[day] = "cache"
            self.version += 1

    def refresh(self, now: pd.Timestamp, force: bool = False) -> None:
        days = self.needed_days(now)
        self._load_cached(days)
        missing = [d for d in days[1:] if d not in self.days or self.origin[d] == "cache"]
        now_s = now.timestamp()
        new_day = any(d not in self._asked for d in missing)  # e.g. tomorrow, just after the publication hour
        if not missing or (not force and not new_day and self._last_attempt_s is not None
                           and now_s - self._last_attempt_s < self.config.refresh_s):
            return
        self._last_attempt_s = now_s
        self._asked.update(days)
        try:
            for start, end, resolution in ote.requests_for(days[0], days[-1]):
                fetched = self.http.request(
                    "POST", self.config.url, data=ote.request_body(start, end, resolution),
                    headers={"Content-Type": "text/xml; charset=utf-8",
                             "SOAPAction": f'"{ote.NAMESPACE}/GetDamPricePeriodE"'})
                self._store(ote.parse_dam_prices(fetched.text, self.tz), now_s)
        except FeedError as exc:
            have = [d for d in days[1:] if d in self.days]
            self.health.failed(ote.FEED, str(exc), "cached prices" if have else "forecast prices")
            return
        if days[1] in self.days:
            self.health.ok(ote.FEED)
        self._prune(days[0])

    def _store(self, spot: pd.Series, now_s: float) -> None:
        local = spot.tz_convert(self.tz)
        for day, series in local.groupby(local.index.date):
            if self.origin.get(day) == "published" and self.days[day].equals(series):
                continue
            self.version += 1
            self.days[day] = series
            self.origin[day] = "published"
            self.cache.save(f"ote-day-{day.isoformat()}", Fetched(ote.build_response(series, _resolution(series),
                                                                                     self.tz), now_s))

    def _prune(self, oldest: date) -> None:
        for day in [d for d in self.days if d < oldest - timedelta(days=CACHED_DAYS)]:
            del self.days[day], self.origin[day]
            self.version += 1

    def known(self) -> tuple[pd.Series, pd.Series]:
        """(spot EUR/MWh, origin) of every known quarter hour (an hourly price holds for its four)."""
        if not self.days:
            return pd.Series(dtype=float), pd.Series(dtype=object)
        parts, origins = [], []
        for day in sorted(self.days):
            series = self.days[day]
            quarters = ote.day_slots(day, 15, self.tz)
            if len(series) != len(quarters):  # hourly products: each hour's price for its quarter hours
                hours = quarters.tz_convert("UTC").floor("h")
                series = pd.Series(series.set_axis(series.index.tz_convert("UTC")).reindex(hours).to_numpy(),
                                   index=quarters)
            parts.append(series)
            origins.append(pd.Series(self.origin[day], index=quarters))
        return pd.concat(parts), pd.concat(origins)


def _resolution(series: pd.Series) -> str:
    if len(series) > 1 and (series.index[1] - series.index[0]) == pd.Timedelta(hours=1):
        return "PT60M"
    return "PT15M"


class WeatherFeed:
    def __init__(self, config: FeedsConfig, http: FeedHttp, cache: FeedCache, health: FeedHealth,
                 latitude: float, longitude: float) -> None:
        self.config = config.weather
        self.http, self.cache, self.health = http, cache, health
        self.latitude, self.longitude = latitude, longitude
        self.frame: pd.DataFrame | None = None
        self.fetched_s: float | None = None
        self.from_cache = False
        self._last_attempt_s: float | None = None
        self.version = 0  # bumped whenever the forecast changes

    def refresh(self, now: pd.Timestamp, force: bool = False) -> None:
        now_s = now.timestamp()
        if self.frame is None:
            cached = self.cache.load("open-meteo")
            if cached is not None:
                try:
                    self.frame = parse_forecast(cached.text)
                    self.fetched_s, self.from_cache = cached.fetched_wall_s, True
                    self.version += 1
                except FeedError as exc:
                    log.warning("feed cache: %s; ignored", exc)
        due = self.fetched_s is None or self.from_cache or now_s - self.fetched_s >= self.config.refresh_s
        retry = self._last_attempt_s is None or now_s - self._last_attempt_s >= min(self.config.refresh_s, 900.0)
        if not force and not (due and retry):
            return
        self._last_attempt_s = now_s
        params = request_params(self.latitude, self.longitude, self.config.resolution, self.config.forecast_days)
        try:
            fetched = self.http.request("GET", self.config.url, params=params)
            frame = parse_forecast(fetched.text)
        except FeedError as exc:
            fallback = "the cached forecast" if self.usable(now) else "climatology"
            self.health.failed(WEATHER_FEED, str(exc), fallback)
            return
        if self.from_cache or self.frame is None or not self.frame.equals(frame):
            self.version += 1
        self.frame, self.fetched_s, self.from_cache = frame, now_s, False
        self.cache.save("open-meteo", Fetched(fetched.text, now_s))
        self.health.ok(WEATHER_FEED)

    def usable(self, now: pd.Timestamp) -> bool:
        return (self.frame is not None and self.fetched_s is not None
                and now.timestamp() - self.fetched_s <= self.config.max_age_s)


class RateFeed:
    """CZK per EUR from the Czech National Bank (once a day)."""

    def __init__(self, config: FeedsConfig, http: FeedHttp, cache: FeedCache, health: FeedHealth) -> None:
        self.config = config.tariff
        self.http, self.cache, self.health = http, cache, health
        self.rate: float | None = None
        self.day: date | None = None

    def refresh(self, now: pd.Timestamp) -> float:
        today = now.tz_convert(ote.TIMEZONE).date()
        if self.day == today and self.rate is not None:
            return self.rate
        self.day = today
        try:
            fetched = self.http.request("GET", self.config.cnb_url, params={"date": today.isoformat(), "lang": "EN"})
            self.rate = parse_cnb_eur_rate(fetched.text)
            self.cache.save("cnb", fetched)
            self.health.ok(CNB_FEED)
        except FeedError as exc:
            cached = self.cache.load("cnb")
            try:
                self.rate = parse_cnb_eur_rate(cached.text) if cached is not None else None
            except FeedError:
                self.rate = None
            fallback = "the last known rate" if self.rate is not None else "tariff.fallback_eur_rate"
            self.health.failed(CNB_FEED, str(exc), fallback)
        return self.rate if self.rate is not None else self.config.fallback_eur_rate
