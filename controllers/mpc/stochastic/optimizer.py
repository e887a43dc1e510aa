"""From inputs to a stochastic plan: scenarios, reduction, one solve of the two-stage program.

:class:`StochasticOptimizer` is an :class:`~controllers.mpc.solve.Optimizer` (same grid, RC
model, solvers and plan format), so :class:`~controllers.mpc.controller.MpcController` runs it
unchanged, with its fallback chain and plan-status reporting. The plan it returns is the most
probable kept scenario's (its first stage is every scenario's); :attr:`last_scenarios` keeps the
scenario plans of the latest solve for inspection and tests.

One scenario is the deterministic MPC: it is solved by :class:`Optimizer`'s own strategy (LP
first). More are the two-stage program, whose every solve starts from its scenarios' own optimal
bases (:mod:`controllers.mpc.stochastic.crash`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import pyomo.environ as pyo

from controllers.mpc.inputs import PlanInputs
from controllers.mpc.plan import Plan
from controllers.mpc.settings import MpcSettings
from controllers.mpc.solve import Optimizer, SolveReport
from controllers.mpc.solvers import SOLVED, Backend, HighsBackend, SolveOutcome, SolverUnavailable, make_backend
from controllers.mpc.stochastic.crash import CrashBasis
from controllers.mpc.stochastic.model import StochasticModel
from controllers.mpc.stochastic.scenarios import ScenarioSet, fast_forward, scenario_tree
from controllers.mpc.stochastic.settings import StochasticSettings
from twin.config import HouseConfig
from twin.contracts import PlanStatus


@dataclass(frozen=True, slots=True)
class ScenarioPlans:
    """The latest solve: the kept scenarios, their plans, their costs and the plan's risk."""

    scenarios: ScenarioSet
    plans: tuple[Plan, ...]
    costs: np.ndarray  # objective of each scenario's plan [currency]
    expected_cost: float
    cvar: float


class StochasticOptimizer(Optimizer):
    """The stochastic MPC's solve (see the module docstring)."""

    def __init__(self, house: HouseConfig, settings: MpcSettings, stochastic: StochasticSettings) -> None:
        super().__init__(house, settings)
        self.stochastic = stochastic
        self.pv_cap_kw = float(sum(a.inverter_ac_kw for a in house.pv_arrays))
        self._program: StochasticModel | None = None
        self._program_backend: Backend | None = None
        self.last_scenarios: ScenarioPlans | None = None
        self._warm = False  # whether the persistent solver has solved the program once
        self._crash_basis: CrashBasis | None = None

    def program(self) -> StochasticModel:
        """The two-stage program, built on first use."""
        if self._program is None:
            self._program = StochasticModel(self.house, self.grid, self.rc, self.settings, self.stochastic,
                                            self.stochastic.scenarios)
        return self._program

    def prepare(self) -> None:
        """Build what the solve will use and hand it to the solver (the controller does this once per house).

        One scenario is the deterministic MPC (its models); more are the program and the
        single-scenario LP its first solve starts from (:mod:`controllers.mpc.stochastic.crash`).
        """
        if self.stochastic.scenarios == 1:
            super().prepare()
            return
        try:
            self._backend_for_program().prepare(self.program().m)
            self._crash_start(self.program())  # the maps of the first solve's start basis
        except SolverUnavailable:
            return

    def _backend_for_program(self) -> Backend:
        if self._program_backend is None:
            # Devex pricing for the warm re-solves of this big LP (see HighsBackend.solve).
            self._program_backend = make_backend(self.settings.solver, self.settings.threads, devex=True)
        return self._program_backend

    def scenarios(self, inputs: PlanInputs) -> ScenarioSet:
        """The reduced scenario set for ``inputs`` (the P50 forecast)."""
        tree = scenario_tree(inputs, self.grid, self.stochastic, self.pv_cap_kw)
        return fast_forward(tree, self.stochastic.scenarios, self.grid)

    def solve(self, inputs: PlanInputs) -> tuple[Plan | None, SolveReport]:
        t0 = time.perf_counter()
        kept = self.scenarios(inputs)
        if len(kept) == 1:
            return self._solve_single(kept, t0)
        program = self.program()
        program.update(kept.inputs, kept.probabilities)
        program.open_first_stage()
        # Every solve starts from the scenarios' own optimal bases, not only the first (cold) one:
        # from the previous plan's basis the dual simplex needed 1 000–5 000 iterations on a winter
        # night's re-plans (2–9 s at 9 scenarios), from the scenarios' bases a few hundred (0.5–1.8 s),
        # to the same optimum.
        self._crash(program, kept, t0)
        outcome = self._solve_program(program, t0)
        self._warm = self._warm or outcome.has_solution
        bound = outcome.bound
        method = "stochastic"
        if outcome.has_solution and not program.first_stage_integral():
            # The relaxation is a lower bound; block 0 rounded and solved again is a valid plan.
            bound = outcome.objective
            program.round_first_stage()
            outcome = self._solve_program(program, t0)
            program.open_first_stage()
            method = "stochastic+rounding"
        if not outcome.has_solution or outcome.objective is None:
            wall = time.perf_counter() - t0
            return None, SolveReport(False, method, wall, outcome.message)
        proven = outcome.status == SOLVED and self._within_gap(outcome.objective, bound if bound is not None
                                                               else outcome.objective)
        status = PlanStatus.OPTIMAL if proven else PlanStatus.FEASIBLE
        plans = tuple(self._plan(x, mm, mm, float(pyo.value(program.m.cost[i])), None, status, "stochastic")
                      for i, (x, mm) in enumerate(zip(kept.inputs, program.scenarios, strict=True)))
        costs = np.array([p.objective for p in plans])
        self.last_scenarios = ScenarioPlans(kept, plans, costs, float(pyo.value(program.m.expected_cost)),
                                            float(pyo.value(program.m.cvar)))
        wall = time.perf_counter() - t0
        chosen = int(np.argmax(kept.probabilities))
        plan = replace(plans[chosen], objective=float(outcome.objective), bound=bound, solve_time_s=wall,
                       method=method)
        return plan, SolveReport(True, method, wall, f"{len(kept)} scenarios; {outcome.message}")

    def _solve_single(self, kept: ScenarioSet, t0: float) -> tuple[Plan | None, SolveReport]:
        """One scenario (the P50 forecast): the deterministic MPC's own solve, LP first.

        Expected cost and CVaR of a single scenario are both its cost, so the two-stage objective
        is (1 + λ) · cost: the same plan, the objective scaled to match the program's.
        """
        plan, report = super().solve(kept.inputs[0])
        if plan is None:
            return None, replace(report, wall_time_s=time.perf_counter() - t0)
        cost = plan.objective
        self.last_scenarios = ScenarioPlans(kept, (plan,), np.array([cost]), cost, cost)
        factor = 1.0 + self.stochastic.risk_weight
        wall = time.perf_counter() - t0
        plan = replace(plan, objective=factor * cost, bound=None if plan.bound is None else factor * plan.bound,
                       solve_time_s=wall)
        return plan, replace(report, wall_time_s=wall, message=f"1 scenario; {report.message}")

    def _crash_start(self, program: StochasticModel) -> CrashBasis | None:
        """The start basis's maps (built once; HiGHS only, both models handed to it), or None."""
        backend = self._backend_for_program()
        single_backend = self.backend("lp")
        if not isinstance(backend, HighsBackend) or not isinstance(single_backend, HighsBackend):
            return None
        if self._crash_basis is None:
            single = self.model("lp")
            for b, model in ((backend, program.m), (single_backend, single.m)):
                if not b.holds(model):
                    b.prepare(model)
            self._crash_basis = CrashBasis(single, single_backend, program.scenarios, program.m, backend)
        return self._crash_basis

    def _crash(self, program: StochasticModel, kept: ScenarioSet, t0: float) -> None:
        """Give HiGHS the scenarios' own optimal bases to start from (see ``crash``)."""
        crash = self._crash_start(program)
        if crash is not None:
            crash.start(kept.inputs, lambda: self._run("lp", t0))

    def _solve_program(self, program: StochasticModel, t0: float) -> SolveOutcome:
        backend = self._backend_for_program()
        s = self.settings
        remaining = self._remaining(t0)
        if not self._warm:  # the first solve has no basis to start from
            remaining += max(0.0, self.stochastic.cold_time_limit_s - s.time_limit_s)
        return backend.solve(program.m, time_limit_s=max(remaining, 0.01),
                             mip_gap=s.mip_gap, abs_gap=s.mip_abs_gap, warm_start=s.warm_start)
