"""Simulation speed: a year of the reference house under the rule-based controller, 5-min decisions.

Prints the wall time, the simulated-time / wall-time ratio and the peak memory; the last line
of output is one JSON object with the figures. Absolute times drift by tens of per cent on a
shared machine, so the run also measures CartPole-v1 (``gymnasium.make``, random actions drawn
beforehand) in the same process: ``decision_cost_in_cartpole_steps`` is the cost of one decision
(observe, decide, safety, apply, advance, record) in CartPole steps. Goal: ≤ 3.

    python -m benchmarks.sim_speed [--scenario year-v1] [--repeat 3] [--cartpole-steps 100000]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time

import gymnasium as gym

from controllers.rule_based import RuleBasedController
from twin.config import reference_house
from twin.registry import load_scenario
from twin.runner import RunSettings, simulate


def cartpole_steps_per_s(steps: int, seed: int = 0) -> float:
    """CartPole-v1 steps per wall second through ``gymnasium.make`` (the same-run reference)."""
    env = gym.make("CartPole-v1")
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(1024)]
    env.reset(seed=seed)
    t0 = time.perf_counter()
    for i in range(steps):
        _, _, terminated, truncated, _ = env.step(actions[i % 1024])
        if terminated or truncated:
            env.reset()
    elapsed = time.perf_counter() - t0
    env.close()
    return steps / elapsed


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="year-v1")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the median is reported")
    parser.add_argument("--decision-interval-s", type=float, default=300.0)
    parser.add_argument("--cartpole-steps", type=int, default=100_000)
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
    cartpole = statistics.median(cartpole_steps_per_s(args.cartpole_steps, seed=k) for k in range(args.repeat))
    us_per_decision = wall_s / len(result.log) * 1e6
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
        "us_per_decision": round(us_per_decision, 2),
        "cartpole_steps_per_s": round(cartpole),
        "decision_cost_in_cartpole_steps": round(us_per_decision * 1e-6 * cartpole, 2),
        "sim_to_wall_ratio": round(simulated_s / wall_s),
        "scenario_generation_s": round(scenario_s, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "floor_s": 5.0,
        "aim_s": 1.0,
        "python": platform.python_version(),
    }
    print(f"simulated {figures['simulated_days']:.0f} days in {wall_s:.2f} s wall "
          f"(×{figures['sim_to_wall_ratio']:,} real time, {figures['us_per_decision']} µs per decision = "
          f"{figures['decision_cost_in_cartpole_steps']} CartPole-v1 steps at {figures['cartpole_steps_per_s']:,}/s); "
          f"peak RSS {figures['peak_rss_mb']} MB")
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
