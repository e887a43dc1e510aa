"""The runner-loop observer that turns each decision into InfluxDB points (see docs/outputs.md).

Measurements (all prefixed with ``measurement_prefix``, default ``pems_``):

==================  ============================  ======================================================
measurement         tags                          fields
==================  ============================  ======================================================
reading             source                        outdoor_temp_c, pv_power_kw, base_load_kw, grid_power_kw,
                                                  battery_soc, battery_power_kw, ev_connected, ev_soc,
                                                  import_price_per_kwh, export_price_per_kwh
room                source, room                  temp_c, comfort_lower_c, comfort_upper_c, relay_on
command             source                        battery_mode, battery_power_kw, ev_power_kw, plan_status,
                                                  decide_time_s, relays_on
command_room        source, room                  relay_on
energy              source                        import_kwh, export_kwh, cost, pv_kwh, heating_kwh, ev_kwh,
                                                  battery_charge_kwh, battery_discharge_kwh, battery_soc
plan                source, issued                heating_kw, battery_kw, battery_kwh, ev_kw, grid_import_kw,
                                                  grid_export_kw  (``issued=latest``: the newest plan)
plan_room           source, issued, room          duty, heating_kw
solve               source                        status, method, solve_time_s, objective, energy_cost
forecast            source, lead_h                <quantity>_p50 / _p10 / _p90
kpi_day             source, complete              cost, import_kwh, export_kwh, pv_kwh, self_consumption,
                                                  heating_kwh, ev_kwh, decisions_without_plan
savings_day         source                        actual_cost, counterfactual_cost, savings, savings_low,
                                                  savings_high
event               source, kind                  message, level, old, new, user, device
==================  ============================  ======================================================

``source`` tells a simulated run from a live one (``sim:<scenario>`` / ``live``) so both can sit
in one dashboard. Times are the observation's (the house clock).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from hardware.outputs.forecast_bands import ResidualBands, lead_bucket_h
from hardware.outputs.influx import InfluxWriter
from hardware.outputs.line_protocol import Point, point, time_ns
from twin.contracts import WITHOUT_PLAN, Command, Observation
from twin.house import IntervalRecord
from twin.runner import PlanInfo

FORECAST_QUANTITIES = ("outdoor_temp_c", "pv_power_kw", "base_load_kw", "import_price_per_kwh")
READING_FIELDS = ("outdoor_temp_c", "pv_power_kw", "base_load_kw", "grid_power_kw", "battery_soc",
                  "battery_power_kw", "ev_soc", "import_price_per_kwh", "export_price_per_kwh")
ENERGY_FIELDS = ("import_kwh", "export_kwh", "cost", "pv_kwh", "heating_kwh", "ev_kwh", "battery_charge_kwh",
                 "battery_discharge_kwh")


class _Day:
    """Running sums for one local day."""

    def __init__(self, start: pd.Timestamp) -> None:
        self.start = start
        self.sums = dict.fromkeys(("cost", "import_kwh", "export_kwh", "pv_kwh", "heating_kwh", "ev_kwh"), 0.0)
        self.without_plan = 0

    def point(self, measurement: str, tags: dict[str, str], complete: bool) -> Point:
        pv = self.sums["pv_kwh"]
        fields: dict[str, Any] = dict(self.sums)
        fields["self_consumption"] = (pv - min(self.sums["export_kwh"], pv)) / pv if pv > 1e-9 else math.nan
        fields["decisions_without_plan"] = self.without_plan
        return point(measurement, self.start, fields, {**tags, "complete": str(complete).lower()})


def current_plan(controller: Any) -> Any:
    """The controller's last plan, or None (a guarded controller, as in live, holds the planner as ``primary``)."""
    return getattr(controller, "plan", None) or getattr(getattr(controller, "primary", None), "plan", None)


class InfluxObserver:
    """A runner-loop observer (``twin.runner.DecisionObserver``) writing to InfluxDB; events for the live layer.

    ``controller`` is the run's controller, whose current plan (if it plans) is written whenever
    it was re-planned.
    """

    def __init__(self, writer: InfluxWriter, room_names: Sequence[str], source: str = "live",
                 prefix: str | None = None, heater_kw: Sequence[float] | None = None,
                 controller: Any = None) -> None:
        self.writer = writer
        self.controller = controller
        self.rooms = tuple(room_names)
        self.prefix = writer.config.measurement_prefix if prefix is None else prefix
        self.tags = {"source": source}
        self.heater_kw = np.asarray(heater_kw, float) if heater_kw is not None else None
        self.bands = ResidualBands()
        self._last_forecast_start: datetime | None = None
        self._last_plan_start: datetime | None = None
        self._day: _Day | None = None

    def _m(self, name: str) -> str:
        return self.prefix + name

    # --- the hook ----------------------------------------------------------------------------------

    def on_decision(self, time: datetime, obs: Observation, command: Command, info: PlanInfo) -> None:
        """Readings, the command, a newly issued forecast and a new plan (the writer's thread sends them)."""
        points: list[Point] = []
        points += self._readings(obs)
        points += self._command(obs, command, info.decide_s)
        points += self._forecast(obs)
        plan = current_plan(self.controller)
        if plan is not None and getattr(plan, "start", None) != self._last_plan_start:
            self._last_plan_start = plan.start
            points += self._plan(plan)
        self.writer.submit(points)

    def on_interval(self, time: datetime, obs: Observation, command: Command, interval: IntervalRecord) -> None:
        """What the interval after the decision metered, and the day's KPIs when a day is complete."""
        self.writer.submit(self._energy(obs, command, interval))

    def on_end(self, status: str) -> None:
        """The day in progress as an incomplete ``kpi_day`` (the writer's ``close()`` sends what is left)."""
        if self._day is not None:
            self.writer.submit([self._day.point(self._m("kpi_day"), self.tags, complete=False)])

    # --- events from the live layer -----------------------------------------------------------------

    def event(self, when: datetime, kind: str, message: str, **fields: str) -> None:
        """An alert (``kind="alert"``), a mode change (``"mode"``) or a manual override (``"override"``)."""
        self.writer.submit([point(self._m("event"), when, {"message": message, **fields},
                                  {**self.tags, "kind": kind})])

    def savings(self, day_start: datetime, actual_cost: float, counterfactual_cost: float,
                low: float, high: float) -> None:
        self.writer.submit([point(self._m("savings_day"), day_start, {
            "actual_cost": actual_cost, "counterfactual_cost": counterfactual_cost,
            "savings": counterfactual_cost - actual_cost, "savings_low": low, "savings_high": high}, self.tags)])

    # --- builders ----------------------------------------------------------------------------------

    def _readings(self, obs: Observation) -> list[Point]:
        fields: dict[str, Any] = {name: float(getattr(obs, name)) for name in READING_FIELDS}
        fields["ev_connected"] = bool(obs.ev_connected)
        if obs.stale:
            fields["stale"] = ",".join(sorted(obs.stale))
        now_ns = time_ns(obs.time)
        for quantity in FORECAST_QUANTITIES:
            self.bands.observe(quantity, now_ns, float(getattr(obs, quantity)))
        out = [Point(self._m("reading"), now_ns, fields, self.tags)]
        for j, room in enumerate(self.rooms):
            out.append(Point(self._m("room"), now_ns, {
                "temp_c": float(obs.room_temp_c[j]), "comfort_lower_c": float(obs.comfort_lower_c[j]),
                "comfort_upper_c": float(obs.comfort_upper_c[j]), "relay_on": bool(obs.relay_on[j])},
                {**self.tags, "room": room}))
        return out

    def _command(self, obs: Observation, command: Command, decide_s: float) -> list[Point]:
        now_ns = time_ns(obs.time)
        fields: dict[str, Any] = {"decide_time_s": float(decide_s), "plan_status": str(command.plan_status)}
        if command.battery is not None:
            fields["battery_mode"] = command.battery.mode.value
            fields["battery_power_kw"] = float(command.battery.power_kw)
        if command.ev_power_kw is not None:
            fields["ev_power_kw"] = float(command.ev_power_kw)
        out = []
        if command.relay_on is not None:
            fields["relays_on"] = int(sum(command.relay_on))
            out = [Point(self._m("command_room"), now_ns, {"relay_on": bool(on)}, {**self.tags, "room": room})
                   for room, on in zip(self.rooms, command.relay_on, strict=False)]
        return [Point(self._m("command"), now_ns, fields, self.tags), *out]

    def _energy(self, obs: Observation, command: Command | None, interval: Any) -> list[Point]:
        meter = interval.meter
        fields: dict[str, Any] = {name: float(getattr(meter, name)) for name in ENERGY_FIELDS}
        fields["battery_soc"] = float(interval.battery_soc)
        out = [point(self._m("energy"), obs.time, fields, self.tags)]
        day_start = pd.Timestamp(obs.time).normalize()
        if self._day is not None and self._day.start != day_start:
            out.append(self._day.point(self._m("kpi_day"), self.tags, complete=True))
            self._day = None
        if self._day is None:
            self._day = _Day(day_start)
        for name in self._day.sums:
            self._day.sums[name] += fields[name]
        if command is not None and command.plan_status in WITHOUT_PLAN:
            self._day.without_plan += 1
        return out

    def _forecast(self, obs: Observation) -> Iterable[Point]:
        forecast = obs.forecast
        if forecast.start == self._last_forecast_start:
            return []
        self._last_forecast_start = forecast.start
        issued_s = obs.time.timestamp()
        start_ns = time_ns(forecast.start)
        step_ns = int(round(forecast.step_s * 1e9))
        series = {q: np.asarray(getattr(forecast, q), float) for q in FORECAST_QUANTITIES}
        quantiles = getattr(forecast, "quantiles", None)  # optional: {quantity: (p10, p90)} arrays
        self.bands.forget_before(time_ns(obs.time))
        offsets: dict[tuple[str, int], tuple[float, float] | None] = {}  # once per (quantity, lead) per issue
        out = []
        for k in range(forecast.horizon_steps):
            target_ns = start_ns + k * step_ns
            lead_s = target_ns / 1e9 - issued_s
            if lead_s < 0:
                continue  # the step in progress: its start is in the past
            bucket = lead_bucket_h(lead_s)
            fields: dict[str, float] = {}
            for quantity, values in series.items():
                value = float(values[k])
                fields[f"{quantity}_p50"] = value
                band = None
                if quantiles is not None and quantity in quantiles:
                    band = (float(quantiles[quantity][0][k]), float(quantiles[quantity][1][k]))
                else:
                    key = (quantity, bucket)
                    if key not in offsets:
                        offsets[key] = self.bands.offsets(quantity, bucket)
                    offset = offsets[key]
                    band = None if offset is None else (value + offset[0], value + offset[1])
                    self.bands.remember(quantity, target_ns, bucket, value)
                if band is not None:
                    fields[f"{quantity}_p10"], fields[f"{quantity}_p90"] = band
            out.append(Point(self._m("forecast"), target_ns, fields, {**self.tags, "lead_h": str(bucket)}))
        return out

    def _plan(self, plan: Any) -> list[Point]:
        """The whole horizon, tagged with the plan's issue time (each re-plan is a new series)."""
        issued = pd.Timestamp(plan.start).isoformat()
        out = [point(self._m("solve"), plan.start, {
            "status": str(plan.status), "method": str(plan.method), "solve_time_s": float(plan.solve_time_s),
            "objective": float(plan.objective), "energy_cost": float(plan.energy_cost)}, self.tags)]
        # once under its issue time (history of plans) and once as "latest" (the plan in force, overwritten)
        for label in (issued, "latest"):
            out += self._plan_series(plan, {**self.tags, "issued": label})
        return out

    def _plan_series(self, plan: Any, tags: dict[str, str]) -> list[Point]:
        start_ns = time_ns(plan.start)
        edges = np.asarray(plan.grid.edges_s, float)
        heater = self.heater_kw if self.heater_kw is not None else np.ones(plan.duty.shape[1])
        out = []
        for k in range(len(edges) - 1):
            t_ns = start_ns + int(round(edges[k] * 1e9))
            heating = plan.duty[k] * heater
            out.append(Point(self._m("plan"), t_ns, {
                "heating_kw": float(heating.sum()), "battery_kw": float(plan.battery_kw[k]),
                "battery_kwh": float(plan.battery_kwh[k]), "ev_kw": float(plan.ev_kw[k]),
                "grid_import_kw": float(plan.grid_import_kw[k]), "grid_export_kw": float(plan.grid_export_kw[k])},
                tags))
            for j, room in enumerate(self.rooms[: plan.duty.shape[1]]):
                out.append(Point(self._m("plan_room"), t_ns, {"duty": float(plan.duty[k, j]),
                                                              "heating_kw": float(heating[j])},
                                 {**tags, "room": room}))
        return out
