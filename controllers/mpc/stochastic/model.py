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
With more than one scenario the recourse (later blocks of each scenario) is the LP relaxation: only block 0 is executed,
and keeping its binaries integral is what makes the first stage a valid command; later blocks
are re-planned anyway. The structure is fixed once built; :meth:`update` only sets parameters.
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
        # One scenario is the deterministic MPC's MILP itself; more relax the recourse (see the docstring).
        relaxed = n_scenarios > 1
        self.scenarios = [MpcModel(house, grid, rc, settings, relaxed=relaxed) for _ in range(n_scenarios)]
        self.m = self._build(stochastic)

    def _build(self, s: StochasticSettings) -> pyo.ConcreteModel:
        m = pyo.ConcreteModel(name="pems_stochastic_mpc")
        m.S = pyo.RangeSet(0, self.n_scenarios - 1)
        for i, scenario in enumerate(self.scenarios):
            scenario.m.objective.deactivate()
            m.add_component(f"s{i}", scenario.m)
            for var_name in ("charging", "ev_on"):
                var = scenario.m.component(var_name)
                if var is not None:
                    var[0].domain = pyo.Binary  # the executed block's binaries stay integral
        m.probability = pyo.Param(m.S, mutable=True, initialize=1.0 / self.n_scenarios)
        m.cost = pyo.Expression(m.S, rule=lambda m, i: self.scenarios[i].m.objective.expr)
        m.eta = pyo.Var(units=MONEY, initialize=0.0)
        m.excess = pyo.Var(m.S, within=pyo.NonNegativeReals, units=MONEY, initialize=0.0)
        m.tail = pyo.Constraint(m.S, rule=lambda m, i: m.excess[i] >= m.cost[i] - m.eta)
        m.expected_cost = pyo.Expression(expr=sum(m.probability[i] * m.cost[i] for i in m.S))
        m.cvar = pyo.Expression(expr=m.eta + sum(m.probability[i] * m.excess[i] for i in m.S) / (1.0 - s.cvar_alpha))
        m.objective = pyo.Objective(expr=m.expected_cost + s.risk_weight * m.cvar, sense=pyo.minimize)
        self._add_non_anticipativity(m)
        return m

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
