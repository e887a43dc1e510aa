"""Issued forecasts with a synthetic lead-time error model (``ForecastModel`` implementation).

A synthetic scenario has no real forecasts, only actuals. A controller must never see
those actuals as if they were forecasts (it would silently know the future), so the
scenario carries :class:`LeadTimeErrorForecasts`: the actual series plus errors that grow
with lead time, drawn reproducibly from a seed. ``twin.scenario.PerfectForecasts`` is the
explicit opt-in for the oracle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from twin.contracts import FORECAST_FIELDS
from twin.errors import ScenarioError
from twin.params import bounded, check_bounds, fail

_MINUTE_NS = 60_000_000_000
_HOUR_NS = 60 * _MINUTE_NS
_DAY_NS = 24 * _HOUR_NS
_SOLAR_FIELDS = ("ghi_w_m2", "dni_w_m2", "dhi_w_m2", "pv_power_kw")
_IRRADIANCE_FIELDS = ("ghi_w_m2", "dni_w_m2", "dhi_w_m2")
#: No forecast irradiance above the sun's at the top of the atmosphere: a lognormal factor of 2.5 at a long
#: lead had made DNI 2,300 W/m². (PV needs no cap here: controllers clip it at their inverter's AC limit.)
SOLAR_CONSTANT_W_M2 = 1361.0
#: Separates this model's random streams from the scenario generator's (same user seed).
_STREAM_TAG = 0xF0CA57

_PATH_SPARE_STEPS = 64  # rows drawn beyond the length asked for, for the hour's later steps


@dataclass(frozen=True, slots=True)
class ForecastErrorParams:
    """Standard deviations of the forecast errors at lead 0 and at ``growth_hours`` and beyond.

    Temperature errors are additive [K]; solar (irradiance and PV) and base-load errors are
    multiplicative, given as the standard deviation of the log of the factor. Day-ahead
    prices are published daily at ``price_publication_hour_local`` for the next local day.
    """

    temp_std_lead0_k: float = bounded(0.0, 10.0, "K", default=0.3)
    temp_std_max_k: float = bounded(0.0, 20.0, "K", default=2.0)
    solar_std_lead0: float = bounded(0.0, 2.0, default=0.15)
    solar_std_max: float = bounded(0.0, 3.0, default=0.5)
    load_std_lead0: float = bounded(0.0, 2.0, default=0.1)
    load_std_max: float = bounded(0.0, 3.0, default=0.3)
    growth_hours: float = bounded(1.0, 240.0, "h", default=48.0)
    price_publication_hour_local: float = bounded(0.0, 24.0, "h", default=13.0)

    def __post_init__(self) -> None:
        check_bounds(self)
        for lead0, top in (("temp_std_lead0_k", "temp_std_max_k"), ("solar_std_lead0", "solar_std_max"),
                           ("load_std_lead0", "load_std_max")):
            if getattr(self, lead0) > getattr(self, top):
                fail(lead0, f"= {getattr(self, lead0)} must not exceed {top} = {getattr(self, top)}")


class LeadTimeErrorForecasts:
    """Forecasts = actuals × a synthetic, seeded error model that grows with lead time.

    **These are not real forecasts.** They are the scenario's actual future with random
    errors added, so that a controller cannot silently use perfect knowledge of the future;
    how good a forecaster really is must be measured on recorded forecasts, not here.

    Model, per issued forecast:

    * Forecasts are refreshed hourly (on whole UTC hours). Every step within the same hour
      sees the same forecast: the errors form one path over lead time measured from the
      hour's start, drawn from ``np.random.default_rng([seed, hour, tag])``. So the same
      seed gives identical forecasts whatever the order of calls, and the error of a target
      step does not change within the hour.
    * Errors are correlated along the lead: each is a Gaussian random walk whose standard
      deviation grows from ``*_lead0`` at lead 0 to ``*_max`` at ``growth_hours`` (variance
      linear in lead, i.e. std ∝ √lead early) and stays there.
    * ``outdoor_temp_c``: actual + error [K].
    * ``ghi_w_m2``, ``dni_w_m2``, ``dhi_w_m2``, ``pv_power_kw``: actual × one shared
      lognormal factor ``exp(e − σ²/2)`` (mean 1): never negative, exactly zero at night;
      irradiance capped at the solar constant.
    * ``base_load_kw``: actual × its own lognormal factor (spikes are "foreseen" too: the
      model is optimistic about short-term load).
    * ``import_price_per_kwh``, ``export_price_per_kwh``: day-ahead prices are exact up to
      the end of the last published local day (published at ``price_publication_hour_local``
      for the next day: issued before it → known to the end of today, after → to the end of
      tomorrow). Beyond that: persistence, the value at the same local wall-clock time on
      the last published day (across a DST change, the nearest existing time).

    Parameters
    ----------
    index : pd.DatetimeIndex
        The scenario's tz-aware, evenly spaced index; ``issue``'s ``step`` counts its rows.
    seed : int
        Non-negative seed of the error draws.
    params : ForecastErrorParams
    name : str
    """

    def __init__(self, index: pd.DatetimeIndex, seed: int, params: ForecastErrorParams | None = None,
                 name: str = "lead-time-errors") -> None:
        if not isinstance(index, pd.DatetimeIndex) or index.tz is None or len(index) < 2:
            raise ScenarioError("LeadTimeErrorForecasts needs a tz-aware DatetimeIndex of at least 2 steps")
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ScenarioError(f"LeadTimeErrorForecasts seed must be a non-negative integer, got {seed!r}")
        ns = index.as_unit("ns").asi8
        steps = np.diff(ns)
        if (steps <= 0).any() or (steps != steps[0]).any():
            raise ScenarioError("LeadTimeErrorForecasts needs an evenly spaced, increasing index")
        self.name = name
        self.params = params if params is not None else ForecastErrorParams()
        self.seed = int(seed)
        self._tz = index.tz
        self._n = len(index)
        self._start_ns = int(ns[0])
        self._step_ns = int(steps[0])
        p = self.params
        growth_steps = max(1.0, p.growth_hours * _HOUR_NS / self._step_ns)
        self._lead0_std = np.array([p.temp_std_lead0_k, p.solar_std_lead0, p.load_std_lead0])
        self._var_slope = (np.array([p.temp_std_max_k, p.solar_std_max, p.load_std_max]) ** 2
                           - self._lead0_std ** 2) / growth_steps
        self._growth_steps = growth_steps
        self._incr_std = np.empty((0, 3))
        self._half_var = np.empty((0, 3))
        self._path_key: int | None = None
        self._paths = np.empty((0, 3))
        self._day_steps = max(1, _DAY_NS // self._step_ns)
        self._build_tables(self._n + 3 * self._day_steps)

    def __repr__(self) -> str:
        return f"LeadTimeErrorForecasts(name={self.name!r}, seed={self.seed}, steps={self._n})"

    def with_index(self, index: pd.DatetimeIndex) -> LeadTimeErrorForecasts:
        """The same model for another index (e.g. a window of the scenario).

        Draws are keyed by absolute UTC hour and prices by local calendar time, so a target
        time gets the same forecast from both models when issued at the same time.
        """
        return LeadTimeErrorForecasts(index, self.seed, self.params, self.name)

    # -- time tables -----------------------------------------------------------------
    def _build_tables(self, n_after: int) -> None:
        """Per-step local-time tables for steps ``-pre .. n_after - 1`` (scenario numbering)."""
        pre = 2 * self._day_steps + 8
        # After the last step: room for "end of tomorrow" of a 25-hour day and the one after.
        ext = np.arange(-pre, n_after + 3 * self._day_steps + 8)
        t_ns = self._start_ns + ext * self._step_ns
        wall_ns = pd.DatetimeIndex(t_ns.astype("datetime64[ns]"), tz="UTC").tz_convert(self._tz).tz_localize(
            None).as_unit("ns").asi8
        local_day = np.floor_divide(wall_ns, _DAY_NS)
        tod_min = (wall_ns - local_day * _DAY_NS) // _MINUTE_NS
        is_start = np.r_[True, local_day[1:] != local_day[:-1]]
        starts = np.flatnonzero(is_start)
        which = np.searchsorted(starts, np.arange(len(ext)), side="right")  # index of the next start
        nxt = np.append(starts, len(ext))
        next_start = nxt[np.minimum(which, len(starts))]
        next_next = nxt[np.minimum(which + 1, len(starts))]
        # Wall-clock time of day, made non-decreasing within each day (a fall-back hour repeats).
        key = local_day * 10_000 + tod_min
        tod_mono = np.maximum.accumulate(key) - local_day * 10_000
        pub_min = int(round(self.params.price_publication_hour_local * 60))
        known_end = np.where(tod_min < pub_min, next_start, next_next)
        self._pre = pre
        self._n_covered = n_after
        self._tod_min = tod_min
        self._tod_mono = tod_mono
        self._day_start = starts[which - 1]  # start of each step's own local day (ext positions)
        self._known_end = known_end  # ext positions
        utc_hour = np.floor_divide(t_ns, _HOUR_NS)
        self._hour_id = utc_hour
        self._hour_offset = (t_ns - utc_hour * _HOUR_NS) // self._step_ns

    def _ensure_paths(self, hour_id: int, length: int) -> np.ndarray:
        if self._path_key == hour_id and len(self._paths) >= length:
            return self._paths
        # Room to spare: each later step of the hour asks for one more row; without it every step
        # drew the whole path again (the rows drawn first do not depend on how many are drawn).
        length += _PATH_SPARE_STEPS
        if len(self._incr_std) < length:
            m = max(length, 2 * len(self._incr_std), 256)
            lead = np.arange(m)[:, None]
            var = self._lead0_std ** 2 + self._var_slope * np.minimum(lead, self._growth_steps)
            incr = np.diff(var, axis=0, prepend=0.0)
            self._incr_std = np.sqrt(np.maximum(incr, 0.0))
            self._half_var = 0.5 * var
        length = max(length, len(self._paths) if self._path_key == hour_id else 0)
        rng = np.random.default_rng([self.seed, int(hour_id) & 0xFFFF_FFFF_FFFF, _STREAM_TAG])
        # Row-major fill: the first rows do not depend on ``length``, so a longer horizon
        # extends a path without changing its beginning.
        paths = np.cumsum(rng.standard_normal((length, 3)) * self._incr_std[:length], axis=0)
        paths[:, 1:] = np.exp(paths[:, 1:] - self._half_var[:length, 1:])
        self._path_key, self._paths = hour_id, paths
        return paths

    # -- the ForecastModel protocol ----------------------------------------------------
    def issue(self, actual: Mapping[str, np.ndarray], step: int, horizon_steps: int) -> dict[str, np.ndarray]:
        """Every series of ``FORECAST_FIELDS`` for steps ``step .. step + horizon_steps - 1``."""
        if not 0 <= step < self._n:
            raise ScenarioError(f"forecast step {step} is outside the scenario's 0..{self._n - 1}")
        if horizon_steps < 1:
            raise ScenarioError(f"forecast horizon_steps must be >= 1, got {horizon_steps}")
        end = step + horizon_steps
        for key in FORECAST_FIELDS:
            series = actual.get(key)
            if series is None or len(series) < end:
                raise ScenarioError(f"forecast needs actual {key!r} up to step {end}, got "
                                    f"{'nothing' if series is None else len(series)}")
        if end > self._n_covered:
            self._build_tables(end + self._day_steps)
        pos = step + self._pre
        offset = int(self._hour_offset[pos])
        paths = self._ensure_paths(int(self._hour_id[pos]), offset + horizon_steps)
        paths = paths[offset:offset + horizon_steps]
        out: dict[str, np.ndarray] = {}
        out["outdoor_temp_c"] = actual["outdoor_temp_c"][step:end] + paths[:, 0]
        solar = paths[:, 1]
        for key in _SOLAR_FIELDS:
            out[key] = actual[key][step:end] * solar
        for key in _IRRADIANCE_FIELDS:
            np.minimum(out[key], SOLAR_CONSTANT_W_M2, out=out[key])
        out["base_load_kw"] = actual["base_load_kw"][step:end] * paths[:, 2]
        idx = self._price_index(step, horizon_steps)
        for key in ("import_price_per_kwh", "export_price_per_kwh"):
            # A slice would be a view into the caller's actuals; fancy indexing already copies.
            values = np.asarray(actual[key])[idx]
            out[key] = values.copy() if isinstance(idx, slice) else values
        return out

    def known_price_steps(self, step: int) -> int:
        """How many steps from ``step`` on have published day-ahead prices at ``step``."""
        return int(self._known_end[step + self._pre] - self._pre - step)

    def _price_index(self, step: int, horizon_steps: int) -> np.ndarray | slice:
        pre = self._pre
        known_end = int(self._known_end[step + pre])  # ext position
        end = step + horizon_steps
        if known_end - pre >= end:
            return slice(step, end)
        day0 = int(self._day_start[known_end - 1])  # first step of the last published day
        targets = np.arange(max(known_end - pre, step), end) + pre
        src = day0 + np.searchsorted(self._tod_mono[day0:known_end], self._tod_min[targets])
        # Clamp to the published day; before the scenario's start fall back to its first step.
        src = np.clip(np.minimum(src, known_end - 1) - pre, 0, None)
        n_known = max(known_end - pre - step, 0)
        return np.concatenate([np.arange(step, step + n_known), src])
