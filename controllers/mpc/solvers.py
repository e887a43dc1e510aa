"""Solver back-ends behind one small interface, all through Pyomo.

- ``highs``: HiGHS through Pyomo's persistent APPSI interface (``pyomo.contrib.appsi.solvers.Highs``),
  one solver object per model: the model is handed over once, later solves only push the
  changed parameters, and an LP re-solve starts from the previous basis. The time limit and
  gaps are set on that object itself (``SolverFactory('appsi_highs').solve()`` would ignore
  ``config.time_limit``, a known Pyomo pitfall). HiGHS measures its limit against the run time
  accumulated over the solver object's life, so each solve's limit is shifted by the time already
  used; ``tests/test_mpc_solvers.py`` checks the limit holds and does not fire spuriously.
- ``glpk`` (``glpsol``) and ``cbc``: Pyomo's shell interfaces, which write the model to a file
  at every solve. GLPK takes whole seconds as its limit and Pyomo does not report GLPK's bound,
  so the bound is read from glpsol's log.

Every back-end loads the solution (or the incumbent at the time limit) into the model's
variables and returns a :class:`SolveOutcome`; none raises for a solve that merely fails.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyomo.environ as pyo
from pyomo.common.errors import ApplicationError, PyomoException
from pyomo.opt import SolverStatus, TerminationCondition

from controllers.mpc.param_push import ParamPush
from twin.errors import TwinError

SOLVED = "solved"  # optimal within the requested gap
INCUMBENT = "incumbent"  # a feasible solution, stopped by the time limit before reaching the gap
NO_SOLUTION = "no_solution"  # nothing usable (time limit without incumbent, infeasible, solver error)

#: HiGHS's ``primal_solution_status`` of a feasible point (``kSolutionStatusFeasible``).
FEASIBLE_SOLUTION = 2

#: HiGHS's own log goes to this logger at DEBUG level (APPSI's default would print INFO lines).
_SOLVER_LOG = logging.getLogger("controllers.mpc.highs")


class SolverUnavailable(TwinError):
    """The requested solver is not installed (e.g. ``glpsol`` not on PATH, highspy missing)."""


@dataclass(frozen=True, slots=True)
class SolveOutcome:
    """What one solver call produced. ``objective``/``bound`` are None when unknown."""

    status: str
    objective: float | None = None
    bound: float | None = None
    wall_time_s: float = 0.0
    message: str = ""

    @property
    def has_solution(self) -> bool:
        return self.status in (SOLVED, INCUMBENT)

    @property
    def value(self) -> float:
        """The objective of a solution (only asked for when :attr:`has_solution`)."""
        if self.objective is None:
            raise ValueError(f"a {self.status} outcome has no objective value")
        return self.objective

    @property
    def gap(self) -> float | None:
        """Relative gap |objective − bound| / max(|objective|, 1e-9), or None."""
        if self.objective is None or self.bound is None:
            return None
        return abs(self.objective - self.bound) / max(abs(self.objective), 1e-9)


class Backend(Protocol):
    """A solver behind Pyomo for one model: solves it and reports a :class:`SolveOutcome`."""

    name: str

    def prepare(self, model: pyo.ConcreteModel) -> None:
        """Get ready to solve ``model`` (a persistent solver builds its own copy here)."""

    def solve(self, model: pyo.ConcreteModel, *, time_limit_s: float, mip_gap: float, abs_gap: float,
              warm_start: bool) -> SolveOutcome: ...


class HighsBackend:
    """Persistent HiGHS for one model (APPSI). Only parameters may change between solves."""

    name = "highs"

    def __init__(self, threads: int = 1, batch_params: bool = True, *, devex: bool = False) -> None:
        from pyomo.contrib.appsi.solvers import Highs

        opt = Highs()
        if not opt.available():
            raise SolverUnavailable("solver 'highs' is not available: install highspy (pip install highspy)")
        opt.config.load_solution = False
        opt.config.solver_output_logger = _SOLVER_LOG
        opt.config.log_level = logging.DEBUG
        update = opt.update_config
        # The model's structure never changes after it is built: only parameters are pushed.
        update.check_for_new_or_removed_constraints = False
        update.check_for_new_or_removed_vars = False
        update.check_for_new_or_removed_params = False
        update.check_for_new_objective = False
        update.update_constraints = False
        update.update_vars = False
        update.update_named_expressions = False
        update.update_objective = False
        # Parameters are pushed by ParamPush in batches (APPSI's own push evaluates every
        # expression one by one: more time than HiGHS's solve on the MPC's models).
        update.update_params = not batch_params
        self._batch_params = batch_params
        self._devex = devex
        self._threads = threads
        self._opt = opt
        self._push: ParamPush | None = None
        self._is_lp = False  # no integer variables (set by prepare)
        self._has_basis = False  # a solve has left HiGHS a basis to warm-start from
        self._load_vars: list[Any] = []
        self._load_cols = np.zeros(0, dtype=int)

    def prepare(self, model: pyo.ConcreteModel) -> None:
        """Hand ``model`` to HiGHS now (otherwise the first solve does it)."""
        self._opt.set_instance(model)
        self._push = ParamPush(self._opt) if self._batch_params else None
        import highspy

        integrality = self._opt._solver_model.getLp().integrality_  # noqa: SLF001
        self._is_lp = all(kind == highspy.HighsVarType.kContinuous for kind in integrality)
        self._has_basis = False
        # The variables a solution is loaded into, and their columns (those APPSI's own loader would
        # load: used in a constraint or the objective). Its loader builds a ComponentMap of every
        # variable first: 0.3 s per solve on the stochastic MPC's 48 000 columns.
        opt = self._opt
        used = [vid for vid, (cons, sos, obj) in opt._referenced_variables.items()  # noqa: SLF001
                if cons or sos or obj is not None]
        self._load_vars = [opt._vars[vid][0] for vid in used]  # noqa: SLF001
        self._load_cols = np.asarray([opt._pyomo_var_to_solver_var_map[vid] for vid in used], dtype=int)  # noqa: SLF001

    def _load_solution(self) -> None:
        """The solution's values into the model's variables (what APPSI's ``load_vars`` does, in a loop)."""
        from pyomo.core.staleflag import StaleFlagManager

        values = np.asarray(self._opt._sol.col_value)[self._load_cols].tolist()  # noqa: SLF001
        for var, x in zip(self._load_vars, values, strict=True):
            var.set_value(x, skip_validation=True)
        StaleFlagManager.mark_all_as_stale(delayed=True)

    def holds(self, model: pyo.ConcreteModel) -> bool:
        """Whether ``model`` has been handed to HiGHS (by :meth:`prepare` or a solve)."""
        return self._opt._model is model  # noqa: SLF001

    # --- the simplex basis, for a caller that builds a start basis from other models' ones ----------

    def columns(self, variables: Iterable[Any]) -> list[int]:
        """HiGHS's column of each variable (−1: not in the solver's model, e.g. in no constraint)."""
        index = self._opt._pyomo_var_to_solver_var_map  # noqa: SLF001
        return [index.get(id(v), -1) for v in variables]

    def rows(self, constraints: Iterable[Any]) -> list[int]:
        """HiGHS's row of each constraint (−1: not in the solver's model)."""
        index = self._opt._pyomo_con_to_solver_con_map  # noqa: SLF001
        return [index.get(c, -1) for c in constraints]

    def basis(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The last solve's basis as (column, row) status codes (``highspy.HighsBasisStatus`` values), or None."""
        if not self._has_basis:
            return None
        basis = self._opt._solver_model.getBasis()  # noqa: SLF001
        if not basis.valid:
            return None
        # Each access to a status list copies it out of HiGHS: convert once.
        return (np.fromiter((int(x) for x in basis.col_status), dtype=np.int8),
                np.fromiter((int(x) for x in basis.row_status), dtype=np.int8))

    def set_basis(self, col_status: np.ndarray, row_status: np.ndarray) -> bool:
        """Start the next solve from this basis (dual simplex, no presolve); False if HiGHS refuses it."""
        import highspy

        kinds = list(highspy.HighsBasisStatus.__members__.values())
        by_code = {int(k): k for k in kinds}
        basis = highspy.HighsBasis()
        basis.col_status = [by_code[int(x)] for x in col_status]
        basis.row_status = [by_code[int(x)] for x in row_status]
        basis.valid = True
        ok = bool(self._opt._solver_model.setBasis(basis) == highspy.HighsStatus.kOk)  # noqa: SLF001
        self._has_basis = self._has_basis or ok
        return ok

    def solve(self, model: pyo.ConcreteModel, *, time_limit_s: float, mip_gap: float, abs_gap: float,
              warm_start: bool) -> SolveOutcome:
        opt = self._opt
        if opt._model is not model:  # noqa: SLF001
            self.prepare(model)
        # HiGHS compares its time limit with the run time accumulated over the object's life, not
        # with this run's: shift the limit by what earlier solves used.
        used_s = opt._solver_model.getRunTime() if opt._solver_model is not None else 0.0  # noqa: SLF001
        opt.config.time_limit = used_s + max(time_limit_s, 1e-3)
        opt.config.mip_gap = mip_gap
        # A MIP start only helps a MIP: on an LP, HiGHS's setSolution discards the previous solve's
        # basis, and the re-solve starts over (12 000 simplex iterations instead of 130 on the
        # stochastic MPC's LP). An LP's warm start is that basis, kept by the persistent solver.
        opt.config.warmstart = warm_start and not self._is_lp
        options: dict[str, object] = {"threads": self._threads, "mip_abs_gap": abs_gap, "random_seed": 0,
                                      "solver": "choose"}
        if self._is_lp and not self._has_basis:
            # No basis yet: the interior-point method (with crossover, so later re-plans start from
            # its basis) takes a third of the dual simplex's time on the MPC's LP; same optimum.
            options["solver"] = "ipm"
        # Dual steepest edge (HiGHS's choice) computes its weights afresh at the start of every
        # solve: one linear solve per row. On a big LP re-solved from a nearly optimal basis that
        # costs more than the few hundred iterations left (0.75 of 1 s at the stochastic MPC's 9
        # scenarios); Devex starts from unit weights (0.25 s). Only where the caller asks: a
        # different pricing may pick another of equally good vertices.
        options["simplex_dual_edge_weight_strategy"] = 1 if self._devex and self._is_lp and self._has_basis else -1
        opt.highs_options = options
        t0 = time.perf_counter()
        try:
            if self._push is not None:
                self._push.push()
            results = opt.solve(model)
        except (PyomoException, RuntimeError, ValueError) as exc:
            return SolveOutcome(NO_SOLUTION, wall_time_s=time.perf_counter() - t0, message=f"HiGHS failed: {exc}")
        wall = time.perf_counter() - t0
        condition = results.termination_condition
        objective = results.best_feasible_objective
        if objective is None or not math.isfinite(objective):
            return SolveOutcome(NO_SOLUTION, wall_time_s=wall, message=f"HiGHS: {condition.name}, no solution")
        info = opt._solver_model.getInfo()  # noqa: SLF001 - HiGHS's own account of its solution
        if info.primal_solution_status != FEASIBLE_SOLUTION:
            # APPSI reports any *valid* vector as a solution, e.g. an infeasible MIP start at the
            # time limit, or an LP stopped early: only a feasible one is worth executing.
            return SolveOutcome(NO_SOLUTION, wall_time_s=wall,
                                message=f"HiGHS: {condition.name}, no feasible solution")
        self._load_solution()
        self._has_basis = True
        bound = results.best_objective_bound
        status = SOLVED if condition.name == "optimal" else INCUMBENT
        return SolveOutcome(status, objective, bound, wall, f"HiGHS: {condition.name}")


class ShellBackend:
    """GLPK or CBC through Pyomo's shell interface (the model is written out at every solve)."""

    _EXECUTABLES = {"glpk": "glpsol", "cbc": "cbc"}

    def __init__(self, name: str) -> None:
        if name not in self._EXECUTABLES:
            raise ValueError(f"no shell back-end for solver {name!r}")
        self.name = name
        executable = self._EXECUTABLES[name]
        if shutil.which(executable) is None:
            raise SolverUnavailable(f"solver {name!r} is not available: {executable!r} is not on PATH "
                                    f"(Debian: apt-get install {'glpk-utils' if name == 'glpk' else 'coinor-cbc'})")
        self._opt = pyo.SolverFactory(name)

    def prepare(self, model: pyo.ConcreteModel) -> None:
        """Nothing to do: a shell solver reads the model from a file written at every solve."""

    def _options(self, time_limit_s: float, mip_gap: float, abs_gap: float) -> dict[str, float | int]:
        if self.name == "glpk":
            # glpsol's --tmlim is whole seconds.
            return {"tmlim": max(1, math.ceil(time_limit_s)), "mipgap": mip_gap}
        return {"sec": max(0.1, time_limit_s), "ratioGap": mip_gap, "allowableGap": abs_gap}

    def solve(self, model: pyo.ConcreteModel, *, time_limit_s: float, mip_gap: float, abs_gap: float,
              warm_start: bool) -> SolveOutcome:
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="pems-mpc-") as tmp:
            log = Path(tmp) / "solver.log"
            kwargs = {"load_solutions": False, "logfile": str(log),
                      "options": self._options(time_limit_s, mip_gap, abs_gap)}
            if warm_start and self.name == "cbc":
                kwargs["warmstart"] = True
            try:
                results = self._opt.solve(model, **kwargs)
            except (ApplicationError, PyomoException, RuntimeError, ValueError, OSError) as exc:
                return SolveOutcome(NO_SOLUTION, wall_time_s=time.perf_counter() - t0,
                                    message=f"{self.name} failed: {exc}")
            log_text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        wall = time.perf_counter() - t0
        condition = results.solver.termination_condition
        failed = results.solver.status in (SolverStatus.error, SolverStatus.aborted)
        if len(results.solution) == 0 or (failed and condition != TerminationCondition.maxTimeLimit):
            return SolveOutcome(NO_SOLUTION, wall_time_s=wall, message=f"{self.name}: {condition}, no solution")
        model.solutions.load_from(results)
        objective = pyo.value(next(model.component_data_objects(pyo.Objective, active=True)))
        bound = _glpk_bound(log_text, objective) if self.name == "glpk" else _cbc_bound(results, objective)
        status = SOLVED if condition == TerminationCondition.optimal else INCUMBENT
        return SolveOutcome(status, objective, bound, wall, f"{self.name}: {condition}")


#: glpsol's branch-and-bound progress: ``+ 192: mip = 2.6e+00 >= 2.5e+00 3.1% (12; 0)`` (``>>>>>``
#: instead of ``mip =`` marks a new incumbent; ``tree is empty`` instead of the bound: search done).
_GLPK_MIP_LINE = re.compile(r"(?:mip\s*=|>>>>>)\s*(\S+(?: found yet)?)\s*[<>]=\s*(tree is empty|\S+)")


def _glpk_bound(log_text: str, objective: float) -> float | None:
    """The best bound from glpsol's log (its last progress line); the objective for a pure LP."""
    bound: float | None = None
    seen = False
    for match in _GLPK_MIP_LINE.finditer(log_text):
        seen = True
        text = match.group(2)
        if text == "tree is empty":
            bound = objective  # the search finished: the incumbent is optimal
            continue
        try:
            value = float(text)
        except ValueError:
            continue
        bound = value if math.isfinite(value) else None
    if not seen and "OPTIMAL LP SOLUTION FOUND" in log_text:
        return objective  # no integer variables: the LP optimum is its own bound
    return bound


def _cbc_bound(results: object, objective: float) -> float | None:
    lower = getattr(getattr(results, "problem", None), "lower_bound", None)
    if lower is None:
        return None
    try:
        value = float(lower)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def make_backend(name: str, threads: int = 1, batch_params: bool = True, *, devex: bool = False) -> Backend:
    """A fresh back-end for one model; raises :class:`SolverUnavailable` if it is not installed.

    ``batch_params=False`` keeps APPSI's own parameter push (HiGHS only; the reference the
    batched push is checked against in ``benchmarks.mpc_solve``). ``devex`` prices warm LP
    re-solves by Devex instead of dual steepest edge (HiGHS only; see :meth:`HighsBackend.solve`).
    """
    if name == "highs":
        return HighsBackend(threads, batch_params, devex=devex)
    return ShellBackend(name)
