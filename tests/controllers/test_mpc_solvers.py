"""Solver back-ends: HiGHS, GLPK and CBC agree; time limits hold (and do not fire spuriously); a
missing solver is reported, not crashed on."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from builders import small_house
from mpc_inputs import block_hours, flat_inputs

from controllers.mpc.settings import MpcSettings
from controllers.mpc.solve import Optimizer
from controllers.mpc.solvers import NO_SOLUTION, SOLVED, SolverUnavailable, _glpk_bound, make_backend
from twin.config import reference_house

#: A short horizon keeps the shell solvers (which write the model to a file) quick.
SHORT = ((900.0, 4 * 3600.0), (3600.0, 12 * 3600.0))


def small_instance(solver: str) -> tuple[Optimizer, object]:
    opt = Optimizer(small_house(n_rooms=2, two_node=True), MpcSettings(solver=solver, strategy="milp", blocks=SHORT))
    hours = block_hours(opt)
    k = opt.grid.n_blocks
    prices = 0.2 + 0.15 * np.sin(hours / 3.0)
    inputs = flat_inputs(opt, import_price_per_kwh=prices, export_price_per_kwh=prices - 0.15,
                         pv_kw=np.where((hours > 2) & (hours < 6), 3.0, 0.0), ev_fraction=np.ones(k),
                         ev_need_kwh=13.0, terminal_price_per_kwh=0.2)
    return opt, inputs


def installed(solver: str) -> bool:
    return {"highs": True, "glpk": shutil.which("glpsol") is not None, "cbc": shutil.which("cbc") is not None}[solver]


def test_highs_glpk_and_cbc_agree_within_the_gap():
    objectives = {}
    for solver in ("highs", "glpk", "cbc"):
        if not installed(solver):
            pytest.skip(f"{solver} is not installed (scripts/bootstrap.sh installs it)")
        opt, inputs = small_instance(solver)
        plan, report = opt.solve(inputs)
        assert report.ok, f"{solver}: {report.message}"
        assert plan.bound is not None, f"{solver} reported no bound"
        assert plan.bound <= plan.objective + 1e-6
        objectives[solver] = plan.objective
    reference = objectives["highs"]
    for solver, value in objectives.items():
        assert abs(value - reference) <= 0.011 * abs(reference) + 0.05, f"{solver}: {value} vs highs {reference}"


def test_lp_first_reaches_the_milp_s_objective_within_the_gap():
    opt, inputs = small_instance("highs")
    direct, _ = opt.solve(inputs)
    fast = Optimizer(opt.house, MpcSettings(blocks=SHORT))
    plan, report = fast.solve(inputs)
    assert report.ok
    assert plan.method in ("lp", "lp+dispatch", "milp")
    assert plan.objective == pytest.approx(direct.objective, rel=0.011, abs=0.05)
    assert plan.bound <= plan.objective + 1e-6


def test_highs_honours_its_time_limit():
    """The reference house's full MILP cannot be solved in 0.1 s: HiGHS must stop, without a solution."""
    opt = Optimizer(reference_house(), MpcSettings(strategy="milp", time_limit_s=0.1))
    k = opt.grid.n_blocks
    inputs = flat_inputs(opt, ev_fraction=np.ones(k), ev_need_kwh=30.0,
                         import_price_per_kwh=np.linspace(0.1, 0.4, k))
    plan, report = opt.solve(inputs)
    assert plan is None and not report.ok
    assert "maxTimeLimit" in report.message


def test_highs_time_limit_does_not_accumulate_over_solves():
    """HiGHS measures its limit against its lifetime run time; 25 quick solves must all finish."""
    opt = Optimizer(small_house(n_rooms=2), MpcSettings(time_limit_s=0.5))
    backend = opt.backend("lp")
    model = opt.model("lp")
    total = 0.0
    for i in range(25):
        model.update(flat_inputs(opt, outdoor_c=np.full(opt.grid.n_blocks, -float(i % 5))))
        outcome = backend.solve(model.m, time_limit_s=0.5, mip_gap=0.01, abs_gap=0.0, warm_start=False)
        assert outcome.status == SOLVED, f"solve {i}: {outcome.message}"
        total = backend._opt._solver_model.getRunTime()  # noqa: SLF001 - what HiGHS itself counts
    assert total > 0.0


def test_a_missing_solver_is_reported(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SolverUnavailable, match="'glpsol' is not on PATH"):
        make_backend("glpk")
    with pytest.raises(SolverUnavailable, match="'cbc' is not on PATH"):
        make_backend("cbc")


def test_glpk_bound_is_read_from_its_log():
    log = """GLPK Integer Optimizer 5.0
+   120: mip =     not found yet >=              -inf        (1; 0)
+   410: >>>>>   5.123000000e+01 >=   4.900000000e+01   4.3% (12; 0)
+   655: mip =   5.110000000e+01 >=   5.080000000e+01   0.6% (20; 3)
TIME LIMIT EXCEEDED; SEARCH TERMINATED"""
    assert _glpk_bound(log, 51.1) == pytest.approx(50.8)
    done = log + "\n+ 700: mip = 5.100000000e+01 >= tree is empty 0.0% (0; 23)\nINTEGER OPTIMAL SOLUTION FOUND"
    assert _glpk_bound(done, 51.0) == 51.0
    assert _glpk_bound("OPTIMAL LP SOLUTION FOUND", 3.0) == 3.0  # a pure LP is its own bound
    assert _glpk_bound("+ 181: mip = not found yet >= -inf (1; 0)", 3.0) is None
    assert NO_SOLUTION != SOLVED
