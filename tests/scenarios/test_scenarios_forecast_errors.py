"""Issued forecasts with lead-time errors (scenarios.forecast_errors)."""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from scenarios.calendar import scenario_index
from scenarios.forecast_errors import SOLAR_CONSTANT_W_M2, ForecastErrorParams, LeadTimeErrorForecasts
from scenarios.synthetic import generate
from scenarios.synthetic_spec import SyntheticSpec
from twin.contracts import FORECAST_FIELDS
from twin.errors import ConfigError, ScenarioError
from twin.scenario import ForecastModel

TZ = "Europe/Prague"
H48 = 192  # 48 h of 15-minute steps
PAD = 4 * 96  # the caller pads the actuals past the scenario's end


def constant_actual(n: int) -> dict[str, np.ndarray]:
    """Actuals whose errors are easy to read: temperature 0, everything else 1, prices = step number."""
    values = {k: np.ones(n) for k in FORECAST_FIELDS}
    values["outdoor_temp_c"] = np.zeros(n)
    values["import_price_per_kwh"] = np.arange(n, dtype=float)
    values["export_price_per_kwh"] = -np.arange(n, dtype=float)
    for v in values.values():
        v.flags.writeable = False  # the twin hands out read-only arrays
    return values


@pytest.fixture(scope="module")
def sixty_days() -> tuple[pd.DatetimeIndex, dict[str, np.ndarray]]:
    index = scenario_index(dt.date(2024, 5, 1), 60, 15, TZ)
    return index, constant_actual(len(index) + PAD)


@pytest.fixture(scope="module")
def summer_week():
    scenario = generate(SyntheticSpec(name="fc-v1", start=dt.date(2024, 6, 3), days=7, seed=4))
    data = scenario.data
    actual = {k: np.concatenate([data[k].to_numpy(), data[k].to_numpy()[-PAD:]])
              for k in FORECAST_FIELDS if k in data}
    actual["pv_power_kw"] = actual["ghi_w_m2"] * 0.008  # a crude 8 kWp array: zero when GHI is zero
    return scenario, actual


def errors_by_lead(model: LeadTimeErrorForecasts, actual, steps) -> dict[str, np.ndarray]:
    temp = np.array([model.issue(actual, s, H48)["outdoor_temp_c"] for s in steps])
    ghi = np.array([model.issue(actual, s, H48)["ghi_w_m2"] for s in steps])
    load = np.array([model.issue(actual, s, H48)["base_load_kw"] for s in steps])
    return {"temp": temp, "ghi": ghi, "load": load}


# -- protocol and basic shape ----------------------------------------------------------

def test_implements_the_protocol(sixty_days):
    index, actual = sixty_days
    model = LeadTimeErrorForecasts(index, seed=1)
    assert isinstance(model, ForecastModel)
    assert isinstance(model.name, str) and model.name
    out = model.issue(actual, 10, H48)
    assert set(out) == set(FORECAST_FIELDS)
    for key, values in out.items():
        assert values.shape == (H48,), key
        assert np.isfinite(values).all(), key


def test_returns_new_arrays_and_keeps_state_clean(sixty_days):
    index, actual = sixty_days
    model = LeadTimeErrorForecasts(index, seed=1)
    first = model.issue(actual, 8, H48)
    for key, values in first.items():
        assert not np.shares_memory(values, actual[key]), key
    second = model.issue(actual, 8, H48)
    assert all(not np.shares_memory(first[k], second[k]) for k in FORECAST_FIELDS)
    snapshot = {k: v.copy() for k, v in first.items()}
    for values in first.values():
        values[:] = 1e9  # a caller scribbling on its forecast must not change the next one
    again = model.issue(actual, 8, H48)
    for key in FORECAST_FIELDS:
        assert_array_equal(again[key], snapshot[key])


def test_issue_at_the_last_step(summer_week):
    scenario, actual = summer_week
    out = scenario.forecasts.issue(actual, len(scenario.data) - 1, H48)
    assert all(len(v) == H48 and np.isfinite(v).all() for v in out.values())


# -- determinism -----------------------------------------------------------------------

def test_same_seed_same_forecasts_in_any_order(sixty_days):
    index, actual = sixty_days
    a, b = LeadTimeErrorForecasts(index, seed=7), LeadTimeErrorForecasts(index, seed=7)
    steps = [0, 5, 400, 3, 2000, 401, 5]
    first = [a.issue(actual, s, H48) for s in steps]
    second = [b.issue(actual, s, H48) for s in reversed(steps)][::-1]
    for x, y in zip(first, second, strict=True):
        for key in FORECAST_FIELDS:
            assert_array_equal(x[key], y[key])


def test_different_seed_different_forecasts(sixty_days):
    index, actual = sixty_days
    a = LeadTimeErrorForecasts(index, seed=7).issue(actual, 100, H48)
    b = LeadTimeErrorForecasts(index, seed=8).issue(actual, 100, H48)
    for key in ("outdoor_temp_c", "ghi_w_m2", "base_load_kw"):
        assert not np.allclose(a[key], b[key]), key
    assert_array_equal(a["import_price_per_kwh"], b["import_price_per_kwh"])  # prices carry no noise


def test_longer_horizon_extends_without_changing_the_start(sixty_days):
    index, actual = sixty_days
    model = LeadTimeErrorForecasts(index, seed=3)
    short = model.issue(actual, 50, 96)
    long = LeadTimeErrorForecasts(index, seed=3).issue(actual, 50, 4 * H48)
    for key in FORECAST_FIELDS:
        assert_array_equal(long[key][:96], short[key])


def test_hourly_refresh(sixty_days):
    index, actual = sixty_days
    model = LeadTimeErrorForecasts(index, seed=3)
    hour_start = 40  # 10:00 local (index starts at local midnight; Prague hours are whole UTC hours)
    assert index[hour_start].minute == 0
    base = model.issue(actual, hour_start, H48)
    for later in (1, 2, 3):  # same hour: the same forecast, seen from a later step
        out = model.issue(actual, hour_start + later, H48)
        for key in ("outdoor_temp_c", "ghi_w_m2", "base_load_kw"):
            assert_array_equal(out[key][:H48 - later], base[key][later:])
    nxt = model.issue(actual, hour_start + 4, H48)
    assert not np.allclose(nxt["outdoor_temp_c"][:H48 - 4], base["outdoor_temp_c"][4:])


# -- the error model -------------------------------------------------------------------

def test_errors_grow_with_lead(sixty_days):
    index, actual = sixty_days
    model = LeadTimeErrorForecasts(index, seed=11)
    hour_starts = range(0, len(index), 4)  # one independent draw per issue hour
    err = errors_by_lead(model, actual, hour_starts)
    rmse_temp = np.sqrt((err["temp"] ** 2).mean(axis=0))  # actual temperature is 0
    log_ghi = np.log(err["ghi"])  # actual GHI is 1: the forecast is the factor itself
    log_load = np.log(err["load"])
    early, late = slice(0, 12), slice(96, 192)  # 0-3 h and 24-48 h
    assert 0.2 < rmse_temp[0] < 0.4  # ≈ 0.3 K at lead 0
    assert 1.6 < rmse_temp[-1] < 2.4  # ≈ 2 K at 48 h
    assert rmse_temp[late].mean() > 2.5 * rmse_temp[early].mean()
    assert 0.1 < log_ghi[:, 0].std() < 0.2 and 0.4 < log_ghi[:, -1].std() < 0.6
    assert log_ghi[:, late].std() > 2 * log_ghi[:, early].std()
    assert 0.07 < log_load[:, 0].std() < 0.13 and 0.24 < log_load[:, -1].std() < 0.36
    assert log_load[:, late].std() > 2 * log_load[:, early].std()
    # Multiplicative factors are unbiased on average (exp(e) alone would be ~13 % high at 48 h).
    assert abs(err["ghi"][:, -1].mean() - 1.0) < 0.05
    assert abs(err["load"][:, -1].mean() - 1.0) < 0.03


def test_errors_are_correlated_along_the_lead(sixty_days):
    index, actual = sixty_days
    model = LeadTimeErrorForecasts(index, seed=12)
    temp = errors_by_lead(model, actual, range(0, len(index), 4))["temp"]
    neighbours = np.corrcoef(temp[:, 150], temp[:, 151])[0, 1]
    assert neighbours > 0.9  # a random walk along the lead, not white noise


def test_current_step_error_small_within_the_hour(sixty_days):
    index, actual = sixty_days
    model = LeadTimeErrorForecasts(index, seed=13)
    last_quarter = range(3, len(index), 4)  # step 0 is then 45 min into the issue hour
    temp = np.array([model.issue(actual, s, 4)["outdoor_temp_c"][0] for s in last_quarter])
    assert np.sqrt((temp ** 2).mean()) < 0.6


def test_solar_zero_at_night_and_shared_factor(summer_week):
    scenario, actual = summer_week
    model = scenario.forecasts
    for step in range(0, len(scenario.data), 13):
        out = model.issue(actual, step, H48)
        night = actual["ghi_w_m2"][step:step + H48] == 0
        assert night.any()
        for key in ("ghi_w_m2", "dni_w_m2", "dhi_w_m2", "pv_power_kw"):
            assert (out[key][night] == 0).all(), key
            assert (out[key] >= 0).all(), key
        assert (out["base_load_kw"] >= 0).all()
        day = ~night & (out["ghi_w_m2"] < SOLAR_CONSTANT_W_M2)
        factor = out["ghi_w_m2"][day] / actual["ghi_w_m2"][step:step + H48][day]
        pv_factor = out["pv_power_kw"][day] / actual["pv_power_kw"][step:step + H48][day]
        np.testing.assert_allclose(pv_factor, factor, rtol=1e-9)


def test_irradiance_never_beyond_the_solar_constant(sixty_days):
    index, _ = sixty_days
    actual = constant_actual(len(index) + PAD)
    for key in ("ghi_w_m2", "dni_w_m2", "dhi_w_m2"):
        actual[key] = np.full(len(index) + PAD, 1000.0)
    wild = LeadTimeErrorForecasts(index, 3, ForecastErrorParams(solar_std_lead0=1.0, solar_std_max=3.0))
    out = [wild.issue(actual, step, H48) for step in range(0, 2000, 97)]
    for key in ("ghi_w_m2", "dni_w_m2", "dhi_w_m2"):
        values = np.concatenate([o[key] for o in out])
        assert values.max() == SOLAR_CONSTANT_W_M2, key  # reached and capped
    pv_factor = np.concatenate([o["pv_power_kw"] for o in out])  # PV actual 1: the factor itself
    assert pv_factor.max() > SOLAR_CONSTANT_W_M2 / 1000.0, "PV is left to the controller's inverter limit"


# -- prices ----------------------------------------------------------------------------

def expected_price_sources(index_ext: pd.DatetimeIndex, step: int, horizon: int) -> np.ndarray:
    """Step whose actual price the forecast must show, derived with plain calendar arithmetic."""
    issued = index_ext[step]
    days_ahead = 1 if issued.hour < 13 else 2
    last_day = issued.date() + dt.timedelta(days=days_ahead - 1)
    published_end = pd.Timestamp(last_day + dt.timedelta(days=1)).tz_localize(TZ)
    n_known = index_ext.get_loc(published_end) - step
    sources = list(range(step, step + min(n_known, horizon)))
    for k in range(step + n_known, step + horizon):
        target = index_ext[k]
        wall = dt.datetime.combine(last_day, dt.time(target.hour, target.minute))
        # Same wall-clock time on the last published day; a missing time → the next existing one,
        # a repeated time → its first occurrence.
        source = pd.Timestamp(wall).tz_localize(TZ, ambiguous=True, nonexistent="shift_forward")
        sources.append(index_ext.get_loc(source))
    return np.array(sources)


@pytest.fixture(scope="module")
def dst_span():
    index = scenario_index(dt.date(2024, 3, 25), 220, 15, TZ)  # 25 March .. 31 October 2024
    index_ext = scenario_index(dt.date(2024, 3, 25), 225, 15, TZ)
    return index, index_ext, constant_actual(len(index_ext))


def dst_issue_steps(index: pd.DatetimeIndex) -> list[int]:
    steps = []
    for day in ("2024-03-29", "2024-03-30", "2024-03-31", "2024-10-25", "2024-10-26", "2024-10-27"):
        start = index.get_loc(pd.Timestamp(day).tz_localize(TZ))
        steps.extend(range(start, start + 100, 5))  # every 75 min, through 13:00 and the DST hours
    return steps


def test_prices_exact_until_publication_then_persistence(dst_span):
    index, index_ext, actual = dst_span
    model = LeadTimeErrorForecasts(index, seed=5)
    for step in dst_issue_steps(index):
        out = model.issue(actual, step, H48)
        expected = expected_price_sources(index_ext, step, H48)
        assert_array_equal(out["import_price_per_kwh"], expected, err_msg=f"issued {index[step]}")
        assert_array_equal(out["export_price_per_kwh"], -expected, err_msg=f"issued {index[step]}")


def test_publication_horizon_examples(dst_span):
    index, _, _ = dst_span
    model = LeadTimeErrorForecasts(index, seed=5)
    at = index.get_loc
    # 12:45 → to the end of today (11 h 15 min); 13:00 → to the end of tomorrow (35 h).
    assert model.known_price_steps(at(pd.Timestamp("2024-06-04 12:45", tz=TZ))) == 45
    assert model.known_price_steps(at(pd.Timestamp("2024-06-04 13:00", tz=TZ))) == 35 * 4
    # Published on Saturday 30 March for Sunday 31 March, a 23-hour day.
    assert model.known_price_steps(at(pd.Timestamp("2024-03-30 13:00", tz=TZ))) == (11 + 23) * 4
    # Published on Saturday 26 October for Sunday 27 October, a 25-hour day.
    assert model.known_price_steps(at(pd.Timestamp("2024-10-26 13:00", tz=TZ))) == (11 + 25) * 4


@settings(max_examples=60, deadline=None)
@given(step=st.integers(0, 220 * 96 - 1), horizon=st.integers(1, 400))
def test_prices_never_leak_unpublished_values(dst_span, step, horizon):
    index, _, actual = dst_span
    model = LeadTimeErrorForecasts(index, seed=2)
    out = model.issue(actual, step, horizon)
    known_end = step + model.known_price_steps(step)
    sources = out["import_price_per_kwh"].astype(int)  # the actual price is the step number
    assert len(sources) == horizon
    assert (sources < known_end).all()
    assert (sources >= 0).all()
    exact = min(horizon, known_end - step)
    assert_array_equal(sources[:exact], np.arange(step, step + exact))


# -- cost and validation ---------------------------------------------------------------

def test_issue_is_cheap(sixty_days):
    index, actual = sixty_days
    model = LeadTimeErrorForecasts(index, seed=1)
    steps = range(0, 4000, 2)  # a new issue hour every other call
    t0 = time.perf_counter()
    for s in steps:
        model.issue(actual, s, H48)
    per_issue_s = (time.perf_counter() - t0) / len(steps)
    assert per_issue_s < 0.5e-3, f"{per_issue_s * 1e6:.0f} µs per issue"


def test_bad_calls_are_errors(sixty_days):
    index, actual = sixty_days
    model = LeadTimeErrorForecasts(index, seed=1)
    with pytest.raises(ScenarioError, match=r"forecast step 5760 is outside the scenario's 0..5759"):
        model.issue(actual, len(index), 10)
    with pytest.raises(ScenarioError, match="horizon_steps must be >= 1"):
        model.issue(actual, 0, 0)
    short = dict(actual, base_load_kw=np.ones(50))
    with pytest.raises(ScenarioError, match=r"needs actual 'base_load_kw' up to step 60, got 50"):
        model.issue(short, 10, 50)
    with pytest.raises(ScenarioError, match="seed must be a non-negative integer"):
        LeadTimeErrorForecasts(index, seed=-1)
    with pytest.raises(ScenarioError, match="tz-aware DatetimeIndex"):
        LeadTimeErrorForecasts(index.tz_localize(None), seed=1)


def test_params_validation():
    with pytest.raises(ConfigError, match=r"temp_std_lead0_k = 3.0 must not exceed temp_std_max_k = 2.0"):
        ForecastErrorParams(temp_std_lead0_k=3.0)
    with pytest.raises(ConfigError, match=r"solar_std_lead0 = 0.9 must not exceed solar_std_max = 0.5"):
        ForecastErrorParams(solar_std_lead0=0.9)
    with pytest.raises(ConfigError,
                       match=r"growth_hours = 0.0 is outside the allowed range \[1.0, 240.0\] h"):
        ForecastErrorParams(growth_hours=0.0)


def test_zero_error_params_reproduce_the_actuals_within_the_price_horizon(summer_week):
    scenario, actual = summer_week
    exact = ForecastErrorParams(temp_std_lead0_k=0.0, temp_std_max_k=0.0, solar_std_lead0=0.0,
                                solar_std_max=0.0, load_std_lead0=0.0, load_std_max=0.0)
    model = LeadTimeErrorForecasts(scenario.index, seed=0, params=exact)
    out = model.issue(actual, 60, 40)  # 15:00 on day one: all 40 steps are published
    for key in FORECAST_FIELDS:
        np.testing.assert_allclose(out[key], actual[key][60:100], rtol=1e-12, err_msg=key)


def test_model_for_a_window_agrees_with_the_whole(sixty_days):
    index, actual = sixty_days
    whole = LeadTimeErrorForecasts(index, seed=21)
    offset = 1000 + 2  # a window starting mid-hour, mid-day
    part = whole.with_index(index[offset:offset + 2000])
    shifted = {k: v[offset:] for k, v in actual.items()}
    for step in (0, 1, 7, 150, 1500, 1999):
        a, b = whole.issue(actual, offset + step, H48), part.issue(shifted, step, H48)
        weather = [k for k in FORECAST_FIELDS if "price" not in k]
        # Prices match once the window holds the whole last published day (not so on its first day).
        keys = FORECAST_FIELDS if step >= 96 else weather
        for key in keys:
            assert_array_equal(b[key], a[key], err_msg=f"{key} at window step {step}")
