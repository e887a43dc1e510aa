"""A recorded day as a scenario, and the baseline replayed on the twin from the day's starting state.

What was recorded in the run log is all the replay sees: outdoor temperature, the PV the house
actually had (measured PV plus what was curtailed, so irradiance is not needed), base load,
prices, the comfort schedule in force, EV stays, and the state at the start of the day (room
temperatures, battery SOC). Inputs are piecewise constant over each log interval, as in the twin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import simpy

from controllers.rule_based import RuleBasedController
from twin.config import ComfortMode, HouseConfig
from twin.contracts import Controller
from twin.house import SimHouse
from twin.kpis import compute_kpis
from twin.runlog import RunLogRecorder, room_names_of
from twin.runner import control_loop
from twin.safety import SafetyLayer
from twin.scenario import EvSession, PerfectForecasts, Scenario


def comfort_modes_from_log(log: pd.DataFrame, house: HouseConfig) -> np.ndarray:
    """The occupancy mode of each interval, read back from the comfort bands the log recorded."""
    room = house.rooms[0]
    lower = log[f"comfort_lower_c.{room.name}"].to_numpy(float)
    upper = log[f"comfort_upper_c.{room.name}"].to_numpy(float)
    bands = room.comfort.bands()
    distance = np.stack([np.abs(lower - b.lower_c) + np.abs(upper - b.upper_c) for b in bands], axis=1)
    modes: np.ndarray = np.argmin(distance, axis=1).astype(float)
    return modes


def ev_sessions_from_log(log: pd.DataFrame, capacity_kwh: float = 60.0, target_soc: float = 0.8
                         ) -> tuple[EvSession, ...]:
    """EV stays from the log's ``ev_connected`` / ``ev_soc`` (live runs, where no session list exists)."""
    connected = log["ev_connected"].to_numpy(bool)
    ends = log.index + pd.to_timedelta(log["duration_s"].to_numpy(float), unit="s")
    sessions = []
    k = 0
    while k < len(log):
        if not connected[k]:
            k += 1
            continue
        j = k
        while j + 1 < len(log) and connected[j + 1]:
            j += 1
        soc = float(log["ev_soc"].iloc[k])
        sessions.append(EvSession(log.index[k].to_pydatetime(), ends[j].to_pydatetime(), capacity_kwh,
                                  soc if math.isfinite(soc) else 0.5, target_soc))
        k = j + 1
    return tuple(sessions)


def day_scenario(log: pd.DataFrame, house: HouseConfig, ev_sessions: Sequence[EvSession] | None = None,
                 comfort_mode: pd.Series | None = None, ev_soc_at_start: float | None = None,
                 weather: pd.DataFrame | None = None, name: str = "recorded-day") -> Scenario:
    """The log's intervals (one day, say) as a scenario with measured PV, on the log's own time grid.

    A car already home at the start arrives then with ``ev_soc_at_start`` (what it had charged
    before the day began is not the day's). ``weather`` (the feed's or the scenario's irradiance
    columns, any grid) gives the rooms their solar gains; without it the replay has none.
    """
    hours = log["duration_s"].to_numpy(float) / 3600.0
    step = pd.Timedelta(seconds=float(np.median(log["duration_s"])))
    index = pd.date_range(log.index[0], periods=len(log), freq=step)
    if not (index == log.index).all():
        raise ValueError("the replay needs a log on a regular grid (no gaps within the day)")
    modes = (comfort_mode.reindex(log.index, method="ffill").to_numpy(float) if comfort_mode is not None
             else comfort_modes_from_log(log, house))
    data = pd.DataFrame({
        "outdoor_temp_c": log["outdoor_temp_c"].to_numpy(float),
        "pv_power_kw": (log["pv_kwh"] + log["pv_curtailed_kwh"]).to_numpy(float) / hours,
        "base_load_kw": log["base_load_kwh"].to_numpy(float) / hours,
        "import_price_per_kwh": log["import_price_per_kwh"].to_numpy(float),
        "export_price_per_kwh": log["export_price_per_kwh"].to_numpy(float),
        "comfort_mode": np.clip(np.nan_to_num(modes, nan=ComfortMode.DAY), 0, 2),
    }, index=index)
    if weather is not None:
        for column in ("ghi_w_m2", "dni_w_m2", "dhi_w_m2", "wind_speed_m_s"):
            if column in weather:
                data[column] = weather[column].reindex(index, method="ffill").to_numpy(float)
    data.index = pd.DatetimeIndex(index, freq=pd.tseries.frequencies.to_offset(step))
    end = index[-1] + step
    sessions = ev_sessions_from_log(log) if ev_sessions is None else tuple(ev_sessions)
    kept = []
    for s in sessions:
        if s.departure <= index[0] or s.arrival >= end:
            continue
        arrival_soc = s.arrival_soc
        if s.arrival < index[0] and ev_soc_at_start is not None and math.isfinite(ev_soc_at_start):
            arrival_soc = ev_soc_at_start
        kept.append(EvSession(max(s.arrival, index[0].to_pydatetime()), min(s.departure, end.to_pydatetime()),
                              s.capacity_kwh, arrival_soc, s.target_soc))
    return Scenario(name, data, PerfectForecasts(), tuple(kept))


def replay(house: HouseConfig, scenario: Scenario, start_temps_c: np.ndarray, start_battery_soc: float,
           controller: Controller | None = None, decision_interval_s: float = 300.0) -> pd.DataFrame:
    """Run ``controller`` (default: the rule-based baseline) on the twin from the given start state.

    Mass nodes (two-node rooms) start at their room's air temperature: the log records air only.
    Returns the replay's run log.
    """
    env = simpy.Environment()
    plant = SimHouse(house, scenario, env, horizon_s=max(3600.0, 4 * decision_interval_s))
    state = plant.snapshot()
    temps = np.array(plant.node_temps_c(), float)
    n_rooms = len(house.rooms)
    temps[:n_rooms] = start_temps_c
    for j in range(n_rooms):
        mass = plant.thermal.mass_node[j]
        if mass >= 0:
            temps[mass] = start_temps_c[j]
    state.modes = plant.modal.to_modes @ temps
    if house.battery is not None and math.isfinite(start_battery_soc):
        state.battery_soc = float(start_battery_soc)
    plant.restore(state)
    controller = controller if controller is not None else RuleBasedController(house)
    if hasattr(controller, "reset"):
        controller.reset()
    recorder = RunLogRecorder(house.room_names)
    env.process(control_loop(env, plant, controller, decision_interval_s, plant.duration_s, recorder,
                             SafetyLayer(house)))
    env.run()
    return recorder.to_frame()


def start_state(log: pd.DataFrame, day_start: pd.Timestamp, first_temps_c: np.ndarray | None = None,
                first_soc: float | None = None) -> tuple[np.ndarray, float, float]:
    """Room temperatures, battery and EV SOC at ``day_start``: the end state of the interval before it.

    For the log's first day the state before the first interval is not in the log: give it
    (``first_temps_c``, ``first_soc``), e.g. the scenario's initial state.
    """
    rooms = room_names_of(log)
    before = log[log.index < day_start]
    if before.empty:
        if first_temps_c is None:
            raise ValueError(f"the state at {day_start} precedes the log: pass first_temps_c / first_soc")
        soc = math.nan if first_soc is None else float(first_soc)
        return np.asarray(first_temps_c, float), soc, math.nan
    last = before.iloc[-1]
    return (np.array([float(last[f"temp_c.{r}"]) for r in rooms]), float(last["battery_soc"]),
            float(last["ev_soc"]))


def day_cost(log: pd.DataFrame, house: HouseConfig) -> float:
    """The cost KPI of a (day's) run log; NaN when it has none."""
    cost = compute_kpis(log, house)["cost"]
    return math.nan if cost is None else float(cost)
