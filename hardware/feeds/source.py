"""A :class:`~hardware.plant.forecasts.ForecastSource` built from the live feeds.

At each decision the source asks the feeds (each on its own refresh rule), puts prices and
weather on the controller's forecast grid and fills what they do not cover with a *marked*
fallback: prices past the published horizon from the trained price forecaster (when given),
else the same slot a day earlier, else a flat configured price; weather past the forecast from
climatology. PV is the twin's pvlib chain on the forecast weather (a trained PV forecaster's
P10/P50/P90 when given), the household load a trained load forecaster or a daily shape. The
comfort band comes from the live configuration's weekly schedule and the house's bands.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import requests

from hardware.failsafe.events import EventLog
from hardware.feeds import climatology
from hardware.feeds.config import ComfortScheduleConfig, FeedsConfig, in_spans, parse_span
from hardware.feeds.feeds import FeedHealth, PriceFeed, RateFeed, WeatherFeed
from hardware.feeds.http import FeedCache, FeedHttp, HttpSettings
from hardware.feeds.tariff import retail_prices
from hardware.plant.forecasts import ForecastSource, Outlook
from twin.config import ComfortMode, HouseConfig
from twin.contracts import Forecast
from twin.pv import pv_ac_power_kw

log = logging.getLogger(__name__)
QUANTILE_COLUMNS = ("p10", "p50", "p90")


@dataclass(frozen=True)
class LearnedForecasters:
    """Trained forecasters (``controllers.forecasting``) and the house history they read.

    ``history()`` returns the canonical history frame up to now on the forecast grid. Any of the
    three may be ``None``: that quantity then comes from physics or climatology.
    """

    history: Callable[[], pd.DataFrame]
    pv: Any | None = None
    load: Any | None = None
    price: Any | None = None


@dataclass(frozen=True)
class FeedSnapshot:
    """Everything the source shows the controller at one decision, on the forecast grid."""

    times: pd.DatetimeIndex  # step starts (house tz)
    step_s: float
    spot_per_mwh: np.ndarray
    import_per_kwh: np.ndarray
    export_per_kwh: np.ndarray
    price_source: np.ndarray  # "published" | "cache" | "forecast"
    weather: pd.DataFrame  # temp_c, ghi_w_m2, dni_w_m2, dhi_w_m2, cloud_cover_pct
    weather_source: np.ndarray  # "forecast" | "cache" | "climatology"
    pv_kw: pd.DataFrame  # p10, p50, p90
    base_load_kw: pd.DataFrame
    comfort_lower_c: np.ndarray  # (steps, rooms)
    comfort_upper_c: np.ndarray


class FeedForecastSource:
    """Live feeds as a ``ForecastSource`` (never runs out: ``end`` is ``None``)."""

    end: datetime | None = None

    def __init__(self, house: HouseConfig, feeds: FeedsConfig, comfort: ComfortScheduleConfig, horizon_s: float,
                 cache_dir: Path | None, events: EventLog | None = None, learned: LearnedForecasters | None = None,
                 session: requests.Session | None = None, base: ForecastSource | None = None) -> None:
        self.house, self.feeds, self.comfort, self.learned = house, feeds, comfort, learned
        if feeds.pv_load == "scenario" and base is None:
            raise ValueError("feeds.pv_load = 'scenario' needs the scenario replay (against the emulator only)")
        self.base = base if feeds.pv_load == "scenario" else None
        self._memo: tuple[tuple[Any, ...], FeedSnapshot] | None = None
        self.tz = house.location.timezone
        self.step_s = float(feeds.step_s)
        self.horizon_steps = max(1, int(np.ceil(horizon_s / self.step_s)))
        self.health = FeedHealth(events)
        cache = FeedCache(cache_dir)
        settings = HttpSettings(feeds.http.timeout_s, feeds.http.retries, feeds.http.backoff_s)
        session = session or requests.Session()
        self.prices = PriceFeed(feeds, FeedHttp("prices (OTE)", settings, session), cache, self.health)
        self.weather = WeatherFeed(feeds, FeedHttp("weather (Open-Meteo)", settings, session), cache, self.health,
                                   house.location.latitude_deg, house.location.longitude_deg)
        self.rate = RateFeed(feeds, FeedHttp("exchange rate (CNB)", settings, session), cache, self.health)
        unknown = sorted(set(comfort.rooms) - {r.name for r in house.rooms})
        if unknown:
            raise ValueError(f"comfort.rooms names unknown room(s) {unknown}")

    # --- the ForecastSource protocol -----------------------------------------------------------------

    def outlook(self, when: datetime) -> Outlook:
        snap = self.snapshot(when)
        s = snap
        series = {"outdoor_temp_c": s.weather["temp_c"].to_numpy(), "ghi_w_m2": s.weather["ghi_w_m2"].to_numpy(),
                  "dni_w_m2": s.weather["dni_w_m2"].to_numpy(), "dhi_w_m2": s.weather["dhi_w_m2"].to_numpy(),
                  "pv_power_kw": s.pv_kw["p50"].to_numpy(), "base_load_kw": s.base_load_kw["p50"].to_numpy(),
                  "import_price_per_kwh": s.import_per_kwh, "export_price_per_kwh": s.export_per_kwh}
        forecast = Forecast(start=s.times[0].to_pydatetime(), step_s=s.step_s, horizon_steps=len(s.times),
                            load=lambda: series, comfort=lambda: (s.comfort_lower_c, s.comfort_upper_c))
        return Outlook(forecast=forecast, comfort_lower_c=s.comfort_lower_c[0], comfort_upper_c=s.comfort_upper_c[0],
                       import_price_per_kwh=float(s.import_per_kwh[0]),
                       export_price_per_kwh=float(s.export_per_kwh[0]),
                       outdoor_temp_c=float(s.weather["temp_c"].iloc[0]))

    def recorded_weather(self, times: pd.DatetimeIndex) -> pd.DataFrame | None:
        """Irradiance at ``times`` as the weather feed now has it (cached forecast, else climatology)."""
        frame, _ = self._weather(times, times[-1])
        return frame[["ghi_w_m2", "dni_w_m2", "dhi_w_m2"]]

    # --- building the snapshot -----------------------------------------------------------------------

    def grid(self, when: datetime) -> pd.DatetimeIndex:
        now = pd.Timestamp(when).tz_convert(self.tz)
        start = pd.Timestamp((now.value // int(self.step_s * 1e9)) * int(self.step_s * 1e9), tz="UTC")
        return pd.date_range(start.tz_convert(self.tz), periods=self.horizon_steps,
                             freq=pd.Timedelta(seconds=self.step_s))

    def snapshot(self, when: datetime, force: bool = False) -> FeedSnapshot:
        now = pd.Timestamp(when)
        self.prices.refresh(now, force)
        self.weather.refresh(now, force)
        times = self.grid(when)
        rate = self.rate.refresh(now) if self.feeds.tariff.currency == "CZK" else None
        # The same step with the same feed data gives the same snapshot: decisions between two feed
        # updates cost no physics (pvlib over the horizon takes ~0.1 s).
        key = (times[0], self.prices.version, self.weather.version, self.weather.usable(now), rate)
        if self._memo is not None and self._memo[0] == key and not force:
            return self._memo[1]
        spot, price_source = self._spot(times, now)
        retail = retail_prices(spot, times, self.feeds.tariff, rate)
        weather, weather_source = self._weather(times, now)
        lower, upper = self._comfort(times)
        if self.base is not None:  # the emulator's replay of PV and load (parity through the feed path)
            replay = self.base.outlook(when).forecast
            pv = pd.DataFrame({q: np.asarray(replay.pv_power_kw, dtype=float) for q in QUANTILE_COLUMNS}, index=times)
            load = pd.DataFrame({q: np.asarray(replay.base_load_kw, dtype=float) for q in QUANTILE_COLUMNS},
                                index=times)
        else:
            pv, load = self._pv(times, now, weather, weather_source), self._load(times, now)
        snap = FeedSnapshot(times, self.step_s, spot, retail.import_per_kwh, retail.export_per_kwh, price_source,
                            weather, weather_source, pv, load, lower, upper)
        self._memo = (key, snap)
        return snap

    def _spot(self, times: pd.DatetimeIndex, now: pd.Timestamp) -> tuple[np.ndarray, np.ndarray]:
        known, origin = self.prices.known()
        if len(known):
            if self.step_s == 900.0:
                spot = known.reindex(times).to_numpy(dtype=float, copy=True)
                src = origin.reindex(times).to_numpy(dtype=object, copy=True)
            else:  # hourly grid: the hour's mean (grouped in UTC: a local hour repeats when DST ends)
                hour = known.index.tz_convert("UTC").floor("h")
                utc = times.tz_convert("UTC")
                spot = known.groupby(hour).mean().reindex(utc).to_numpy(dtype=float, copy=True)
                src = origin.groupby(hour).first().reindex(utc).to_numpy(dtype=object, copy=True)
        else:
            spot, src = np.full(len(times), np.nan), np.full(len(times), None, dtype=object)
        gap = ~np.isfinite(spot)
        if gap.any():
            spot[gap] = self._forecast_spot(times, now, known)[gap]
            src[gap] = "forecast"
        return spot, src.astype(str)

    def _forecast_spot(self, times: pd.DatetimeIndex, now: pd.Timestamp, known: pd.Series) -> np.ndarray:
        if self.learned is not None and self.learned.price is not None:
            try:
                return self._learned_spot(times, known)
            except (ValueError, KeyError, IndexError) as exc:  # ForecastError is a ValueError
                log.warning("price forecaster failed (%s); using the same slot a day earlier", exc)
        # Documented simple fallback: the latest known price at the same local time of day.
        out = np.full(len(times), self.feeds.prices.fallback_spot_per_mwh)
        if len(known):
            local_known = known.index.tz_convert(self.tz)
            by_time = known.groupby([local_known.hour, local_known.minute]).last()
            local = times.tz_convert(self.tz)
            for i, key in enumerate(zip(local.hour, local.minute, strict=True)):
                if key in by_time.index:
                    out[i] = by_time[key]
                elif (key[0], 0) in by_time.index:  # hourly prices only
                    out[i] = by_time[(key[0], 0)]
        return out

    def _learned_spot(self, times: pd.DatetimeIndex, known: pd.Series) -> np.ndarray:
        assert self.learned is not None
        forecaster = self.learned.price
        tariff = self.feeds.tariff
        rate = self.rate.rate or tariff.fallback_eur_rate if tariff.currency == "CZK" else 1.0
        published = known.reindex(times)
        if forecaster.target == "import_price_per_kwh":
            exo = retail_prices(published.to_numpy(float), times, tariff, rate).import_per_kwh
        else:
            exo = published.to_numpy(float) / 1000.0
        result = forecaster.predict(self.learned.history(), times[0], len(times),
                                    exogenous=pd.DataFrame({forecaster.target: exo}, index=times))
        point = np.asarray(result.point, dtype=float)
        if forecaster.target != "import_price_per_kwh":
            return point * 1000.0
        # Invert the tariff (linear) to get back to the spot price the rest of the chain expects.
        spans = tariff.low_spans()
        low = np.array([in_spans(h * 60 + m, spans) for h, m in zip(times.hour, times.minute, strict=True)])
        dist = np.where(low, tariff.distribution_low_per_kwh, tariff.distribution_high_per_kwh)
        spot_kwh = point / (1 + tariff.vat_fraction) - tariff.supplier_margin_per_kwh - dist - tariff.fees_per_kwh
        return spot_kwh / rate * 1000.0

    def _weather(self, times: pd.DatetimeIndex, now: pd.Timestamp) -> tuple[pd.DataFrame, np.ndarray]:
        frame = pd.DataFrame({"temp_c": np.nan, "ghi_w_m2": np.nan, "dni_w_m2": np.nan, "dhi_w_m2": np.nan,
                              "cloud_cover_pct": np.nan}, index=times)
        source = np.full(len(times), "climatology", dtype=object)
        self._weather_from_feed(times, now, frame, source)
        gap = source == "climatology"
        if gap.any():  # past the forecast's end, or no usable forecast at all
            clim_irr = climatology.irradiance_w_m2(times, self.house.location)
            frame.loc[gap, "temp_c"] = climatology.temperature_c(times, self.tz)[gap]
            for column in clim_irr:
                frame.loc[gap, column] = clim_irr[column].to_numpy()[gap]
            frame.loc[gap, "cloud_cover_pct"] = climatology.CLOUD_COVER_PCT
        return frame, source.astype(str)

    def _weather_from_feed(self, times: pd.DatetimeIndex, now: pd.Timestamp, frame: pd.DataFrame,
                           source: np.ndarray) -> None:
        if self.weather.usable(now):
            assert self.weather.frame is not None
            fc = self.weather.frame
            label = "cache" if self.weather.from_cache else "forecast"
            fc_step_s = (fc.index[1] - fc.index[0]).total_seconds()
            utc = times.tz_convert("UTC").as_unit("ns")
            if fc_step_s == self.step_s and utc[0] in fc.index:
                # Values already on our grid (interval values, e.g. the emulator's issued forecast): as they are.
                aligned = fc.reindex(utc)
                inside = aligned.notna().all(axis=1).to_numpy()
                for column in frame.columns:
                    frame.loc[inside, column] = aligned[column].to_numpy()[inside]
                source[inside] = label
                return
            # Instantaneous values → the mean over each step, approximated by the step's midpoint.
            mid = utc + pd.Timedelta(seconds=self.step_s / 2)
            inside = (mid >= fc.index[0]) & (mid <= fc.index[-1])
            if inside.any():
                axis = fc.index.asi8.astype(float)
                for column in frame.columns:
                    values = np.interp(mid.as_unit("ns").asi8.astype(float), axis,
                                       fc[column].to_numpy(dtype=float))
                    frame.loc[inside, column] = values[inside]
                source[inside] = label

    def _pv(self, times: pd.DatetimeIndex, now: pd.Timestamp, weather: pd.DataFrame,
            source: np.ndarray) -> pd.DataFrame:
        arrays, location = self.house.pv_arrays, self.house.location
        twin_weather = weather.rename(columns={"temp_c": "outdoor_temp_c"})
        p50 = pv_ac_power_kw(times, self.step_s, twin_weather, location, arrays)
        clear = climatology.clear_sky_w_m2(times + pd.Timedelta(seconds=self.step_s / 2), location)
        clear.index = times
        clear["outdoor_temp_c"] = weather["temp_c"].to_numpy()
        ceiling = pv_ac_power_kw(times, self.step_s, clear, location, arrays)
        # Without a trained model: a rough band, wider where the weather is climatology.
        fallback = source == "climatology"
        p10 = np.where(fallback, 0.2 * ceiling, 0.6 * p50)
        p90 = np.where(fallback, ceiling, np.minimum(ceiling, 1.3 * p50 + 0.05 * ceiling))
        frame = pd.DataFrame({"p10": np.minimum(p10, p50), "p50": p50, "p90": np.maximum(p90, p50)}, index=times)
        if self.learned is not None and self.learned.pv is not None:
            exo = twin_weather[["ghi_w_m2", "dni_w_m2", "dhi_w_m2", "outdoor_temp_c"]]
            learned = self._quantiles(self.learned.pv, times, exo, "PV")
            if learned is not None:
                return learned.clip(lower=0.0)
        return frame

    def _load(self, times: pd.DatetimeIndex, now: pd.Timestamp) -> pd.DataFrame:
        if self.learned is not None and self.learned.load is not None:
            learned = self._quantiles(self.learned.load, times, None, "load")
            if learned is not None:
                return learned.clip(lower=0.0)
        p50 = climatology.base_load_kw(times, self.tz, self.feeds.base_load_kwh_per_day)
        return pd.DataFrame({"p10": 0.5 * p50, "p50": p50, "p90": 1.8 * p50}, index=times)

    def _quantiles(self, forecaster: Any, times: pd.DatetimeIndex, exo: pd.DataFrame | None,
                   what: str) -> pd.DataFrame | None:
        assert self.learned is not None
        try:
            result = forecaster.predict(self.learned.history(), times[0], len(times), exogenous=exo)
        except (ValueError, KeyError, IndexError) as exc:
            log.warning("%s forecaster failed (%s); using the physics/climatology forecast", what, exc)
            return None
        q = result.quantiles
        point = np.asarray(result.point, dtype=float)
        return pd.DataFrame({"p10": q.get(0.1, point), "p50": q.get(0.5, point), "p90": q.get(0.9, point)},
                            index=times)

    def _comfort(self, times: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
        local = times.tz_convert(self.tz)
        minutes = (local.hour * 60 + local.minute).to_numpy()
        weekdays = local.day_of_week.to_numpy()
        lower = np.empty((len(times), len(self.house.rooms)))
        upper = np.empty_like(lower)
        for r, room in enumerate(self.house.rooms):
            bands = room.comfort.bands()
            spans = {}
            for weekday in set(weekdays.tolist()):
                day = self.comfort.day_schedule(room.name, int(weekday))
                spans[weekday] = (tuple(parse_span(s, "day") for s in day.day),
                                  tuple(parse_span(s, "away") for s in day.away))
            for i, (minute, weekday) in enumerate(zip(minutes, weekdays, strict=True)):
                day_spans, away_spans = spans[weekday]
                mode = ComfortMode.DAY if in_spans(int(minute), day_spans) else ComfortMode.NIGHT
                if in_spans(int(minute), away_spans):
                    mode = ComfortMode.AWAY
                lower[i, r], upper[i, r] = bands[mode].lower_c, bands[mode].upper_c
        return lower, upper


def feed_source(config: Any, house: HouseConfig, learned: LearnedForecasters | None = None,
                events: EventLog | None = None, base: ForecastSource | None = None) -> FeedForecastSource:
    """The source a ``LiveConfig`` with a ``[feeds]`` table asks for."""
    feeds = config.feeds
    if feeds is None:
        raise ValueError("the live configuration has no [feeds] table")
    cache = Path(feeds.cache_dir) if feeds.cache_dir else None
    return FeedForecastSource(house, feeds, config.comfort, config.control.horizon_s, cache, events, learned,
                              base=base)
