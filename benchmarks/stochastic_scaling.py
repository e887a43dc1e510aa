"""Stochastic MPC solve time against its scenario count, on the reference house (HiGHS).

The deterministic MPC drives the twin through a scenario and its re-plans' inputs are recorded
(``benchmarks.mpc_solve``); then a fresh deterministic optimizer and a fresh stochastic one per
scenario count re-solve that same sequence (persistent HiGHS warm-starts as in operation). A
re-plan is the slow part of a decision (the decisions between re-plans execute the plan in
milliseconds), so the solve p95 is the decision p95 of re-planning decisions. Reported: build
time (``prepare()``: the Pyomo models built and handed to HiGHS, what the controller's
constructor does once per house), solve p50 / p95 / max, failures, and the p95 as a ratio to the
deterministic MPC's in the same run. The last line is one JSON object. Goal: p95 ≤ 5 s at the default count.

    python -m benchmarks.stochastic_scaling [--scenario winter-week-v1] [--start-hour 14] [--solves 12]
                                            [--counts 1,3,9,27]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks.mpc_solve import record_inputs
from controllers.mpc import MpcSettings
from controllers.mpc.inputs import PlanInputs
from controllers.mpc.solve import Optimizer
from controllers.mpc.stochastic.optimizer import StochasticOptimizer
from controllers.mpc.stochastic.settings import StochasticSettings
from twin.config import reference_house


def time_optimizer(opt: Optimizer, inputs: list[PlanInputs], build: Any) -> dict[str, Any]:
    """Build (``build()``), then solve every input in order; times in seconds."""
    t0 = time.perf_counter()
    build()
    build_s = time.perf_counter() - t0
    times, failures = [], 0
    for x in inputs:
        plan, report = opt.solve(x)
        times.append(report.wall_time_s)
        failures += plan is None
    arr = np.asarray(times)
    return {"build_s": build_s, "solve_p50_s": float(np.percentile(arr, 50)),
            "solve_p95_s": float(np.percentile(arr, 95)), "solve_max_s": float(arr.max()), "failures": failures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="winter-week-v1")
    parser.add_argument("--start-hour", type=float, default=14.0)
    parser.add_argument("--solves", type=int, default=12)
    parser.add_argument("--counts", default="1,3,9,27")
    args = parser.parse_args()
    settings = MpcSettings()
    counts = [int(c) for c in args.counts.split(",")]
    inputs, _ = record_inputs(args.scenario, args.start_hour, args.solves, settings)
    house = reference_house()
    rows: dict[str, dict[str, Any]] = {}
    deterministic = Optimizer(house, settings)
    rows["mpc"] = time_optimizer(deterministic, inputs, deterministic.prepare)
    for n in counts:
        opt = StochasticOptimizer(house, settings, replace(StochasticSettings(), scenarios=n))
        rows[f"mpc-stochastic n={n}"] = time_optimizer(opt, inputs, opt.prepare)
    reference = rows["mpc"]["solve_p95_s"]
    table = Table(title=f"solve time, {len(inputs)} re-plans of {args.scenario} (reference house, HiGHS)")
    for column in ("controller", "build s", "p50 s", "p95 s", "max s", "failures", "p95 / mpc p95"):
        table.add_column(column, justify="left" if column == "controller" else "right", no_wrap=True)
    for name, row in rows.items():
        row["p95_ratio_to_mpc"] = row["solve_p95_s"] / reference if reference > 0 else None
        table.add_row(name, f"{row['build_s']:.2f}", f"{row['solve_p50_s']:.2f}", f"{row['solve_p95_s']:.2f}",
                      f"{row['solve_max_s']:.2f}", str(row["failures"]), f"{row['p95_ratio_to_mpc']:.1f}")
    Console(width=max(120, Console().width)).print(table)  # wide enough for every column, unwrapped
    print(json.dumps({"scenario": args.scenario, "start_hour": args.start_hour, "solves": len(inputs),
                      "machine": platform.processor() or platform.machine(), "rows": rows}))


if __name__ == "__main__":
    main()
