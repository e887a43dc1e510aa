"""Backtests: train before a date, issue forecasts every day after it, score them by lead time.

A backtest issues one forecast per day at ``issue_hour_local`` (12:00 by default, before the
day-ahead market closes) for ``horizon_hours``; its *day-ahead* rows are the targets on the
next local day (lead 12–36 h at 12:00). Every forecast is scored against the recorded
actuals, next to two baselines on the same rows: *persistence* (the latest value known at
issue time at the same time of day; for prices the published prices, then the last published
day repeated) and, where the data hold one, the *reference*: a forecast archived with the
data (e.g. the operational PV forecast of the time).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from controllers.forecasting.base import Forecaster, ForecastError, grid_step_ns, time_index
from controllers.forecasting.features import latest_same_time
from controllers.forecasting.metrics import by_lead, to_hourly
from controllers.forecasting.prices import PriceForecaster, published_until

_DAY_NS = 86_400_000_000_000


@dataclass(frozen=True, slots=True)
class BacktestSettings:
    """When to train up to, when and how far to forecast."""

    train_until: pd.Timestamp
    issue_hour_local: float = 12.0
    horizon_hours: float = 48.0
    test_until: pd.Timestamp | None = None
    retrain_days: float | None = None  # None: train once; else retrain on all data before the issue time

    def __post_init__(self) -> None:
        if self.retrain_days is not None and not 1.0 <= self.retrain_days <= 366.0:
            raise ForecastError(f"retrain_days = {self.retrain_days} is outside [1, 366]")
        if not 0.0 <= self.issue_hour_local < 24.0:
            raise ForecastError(f"issue_hour_local = {self.issue_hour_local} is outside [0, 24)")
        if not 1.0 <= self.horizon_hours <= 168.0:
            raise ForecastError(f"horizon_hours = {self.horizon_hours} is outside [1, 168]")


def issue_times(index: pd.DatetimeIndex, settings: BacktestSettings, timezone: str) -> pd.DatetimeIndex:
    """Every day's ``issue_hour_local`` on the grid of ``index``, from ``train_until`` on.

    The hour is wall-clock time, also on DST days.
    """
    end = settings.test_until or index[-1]
    days = pd.date_range(settings.train_until.tz_convert(timezone).tz_localize(None).normalize(),
                         end.tz_convert(timezone).tz_localize(None).normalize(), freq="D")
    wall = days + pd.Timedelta(hours=settings.issue_hour_local)
    times = wall.tz_localize(timezone, nonexistent="shift_forward", ambiguous=True)
    step = pd.Timedelta(grid_step_ns(index), unit="ns")
    times = times.tz_convert("UTC").floor(step).tz_convert(timezone)  # onto the grid (UTC: never ambiguous)
    return times[(times >= settings.train_until) & (times <= index[-1]) & times.isin(index)]


def backtest(forecaster: Forecaster, history: pd.DataFrame, settings: BacktestSettings, timezone: str, *,
             exogenous: pd.DataFrame | None = None, reference: pd.Series | None = None,
             fit: bool = True) -> pd.DataFrame:
    """Train ``forecaster`` on history before ``train_until`` (unless ``fit`` is False) and score it after.

    With ``settings.retrain_days`` the forecaster is retrained that often during the test, on
    everything before the issue time (an expanding window, as it would be in operation): each
    forecast still comes from a model that never saw its targets.

    Returns one row per (issue, target step): ``issued``, ``target``, ``lead_h``, ``day_ahead``,
    ``actual``, ``point``, ``p10``, ``p50``, ``p90``, ``persistence`` and, if given, ``reference``.
    """
    target = forecaster.target
    if target not in history:
        raise ForecastError(f"history has no column {target!r}")
    train = history[history.index < settings.train_until]
    if len(train) < 2:
        raise ForecastError(f"no history before --train-until {settings.train_until}")
    if fit:
        forecaster.fit(train)
    step_ns = grid_step_ns(time_index(history))
    horizon = max(1, round(settings.horizon_hours * 3.6e12 / step_ns))
    actual = history[target].to_numpy(dtype=float)
    grid_ns = time_index(history).as_unit("ns").asi8
    frames = []
    last_fit = settings.train_until
    for issued in issue_times(time_index(history), settings, timezone):
        if settings.retrain_days is not None and issued - last_fit >= pd.Timedelta(days=settings.retrain_days):
            forecaster.fit(history[history.index < issued])
            last_fit = issued
        p0 = int((issued.value - grid_ns[0]) // step_ns)
        steps = min(horizon, len(history) - p0)
        if steps <= 0:
            continue
        fc = forecaster.predict(history, issued, steps, exogenous)
        p = p0 + np.arange(steps)
        frame = pd.DataFrame({"issued": issued, "target": fc.times, "lead_h": (p - p0) * step_ns / 3.6e12,
                              "actual": actual[p], "point": fc.point})
        for q, values in fc.quantiles.items():
            frame[f"p{round(q * 100):02d}"] = values
        frame["persistence"] = _persistence(forecaster, history, actual, p0, p, step_ns, issued)
        if reference is not None:
            frame["reference"] = reference.reindex(fc.times).to_numpy(dtype=float)
        frames.append(frame)
    if not frames:
        raise ForecastError(f"no issue time after --train-until {settings.train_until} within the data")
    scored = pd.concat(frames, ignore_index=True)
    local_issue = scored["issued"].dt.tz_convert(timezone).dt.normalize()
    local_target = scored["target"].dt.tz_convert(timezone).dt.normalize()
    scored["day_ahead"] = (local_target - local_issue).dt.days == 1
    scored["target_day"] = local_target.dt.tz_localize(None)  # the target's local calendar day
    return scored


def _persistence(forecaster: Forecaster, history: pd.DataFrame, actual: np.ndarray, p0: int, p: np.ndarray,
                 step_ns: int, issued: pd.Timestamp) -> np.ndarray:
    day = round(_DAY_NS / step_ns)
    if isinstance(forecaster, PriceForecaster):
        published = published_until(pd.DatetimeIndex([issued]), forecaster.calendar.timezone,
                                    forecaster.publication_hour_local)[0]
        d = p0 + int(time_index(history)[p0:].searchsorted(published))
        out = latest_same_time(actual, np.full(len(p), d), p, day)
        return np.where(p < d, actual[np.minimum(p, len(actual) - 1)], out)
    return latest_same_time(actual, np.full(len(p), p0), p, day)


@dataclass(frozen=True)
class BacktestReport:
    """Metrics tables of a backtest: the model and each baseline, by lead bucket."""

    kind: str
    unit: str
    tables: dict[str, pd.DataFrame]  # forecast name -> by_lead table
    hourly: bool
    notes: tuple[str, ...] = ()
    daily: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Headline figures: the day-ahead row of every forecast."""
        out = {}
        for name, table in self.tables.items():
            if "day-ahead" in table.index:
                row = table.loc["day-ahead"]
                out[name] = {k: (None if pd.isna(v) else float(v)) for k, v in row.items()}
        return out


def report(scored: pd.DataFrame, kind: str, *, capacity: float | None = None, hourly: bool = False,
           notes: tuple[str, ...] = ()) -> BacktestReport:
    """Score ``scored`` (from :func:`backtest`): model, persistence and reference on the same rows.

    For PV the rows are those where the reference exists, if there is one, so that every
    forecast is scored on the same timestamps; MAPE counts actuals above 10 % of capacity.
    ``hourly`` first averages every forecast to clock hours.
    """
    columns = [c for c in ("actual", "point", "p10", "p50", "p90", "persistence", "reference") if c in scored]
    frame = scored
    if kind == "pv" and "reference" in scored:
        frame = scored[scored["reference"].notna()]
        notes = (*notes, f"scored on the {len(frame)} of {len(scored)} target steps where the reference exists")
    # every forecast on exactly the same rows: where the actual, the model and each baseline all exist
    compared = [c for c in ("actual", "point", "persistence", "reference") if c in frame]
    common = frame[compared].notna().all(axis=1)
    if not common.all():
        notes = (*notes, f"model and baselines scored on the same {int(common.sum())} of {len(frame)} target "
                         f"steps (where every one of them and the actual exist)")
    frame = frame[common]
    if hourly:
        frame = to_hourly(frame, columns)
    floor = mape_floor(frame["actual"].to_numpy(dtype=float), kind, capacity)
    unit = "kW" if kind in ("pv", "load") else "per kWh"
    notes = (*notes, f"MAPE counts only actuals above {floor:.3g} {unit} ("
                     + ("10 % of capacity" if kind == "pv" and capacity else
                        "0.01 per kWh" if kind == "price" else "10 % of the mean actual")
                     + "): near-zero actuals would make it meaningless")
    tables = {"model": by_lead(frame, "point", capacity=capacity, mape_floor=floor)}
    if "p50" in frame:  # the median: what MAPE rewards, where the mean is what RMSE and an MPC want
        tables["model_p50"] = by_lead(frame, "p50", capacity=capacity, mape_floor=floor, probabilistic=False)
    tables["persistence"] = by_lead(frame, "persistence", capacity=capacity, mape_floor=floor, probabilistic=False)
    if "reference" in frame:
        tables["reference"] = by_lead(frame, "reference", capacity=capacity, mape_floor=floor, probabilistic=False)
    return BacktestReport(kind, unit, tables, hourly, notes, daily_energy(scored) if kind != "price" else {})


def mape_floor(actual: np.ndarray, kind: str, capacity: float | None) -> float:
    """The |actual| above which MAPE counts a row.

    10 % of PV capacity, 0.01 per kWh for prices, else 10 % of the mean |actual| (a house idle at
    night has near-zero load; one such hour made MAPE thousands of %).
    """
    if kind == "pv" and capacity:
        return 0.1 * capacity
    if kind == "price":
        return 0.01
    finite = np.abs(actual[np.isfinite(actual)])
    return 0.1 * float(finite.mean()) if finite.size else 0.0


def daily_energy(scored: pd.DataFrame) -> dict[str, Any]:
    """Day-ahead error of each forecast's daily energy [kWh per local day]: MAPE and RMSE."""
    rows = scored[scored["day_ahead"]]
    if rows.empty:
        return {}
    step_h = float(np.median(np.diff(np.unique(rows["lead_h"])))) if rows["lead_h"].nunique() > 1 else 1.0
    columns = [c for c in ("point", "p50", "persistence", "reference") if c in rows]
    sums = rows.groupby(["issued", "target_day"])[["actual", *columns]].sum(min_count=1) * step_h
    out = {}
    for c in columns:
        ok = sums[c].notna() & (sums["actual"] > 0)
        e = sums.loc[ok, c] - sums.loc[ok, "actual"]
        out[c] = {"days": int(ok.sum()), "mape_pct": float(100 * np.mean(np.abs(e) / sums.loc[ok, "actual"])),
                  "rmse_kwh": float(np.sqrt(np.mean(e ** 2)))}
    return out
