"""Seeded synthetic scenarios: weather, household load, occupancy and EV commutes, real prices.

Everything random flows from one ``np.random.Generator`` (built from the spec's seed unless
one is passed in), split into independent child streams per component, so that changing
one component's model does not reshuffle the others. Each component is a pure function of
the index, its parameters and its generator; :func:`generate` composes them.

Models (defaults for Prague, 50.08 N 14.42 E; seasons flip south of the equator, while
``monthly_mean_temp_c`` and ``linke_turbidity`` are always January..December):

* **Sky.** Each local day is clear, mixed or overcast, drawn from a Markov chain whose
  transition matrix blends a winter and a summer matrix by season. The clear-sky index
  (GHI / clear-sky GHI) is the regime's daily level plus intra-day AR(1) noise, capped.
  Clear sky is pvlib's Ineichen model at interval midpoints with an explicit seasonal
  Linke turbidity (no lookup table); DNI/DHI come from the Erbs decomposition.
* **Outdoor temperature.** Seasonal curve through the monthly means (mean-preserving
  interpolation) + diurnal cosine peaking at ``temp_max_solar_hour`` whose amplitude grows
  with season and with clear skies + a cloud offset (clear days colder in winter, warmer in
  summer, zero on average) + multi-day AR(1) weather noise + small fast noise.
* **Base load.** Non-heating, non-EV household load: a weekday and a weekend hourly profile
  in local time, seasonal factor (more in winter), lognormal AR(1) noise, a standby floor.
* **Comfort schedule.** Night, away and day in local wall-clock time (follows DST).
* **EV.** A commuter car: weekday trips (departure ~07:15, return ~17:30), occasional
  weekend trips; consumption more in winter. The car is home at the scenario's start.
* **Prices.** The bundled OTE day-ahead prices (2024) + :class:`scenarios.prices.Tariff`.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pvlib
from scipy.signal import lfilter

from scenarios.calendar import (
    DAY_NS,
    HOUR_NS,
    YEAR_DAYS,
    Calendar,
    calendar_of,
    mid_month_nodes,
    scenario_index,
    seasonal_blend,
    seasonal_curve,
)
from scenarios.forecast_errors import LeadTimeErrorForecasts
from scenarios.prices import BUNDLED_OTE_SOURCE, Tariff, apply_tariff, bundled_ote_prices
from scenarios.synthetic_spec import (
    REGIMES,
    ClimateParams,
    ComfortScheduleParams,
    EvParams,
    LoadParams,
    SyntheticSpec,
)
from twin.config import ComfortMode, Location
from twin.errors import ScenarioError
from twin.scenario import EvSession, Scenario

#: Bumped whenever the generator's output for a given spec changes (see specs/README.md).
GENERATOR_VERSION = 1
GENERATOR = "scenarios.synthetic"

_STREAM_TAG = 0x5CE7A210


def ar1(rng: np.random.Generator, n: int, step_s: float, correlation_s: float) -> np.ndarray:
    """Stationary AR(1) noise with unit variance and correlation time ``correlation_s``."""
    phi = math.exp(-step_s / correlation_s)
    shocks = rng.standard_normal(n)
    shocks[1:] *= math.sqrt(1.0 - phi * phi)
    return lfilter([1.0], [1.0, -phi], shocks)


def _smooth(values: np.ndarray, step_s: float, time_constant_s: float) -> np.ndarray:
    """First-order low-pass, started at the first value (no ramp from zero)."""
    a = math.exp(-step_s / time_constant_s)
    out, _ = lfilter([1.0 - a], [1.0, -a], values, zi=[a * values[0]])
    return out


# ---------------------------------------------------------------------------------------
# Components (pure functions of index/clock, parameters and a generator)
# ---------------------------------------------------------------------------------------

def _transition_matrices(params: ClimateParams, season: np.ndarray) -> np.ndarray:
    winter = np.reshape(params.regime_transitions_winter, (3, 3))
    summer = np.reshape(params.regime_transitions_summer, (3, 3))
    return (1.0 - season)[:, None, None] * winter + season[:, None, None] * summer


def _stationary(matrices: np.ndarray) -> np.ndarray:
    """Stationary distribution of each 3×3 row-stochastic matrix, shape (n, 3)."""
    n = len(matrices)
    system = np.transpose(matrices, (0, 2, 1)) - np.eye(3)
    system[:, 2, :] = 1.0
    rhs = np.zeros((n, 3, 1))
    rhs[:, 2, 0] = 1.0
    return np.clip(np.linalg.solve(system, rhs)[:, :, 0], 0.0, 1.0)


def sky_regimes(day_season: np.ndarray, params: ClimateParams, rng: np.random.Generator) -> np.ndarray:
    """Daily weather regime (0 clear, 1 mixed, 2 overcast) from the seasonal Markov chain."""
    matrices = _transition_matrices(params, day_season)
    cumulative = np.cumsum(matrices, axis=2)
    uniform = rng.random(len(day_season))
    first = np.cumsum(_stationary(matrices[:1])[0])
    states = np.empty(len(day_season), dtype=np.int64)
    state = min(int(np.searchsorted(first, uniform[0], side="right")), 2)
    states[0] = state
    for d in range(1, len(day_season)):  # a few hundred days at most: a plain loop is fine
        state = min(int(np.searchsorted(cumulative[d, state], uniform[d], side="right")), 2)
        states[d] = state
    return states


def expected_clear_sky_index(season: np.ndarray, params: ClimateParams) -> np.ndarray:
    """Long-run mean daily clear-sky index at each season value (stationary regime mix)."""
    return _stationary(_transition_matrices(params, season)) @ np.asarray(params.regime_clear_sky_index)


def clear_sky_index(clock: Calendar, params: ClimateParams,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-step clear-sky index, per-step daily level, and the daily regimes."""
    n_days = int(clock.local_day[-1]) + 1
    first_step = np.searchsorted(clock.local_day, np.arange(n_days))
    day_season = clock.season[first_step]
    regimes = sky_regimes(day_season, params, rng)
    level = np.asarray(params.regime_clear_sky_index)[regimes] + np.asarray(params.regime_daily_std)[
        regimes] * rng.standard_normal(n_days)
    level = np.clip(level, 0.05, params.max_clear_sky_index)
    noise = ar1(rng, len(clock.utc_ns), clock.step_s, params.intraday_correlation_minutes * 60.0)
    daily_level = level[clock.local_day]
    index = daily_level + np.asarray(params.regime_intraday_std)[regimes][clock.local_day] * noise
    return np.clip(index, 0.03, params.max_clear_sky_index), daily_level, regimes


def irradiance(index: pd.DatetimeIndex, location: Location, linke_turbidity: np.ndarray,
               kc: np.ndarray, max_clear_sky_index: float) -> dict[str, np.ndarray]:
    """GHI/DNI/DHI [W/m²] = clear sky (Ineichen, at interval midpoints) × clear-sky index, Erbs split."""
    step = index[1] - index[0]
    mid = index + step / 2
    site = pvlib.location.Location(location.latitude_deg, location.longitude_deg, tz=location.timezone,
                                   altitude=location.altitude_m)
    solpos = site.get_solarposition(mid)
    clear = site.get_clearsky(mid, model="ineichen", solar_position=solpos, linke_turbidity=linke_turbidity)
    ghi_clear = clear["ghi"].to_numpy()
    dni_clear = clear["dni"].to_numpy()
    zenith = solpos["zenith"].to_numpy()
    ghi = np.where(ghi_clear > 0.0, kc * ghi_clear, 0.0)
    split = pvlib.irradiance.erbs(ghi, zenith, mid)
    cos_zenith = np.clip(np.cos(np.radians(zenith)), 0.0, None)
    # Erbs can overshoot the direct beam at low sun; cap it, then close GHI = DNI·cos z + DHI.
    dni = np.clip(np.minimum(np.asarray(split["dni"]), dni_clear * max_clear_sky_index), 0.0, None)
    dhi = np.clip(ghi - dni * cos_zenith, 0.0, None)
    return {"ghi_w_m2": ghi, "dni_w_m2": dni, "dhi_w_m2": dhi, "ghi_clear_w_m2": ghi_clear,
            "cos_zenith": cos_zenith}


def outdoor_temperature(clock: Calendar, daily_kc: np.ndarray, params: ClimateParams,
                        rng: np.random.Generator) -> np.ndarray:
    """Outdoor air temperature [°C] consistent with the sky (see the module docstring)."""
    season = clock.season
    mean = seasonal_curve(clock.year_fraction, params.monthly_mean_temp_c)
    expected_kc = expected_clear_sky_index(season, params)
    kc = _smooth(daily_kc, clock.step_s, 6 * 3600.0)  # the air responds to a change of weather in hours
    sunniness = np.maximum(kc / expected_kc, 0.3)  # ~1 on average: seasonal amplitude is kept
    amplitude = seasonal_blend(params.diurnal_amplitude_winter_k, params.diurnal_amplitude_summer_k, season)
    phase = 2 * np.pi * (clock.solar_hour - params.temp_max_solar_hour) / 24.0
    diurnal = amplitude * sunniness * np.cos(phase)
    # Clear skies: radiative cooling dominates in winter, sunshine in summer; zero on average.
    cloud = params.cloud_temp_effect_k * (2.0 * season - 1.0) * (kc - expected_kc)
    noise_k = seasonal_blend(params.weather_noise_winter_k, params.weather_noise_summer_k, season)
    slow = noise_k * ar1(rng, len(season), clock.step_s, params.weather_correlation_days * 86400.0)
    fast = params.fast_noise_k * ar1(rng, len(season), clock.step_s, 2 * 3600.0)
    return mean + diurnal + cloud + slow + fast


def wind_speed(clock: Calendar, daily_kc: np.ndarray, params: ClimateParams,
               rng: np.random.Generator) -> np.ndarray:
    """Wind speed [m/s]: seasonal mean, windier under clouds, lognormal AR(1) variability."""
    mean = seasonal_blend(params.wind_mean_winter_m_s, params.wind_mean_summer_m_s, clock.season)
    sigma = params.wind_variability
    noise = np.exp(sigma * ar1(rng, len(mean), clock.step_s, 6 * 3600.0) - 0.5 * sigma * sigma)
    return np.clip(mean * (1.3 - 0.5 * daily_kc) * noise, 0.0, 40.0)


def base_load(clock: Calendar, params: LoadParams, rng: np.random.Generator) -> np.ndarray:
    """Household base load [kW], never negative; expected annual energy ``annual_energy_kwh``."""
    weekday = np.asarray(params.weekday_profile, dtype=float)
    weekend = np.asarray(params.weekend_profile, dtype=float)
    scale = (5.0 * weekday.mean() + 2.0 * weekend.mean()) / 7.0
    centres = np.arange(24) + 0.5
    shape = np.where(clock.weekday >= 5, np.interp(clock.wall_hour, centres, weekend / scale, period=24.0),
                     np.interp(clock.wall_hour, centres, weekday / scale, period=24.0))
    seasonal = 1.0 + params.winter_extra_fraction * (1.0 - 2.0 * clock.season)
    sigma = params.noise_std
    noise = np.exp(sigma * ar1(rng, len(shape), clock.step_s, params.noise_correlation_minutes * 60.0)
                   - 0.5 * sigma * sigma)
    variable_kw = params.annual_energy_kwh / (YEAR_DAYS * 24.0) - params.standby_kw
    return params.standby_kw + variable_kw * shape * seasonal * noise


def comfort_schedule(clock: Calendar, params: ComfortScheduleParams) -> np.ndarray:
    """``ComfortMode`` per step from local wall-clock time (follows DST)."""
    hour, weekday = clock.wall_hour, clock.weekday
    weekend_day = weekday >= 5
    wake = np.where(weekend_day, params.weekend_wake_hour, params.weekday_wake_hour)
    late_night = (weekday == 4) | (weekday == 5)  # Friday and Saturday evenings
    night_start = np.where(late_night, params.weekend_night_hour, params.weekday_night_hour)
    mode = np.full(len(hour), ComfortMode.DAY, dtype=np.int64)
    mode[(hour < wake) | (hour >= night_start)] = ComfortMode.NIGHT
    if params.away_on_weekdays:
        away = ~weekend_day & (hour >= params.away_start_hour) & (hour < params.away_end_hour)
        mode[away] = ComfortMode.AWAY
    return mode


def _wall_times(dates: np.ndarray, hours: np.ndarray, timezone: str) -> pd.DatetimeIndex:
    """Tz-aware times at local wall-clock ``hours`` on local ``dates`` (to the minute)."""
    offsets = np.round(hours * HOUR_NS).astype(np.int64).astype("timedelta64[ns]")
    naive = pd.DatetimeIndex(dates.astype("datetime64[ns]") + offsets)
    naive = naive.round("min")
    return naive.tz_localize(timezone, ambiguous=np.ones(len(naive), dtype=bool), nonexistent="shift_forward")


def ev_sessions(index: pd.DatetimeIndex, clock: Calendar, params: EvParams,
                rng: np.random.Generator) -> tuple[EvSession, ...]:
    """Plug-in sessions of a commuter car; the car is home (plugged in) at the scenario's start.

    ``arrival_soc`` assumes the car left at ``max(previous arrival SOC, target_soc)`` (the
    scenario cannot know what a controller will charge; a shortfall shows up in the KPIs),
    minus the trip's energy, but not below ``min_arrival_soc``.
    """
    if not params.enabled:
        return ()
    timezone = str(index.tz)
    step = index[1] - index[0]
    start, end = index[0], index[-1] + step
    n_days = int(clock.local_day[-1]) + 1
    first_step = np.searchsorted(clock.local_day, np.arange(n_days))
    dates = (clock.wall_ns[first_step] // DAY_NS).astype("datetime64[D]")
    weekday = clock.weekday[first_step]
    season = clock.season[first_step]
    weekend = weekday >= 5

    weekend_start_h = (params.weekend_trip_start_hour
                       + params.weekend_trip_start_std_minutes / 60.0 * rng.standard_normal(n_days))
    weekday_start_h = (params.departure_hour
                       + params.departure_std_minutes / 60.0 * rng.standard_normal(n_days))
    depart_h = np.where(weekend, weekend_start_h, weekday_start_h)
    trip_h = np.clip(params.weekend_trip_hours * (1.0 + 0.4 * rng.standard_normal(n_days)), 0.5, 16.0)
    return_h = np.where(weekend, depart_h + trip_h,
                        params.return_hour + params.return_std_minutes / 60.0 * rng.standard_normal(n_days))
    depart_h = np.clip(depart_h, 0.5, 22.0)
    return_h = np.clip(np.maximum(return_h, depart_h + 0.5), None, 23.5)
    commute_kwh = (seasonal_blend(params.commute_energy_winter_kwh, params.commute_energy_summer_kwh, season)
                   + params.commute_energy_std_kwh * rng.standard_normal(n_days))
    commute_kwh = np.clip(commute_kwh, params.commute_energy_min_kwh, params.commute_energy_max_kwh)
    weekend_kwh = np.clip(params.weekend_trip_energy_kwh * (1.0 + 0.5 * rng.standard_normal(n_days)),
                          0.5, 0.9 * params.capacity_kwh)
    energy_kwh = np.where(weekend, weekend_kwh, commute_kwh)
    drives = ~weekend | (rng.random(n_days) < params.weekend_trip_probability)

    departures = _wall_times(dates, depart_h, timezone)
    returns = _wall_times(dates, return_h, timezone)
    sessions: list[EvSession] = []
    arrival, arrival_soc = start, params.initial_soc
    for d in np.flatnonzero(drives):
        leave, back = departures[d], returns[d]
        if leave >= end:
            break
        if leave > arrival:
            sessions.append(EvSession(arrival, leave, params.capacity_kwh, arrival_soc, params.target_soc))
        left_soc = max(arrival_soc, params.target_soc)
        arrival = back
        arrival_soc = float(max(params.min_arrival_soc, left_soc - energy_kwh[d] / params.capacity_kwh))
        if arrival >= end:
            return tuple(sessions)
    if end > arrival:  # the car is home at the end: clip the last stay to the scenario
        sessions.append(EvSession(arrival, end, params.capacity_kwh, arrival_soc, params.target_soc))
    return tuple(sessions)


def step_prices(index: pd.DatetimeIndex, tariff: Tariff) -> tuple[np.ndarray, np.ndarray, dict]:
    """Import/export prices [EUR/kWh] on ``index`` from the bundled hourly OTE data + tariff."""
    spot, meta = bundled_ote_prices()
    hour_ns = spot.index.as_unit("ns").asi8
    step_ns = index.as_unit("ns").asi8
    # Each step takes the price of the hour it starts in (hours are whole in UTC for Prague).
    position = (step_ns - hour_ns[0]) // HOUR_NS
    outside = (position < 0) | (position >= len(hour_ns))
    if outside.any():
        row = int(np.argmax(outside))
        raise ScenarioError(f"no day-ahead price for {index[row]}: the bundled OTE data cover "
                            f"[{meta['start']}, {meta['end']}) only")
    import_price, export_price = apply_tariff(spot.to_numpy()[position], tariff)
    return import_price, export_price, meta


# ---------------------------------------------------------------------------------------
# The scenario
# ---------------------------------------------------------------------------------------

def generate(spec: SyntheticSpec, rng: np.random.Generator | None = None) -> Scenario:
    """Build the scenario ``spec`` describes.

    Parameters
    ----------
    spec : SyntheticSpec
    rng : np.random.Generator, optional
        Source of all randomness; by default built from ``spec.seed``. The forecast errors
        always derive from ``spec.seed``.
    """
    if not isinstance(spec, SyntheticSpec):
        raise TypeError(f"spec must be a SyntheticSpec, got {type(spec).__name__}")
    own_rng = rng is None
    if rng is None:
        rng = np.random.default_rng([spec.seed, _STREAM_TAG])
    sky_rng, temp_rng, wind_rng, load_rng, ev_rng = rng.spawn(5)
    location = spec.location
    index = scenario_index(spec.start, spec.days, spec.step_minutes, location.timezone)
    clock = calendar_of(index, location)
    climate = spec.climate

    kc, daily_kc, regimes = clear_sky_index(clock, climate, sky_rng)
    turbidity = np.interp(clock.year_fraction, mid_month_nodes(), climate.linke_turbidity, period=1.0)
    sky = irradiance(index, location, turbidity, kc, climate.max_clear_sky_index)
    import_price, export_price, price_meta = step_prices(index, spec.tariff)
    data = pd.DataFrame(
        {
            "outdoor_temp_c": outdoor_temperature(clock, daily_kc, climate, temp_rng),
            "ghi_w_m2": sky["ghi_w_m2"],
            "dni_w_m2": sky["dni_w_m2"],
            "dhi_w_m2": sky["dhi_w_m2"],
            "base_load_kw": base_load(clock, spec.load, load_rng),
            "import_price_per_kwh": import_price,
            "export_price_per_kwh": export_price,
            "comfort_mode": comfort_schedule(clock, spec.comfort),
            "wind_speed_m_s": wind_speed(clock, daily_kc, climate, wind_rng),
        },
        index=index,
    )
    sessions = ev_sessions(index, clock, spec.ev, ev_rng)
    filled = [str(t) for t in price_meta["filled"] if index[0] <= t <= index[-1]]
    counts = np.bincount(regimes, minlength=3)
    metadata = {
        "generator": GENERATOR,
        "generator_version": str(GENERATOR_VERSION),
        "spec_name": spec.name,
        "spec_version": str(spec.version),
        "seed": str(spec.seed) if own_rng else "external generator",
        "forecast_seed": str(spec.seed),
        "spec": json.dumps(spec.to_dict(), sort_keys=True),
        "price_source": BUNDLED_OTE_SOURCE,
        "price_filled_hours": ", ".join(filled),
        "sky_regime_days": ", ".join(f"{name}={c}" for name, c in zip(REGIMES, counts, strict=True)),
    }
    provenance = (f"Synthetic weather, base load, occupancy and EV sessions from {GENERATOR} "
                  f"v{GENERATOR_VERSION} (seed {metadata['seed']}); prices: {BUNDLED_OTE_SOURCE}, "
                  f"plus tariff {dataclasses.asdict(spec.tariff)}. Forecasts: actuals with a synthetic "
                  f"lead-time error model (LeadTimeErrorForecasts), not real forecasts.")
    forecasts = LeadTimeErrorForecasts(index, spec.seed, spec.forecast_errors)
    return Scenario(name=spec.name, data=data, forecasts=forecasts, ev_sessions=sessions,
                    description=spec.description, provenance=provenance, metadata=metadata)
