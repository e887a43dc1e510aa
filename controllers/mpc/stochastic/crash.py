"""A start basis for every solve of the two-stage program, from its scenarios solved one by one.

Cold, the two-stage LP is solved by the interior-point method from nothing: on the reference
house that took 9 s of HiGHS at 9 scenarios. Warm from the previous plan's basis it still
needed 1 000–5 000 dual-simplex iterations on a winter night's re-plans (2–9 s). Each of its
scenarios alone is the deterministic MPC's LP relaxation, which HiGHS solves in a fraction of a
second — and, warm from the previous scenario's basis, in a few dozen milliseconds. The two-stage
program differs from "every scenario on its own" only by the few first-stage equalities and the
CVaR rows, and its objective weights each scenario's cost by a positive factor, which leaves a
scenario's optimal basis optimal. So the scenarios' optimal bases, put side by side, are a basis
of the program a few hundred dual-simplex iterations from its optimum (190 instead of an 8.7 s
interior-point solve at 9 scenarios).

The scenarios' own LP is the deterministic optimizer's ``"lp"`` model (the same
:class:`~controllers.mpc.model.MpcModel`, relaxed, as each of the program's sub-blocks), so the
two have the same variables and constraints in the same order: they are matched by position.
The program's own rows (non-anticipativity, CVaR, block 0's switches) start basic — their slacks,
one basic variable per row — and its own columns (η, the CVaR excesses) nonbasic, except each
scenario's cost, basic in place of its defining row; the count of basic variables then equals
the number of rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyomo.environ as pyo

from controllers.mpc.inputs import PlanInputs
from controllers.mpc.model import MpcModel
from controllers.mpc.solvers import HighsBackend, SolveOutcome

#: ``highspy.HighsBasisStatus`` codes.
LOWER, BASIC, ZERO = 0, 1, 3


def _variables(model: pyo.ConcreteModel) -> list[Any]:
    return list(model.component_data_objects(pyo.Var, descend_into=True))


def _constraints(model: pyo.ConcreteModel) -> list[Any]:
    return list(model.component_data_objects(pyo.Constraint, active=True, descend_into=True))


class CrashBasis:
    """Maps the scenario LP's columns and rows onto each scenario block of the program (built once)."""

    def __init__(self, single: MpcModel, single_backend: HighsBackend, scenarios: list[MpcModel],
                 program: pyo.ConcreteModel, program_backend: HighsBackend) -> None:
        self.single = single
        self.single_backend = single_backend
        self.program_backend = program_backend
        single_cols = np.asarray(single_backend.columns(_variables(single.m)))
        single_rows = np.asarray(single_backend.rows(_constraints(single.m)))
        self._cols: list[tuple[np.ndarray, np.ndarray]] = []  # per scenario: (single's columns, program's)
        self._rows: list[tuple[np.ndarray, np.ndarray]] = []
        for scenario in scenarios:
            cols = np.asarray(program_backend.columns(_variables(scenario.m)))
            rows = np.asarray(program_backend.rows(_constraints(scenario.m)))
            if len(cols) != len(single_cols) or len(rows) != len(single_rows):
                raise ValueError("a scenario block is not the single-scenario model's structure")
            keep_c, keep_r = (single_cols >= 0) & (cols >= 0), (single_rows >= 0) & (rows >= 0)
            self._cols.append((single_cols[keep_c], cols[keep_c]))
            self._rows.append((single_rows[keep_r], rows[keep_r]))
        self._n_cols = sum(c >= 0 for c in program_backend.columns(_variables(program)))
        self._n_rows = sum(r >= 0 for r in program_backend.rows(_constraints(program)))
        # Each scenario's cost variable is free and defined by its own equality row: the variable
        # basic, the row nonbasic (a free variable nonbasic at a bound it does not have is no
        # basis, and HiGHS's repair of it cost 2 500 iterations instead of 200 at 9 scenarios).
        # η is free too, nonbasic "at zero"; the CVaR excesses are nonbasic at their lower bound 0.
        self._cost_cols = np.asarray(program_backend.columns(program.cost.values()), dtype=int)
        self._cost_rows = np.asarray(program_backend.rows(program.cost_definition.values()), dtype=int)
        self._free_cols = np.asarray([c for c in program_backend.columns([program.eta]) if c >= 0], dtype=int)

    def start(self, inputs: Sequence[PlanInputs], solve: Callable[[], SolveOutcome]) -> bool:
        """Solve each scenario alone (``solve()`` runs the single LP's back-end), hand the program their bases.

        Returns whether the program's solver took the basis (False: it solves cold, as before).
        """
        col_status = np.full(self._n_cols, LOWER, dtype=np.int8)
        row_status = np.full(self._n_rows, BASIC, dtype=np.int8)
        col_status[self._free_cols] = ZERO
        col_status[self._cost_cols] = BASIC
        row_status[self._cost_rows] = LOWER
        for x, (src_c, dst_c), (src_r, dst_r) in zip(inputs, self._cols, self._rows, strict=True):
            self.single.update(x)
            outcome = solve()
            basis = self.single_backend.basis() if outcome.has_solution else None
            if basis is None:
                return False
            col_status[dst_c] = basis[0][src_c]
            row_status[dst_r] = basis[1][src_r]
        return self.program_backend.set_basis(col_status, row_status)
