"""``MpcController``: re-plans on a rolling horizon and executes the plan in between.

At every decision it updates its state estimate; every ``replan_interval_s`` (or when it has no
plan) it solves for a new plan. It then carries out the block of the current plan that is in
force: relays through the :class:`~controllers.mpc.executor.RelayExecutor`, the battery and the
EV through :mod:`controllers.mpc.dispatch`. Every command says where it came from in
``plan_status`` (``twin.contracts.PlanStatus``):

- a fresh plan: ``optimal`` or ``feasible`` (incumbent at the time limit);
- the solve failed (solver missing, time limit without a solution, solver error, a forecast
  with missing values): the last valid plan while it lasts (its horizon, at most
  ``last_plan_max_age_s``) → ``last_plan``;
- no valid plan: the rule-based controller decides → ``fallback``.

The oracle is this controller with ``perfect_foresight = True``: the runner then shows it the
actual future instead of the issued forecasts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from controllers.mpc.dispatch import battery_command, ev_power_kw
from controllers.mpc.estimator import StateEstimator, make_estimator
from controllers.mpc.executor import RelayExecutor
from controllers.mpc.inputs import ForecastError, SolarGains, build_inputs, rounded_measurements
from controllers.mpc.plan import Plan
from controllers.mpc.settings import MpcSettings
from controllers.mpc.solve import Optimizer
from controllers.mpc.solvers import SolverUnavailable
from controllers.rule_based import RuleBasedController
from twin.config import HouseConfig
from twin.contracts import BatteryCommand, BatteryMode, Command, Observation, PlanStatus

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PlanLogRow:
    """One re-planning attempt, for the plan log."""

    time: pd.Timestamp
    ok: bool
    method: str
    wall_time_s: float
    message: str
    summary: dict[str, Any]


class MpcController:
    """Model-predictive control of heating, battery and EV (see the module docstring)."""

    def __init__(self, house: HouseConfig, settings: MpcSettings | None = None, *,
                 decision_interval_s: float = 300.0, perfect_foresight: bool = False,
                 estimator: StateEstimator | None = None) -> None:
        self.house = house
        self.settings = settings or MpcSettings()
        self.decision_interval_s = decision_interval_s
        self.perfect_foresight = perfect_foresight
        self.estimator = estimator if estimator is not None else make_estimator(
            self.settings.estimator, house, self.settings.observer_gain)
        self.optimizer = self._make_optimizer()
        # The models are built and handed to the solver here, once per house: the first re-plan
        # then costs what every other does.
        self.optimizer.prepare()
        rc = self.optimizer.rc
        pulse_s = RelayExecutor.pulse_s(house.safety.relay_min_on_s, decision_interval_s)
        pulse_rise = np.diag(rc.step(pulse_s).duty[: rc.n_rooms]) if rc.n_rooms else np.zeros(0)
        self.executor = RelayExecutor(house, self.settings.relay_hysteresis_slots, self.settings.comfort_guard_c,
                                      pulse_rise_c=pulse_rise)
        self.fallback = RuleBasedController(house)
        self._solar = SolarGains(house)
        self.reset()

    def _make_optimizer(self) -> Optimizer:
        """The solve (a subclass plans with another optimizer, e.g. the stochastic MPC's)."""
        return Optimizer(self.house, self.settings)

    def reset(self) -> None:
        self.plan: Plan | None = None  # the last valid plan
        self.plan_log: list[PlanLogRow] = []
        self._fresh = False  # whether the last solve succeeded
        self._last_solve_s: float | None = None
        self._gains_now_w = np.zeros(self.optimizer.rc.n_nodes)
        self._warned = False
        self.estimator.reset()
        self.executor.reset()

    # --- the Controller protocol -------------------------------------------------------------------

    def decide(self, obs: Observation) -> Command:
        obs = rounded_measurements(obs, self.settings.measurement_decimals)
        temps = self.estimator.update(obs, self.optimizer.rc, self._gains_now_w)
        now = obs.time.timestamp()
        if self._last_solve_s is None or now - self._last_solve_s >= self.settings.replan_interval_s - 1e-6:
            self._replan(obs, temps)
            self._last_solve_s = now
        plan = self.plan
        usable = plan is not None and plan.covers(obs.time) and plan.age_s(obs.time) <= max(
            self.settings.last_plan_max_age_s, self.settings.replan_interval_s)
        if plan is None or not usable:
            command = self.fallback.decide(obs)
            self.executor.decide(obs, np.zeros(len(self.house.rooms)), self.decision_interval_s)  # keep its clock
            return Command(until=command.until, relay_on=command.relay_on, battery=command.battery,
                           ev_power_kw=command.ev_power_kw, plan_status=PlanStatus.FALLBACK)
        status = plan.status if self._fresh else PlanStatus.LAST_PLAN
        return self._execute(plan, obs, status)

    # --- planning ----------------------------------------------------------------------------------

    def _replan(self, obs: Observation, temps: np.ndarray) -> None:
        fallback_kwh = None
        if self.plan is not None and self.plan.covers(obs.time):
            fallback_kwh = float(self.plan.battery_kwh[self.plan.block_at(obs.time)])
        try:
            inputs = build_inputs(obs, self.house, self.optimizer.grid, self.optimizer.rc, temps, self._solar,
                                  battery_kwh_fallback=fallback_kwh)
            self._gains_now_w = inputs.node_gains_w[0]
            plan, report = self.optimizer.solve(inputs)
        except (SolverUnavailable, ForecastError) as exc:
            if not self._warned:
                logger.warning("MPC cannot plan (%s); executing the last plan or the fallback", exc)
                self._warned = True
            plan, report = None, None
            message = str(exc)
        else:
            message = report.message if report is not None else ""
        self._fresh = plan is not None
        if plan is not None:
            self.plan = plan
        self.plan_log.append(PlanLogRow(
            time=pd.Timestamp(obs.time), ok=plan is not None, method=report.method if report else "",
            wall_time_s=report.wall_time_s if report else 0.0, message=message,
            summary=plan.summary() if plan is not None else {}))

    # --- execution ---------------------------------------------------------------------------------

    def _execute(self, plan: Plan, obs: Observation, status: PlanStatus) -> Command:
        k = plan.block_at(obs.time)
        heater_kw = self.executor.heater_kw
        relays = self.executor.decide(obs, plan.duty[k] * heater_kw, self.decision_interval_s,
                                      guard_lower_c=self._lower_soon(obs))
        battery = None
        if self.house.battery is not None:
            battery = battery_command(float(plan.battery_kw[k]), float(plan.grid_import_kw[k]),
                                      float(plan.grid_export_kw[k]), obs, self.house.battery)
        ev = None
        if self.house.ev_charger is not None:
            ev = ev_power_kw(float(plan.ev_kw[k]), obs, self.house.ev_charger)
        relays, battery, ev = self._within_import_limit(obs, relays, battery, ev)
        lease_s = min(self.settings.lease_s, self.house.safety.max_lease_s)
        return Command(until=obs.after(lease_s), relay_on=relays, battery=battery, ev_power_kw=ev,
                       plan_status=status)

    def _lower_soon(self, obs: Observation) -> np.ndarray:
        """The highest comfort lower bound of each room over the next ``guard_lookahead_s`` (a known schedule)."""
        forecast = obs.forecast
        ahead_s = obs.time.timestamp() - forecast.start.timestamp() + self.settings.guard_lookahead_s
        steps = min(forecast.horizon_steps, int(ahead_s // forecast.step_s) + 1)
        lower = forecast.comfort_lower_c[:steps]
        return np.max(lower, axis=0) if len(lower) else obs.comfort_lower_c

    def _within_import_limit(self, obs: Observation, relays: tuple[bool, ...], battery: BatteryCommand | None,
                             ev: float | None) -> tuple[tuple[bool, ...], BatteryCommand | None, float | None]:
        """Keep the import the commands cause, at the measured load and PV, under the connection limit.

        The plan respects the limit on average; whole relays, a battery setpoint and the car can still
        add up above it for an interval. Shed in order of least harm: battery charging (arbitrage),
        then the car (down to its minimum, then off), then heaters (see ``RelayExecutor.shed``).
        """
        limit = self.house.grid.import_limit_kw - self.settings.import_headroom_kw
        charge = 0.0
        if battery is not None and battery.mode in (BatteryMode.POWER_SETPOINT, BatteryMode.CHARGE_FROM_GRID):
            charge = max(0.0, battery.power_kw)
        heat = float(self.executor.heater_kw @ np.asarray(relays, dtype=float))
        excess = obs.base_load_kw - obs.pv_power_kw + heat + (ev or 0.0) + charge - limit
        if excess <= 0.0:
            return relays, battery, ev
        if charge > 0.0 and battery is not None:
            cut = min(charge, excess)
            battery = replace(battery, power_kw=battery.power_kw - cut)
            excess -= cut
        charger = self.house.ev_charger
        if excess > 0.0 and ev and charger is not None:
            lower = ev - excess
            new_ev = lower if lower >= charger.min_power_kw else 0.0
            excess -= ev - new_ev
            ev = new_ev
        if excess > 0.0:
            relays = self.executor.shed(obs, relays, excess)
        return relays, battery, ev

    def plan_frame(self) -> pd.DataFrame:
        """The plan log: one row per re-planning attempt (time, outcome, objective, relaxations)."""
        rows = []
        for row in self.plan_log:
            rows.append({"time": row.time, "ok": row.ok, "method": row.method, "wall_time_s": row.wall_time_s,
                         "message": row.message, **row.summary})
        frame = pd.DataFrame(rows)
        if not frame.empty:
            frame = frame.set_index("time")
        return frame

    def __repr__(self) -> str:
        foresight = ", perfect_foresight" if self.perfect_foresight else ""
        return f"MpcController(solver={self.settings.solver!r}{foresight})"
