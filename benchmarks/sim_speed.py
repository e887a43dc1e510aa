"""Simulation speed: a year of the reference house under the rule-based controller, 5-min decisions.

Prints the wall time, the simulated-time / wall-time ratio and the peak memory; the last line
of output is one JSON object with the figures. Floor: a simulated year in ≤ 5 s; aim ≤ 1 s.

    python -m benchmarks.sim_speed [--scenario year-v1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time

from controllers.rule_based import RuleBasedController
from twin.config import reference_house
from twin.registry import load_scenario
from twin.runner import RunSettings, simulate


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="year-v1")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the median is reported")
    parser.add_argument("--decision-interval-s", type=float, default=300.0)
    args = parser.parse_args(argv)

    house = reference_house()
    t0 = time.perf_counter()
    scenario = load_scenario(args.scenario)
    scenario_s = time.perf_counter() - t0
    settings = RunSettings(decision_interval_s=args.decision_interval_s)

    totals, loops = [], []
    result = None
    for k in range(args.repeat):
        t0 = time.perf_counter()
        result = simulate(house, scenario, RuleBasedController(house), settings, controller_name="rule-based")
        totals.append(time.perf_counter() - t0)
        loops.append(result.meta["wall_time_s"])
        print(f"run {k + 1}/{args.repeat}: {totals[-1]:.2f} s "
              f"(event loop {loops[-1]:.2f} s, {len(result.log)} intervals)", flush=True)
    wall_s = statistics.median(totals)
    simulated_s = scenario.duration_s
    figures = {
        "benchmark": "sim_speed",
        "scenario": scenario.name,
        "controller": "rule-based",
        "decision_interval_s": args.decision_interval_s,
        "intervals": len(result.log),
        "simulated_days": simulated_s / 86400,
        "wall_time_s": round(wall_s, 3),
        "wall_time_runs_s": [round(t, 3) for t in totals],
        "event_loop_s": round(statistics.median(loops), 3),
        "us_per_decision": round(wall_s / len(result.log) * 1e6, 2),
        "sim_to_wall_ratio": round(simulated_s / wall_s),
        "scenario_generation_s": round(scenario_s, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "floor_s": 5.0,
        "aim_s": 1.0,
        "python": platform.python_version(),
    }
    print(f"simulated {figures['simulated_days']:.0f} days in {wall_s:.2f} s wall "
          f"(×{figures['sim_to_wall_ratio']:,} real time, {figures['us_per_decision']} µs per decision); "
          f"peak RSS {figures['peak_rss_mb']} MB")
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
