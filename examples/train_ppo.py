"""Train a PPO agent on ``pems/House-v0`` and compare it with the rule-based baseline in the runner.

Needs the ``[rl]`` extra (CPU torch + stable-baselines3; ``scripts/bootstrap.sh`` installs it)::

    .venv/bin/python examples/train_ppo.py --timesteps 200000 --out runs/ppo
    PEMS_RL_POLICY=runs/ppo/policy.npz ./pems simulate --controller rl-policy --scenario winter-week-v1 --out runs/x

Trains on random windows of ``--scenario`` (default: a year, so the agent sees every season)
and evaluates on a different named scenario (default ``winter-week-v1``), where the trained
policy runs as a ``Controller`` through ``twin.runner.simulate`` beside the rule-based
baseline, with the same runner settings. Writes ``--out`` atomically: ``model.zip`` (SB3, to
continue training), ``policy.npz`` (the deterministic actor, loadable without torch),
``learning_curve.png``, ``eval/<controller>/`` run directories (log, KPIs, plots) and
``comparison.json``; prints the KPI table. The last output line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from twin.output import atomic_directory, save_run, write_json

console = Console(stderr=True)
COMPARED_KPIS = ("cost", "discomfort_kh", "ev_unmet_kwh", "import_kwh", "export_kwh", "self_consumption",
                 "peak_import_kw", "battery_cycles", "relay_switches", "decide_time_mean_s")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="pems/House-v0", choices=["pems/House-v0", "pems/Battery-v0"])
    p.add_argument("--scenario", default="year-v1", help="training scenario (name or file)")
    p.add_argument("--episode-days", type=float, default=3.0, help="length of the random training windows")
    p.add_argument("--heating", default="setpoint", choices=["relay", "setpoint"],
                   help="heating action (setpoint: the agent moves a thermostat target; easier to learn)")
    p.add_argument("--timesteps", type=int, default=200_000, help="environment steps to train for")
    p.add_argument("--n-envs", type=int, default=2, help="parallel environments")
    p.add_argument("--vec", default="async", choices=["sync", "async"], help="in-process or subprocess envs")
    p.add_argument("--n-steps", type=int, default=1024, help="PPO rollout length per environment")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--learning-rate", type=float, default=3e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-scenario", default="winter-week-v1", help="named scenario the agent is compared on")
    p.add_argument("--eval-days", type=float, default=None, help="evaluate on the first days only")
    p.add_argument("--eval-interval-s", type=float, default=300.0,
                   help="runner decision interval of the comparison (the policy itself decides every 15 min)")
    p.add_argument("--out", type=Path, default=Path("runs/ppo"))
    p.add_argument("--no-plots", action="store_true")
    return p.parse_args(argv)


def train(args: argparse.Namespace, workdir: Path):  # noqa: ANN201 - an SB3 model
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    class Progress(BaseCallback):
        """A rich progress bar and the episode returns, for the learning curve."""

        def __init__(self, total: int) -> None:
            super().__init__()
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            self.bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), console=console, transient=True)
            self.task = self.bar.add_task("training PPO", total=total)
            self.total, self.next_report, self.t0 = total, max(1, total // 10), time.perf_counter()
            self.episodes: list[tuple[int, float]] = []

        def _on_training_start(self) -> None:
            self.bar.start()

        def _on_step(self) -> bool:
            self.bar.update(self.task, completed=self.num_timesteps)
            if not console.is_terminal and self.num_timesteps >= self.next_report:  # logs get a line per 10 %
                console.print(f"training PPO: {self.num_timesteps:,}/{self.total:,} steps "
                              f"({time.perf_counter() - self.t0:.0f} s)")
                self.next_report += max(1, self.total // 10)
            for info in self.locals.get("infos", ()):
                if "episode" in info:
                    self.episodes.append((self.num_timesteps, float(info["episode"]["r"])))
            return True

        def _on_training_end(self) -> None:
            self.bar.stop()

    # render_mode=None: make_vec_env would otherwise ask for "rgb_array", which these envs do not draw.
    env_kwargs = {"scenario": args.scenario, "episode_days": args.episode_days, "random_start": True,
                  "render_mode": None}
    if args.env == "pems/House-v0":
        env_kwargs["heating"] = args.heating
    # "module:id" makes subprocess workers import twin.env (which registers the ids) themselves.
    vec_cls = SubprocVecEnv if args.vec == "async" and args.n_envs > 1 else DummyVecEnv
    venv = make_vec_env(f"twin.env:{args.env}", n_envs=args.n_envs, seed=args.seed, env_kwargs=env_kwargs,
                        vec_env_cls=vec_cls)
    n_steps = max(8, args.n_steps)
    batch = min(args.batch_size, n_steps * args.n_envs)
    model = PPO("MlpPolicy", venv, n_steps=n_steps, batch_size=batch, learning_rate=args.learning_rate,
                gamma=0.99, seed=args.seed, device="cpu", verbose=0,
                policy_kwargs={"log_std_init": -1.0, "net_arch": {"pi": [64, 64], "vf": [64, 64]}})
    progress = Progress(args.timesteps)
    t0 = time.perf_counter()
    model.learn(total_timesteps=args.timesteps, callback=progress)
    train_s = time.perf_counter() - t0
    venv.close()
    model.save(workdir / "model.zip")
    return model, progress.episodes, train_s


def plot_learning_curve(episodes: list[tuple[int, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    if episodes:
        steps, returns = np.array(episodes).T
        ax.plot(steps, returns, ".", alpha=0.4, label="episode return")
        window = max(1, len(returns) // 20)
        smooth = np.convolve(returns, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1:], smooth, label=f"mean of {window}")
        ax.legend()
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return (−cost − penalties)")
    ax.set_title("PPO training")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def evaluate(args: argparse.Namespace, policy_path: Path, workdir: Path) -> dict[str, dict]:
    import pandas as pd

    from controllers.rl_policy import PolicyController
    from controllers.rule_based import RuleBasedController
    from twin.config import reference_house
    from twin.env import battery_only
    from twin.registry import load_scenario
    from twin.runner import RunSettings, simulate

    house = reference_house()
    if args.env == "pems/Battery-v0":
        house = battery_only(house)
    scenario = load_scenario(args.eval_scenario)
    if args.eval_days is not None:
        scenario = scenario.window(scenario.start, scenario.start + pd.Timedelta(days=args.eval_days))
    settings = RunSettings(decision_interval_s=args.eval_interval_s, seed=args.seed)
    results = {}
    for name, controller in (("rule-based", RuleBasedController(house)),
                             ("ppo", PolicyController.load(policy_path, house))):
        result = simulate(house, scenario, controller, settings, controller_name=name)
        save_run(result, workdir / "eval" / name, plots=not args.no_plots)
        results[name] = result.kpis
    return results


def kpi_table(kpis: dict[str, dict], title: str) -> Table:
    table = Table(title=title, header_style="bold")
    table.add_column("KPI")
    for name in kpis:
        table.add_column(name, justify="right")
    for key in COMPARED_KPIS:
        values = [kpis[name].get(key) for name in kpis]
        table.add_row(key, *("–" if v is None else f"{v:,.4g}" for v in values))
    return table


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    try:
        import stable_baselines3  # noqa: F401
    except ImportError:
        console.print("[bold red]error:[/] stable-baselines3 is missing: pip install torch==2.13.0 && "
                      "pip install -e '.[rl]'")
        sys.exit(2)
    from controllers.rl_policy import export_sb3_policy
    from twin.config import reference_house
    from twin.env import ActionDecoder, EnvConfig, ObservationEncoder, battery_only

    house = reference_house() if args.env == "pems/House-v0" else battery_only(reference_house())
    config = EnvConfig(episode_days=args.episode_days,
                       heating=args.heating if args.env == "pems/House-v0" else "relay")
    features = ObservationEncoder(house, config.forecast_hours, config.normalize).names
    actions = ActionDecoder(house, config.decision_interval_s, config.heating).names
    with atomic_directory(args.out) as workdir:
        model, episodes, train_s = train(args, workdir)
        policy_path = export_sb3_policy(model, workdir / "policy.npz", config, features, actions, env_id=args.env,
                                        note=f"PPO, {args.timesteps} steps on {args.scenario}, seed {args.seed}")
        if not args.no_plots:
            plot_learning_curve(episodes, workdir / "learning_curve.png")
        kpis = evaluate(args, policy_path, workdir)
        summary = {
            "example": "train_ppo", "env": args.env, "train_scenario": args.scenario, "timesteps": args.timesteps,
            "train_wall_s": round(train_s, 1), "train_steps_per_s": round(args.timesteps / train_s),
            "episodes": len(episodes), "eval_scenario": args.eval_scenario, "eval_days": args.eval_days,
            "eval_interval_s": args.eval_interval_s, "seed": args.seed,
            "kpis": {name: {k: values.get(k) for k in COMPARED_KPIS} for name, values in kpis.items()},
        }
        write_json(workdir / "comparison.json", summary)
        write_json(workdir / "meta.json", {"example": "train_ppo", "args": {k: str(v) for k, v in vars(args).items()}})
    Console().print(kpi_table(kpis, f"{args.eval_scenario}: PPO ({args.timesteps:,} steps) vs rule-based"))
    console.print(f"trained in {train_s:.0f} s; wrote {args.out}/ (policy.npz, model.zip, eval/, comparison.json)")
    print(json.dumps(summary, default=str))
    return summary


if __name__ == "__main__":
    main()
