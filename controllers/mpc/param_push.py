"""Push a persistent HiGHS model's changed parameters in a few numpy calls instead of thousands.

APPSI keeps one helper per place a mutable ``Param`` appears (a row's bounds, a column's bounds,
a coefficient, an objective cost) and, before every solve, evaluates each helper's Pyomo
expression and hands HiGHS one number at a time. On the MPC's models that is thousands of
expression walks per re-plan — more time than HiGHS itself needs (``docs/speed.md``).

Almost every such expression is affine in its parameters (``drive[k, i]``, ``price[k]·dt[k]``,
``base_load[k] − pv[k]``). :class:`ParamPush` finds that form once, after APPSI has built the
solver model — ``value = Σ slope · param + offset``, probed one parameter at a time and checked at
a third point. Each solve then
reads the parameters' values into one array and pushes all row bounds, column bounds and costs
with HiGHS's batch calls. The few expressions of another form (the objective's constant, a
product of two parameters) keep APPSI's own helper. Structure never changes after the build, so
the mapping stays valid for the solver object's life.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pyomo.core.expr.numvalue import value
from pyomo.core.expr.visitor import identify_mutable_parameters
from scipy import sparse

#: Points at which an expression is evaluated to find (and check) its affine form.
_PROBES = (0.5, 1.5, 4.0)


class _Affine:
    """``slopes @ params + offset`` for many expressions at once (a sparse matrix of slopes)."""

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.slopes: list[float] = []
        self.offset: list[float] = []

    def add(self, form: tuple[list[tuple[int, float]], float]) -> None:
        terms, offset = form
        row = len(self.offset)
        for col, slope in terms:
            self.rows.append(row)
            self.cols.append(col)
            self.slopes.append(slope)
        self.offset.append(offset)

    def freeze(self, n_params: int) -> None:
        self.matrix = sparse.csr_matrix((self.slopes, (self.rows, self.cols)), shape=(len(self.offset), n_params))
        self.offset_a = np.asarray(self.offset, dtype=float)

    def __call__(self, params: np.ndarray) -> np.ndarray:
        result: np.ndarray = self.matrix @ params + self.offset_a
        return result


class ParamPush:
    """The mutable parameters of one APPSI ``Highs`` solver, pushed in batches (see the module docstring)."""

    def __init__(self, opt: Any) -> None:
        self._highs = opt._solver_model  # noqa: SLF001 - the highspy object APPSI built
        self._params: list[Any] = []
        self._param_index: dict[int, int] = {}
        self._rows: list[int] = []
        self._row_lower, self._row_upper = _Affine(), _Affine()
        self._cols: list[int] = []
        self._col_lower, self._col_upper = _Affine(), _Affine()
        self._col_lower_floor: list[float] = []
        self._col_upper_cap: list[float] = []
        self._cost_cols: list[int] = []
        self._cost = _Affine()
        self._coef_rows: list[int] = []
        self._coef_cols: list[int] = []
        self._coef = _Affine()
        self._others: list[Any] = []  # helpers of another form: APPSI updates them itself
        self._build(opt)

    # --- finding the affine forms ------------------------------------------------------------------

    def _affine(self, expr: Any) -> tuple[list[tuple[int, float]], float] | None:
        """``([(param index, slope), ...], offset)`` of an expression affine in its parameters, else None."""
        if expr is None:
            return [], 0.0
        if isinstance(expr, (int, float)):
            return [], float(expr)
        # Pyomo units count as mutable parameters but are the constant 1: only real Params vary.
        params = [p for p in identify_mutable_parameters(expr) if hasattr(p, "set_value")]
        if not params:
            return [], float(value(expr))
        saved = [p.value for p in params]
        try:
            for p in params:
                p.set_value(_PROBES[0])
            base = float(value(expr))
            slopes = []
            for p in params:
                p.set_value(_PROBES[1])
                slopes.append((float(value(expr)) - base) / (_PROBES[1] - _PROBES[0]))
                p.set_value(_PROBES[0])
            offset = base - sum(slopes) * _PROBES[0]
            for p in params:
                p.set_value(_PROBES[2])
            check = float(value(expr))
        finally:
            for p, v in zip(params, saved, strict=True):
                p.set_value(v)
        predicted = offset + sum(slopes) * _PROBES[2]
        if not np.isfinite(check) or abs(predicted - check) > 1e-12 * max(1.0, abs(check)):
            return None  # not affine (a product of parameters, a min/max of them)
        terms = []
        for p, slope in zip(params, slopes, strict=True):
            key = id(p)
            if key not in self._param_index:
                self._param_index[key] = len(self._params)
                self._params.append(p)
            terms.append((self._param_index[key], slope))
        return terms, offset

    def _build(self, opt: Any) -> None:
        from pyomo.contrib.appsi.solvers.highs import (
            _MutableConstraintBounds,
            _MutableLinearCoefficient,
            _MutableObjectiveCoefficient,
        )

        con_map = opt._pyomo_con_to_solver_con_map  # noqa: SLF001
        var_map = opt._pyomo_var_to_solver_var_map  # noqa: SLF001
        for con, helpers in opt._mutable_helpers.items():  # noqa: SLF001
            for helper in helpers:
                if isinstance(helper, _MutableConstraintBounds):
                    lower, upper = self._affine(helper.lower_expr), self._affine(helper.upper_expr)
                    if lower is None or upper is None:
                        self._others.append(helper)
                        continue
                    self._rows.append(con_map[con])
                    self._row_lower.add(lower)
                    self._row_upper.add(upper)
                elif isinstance(helper, _MutableLinearCoefficient):
                    form = self._affine(helper.expr)
                    if form is None:
                        self._others.append(helper)
                        continue
                    self._coef_rows.append(con_map[con])
                    self._coef_cols.append(var_map[helper.pyomo_var_id])
                    self._coef.add(form)
                else:
                    self._others.append(helper)
        for var_id, (_var, helper) in opt._mutable_bounds.items():  # noqa: SLF001
            # APPSI's bound is max(param bound, domain bound) / min(...): keep the domain's part apart.
            lower_param, lower_floor = helper.lower_expr.args
            upper_param, upper_cap = helper.upper_expr.args
            lower, upper = self._affine(lower_param), self._affine(upper_param)
            if lower is None or upper is None or not _is_number(lower_floor) or not _is_number(upper_cap):
                self._others.append(helper)
                continue
            self._cols.append(var_map[var_id])
            self._col_lower.add(lower)
            self._col_upper.add(upper)
            self._col_lower_floor.append(float(lower_floor))
            self._col_upper_cap.append(float(upper_cap))
        for helper in opt._objective_helpers:  # noqa: SLF001
            form = self._affine(helper.expr) if isinstance(helper, _MutableObjectiveCoefficient) else None
            if form is None:
                self._others.append(helper)
                continue
            self._cost_cols.append(var_map[helper.pyomo_var_id])
            self._cost.add(form)
        for affine in (self._row_lower, self._row_upper, self._col_lower, self._col_upper, self._cost, self._coef):
            affine.freeze(len(self._params))
        self._rows_a = np.asarray(self._rows, dtype=np.int32)
        self._cols_a = np.asarray(self._cols, dtype=np.int32)
        self._floor_a = np.asarray(self._col_lower_floor, dtype=float)
        self._cap_a = np.asarray(self._col_upper_cap, dtype=float)
        self._cost_cols_a = np.asarray(self._cost_cols, dtype=np.int32)
        # HiGHS holds the coefficients APPSI evaluated when the model was handed over, just now.
        current = np.fromiter((p.value for p in self._params), dtype=float, count=len(self._params))
        self._coef_pushed = self._coef(current)

    # --- every solve -------------------------------------------------------------------------------

    @property
    def handled(self) -> int:
        """How many parameter uses are pushed in batches (the rest: :attr:`fallbacks`)."""
        return len(self._rows) + len(self._cols) + len(self._cost_cols) + len(self._coef_rows)

    @property
    def fallbacks(self) -> int:
        return len(self._others)

    def push(self) -> None:
        """Hand HiGHS the current values of every parameter."""
        params = np.fromiter((p.value for p in self._params), dtype=float, count=len(self._params))
        highs = self._highs
        if len(self._rows_a):
            highs.changeRowsBounds(len(self._rows_a), self._rows_a, self._row_lower(params), self._row_upper(params))
        if len(self._cols_a):
            lower = np.maximum(self._col_lower(params), self._floor_a)
            upper = np.minimum(self._col_upper(params), self._cap_a)
            highs.changeColsBounds(len(self._cols_a), self._cols_a, lower, upper)
        if len(self._cost_cols_a):
            highs.changeColsCost(len(self._cost_cols_a), self._cost_cols_a, self._cost(params))
        # HiGHS has no batch call for matrix coefficients, and each changeCoeff costs time that grows
        # with the matrix (0.3 ms each on the stochastic MPC's 27 scenarios: 4 s for all of them).
        # They are the car's presence per block, which rarely changes: push only what did.
        coefficients = self._coef(params)
        changed = np.flatnonzero(coefficients != self._coef_pushed)
        for j, coefficient in zip(changed.tolist(), coefficients[changed].tolist(), strict=True):
            highs.changeCoeff(self._coef_rows[j], self._coef_cols[j], coefficient)
        self._coef_pushed = coefficients
        for helper in self._others:
            helper.update()


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float))
