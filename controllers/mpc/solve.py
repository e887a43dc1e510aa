"""From inputs to a plan: the solve strategy, within one time limit.

``strategy = "milp"`` hands the whole MILP to the solver. ``"lp-first"`` (default) gets the same
answer faster on a rolling horizon, with the same guarantee:

1. Solve the LP relaxation. With HiGHS it is persistent, so each re-plan starts from the
   previous plan's basis (a few hundred simplex iterations instead of thousands). Its optimum
   is a lower bound on the MILP's.
2. If the relaxation is already integer-feasible — no block charges and discharges the battery
   at once, the car's power is 0 or within the charger's range — it *is* the MILP optimum.
3. Otherwise fix the heating at the relaxation's duty cycles and solve the small *dispatch*
   MILP (grid, battery, EV with their binaries). Relaxation heating + dispatch is a feasible
   MILP solution; if it is within the MIP gap of the lower bound it is accepted as solved to
   that gap.
4. Otherwise solve the full MILP, warm-started from that solution, in the time left; whichever
   of the two is better is the plan (status ``feasible`` when the gap is not proven).

If nothing yields a solution the plan is ``None`` and the controller falls back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import pyomo.environ as pyo

from controllers.mpc.blocking import BlockGrid
from controllers.mpc.inputs import PlanInputs
from controllers.mpc.model import MpcModel
from controllers.mpc.plan import Plan, relaxations
from controllers.mpc.rc_model import RcModel
from controllers.mpc.settings import MpcSettings
from controllers.mpc.solvers import SOLVED, Backend, SolveOutcome, SolverUnavailable, make_backend
from twin.config import HouseConfig
from twin.contracts import PlanStatus

_INTEGRALITY_TOL = 1e-6
#: The dispatch MILP (grid, battery, car) is solved to these gaps.
DISPATCH_GAP = 1e-4
DISPATCH_ABS_GAP = 1e-3


@dataclass(frozen=True, slots=True)
class SolveReport:
    """How a solve went, plan or not (for the plan log and for failures)."""

    ok: bool
    method: str
    wall_time_s: float
    message: str


class Optimizer:
    """Builds the models once (lazily, per kind) and turns :class:`PlanInputs` into :class:`Plan`."""

    def __init__(self, house: HouseConfig, settings: MpcSettings, *, batch_params: bool = True) -> None:
        self.house = house
        self.batch_params = batch_params
        self.settings = settings
        self.grid = BlockGrid.from_segments(settings.blocks)
        self.rc = RcModel(house)
        self._models: dict[str, MpcModel] = {}
        self._backends: dict[str, Backend] = {}

    def model(self, kind: str) -> MpcModel:
        """``"lp"`` (relaxation), ``"dispatch"`` (heating fixed) or ``"milp"``, built on first use."""
        if kind not in self._models:
            self._models[kind] = MpcModel(self.house, self.grid, self.rc, self.settings,
                                          relaxed=kind == "lp", fixed_heating=kind == "dispatch")
        return self._models[kind]

    def backend(self, kind: str) -> Backend:
        """A solver back-end bound to the model of ``kind`` (raises ``SolverUnavailable``)."""
        if kind not in self._backends:
            self._backends[kind] = make_backend(self.settings.solver, self.settings.threads, self.batch_params)
        return self._backends[kind]

    @property
    def kinds(self) -> tuple[str, ...]:
        """The models the strategy may use."""
        return ("milp",) if self.settings.strategy == "milp" else ("lp", "dispatch", "milp")

    def prepare(self) -> None:
        """Build every model the strategy may use and hand it to its solver.

        Called at the controller's construction, once per house, so that the first re-plan only
        solves. A solver that is not installed is left for the first solve to report.
        """
        for kind in self.kinds:
            model = self.model(kind)
            try:
                self.backend(kind).prepare(model.m)
            except SolverUnavailable:
                return

    def solve(self, inputs: PlanInputs) -> tuple[Plan | None, SolveReport]:
        t0 = time.perf_counter()
        if self.settings.strategy == "milp":
            plan, method, message = self._solve_milp(inputs, t0, warm=None)
        else:
            plan, method, message = self._solve_lp_first(inputs, t0)
        wall = time.perf_counter() - t0
        if plan is not None:
            plan = _with_time(plan, wall)
        return plan, SolveReport(plan is not None, method, wall, message)

    # --- strategies --------------------------------------------------------------------------------

    def _remaining(self, t0: float) -> float:
        return self.settings.time_limit_s - (time.perf_counter() - t0)

    def _run(self, kind: str, t0: float, warm: bool = False) -> SolveOutcome:
        s = self.settings
        gap, abs_gap = s.mip_gap, s.mip_abs_gap
        if kind == "dispatch":  # small and quick: solve it tightly, so the gap is left to the heating
            gap, abs_gap = min(gap, DISPATCH_GAP), min(abs_gap, DISPATCH_ABS_GAP)
        return self.backend(kind).solve(self.model(kind).m, time_limit_s=max(self._remaining(t0), 0.01),
                                        mip_gap=gap, abs_gap=abs_gap, warm_start=warm)

    def _solve_lp_first(self, inputs: PlanInputs, t0: float) -> tuple[Plan | None, str, str]:
        lp = self.model("lp")
        lp.update(inputs)
        relaxed = self._run("lp", t0)
        if not relaxed.has_solution or relaxed.status != SOLVED:
            return self._solve_milp(inputs, t0, warm=None)
        lower_bound = relaxed.value
        if _integral(lp):
            return self._plan(inputs, lp, lp, relaxed.value, lower_bound, PlanStatus.OPTIMAL, "lp"), "lp", \
                relaxed.message
        heating = (_values(lp.m.duty, (self.grid.n_blocks, self.rc.n_rooms)) @ self.rc.heater_kw
                   if lp.has_rooms else np.zeros(self.grid.n_blocks))
        dispatch = self.model("dispatch")
        dispatch.update(inputs, heating_kw=heating)
        dispatched = self._run("dispatch", t0)
        if not dispatched.has_solution:
            return self._solve_milp(inputs, t0, warm=None)
        thermal = pyo.value(lp.m.comfort_cost) - pyo.value(lp.m.heat_stored_value) if lp.has_rooms else 0.0
        upper = dispatched.value + thermal
        if self._within_gap(upper, lower_bound):
            return (self._plan(inputs, lp, dispatch, upper, lower_bound, PlanStatus.OPTIMAL, "lp+dispatch"),
                    "lp+dispatch", dispatched.message)
        plan, method, message = self._solve_milp(inputs, t0, warm=(lp, dispatch))
        if plan is not None and plan.objective <= upper + 1e-9:
            return plan, method, message
        fallback = self._plan(inputs, lp, dispatch, upper, lower_bound, PlanStatus.FEASIBLE, "lp+dispatch")
        return fallback, "lp+dispatch", f"MILP did not improve on relaxation + dispatch ({message})"

    def _solve_milp(self, inputs: PlanInputs, t0: float,
                    warm: tuple[MpcModel, MpcModel] | None) -> tuple[Plan | None, str, str]:
        milp = self.model("milp")
        milp.update(inputs)
        if warm is not None:
            _copy_values(warm[0].m, milp.m, skip_binaries=True)
            _copy_values(warm[1].m, milp.m, skip_binaries=False)
        outcome = self._run("milp", t0, warm=self.settings.warm_start)
        if not outcome.has_solution:
            return None, "milp", outcome.message
        bound = outcome.bound
        if outcome.status == SOLVED or self._within_gap(outcome.value, bound):
            status = PlanStatus.OPTIMAL
        else:
            status = PlanStatus.FEASIBLE
        return self._plan(inputs, milp, milp, outcome.value, bound, status, "milp"), "milp", outcome.message

    def _within_gap(self, upper: float, lower: float | None) -> bool:
        if lower is None:
            return False
        gap = upper - lower
        return gap <= self.settings.mip_abs_gap or gap <= self.settings.mip_gap * max(abs(upper), 1e-9)

    # --- reading a solution ------------------------------------------------------------------------

    def _plan(self, inputs: PlanInputs, thermal: MpcModel, dispatch: MpcModel, objective: float,
              bound: float | None, status: PlanStatus, method: str) -> Plan:
        n_blocks, n_rooms, n_nodes = self.grid.n_blocks, self.rc.n_rooms, self.rc.n_nodes
        dt_h = self.grid.durations_h
        tm, dm = thermal.m, dispatch.m
        temps = np.empty((n_blocks + 1, n_nodes))
        temps[0] = inputs.initial_temps_c
        margin_kh = band_kh = above_kh = 0.0
        if thermal.has_rooms:
            duty = np.clip(_values(tm.duty, (n_blocks, n_rooms)), 0.0, 1.0)
            below_margin = _values(tm.below_margin, (n_blocks, n_rooms))
            below_band = _values(tm.below_band, (n_blocks, n_rooms))
            above_band = _values(tm.above_band, (n_blocks, n_rooms))
            temps[1:, :n_rooms] = _values(tm.held, (n_blocks, n_rooms)) - below_margin - below_band + above_band
            if n_nodes > n_rooms:
                temps[1:, n_rooms:] = _values(tm.temp_mass, (n_blocks, n_nodes - n_rooms))
            margin_kh = float(dt_h @ below_margin.sum(axis=1))
            band_kh = float(dt_h @ below_band.sum(axis=1))
            above_kh = float(dt_h @ above_band.sum(axis=1))
        else:
            duty = np.zeros((n_blocks, n_rooms))
        battery_kw = np.zeros(n_blocks)
        battery_kwh = np.full(n_blocks + 1, inputs.battery_kwh)
        if dispatch.has_battery:
            battery_kw = _values(dm.charge, (n_blocks,)) - _values(dm.discharge, (n_blocks,))
            battery_kwh[1:] = _values(dm.energy, (n_blocks,))
        ev_kw = np.zeros(n_blocks)
        shortfall = 0.0
        charger = self.house.ev_charger
        if dispatch.has_ev and charger is not None:
            ev_kw = _semi_continuous(_values(dm.ev_power, (n_blocks,)), charger.min_power_kw)
            shortfall = float(dm.ev_shortfall.value or 0.0)
        grid_import = _values(dm.import_within_limit, (n_blocks,)) + _values(dm.import_over_limit, (n_blocks,))
        grid_export = _values(dm.grid_export, (n_blocks,))
        relaxed = relaxations(
            comfort_margin_kh=margin_kh, comfort_band_kh=band_kh, comfort_above_kh=above_kh, ev_shortfall_kwh=shortfall,
            import_over_limit_kwh=float(dt_h @ _values(dm.import_over_limit, (n_blocks,))),
            curtailed_kwh=float(dt_h @ _values(dm.curtailed, (n_blocks,))))
        return Plan(start=inputs.start, grid=self.grid, status=status, objective=float(objective),
                    bound=None if bound is None else float(bound), method=method, solve_time_s=0.0, duty=duty,
                    battery_kw=battery_kw, battery_kwh=battery_kwh, ev_kw=ev_kw, grid_import_kw=grid_import,
                    grid_export_kw=grid_export, temps_c=temps, energy_cost=float(pyo.value(dm.energy_cost)),
                    relaxed=relaxed)


def _values(var: pyo.Var, shape: tuple[int, ...]) -> np.ndarray:
    """Values of an indexed variable in index order, reshaped (missing values read as 0)."""
    return np.fromiter((v.value if v.value is not None else 0.0 for v in var.values()), dtype=float,
                       count=int(np.prod(shape))).reshape(shape)


def _semi_continuous(power_kw: np.ndarray, min_kw: float) -> np.ndarray:
    """Snap solver round-off: 0 below a small tolerance, at least ``min_kw`` otherwise."""
    out = np.where(power_kw < 1e-4, 0.0, power_kw)
    return np.where((out > 0.0) & (out < min_kw), min_kw, out)


def _integral(model: MpcModel) -> bool:
    """Whether a relaxation's solution is feasible with its binaries rounded (so it is MILP-optimal)."""
    m = model.m
    n = model.grid.n_blocks
    if model.has_battery:
        charge, discharge = _values(m.charge, (n,)), _values(m.discharge, (n,))
        if (np.minimum(charge, discharge) > _INTEGRALITY_TOL).any():
            return False
    c = model.house.ev_charger
    if model.has_ev and c is not None:
        power = _values(m.ev_power, (n,))
        if ((power > _INTEGRALITY_TOL) & (power < c.min_power_kw - _INTEGRALITY_TOL)).any():
            return False
    return True


def _copy_values(source: pyo.ConcreteModel, target: pyo.ConcreteModel, skip_binaries: bool) -> None:
    """Start values for ``target`` from ``source`` (same names and indices), e.g. a MIP start."""
    for var in source.component_objects(pyo.Var, descend_into=True):
        if skip_binaries and var.local_name in ("charging", "ev_on"):
            continue
        other = target.component(var.local_name)
        if other is None:
            continue
        for index, v in var.items():
            if v.value is not None:
                other[index].set_value(v.value, skip_validation=True)


def _with_time(plan: Plan, wall_s: float) -> Plan:
    return replace(plan, solve_time_s=wall_s)
