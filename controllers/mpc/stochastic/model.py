"""The two-stage stochastic program: one deterministic MPC model per scenario, tied together.

Every scenario is a full :class:`~controllers.mpc.model.MpcModel` (the deterministic MPC's
program, unchanged) placed as a sub-block ``s<i>`` of one Pyomo model, its own objective
deactivated. On top:

- **non-anticipativity**: what is executed before the next re-plan is decided before the
  scenario is known, so it is the same in every scenario — the heating duty of the blocks that
  start before ``first_stage_s`` and the battery and car of block 0 (their binaries too);
- **objective**: Σ pᵢ costᵢ + λ · CVaR_α(cost), with costᵢ the deterministic objective of
  scenario i (energy + soft-constraint penalties − stored-energy value) and CVaR in the
  Rockafellar–Uryasev form η + Σ pᵢ zᵢ / (1 − α), zᵢ ≥ costᵢ − η, zᵢ ≥ 0.

Comfort and the car's target stay soft in every scenario, so the program is never infeasible.
With more than one scenario the program is the LP relaxation (binaries in [0, 1]): a MILP with
a binary per block and scenario is far too slow to re-plan every 15 minutes. Only block 0 is
executed, so only its binaries must be integral: when the relaxation's block 0 is not a valid
command, :meth:`StochasticModel.round_first_stage` closes them at their rounding and the LP is
solved again (see ``controllers.mpc.stochastic.optimizer``); later blocks are re-planned anyway.
The structure is fixed once built; :meth:`update` only sets parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyomo.environ as pyo

from controllers.mpc.blocking import BlockGrid
from controllers.mpc.inputs import PlanInputs
from controllers.mpc.model import MONEY, MpcModel
from controllers.mpc.rc_model import RcModel
from controllers.mpc.settings import MpcSettings
from controllers.mpc.stochastic.settings import StochasticSettings
from twin.config import HouseConfig


def first_stage_blocks(grid: BlockGrid, first_stage_s: float) -> int:
    """Blocks that start before ``first_stage_s`` (at least one)."""
    return max(1, int(np.sum(grid.edges_s[:-1] < first_stage_s - 1e-6)))


class StochasticModel:
    """``n_scenarios`` scenario models with shared first stage and an expected-cost + CVaR objective."""

    def __init__(self, house: HouseConfig, grid: BlockGrid, rc: RcModel, settings: MpcSettings,
                 stochastic: StochasticSettings, n_scenarios: int) -> None:
        self.grid = grid
        self.n_scenarios = n_scenarios
        self.n_first = first_stage_blocks(grid, settings.replan_interval_s)
        # One scenario is the deterministic MPC's MILP itself (the optimizer then solves it as the
        # deterministic MPC does, without this program); more are the LP relaxation (see the docstring).
        relaxed = n_scenarios > 1
        self.scenarios = [MpcModel(house, grid, rc, settings, relaxed=relaxed) for _ in range(n_scenarios)]
        self.m = self._build(stochastic)

    def _build(self, s: StochasticSettings) -> pyo.ConcreteModel:
        m = pyo.ConcreteModel(name="pems_stochastic_mpc")
        m.S = pyo.RangeSet(0, self.n_scenarios - 1)
        for i, scenario in enumerate(self.scenarios):
            scenario.m.objective.deactivate()
            m.add_component(f"s{i}", scenario.m)
        m.probability = pyo.Param(m.S, mutable=True, initialize=1.0 / self.n_scenarios)
        # Each scenario's cost is a variable defined by one row, not an expression used twice: the
        # objective's weights are then pᵢ on one column (affine in the parameters, so pushed in a
        # batch; pᵢ · price would be a product of parameters, evaluated one by one by APPSI), the
        # CVaR rows have three entries instead of the whole cost, and reading a cost is free.
        m.cost = pyo.Var(m.S, units=MONEY, initialize=0.0)
        m.cost_definition = pyo.Constraint(m.S, rule=lambda m, i: m.cost[i] == self.scenarios[i].m.objective.expr)
        m.eta = pyo.Var(units=MONEY, initialize=0.0)
        m.excess = pyo.Var(m.S, within=pyo.NonNegativeReals, units=MONEY, initialize=0.0)
        m.tail = pyo.Constraint(m.S, rule=lambda m, i: m.excess[i] >= m.cost[i] - m.eta)
        m.expected_cost = pyo.Expression(expr=sum(m.probability[i] * m.cost[i] for i in m.S))
        m.cvar = pyo.Expression(expr=m.eta + sum(m.probability[i] * m.excess[i] for i in m.S) / (1.0 - s.cvar_alpha))
        m.objective = pyo.Objective(expr=m.expected_cost + s.risk_weight * m.cvar, sense=pyo.minimize)
        self._add_non_anticipativity(m)
        self._add_first_stage_switches(m)
        return m

    def _add_first_stage_switches(self, m: pyo.ConcreteModel) -> None:
        """Bounds on block 0's binaries (shared by every scenario) that :meth:`round_first_stage` can close.

        They are parameters, not fixed variables, so the persistent solver sees only a parameter
        change between the relaxation and its rounding.
        """
        first = self.scenarios[0].m
        self.switches = [name for name, present in (("charging", self.scenarios[0].has_battery),
                                                    ("ev_on", self.scenarios[0].has_ev)) if present]
        m.SW = pyo.Set(initialize=self.switches)
        m.switch_low = pyo.Param(m.SW, mutable=True, initialize=0.0)
        m.switch_high = pyo.Param(m.SW, mutable=True, initialize=1.0)
        m.switch_bounds = pyo.Constraint(m.SW, rule=lambda m, name: pyo.inequality(
            m.switch_low[name], first.component(name)[0], m.switch_high[name]))

    def first_stage_integral(self, tol: float = 1e-6) -> bool:
        """Whether block 0 of the solution is a valid command.

        Valid: not charging and discharging at once, the car off or within its charger's range.
        """
        first = self.scenarios[0]
        m = first.m
        if first.has_battery and min(pyo.value(m.charge[0]), pyo.value(m.discharge[0])) > tol:
            return False
        if first.has_ev:
            power = pyo.value(m.ev_power[0])
            if tol < power < pyo.value(first.c.ev_min) - tol:
                return False
        return True

    def round_first_stage(self) -> None:
        """Close block 0's binaries at the relaxation's rounding.

        Charge if it charges more than it discharges; the car on if it gets at least half the
        charger's minimum.
        """
        first = self.scenarios[0]
        m = first.m
        values = {}
        if first.has_battery:
            values["charging"] = float(pyo.value(m.charge[0]) >= pyo.value(m.discharge[0]))
        if first.has_ev:
            values["ev_on"] = float(pyo.value(m.ev_power[0]) >= 0.5 * pyo.value(first.c.ev_min))
        for name, value in values.items():
            self.m.switch_low[name].set_value(value)
            self.m.switch_high[name].set_value(value)

    def open_first_stage(self) -> None:
        for name in self.switches:
            self.m.switch_low[name].set_value(0.0)
            self.m.switch_high[name].set_value(1.0)

    def _add_non_anticipativity(self, m: pyo.ConcreteModel) -> None:
        first = self.scenarios[0]
        pairs: list[tuple[pyo.Var, pyo.Var]] = []
        for other in self.scenarios[1:]:
            if first.has_rooms:
                for k in range(self.n_first):
                    for r in range(first.n_rooms):
                        pairs.append((other.m.duty[k, r], first.m.duty[k, r]))
            names = (("charge", "discharge", "charging") if first.has_battery else ()) + \
                    (("ev_power", "ev_on") if first.has_ev else ())
            for name in names:
                pairs.append((other.m.component(name)[0], first.m.component(name)[0]))
        m.NA = pyo.RangeSet(0, len(pairs) - 1) if pairs else pyo.Set(initialize=[])
        m.non_anticipative = pyo.Constraint(m.NA, rule=lambda m, j: pairs[j][0] == pairs[j][1])

    def update(self, inputs: Sequence[PlanInputs], probabilities: np.ndarray) -> None:
        """Load each scenario's inputs and the scenario probabilities."""
        if len(inputs) != self.n_scenarios:
            raise ValueError(f"{len(inputs)} scenarios for a model of {self.n_scenarios}")
        for scenario, x in zip(self.scenarios, inputs, strict=True):
            scenario.update(x)
        for i, p in enumerate(np.asarray(probabilities, dtype=float).tolist()):
            self.m.probability[i].set_value(p)
