"""Daily savings = cost of the baseline replayed on the recorded day − the cost the house actually had.

For each complete local day of a run log, :func:`replay` runs the rule-based baseline on the
twin of ``model_house`` (the exact house in simulation, the identified one — ``pems identify`` —
for a real house) with the day's recorded inputs and starting state.

The uncertainty band comes from the model's own error on that day: the model is run open loop
through the day on the recorded heat and weather, and its room temperatures compared with the
recorded ones (RMSE, K). A room whose temperature the model gets wrong by δ K needs about UA·δ more or less
heat to hold its band, so the band is ± Σ_rooms UA [kW/K] · δ [K] · 24 h · mean import price —
a first-order bound, zero for a perfect model, wider the worse the model tracks the house.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from controllers.savings.replay import day_cost, day_scenario, replay, start_state
from twin.config import HouseConfig
from twin.runlog import room_names_of
from twin.scenario import EvSession, Scenario


@dataclass(frozen=True, slots=True)
class DaySavings:
    """One complete day: costs in the house's currency, temperatures in K."""

    day: pd.Timestamp
    actual_cost: float
    counterfactual_cost: float
    model_rmse_c: float
    band: float  # ± around savings

    @property
    def savings(self) -> float:
        return self.counterfactual_cost - self.actual_cost

    @property
    def savings_low(self) -> float:
        return self.savings - self.band

    @property
    def savings_high(self) -> float:
        return self.savings + self.band


class SavingsSink(Protocol):
    """Where savings go (the InfluxDB observer, Home Assistant)."""

    def savings(self, day_start: Any, actual_cost: float, counterfactual_cost: float, low: float,
                high: float) -> None: ...


def complete_days(log: pd.DataFrame) -> list[pd.Timestamp]:
    """Local days the log covers from midnight to midnight without gaps."""
    days: list[pd.Timestamp] = []
    index = pd.DatetimeIndex(log.index)
    for key, part in log.groupby(index.normalize()):
        day = pd.Timestamp(key)  # groupby keys of a DatetimeIndex are Timestamps
        covered = float(part["duration_s"].sum())
        expected = ((day + pd.Timedelta(days=1)).normalize() - day).total_seconds()  # 23/25 h on DST days
        if part.index[0] == day and abs(covered - expected) < 1.0:
            days.append(day)
    return days


def model_band(model_house: HouseConfig, day_log: pd.DataFrame, temps0: np.ndarray,
               weather: pd.DataFrame | None) -> tuple[float, float]:
    """``(temperature RMSE [K], ± cost band)`` of the house model over one recorded day.

    The model runs open loop through the day on the recorded heat (each room's metered heating
    energy as its mean power per interval), the recorded outdoor temperature and irradiance,
    against the recorded room temperatures.
    """
    from controllers.estimation.identify import (
        HEATER_PREFIX,
        ROOM_PREFIX,
        IdentifySettings,
        simulate_rc,
        thermal_data,
    )

    rooms = room_names_of(day_log)
    hours = day_log["duration_s"].to_numpy(float) / 3600.0
    ends = np.column_stack([day_log[f"temp_c.{r}"].to_numpy(float) for r in rooms])
    starts = np.vstack([np.asarray(temps0, float)[None, :], ends[:-1]])  # temperature at each interval's start
    history = pd.DataFrame({"outdoor_temp_c": day_log["outdoor_temp_c"].to_numpy(float)}, index=day_log.index)
    for column in ("ghi_w_m2", "dni_w_m2", "dhi_w_m2"):
        history[column] = (weather[column].reindex(day_log.index, method="ffill").to_numpy(float)
                           if weather is not None and column in weather else 0.0)
    for j, room in enumerate(rooms):
        history[ROOM_PREFIX + room] = starts[:, j]
        history[HEATER_PREFIX + room] = day_log[f"heating_kwh.{room}"].to_numpy(float) / hours
    azimuths = {r.name: r.window_azimuth_deg for r in model_house.rooms}
    data = thermal_data(history, model_house.location, IdentifySettings(window_azimuth_deg=azimuths))
    by_name = {r.name: r for r in model_house.rooms}
    model_rooms = [by_name[r] for r in rooms]
    predicted = simulate_rc(model_rooms, list(model_house.couplings), data,
                            np.concatenate([starts[0], [starts[0][j] for j, r in enumerate(model_rooms)
                                                        if r.mass_capacitance_j_per_k]]))
    errors = predicted[:, : len(rooms)] - starts
    rmse = float(np.sqrt(np.mean(errors ** 2))) if errors.size else 0.0
    ua_kw_per_k = sum(r.outdoor_conductance_w_per_k + r.mass_outdoor_conductance_w_per_k
                      for r in model_house.rooms) / 1000.0
    price = float(day_log["import_price_per_kwh"].mean())
    return rmse, ua_kw_per_k * rmse * float(hours.sum()) * price


def counterfactual_days(log: pd.DataFrame, actual_house: HouseConfig, model_house: HouseConfig, *,
                        first_temps_c: np.ndarray | None = None, first_soc: float | None = None,
                        ev_sessions: Sequence[EvSession] | None = None, comfort_mode: pd.Series | None = None,
                        weather: pd.DataFrame | None = None, decision_interval_s: float | None = None
                        ) -> list[DaySavings]:
    """Savings for every complete day of ``log`` (see the module's docstring)."""
    interval = decision_interval_s or float(np.median(log["duration_s"]))
    out = []
    for day in complete_days(log):
        if first_temps_c is None and not (log.index < day).any():
            continue  # the state the day started from is not in the log (a run's first day, no initial state)
        part = log[(log.index >= day) & (log.index < (day + pd.Timedelta(days=1)).normalize())]
        temps0, soc0, ev_soc0 = start_state(log, day, first_temps_c, first_soc)
        scenario = day_scenario(part, actual_house, ev_sessions, comfort_mode, ev_soc0, weather,
                                name=f"recorded-{day.date()}")
        baseline = replay(model_house, scenario, temps0, soc0, decision_interval_s=interval)
        rmse, band = model_band(model_house, part, temps0, weather)
        out.append(DaySavings(day, day_cost(part, actual_house), day_cost(baseline, model_house), rmse, band))
    return out


def scenario_start_state(house: HouseConfig, scenario: Scenario) -> tuple[np.ndarray, float]:
    """The state a simulated run starts from (what its log cannot tell for the first day)."""
    from twin.house import SimHouse

    obs = SimHouse(house, scenario).observe()
    return np.asarray(obs.room_temp_c, float), float(obs.battery_soc)


def write_savings(sink: SavingsSink, house: HouseConfig, scenario: Scenario, log: pd.DataFrame,
                  model_house: HouseConfig | None = None) -> list[DaySavings]:
    """Counterfactual savings of a simulated run (exact house unless ``model_house``) into ``sink``."""
    temps0, soc0 = scenario_start_state(house, scenario)
    days = counterfactual_days(log, house, model_house or house, first_temps_c=temps0, first_soc=soc0,
                               ev_sessions=scenario.ev_sessions,
                               comfort_mode=scenario.data["comfort_mode"], weather=scenario.data)
    for d in days:
        if math.isfinite(d.savings):
            sink.savings(d.day.to_pydatetime(), d.actual_cost, d.counterfactual_cost, d.savings_low, d.savings_high)
    return days
