"""``LearnedForecasts``: any controller, planning with learned forecasts instead of the scenario's.

The wrapper keeps the history it observes (PV, base load, outdoor temperature, prices of
every data step), optionally starting from a pre-training history (the scenario's past, or
the house's records), and every ``refresh_s`` issues forecasts from its forecasters. Before
calling ``inner.decide(obs)`` it replaces ``obs.forecast`` with a
:class:`twin.contracts.Forecast` in which the learned series stand in for the scenario's
(``pv_power_kw``, ``base_load_kw``, ``import_price_per_kwh``, ``export_price_per_kwh``); the
weather series stay the issued weather forecast, which is also what the forecasters get as
their weather input. So "MPC with learned forecasts" is ``LearnedForecasts(mpc, …)``.

Nothing it does can see the future: the forecasters use history before the issue time only,
and the price forecaster drops any price not yet published at issue time. Until it has
``min_history_days`` of history it passes the scenario's forecast through (``plan_status``
says which one the inner controller saw).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from controllers.forecasting.base import Forecaster, ForecastError
from controllers.forecasting.features import Calendar
from controllers.forecasting.load import LoadForecaster
from controllers.forecasting.persistence import load_forecaster
from controllers.forecasting.prices import PriceForecaster
from controllers.forecasting.pv import PvForecaster
from controllers.forecasting.scorecard import ForecastScorecard, observed_actuals
from controllers.forecasting.solar import PvSite, fit_orientation
from twin.config import HouseConfig, Location
from twin.contracts import FORECAST_FIELDS, Command, Controller, Forecast, Observation

HISTORY_COLUMNS = ("pv_power_kw", "base_load_kw", "outdoor_temp_c", "import_price_per_kwh", "export_price_per_kwh")


@dataclass(frozen=True, slots=True)
class LearnedForecastSettings:
    """How often forecasts are re-issued and the forecasters retrained.

    ``refresh_s``: how often forecasts are re-issued; ``retrain_every_days``: how often the
    forecasters are retrained on everything seen so far (None: never, e.g. with saved models).
    """

    refresh_s: float = 3600.0
    min_history_days: float = 14.0
    retrain_every_days: float | None = 30.0

    def __post_init__(self) -> None:
        if not 60.0 <= self.refresh_s <= 86400.0:
            raise ForecastError(f"refresh_s = {self.refresh_s} is outside [60, 86400]")
        if not 3.0 <= self.min_history_days <= 366.0:
            raise ForecastError(f"min_history_days = {self.min_history_days} is outside [3, 366]")
        if self.retrain_every_days is not None and not 1.0 <= self.retrain_every_days <= 366.0:
            raise ForecastError(f"retrain_every_days = {self.retrain_every_days} is outside [1, 366]")


class LearnedForecasts:
    """Wraps ``inner`` so that it sees learned forecasts. See the module docstring.

    Parameters
    ----------
    inner : Controller
    pv, load : PvForecaster, LoadForecaster, optional
        Trained or not; untrained ones are trained once enough history is there.
    prices : mapping of price column -> PriceForecaster, optional
    history : pd.DataFrame, optional
        Pre-training history (canonical columns, same grid as the scenario), before the run.
    settings : LearnedForecastSettings, optional
    """

    perfect_foresight = False

    def __init__(self, inner: Controller, *, pv: PvForecaster | None = None, load: LoadForecaster | None = None,
                 prices: Mapping[str, PriceForecaster] | None = None, history: pd.DataFrame | None = None,
                 settings: LearnedForecastSettings | None = None) -> None:
        self.inner = inner
        self.pv = pv
        self.load = load
        self.prices = dict(prices or {})
        for column, forecaster in self.prices.items():
            if forecaster.target != column:
                raise ForecastError(f"prices[{column!r}] forecasts {forecaster.target!r}")
        if history is not None and not isinstance(history.index, pd.DatetimeIndex):
            raise ForecastError("history must be indexed by a tz-aware DatetimeIndex")
        self._pretrain = history[[c for c in HISTORY_COLUMNS if c in history]].copy() if history is not None else None
        self.settings = settings or LearnedForecastSettings()
        self.reset_state()

    @property
    def forecasters(self) -> dict[str, Forecaster]:
        out: dict[str, Forecaster] = {}
        if self.pv is not None:
            out["pv_power_kw"] = self.pv
        if self.load is not None:
            out["base_load_kw"] = self.load
        out.update(self.prices)
        return out

    def reset_state(self) -> None:
        self._observed: dict[int, np.ndarray] = {}
        self._cache: tuple[int, int, dict[str, np.ndarray]] | None = None  # (issue ns, step ns, series)
        self._last_fit_ns: int | None = None
        self.scorecard = ForecastScorecard()
        self.fits = 0

    def reset(self) -> None:
        self.reset_state()
        if hasattr(self.inner, "reset"):
            self.inner.reset()

    # --- history -------------------------------------------------------------------------------------------

    def _observe(self, step_start: pd.Timestamp, obs: Observation) -> None:
        values = observed_actuals(obs)
        self._observed[step_start.value] = np.array([values[c] for c in HISTORY_COLUMNS], dtype=float)

    def history(self, before: pd.Timestamp, step_ns: int) -> pd.DataFrame:
        """Pre-training history and observed steps before ``before``, on one regular grid."""
        frames = []
        if self._pretrain is not None:
            frames.append(self._pretrain[self._pretrain.index < before])
        observed = {t: v for t, v in self._observed.items() if t < before.value}
        if observed:
            index = pd.DatetimeIndex(pd.to_datetime(sorted(observed), utc=True)).tz_convert(before.tz)
            frames.append(pd.DataFrame(np.array([observed[t] for t in sorted(observed)]), index=index,
                                       columns=list(HISTORY_COLUMNS)))
        if not frames:
            return pd.DataFrame(columns=list(HISTORY_COLUMNS))
        frame = pd.concat(frames)
        frame = frame[~frame.index.duplicated(keep="last")].sort_index()
        first = frame.index[0]
        if (first.value - before.value) % step_ns:
            raise ForecastError(f"pre-training history starts at {first}, off the scenario's "
                                f"{step_ns / 6e10:g}-minute grid")
        grid = pd.date_range(first, before - pd.Timedelta(step_ns, unit="ns"), freq=pd.Timedelta(step_ns, unit="ns"))
        return frame.reindex(grid)

    # --- forecasting ---------------------------------------------------------------------------------------

    def _fit(self, history: pd.DataFrame, now_ns: int) -> None:
        """Train every forecaster whose target the history holds; the others keep what they were."""
        for column, forecaster in self.forecasters.items():
            if column in history and history[column].notna().sum() > 0:
                forecaster.fit(history)
        self._last_fit_ns = now_ns
        self.fits += 1

    def _needs_fit(self, now_ns: int) -> bool:
        if self._last_fit_ns is None:
            return True
        every = self.settings.retrain_every_days
        return every is not None and now_ns - self._last_fit_ns >= every * 86400e9

    def _issue(self, start: pd.Timestamp, step_ns: int, forecast: Forecast) -> dict[str, np.ndarray] | None:
        history = self.history(start, step_ns)
        if len(history) * step_ns < self.settings.min_history_days * 86400e9:
            return None
        if self._needs_fit(start.value):
            if self._last_fit_ns is None and all(f.training for f in self.forecasters.values()):
                self._last_fit_ns = start.value  # pre-trained: the retrain clock starts now
            else:
                self._fit(history, start.value)
        exogenous = forecast.as_frame()
        series: dict[str, np.ndarray] = {}
        for column, forecaster in self.forecasters.items():
            if forecaster.training:  # one without training data yet: the scenario's forecast stays
                series[column] = forecaster.predict(history, start, forecast.horizon_steps, exogenous).point
        return series

    def learned_forecast(self, forecast: Forecast) -> Forecast | None:
        """``forecast`` with the learned series in place (None while there is too little history)."""
        start = pd.Timestamp(forecast.start)
        step_ns = int(round(forecast.step_s * 1e9))
        cache = self._cache
        if cache is None or cache[1] != step_ns or not 0 <= start.value - cache[0] < self.settings.refresh_s * 1e9:
            series = self._issue(start, step_ns, forecast)
            if series is None:
                return None
            self._cache = cache = (start.value, step_ns, series)
        offset = (start.value - cache[0]) // step_ns
        values = {name: np.array(getattr(forecast, name), dtype=float) for name in FORECAST_FIELDS}
        for name, learned in cache[2].items():
            part = learned[offset:offset + forecast.horizon_steps]
            values[name][: len(part)] = part  # beyond the cached horizon: the scenario's forecast
        comfort = (forecast.comfort_lower_c, forecast.comfort_upper_c)
        return Forecast(start=forecast.start, step_s=forecast.step_s, horizon_steps=forecast.horizon_steps,
                        load=lambda: values, comfort=lambda: comfort)

    def decide(self, obs: Observation) -> Command:
        start = pd.Timestamp(obs.forecast.start)
        self._observe(start, obs)
        learned = self.learned_forecast(obs.forecast)
        forecast = learned if learned is not None else obs.forecast
        self.scorecard.record_actual(start, observed_actuals(obs))
        self.scorecard.record_forecast(forecast)
        command = self.inner.decide(replace(obs, forecast=forecast))
        tag = "forecasts=learned" if learned is not None else "forecasts=scenario"
        return replace(command, plan_note=f"{command.plan_note} [{tag}]".strip())


# --- construction helpers ------------------------------------------------------------------------------

def scenario_location(metadata: Mapping[str, str]) -> Location | None:
    """The location a historical scenario's data were recorded at (``metadata["location"]``), if known."""
    text = metadata.get("location")
    return Location(**json.loads(text)) if text else None


def learned_forecasts_for(inner: Controller, house: HouseConfig, *, history: pd.DataFrame | None = None,
                          location: Location | None = None, country: str | None = None,
                          pv_capacity_kw: float | None = None, model_dir: Path | None = None,
                          settings: LearnedForecastSettings | None = None) -> LearnedForecasts:
    """A ``LearnedForecasts`` with PV, load and import/export price forecasters for ``house``.

    With ``model_dir`` (holding ``pv/``, ``load/``, ``import_price/``, ``export_price/`` saved
    forecasters) the trained models are loaded; otherwise new ones are trained from
    ``history`` (and what the wrapper observes). The PV site is the house's arrays, or — when
    ``location`` differs from the house's (a scenario recorded elsewhere) or the house has no
    arrays — one array fitted to the PV in ``history``.
    """
    location = location or house.location
    calendar = Calendar(location.timezone, country)
    if model_dir is not None:
        model_dir = Path(model_dir)
        found = {name: load_forecaster(model_dir / name) for name in ("pv", "load", "import_price", "export_price")
                 if (model_dir / name).is_dir()}
        saved_pv, saved_load = found.get("pv"), found.get("load")
        saved_prices = {f.target: f for k, f in found.items()
                        if k.endswith("_price") and isinstance(f, PriceForecaster)}
        return LearnedForecasts(inner, pv=saved_pv if isinstance(saved_pv, PvForecaster) else None,
                                load=saved_load if isinstance(saved_load, LoadForecaster) else None,
                                prices=saved_prices, history=history, settings=settings)
    pv = None
    if location == house.location and house.pv_arrays:
        pv = PvForecaster(PvSite.from_house(house))
    elif history is not None and "pv_power_kw" in history and history["pv_power_kw"].sum() > 0:
        capacity = pv_capacity_kw or float(history["pv_power_kw"].max())
        pv = PvForecaster(fit_orientation(history["pv_power_kw"].dropna(), location, capacity))
    fresh_prices = {c: PriceForecaster(calendar, target=c) for c in ("import_price_per_kwh", "export_price_per_kwh")}
    return LearnedForecasts(inner, pv=pv, load=LoadForecaster(calendar), prices=fresh_prices, history=history,
                            settings=settings)
