"""Environment speed: steps/s of ``pems/House-v0`` (random actions, 15-min steps), single and vectorised,
with CartPole-v1 measured in the same run as the Python-overhead reference.

Every environment is created with ``gymnasium.make`` / ``gymnasium.make_vec`` (default wrappers
included) and stepped with random actions drawn beforehand from its action space (so the figure
is the environment's, not the sampler's; ``single_with_sampling`` adds ``action_space.sample()``
per step, as a naive loop would). Episodes reset automatically when truncated. The forecast part
of the observation is cached per data step; the main figures are the steady state of training
(cache warmed with ``warm_forecast_cache()``), ``single_cold`` is a fresh environment's first
pass. Vectorised figures count environment steps (``num_envs`` per vector step). The median (and
best) of ``--repeat`` runs is reported, per wall second and — less disturbed on a shared machine —
per CPU second of the process (single-process runs); the last output line is one JSON object.
Floor: ≥ 5,000 steps/s single env; aim ≥ 20,000 (CityLearn ≈ 400, CartPole ≈ 118,000 on the
reference machine).

``batched`` lists the native vector environment (``make_vec(..., vectorization_mode="vector_entry_point")``,
N houses in this process) for each ``--batched`` N: aggregate steps/s, per CPU second, and
``cartpole_ratio`` = aggregate / CartPole single of the same run (issue 15's goal: ≥ 2 at N = 64).

    python -m benchmarks.env_speed [--steps 20000] [--repeat 3] [--scenario year-v1] [--batched 1 8 64 256]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable

import gymnasium as gym

import twin.env  # noqa: F401 - registers pems/House-v0 and pems/Battery-v0

FLOOR_STEPS_PER_S = 5_000
AIM_STEPS_PER_S = 20_000
BATCHED_NUM_ENVS = (1, 8, 64, 256)
BATCHED_GOAL_CARTPOLE_RATIO = 2.0  # issue 15: aggregate at N = 64 ≥ 2 × CartPole single


def random_actions(space: gym.Space, n: int, seed: int) -> list:
    space.seed(seed)
    return [space.sample() for _ in range(n)]


def time_single(make: Callable[[], gym.Env], steps: int, seed: int, sample_each_step: bool = False,
                warm: bool = True) -> tuple[float, float]:
    """Steps per wall second and per CPU second of one environment; resets at truncation included."""
    env = make()
    if warm and hasattr(env.unwrapped, "warm_forecast_cache"):
        env.unwrapped.warm_forecast_cache()
    actions = random_actions(env.action_space, min(steps, 4096), seed)
    n_actions = len(actions)
    env.reset(seed=seed)
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(steps):
        action = env.action_space.sample() if sample_each_step else actions[i % n_actions]
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    env.close()
    return steps / elapsed, steps / cpu


def time_vector(make: Callable[[], gym.vector.VectorEnv], steps: int, seed: int,
                in_process: bool = False) -> tuple[float, float | None]:
    """Environment steps per wall second of a vector environment (``steps`` counts sub-environment steps).

    ``in_process``: the vector environment runs in this process, so steps per CPU second are given too.
    """
    envs = make()
    try:
        envs.call("warm_forecast_cache")
        n = envs.num_envs
        actions = random_actions(envs.action_space, 1024, seed)
        envs.reset(seed=seed)
        vector_steps = max(1, steps // n)
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(vector_steps):
            envs.step(actions[i % len(actions)])
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        envs.close()
    # CPU time is spread over processes unless the vector env runs in this one
    return vector_steps * n / elapsed, (vector_steps * n / cpu if in_process else None)


def median_of(label: str, repeat: int, run: Callable[[], tuple[float, float | None]]) -> dict:
    """Median and best of ``repeat`` runs, per wall second and (single process) per CPU second."""
    walls, cpus = [], []
    for k in range(repeat):
        wall, cpu = run()
        walls.append(wall)
        if cpu is not None:
            cpus.append(cpu)
        cpu_text = f", {cpu:,.0f} per CPU second" if cpu is not None else ""
        print(f"  {label} run {k + 1}/{repeat}: {wall:,.0f} steps/s{cpu_text}", flush=True)
    out = {"steps_per_s": round(statistics.median(walls)), "best": round(max(walls)), "runs": [round(r) for r in walls]}
    if cpus:
        out["steps_per_cpu_s"] = round(statistics.median(cpus))
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="year-v1", help="episode source of pems/House-v0")
    parser.add_argument("--episode-days", type=float, default=7.0)
    parser.add_argument("--steps", type=int, default=20_000, help="environment steps per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is reported")
    parser.add_argument("--num-envs", type=int, default=2, help="sub-environments of the vectorised runs")
    parser.add_argument("--cartpole-steps", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batched", type=int, nargs="*", default=list(BATCHED_NUM_ENVS),
                        help="num_envs of the native batched env (vectorization_mode='vector_entry_point')")
    args = parser.parse_args(argv)

    house_kwargs = {"scenario": args.scenario, "episode_days": args.episode_days}
    t0 = time.perf_counter()
    probe = gym.make("pems/House-v0", **house_kwargs)
    make_s = time.perf_counter() - t0
    obs_dim, act_dim = probe.observation_space.shape[0], probe.action_space.shape[0]
    probe.close()
    print(f"pems/House-v0 on {args.scenario}: {obs_dim} observations, {act_dim} actions, "
          f"15-min steps, {args.episode_days:g}-day episodes; gym.make took {make_s:.2f} s")

    def house() -> gym.Env:
        return gym.make("pems/House-v0", **house_kwargs)

    figures: dict = {"benchmark": "env_speed", "env": "pems/House-v0", "scenario": args.scenario,
                     "episode_days": args.episode_days, "decision_interval_s": 900.0, "obs_dim": obs_dim,
                     "action_dim": act_dim, "steps": args.steps, "make_s": round(make_s, 3)}
    figures["single"] = median_of("House-v0 single", args.repeat, lambda: time_single(house, args.steps, args.seed))
    figures["single_cold"] = median_of("House-v0 single, forecasts not cached yet", args.repeat,
                                       lambda: time_single(house, args.steps, args.seed, warm=False))
    figures["single_with_sampling"] = median_of(
        "House-v0 single + action_space.sample()", args.repeat,
        lambda: time_single(house, args.steps, args.seed, sample_each_step=True))
    for mode in ("sync", "async"):
        figures[f"vector_{mode}_{args.num_envs}"] = median_of(
            f"House-v0 make_vec {mode} × {args.num_envs}", args.repeat,
            lambda mode=mode: time_vector(lambda: gym.make_vec("pems/House-v0", num_envs=args.num_envs,
                                                               vectorization_mode=mode, **house_kwargs),
                                          args.steps, args.seed))
    batched = []
    for n in args.batched:
        fig = median_of(
            f"House-v0 make_vec vector_entry_point × {n}", args.repeat,
            lambda n=n: time_vector(lambda: gym.make_vec("pems/House-v0", num_envs=n,
                                                         vectorization_mode="vector_entry_point", **house_kwargs),
                                    max(args.steps, 4 * n), args.seed, in_process=True))
        batched.append({"num_envs": n, **fig})
    figures["batched"] = batched
    figures["battery_single"] = median_of(
        "Battery-v0 single", args.repeat,
        lambda: time_single(lambda: gym.make("pems/Battery-v0", scenario=args.scenario), args.steps, args.seed))
    figures["cartpole_single"] = median_of(
        "CartPole-v1 single", args.repeat,
        lambda: time_single(lambda: gym.make("CartPole-v1"), args.cartpole_steps, args.seed))
    single = figures["single"]["steps_per_s"]
    cartpole = figures["cartpole_single"]["steps_per_s"]
    for fig in batched:
        fig["cartpole_ratio"] = round(fig["steps_per_s"] / cartpole, 4)  # aggregate / CartPole single
    at_64 = [fig for fig in batched if fig["num_envs"] == 64]
    figures["batched_goal_cartpole_ratio"] = BATCHED_GOAL_CARTPOLE_RATIO
    figures["batched_meets_goal"] = bool(at_64) and at_64[0]["cartpole_ratio"] >= BATCHED_GOAL_CARTPOLE_RATIO
    figures.update({
        "us_per_step": round(1e6 / single, 1),
        "cpu_us_per_step": round(1e6 / figures["single"]["steps_per_cpu_s"], 1),
        "cartpole_ratio": round(figures["cartpole_single"]["steps_per_s"] / single, 1),
        "floor_steps_per_s": FLOOR_STEPS_PER_S, "aim_steps_per_s": AIM_STEPS_PER_S,
        "meets_floor": single >= FLOOR_STEPS_PER_S,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "cpus": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2), "python": platform.python_version(),
        "gymnasium": gym.__version__,
    })
    print(f"pems/House-v0: {single:,} steps/s single ({figures['single']['steps_per_cpu_s']:,} per CPU second; "
          f"{figures['single_cold']['steps_per_s']:,} before forecasts are cached), "
          f"{figures[f'vector_sync_{args.num_envs}']['steps_per_s']:,} sync × {args.num_envs}, "
          f"{figures[f'vector_async_{args.num_envs}']['steps_per_s']:,} async × {args.num_envs}; "
          f"CartPole-v1 {figures['cartpole_single']['steps_per_s']:,} steps/s "
          f"(×{figures['cartpole_ratio']} faster); floor {FLOOR_STEPS_PER_S:,}, aim {AIM_STEPS_PER_S:,}")
    for fig in batched:
        print(f"  batched × {fig['num_envs']}: {fig['steps_per_s']:,} aggregate steps/s "
              f"= {fig['cartpole_ratio']} × CartPole single")
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
