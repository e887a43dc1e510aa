"""The scenario benchmark: every (scenario, controller) pair on the twin, on Dask, with a report.

    pems bench [--scenarios A,B] [--controllers rule-based,mpc,oracle] [--out DIR]
               [--start DATE] [--days N] [--workers N] [--scheduler tcp://host:port] [--solver highs|glpk|cbc]
               [--policy runs/ppo/agent.npz ...]

``--start``/``--days`` run a window of every scenario (local time of the scenario); the rows
before ``--start`` are handed to controllers as ``ControllerContext.history`` (``mpc-learned``
trains its forecasters on them) and are never run.

Each pair is one task: a worker builds the house, the scenario and a fresh controller, runs
``twin.runner.simulate`` and sends back the run (log, KPIs, and a planning controller's plan
log). The client writes everything, so an existing cluster's workers need no shared disk.
Each ``--policy FILE`` (an RL policy, ``controllers.rl_policy``) adds the controller
``rl-<file stem>``; the client reads the file and ships its arrays with the spec, so that holds
for policies too.
Output, all of it or nothing (:func:`twin.output.atomic_directory`)::

    DIR/bench.json            what was run (the marker that lets a later bench replace DIR)
    DIR/kpis.csv              one row per pair: scenario, controller, every KPI, oracle_capture, oracle_gap
    DIR/report.md, .html      KPI tables, forecast scorecards, cost bars, cost vs discomfort, time series
    DIR/figures/*.png
    DIR/runs/<scenario>/<controller>/   the run directory (log.parquet, kpis.json, plans.csv, plots/,
                              and for a controller that plans with forecasts forecast_scorecard.csv:
                              MAE/RMSE/bias of the forecasts it planned with, by lead-time bucket)

``oracle_capture = (cost_baseline − cost) / (cost_baseline − cost_oracle)`` for each scenario
where both the baseline (``rule-based``) and the ``oracle`` ran and the oracle is cheaper;
``oracle_gap = cost − cost_oracle`` (what forecast error and planning cost against the oracle).
Same seed, same KPIs — except ``decide_time_*``, which are wall-clock times.
"""

from __future__ import annotations

import os
import platform
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from benchmarks.defaults import DEFAULT_CONTROLLERS, DEFAULT_OUT, DEFAULT_SCENARIOS
from controllers.forecasting.scorecard import ScoredController
from twin.config import HouseConfig, load_house, reference_house
from twin.errors import ConfigError, TwinError
from twin.kpis import KPI_KEYS
from twin.library_log import LOG_FILE_NAME, library_log
from twin.output import atomic_directory, check_replaceable, save_run, write_json
from twin.registry import ControllerContext, controller_entry, make_controller
from twin.runner import RunResult, RunSettings, simulate
from twin.scenario import Scenario
from twin.window import window_and_history

if TYPE_CHECKING:
    from controllers.rl_policy import PolicyFile
    from twin.contracts import Controller

BENCH_MARKER = "bench.json"
PROGRESS_TOPIC = "pems-bench-progress"


@dataclass(frozen=True)
class BenchSpec:
    """What to run and where to write it.

    ``policies``: RL policy files; each adds controller ``rl-<file stem>`` to ``controllers``
    (at the end, unless named there already) and takes precedence over a registered controller
    of that name (e.g. the same file on ``$PEMS_RL_POLICY``). The files are read here, once.
    """

    scenarios: tuple[str, ...] = DEFAULT_SCENARIOS
    controllers: tuple[str, ...] = DEFAULT_CONTROLLERS
    out: Path = Path(DEFAULT_OUT)
    house: Path | None = None
    decision_interval_s: float = 300.0
    seed: int = 0
    options: Mapping[str, str] = field(default_factory=dict)
    workers: int | None = None
    scheduler: str | None = None
    baseline: str = "rule-based"
    oracle: str = "oracle"
    plots: bool = True
    policies: tuple[Path, ...] = ()
    #: The policy files read into memory, by controller name (shipped to workers with the spec).
    policy_files: Mapping[str, PolicyFile] = field(init=False, repr=False, compare=False, default_factory=dict)
    #: Run window: local start (ISO date or time, in each scenario's time zone) and length; None: all.
    start: str | None = None
    days: float | None = None

    def __post_init__(self) -> None:
        if self.policies:
            from controllers.rl_policy import PolicyFile

            files = [PolicyFile.read(path) for path in self.policies]
            names = [f.controller_name for f in files]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ConfigError(f"--policy files give the controller names {duplicates} more than once (the name "
                                  f"is rl-<file stem>: rename a file)", "policy")
            # object.__setattr__: the dataclass is frozen; these are derived once, at construction.
            object.__setattr__(self, "policy_files", dict(zip(names, files, strict=True)))
            object.__setattr__(self, "controllers",
                               (*self.controllers, *(n for n in names if n not in self.controllers)))
        for name, values in (("scenarios", self.scenarios), ("controllers", self.controllers)):
            if not values:
                raise ConfigError(f"--{name} names nothing", name)
            duplicates = sorted({v for v in values if values.count(v) > 1})
            if duplicates:
                raise ConfigError(f"--{name} names {duplicates} more than once", name)
        if self.workers is not None and not 1 <= self.workers <= 256:
            raise ConfigError(f"--workers = {self.workers} is outside [1, 256]", "workers")
        if self.days is not None and not 0.0 < self.days <= 3660.0:
            raise ConfigError(f"--days = {self.days} is outside (0, 3660]", "days")
        if self.start is not None:
            try:
                pd.Timestamp(self.start)
            except ValueError:
                raise ConfigError(f"--start = {self.start!r} is not a date or time", "start") from None
        RunSettings(decision_interval_s=self.decision_interval_s, seed=self.seed)  # validates

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return [(s, c) for s in self.scenarios for c in self.controllers]


@dataclass(frozen=True)
class PairResult:
    """One finished run as a worker sends it back."""

    scenario: str
    controller: str
    result: RunResult
    plans: pd.DataFrame | None
    #: Forecast error by field and lead bucket (``ForecastScorecard.table()``, flat), for
    #: controllers that plan with forecasts; None otherwise.
    scorecard: pd.DataFrame | None = None
    #: The run's solver/library log (``twin.library_log``) and how many warnings it holds.
    solver_log: str = ""
    solver_warnings: int = 0


def _house(path: Path | None) -> HouseConfig:
    return reference_house() if path is None else load_house(path)


def _report_progress(key: str) -> Callable[[float, float], None]:
    """A progress callback that, inside a Dask worker, sends ``(key, done, total)`` to the client."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except ValueError:  # not running in a worker
        return lambda done, total: None
    last = [0.0]

    def report(done: float, total: float) -> None:
        now = time.monotonic()
        if now - last[0] >= 1.0 or done >= total:
            last[0] = now
            worker.log_event(PROGRESS_TOPIC, {"key": key, "done": done, "total": total})

    return report


def _context(house: HouseConfig, world: Scenario, history: pd.DataFrame | None, spec: BenchSpec
             ) -> ControllerContext:
    return ControllerContext(house, world, spec.decision_interval_s, spec.seed, options=dict(spec.options),
                             history=history)


def _make(spec: BenchSpec, name: str, context: ControllerContext) -> Controller:
    """Controller ``name``: from a ``--policy`` file of ``spec``, else from the registry."""
    if name in spec.policy_files:
        return spec.policy_files[name].controller(context.house)
    return make_controller(name, context)


def run_pair(scenario: str, controller: str, spec: BenchSpec) -> PairResult:
    """Run one pair (executed on a worker)."""
    house = _house(spec.house)
    world, history = window_and_history(scenario, spec.start, spec.days)
    policy = _make(spec, controller, _context(house, world, history, spec))
    scored = None
    if controller not in spec.policy_files and controller_entry(controller).uses_forecasts:
        # Learned forecasts are scored by their wrapper (what the MPC saw); any other controller's
        # forecasts are the observation's (for the oracle: the actual future, so zero error).
        scored = policy if hasattr(policy, "scorecard") else ScoredController(policy)
    settings = RunSettings(decision_interval_s=spec.decision_interval_s, seed=spec.seed)
    with tempfile.TemporaryDirectory(prefix="pems-log-") as tmp:
        log_path = Path(tmp) / LOG_FILE_NAME
        with library_log(log_path) as library:
            result = simulate(house, world, scored if scored is not None else policy, settings,
                              controller_name=controller, progress=_report_progress(f"{scenario}|{controller}"))
        log_text = log_path.read_text(encoding="utf-8")
    plans = policy.plan_frame() if hasattr(policy, "plan_frame") else None
    scorecard = scored.scorecard.table().reset_index() if scored is not None else None
    return PairResult(world.name, controller, result, plans, scorecard, log_text, library.warnings)


def check_spec(spec: BenchSpec) -> None:
    """Fail early, in the client, on anything that would fail later: the output directory, unknown
    names, bad options."""
    check_replaceable(spec.out, BENCH_MARKER)
    house = _house(spec.house)
    for name in spec.controllers:
        if name not in spec.policy_files:
            controller_entry(name)
    windows = [window_and_history(name, spec.start, spec.days) for name in spec.scenarios]
    # On every scenario: one may lack the history another has; a policy for another house fails
    # here, naming the first odd feature.
    for name in spec.controllers:
        for world, history in windows:
            _make(spec, name, _context(house, world, history, spec))


# --- running on Dask -------------------------------------------------------------------------------

class _ProgressBoard:
    """Thread-safe (done, total) per run, fed by worker events."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._lock = threading.Lock()
        self.fraction = dict.fromkeys(keys, 0.0)

    def on_event(self, event: Any) -> None:
        msg = event[1] if isinstance(event, tuple) else event
        if isinstance(msg, dict) and msg.get("key") in self.fraction and msg.get("total"):
            with self._lock:
                self.fraction[msg["key"]] = min(1.0, float(msg["done"]) / float(msg["total"]))

    def finish(self, key: str) -> None:
        with self._lock:
            self.fraction[key] = 1.0

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return dict(self.fraction)


def run_on_dask(spec: BenchSpec, on_progress: Callable[[dict[str, float]], None] | None = None
                ) -> list[PairResult]:
    """Run every pair of ``spec`` on a local cluster (or ``spec.scheduler``'s); results in pair order."""
    from distributed import Client, LocalCluster

    pairs = spec.pairs
    cluster = None
    if spec.scheduler:
        client = Client(spec.scheduler, timeout="10s")
    else:
        workers = spec.workers or max(1, min(len(pairs), os.cpu_count() or 1))
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=40)
        client = Client(cluster)
    keys = [f"{s}|{c}" for s, c in pairs]
    board = _ProgressBoard(keys)
    try:
        client.subscribe_topic(PROGRESS_TOPIC, board.on_event)
        futures = {client.submit(run_pair, s, c, spec, key=f"pems-bench-{k}-{time.time_ns()}", pure=False): k
                   for (s, c), k in zip(pairs, keys, strict=True)}
        done: dict[str, PairResult] = {}
        remaining = dict(futures)
        while remaining:
            if on_progress is not None:
                on_progress(board.snapshot())
            for future in [f for f in remaining if f.done()]:
                key = remaining.pop(future)
                pair = key.replace("|", " × ")
                error = future.exception() if future.status == "error" else None
                if isinstance(error, TwinError):
                    raise TwinError(f"run {pair} failed: {error}") from None
                if error is not None:
                    raise RuntimeError(f"run {pair} failed") from error
                done[key] = future.result()
                board.finish(key)
            time.sleep(0.25)
        if on_progress is not None:
            on_progress(board.snapshot())
        return [done[k] for k in keys]
    finally:
        client.unsubscribe_topic(PROGRESS_TOPIC)
        client.close()
        if cluster is not None:
            cluster.close()


# --- tables and output ------------------------------------------------------------------------------

def kpi_frame(results: Sequence[PairResult], baseline: str = "rule-based", oracle: str = "oracle") -> pd.DataFrame:
    """One row per pair: ``scenario``, ``controller``, every KPI and ``oracle_capture``."""
    rows = [{"scenario": r.scenario, "controller": r.controller, **{k: r.result.kpis.get(k) for k in KPI_KEYS}}
            for r in results]
    frame = pd.DataFrame(rows, columns=["scenario", "controller", *KPI_KEYS])
    frame["oracle_capture"] = [oracle_capture(frame, row.scenario, row.cost, baseline, oracle)
                               for row in frame.itertuples()]
    oracle_cost = frame[frame["controller"] == oracle].set_index("scenario")["cost"]
    frame["oracle_gap"] = [row.cost - oracle_cost[row.scenario] if row.scenario in oracle_cost else None
                           for row in frame.itertuples()]
    return frame


def oracle_capture(frame: pd.DataFrame, scenario: str, cost: float, baseline: str = "rule-based",
                   oracle: str = "oracle") -> float | None:
    """(cost_baseline − cost) / (cost_baseline − cost_oracle), or None when undefined."""
    here = frame[frame["scenario"] == scenario].set_index("controller")["cost"]
    if baseline not in here or oracle not in here:
        return None
    possible = here[baseline] - here[oracle]
    if not possible > 1e-9:
        return None
    return float((here[baseline] - cost) / possible)


def write_bench(spec: BenchSpec, results: Sequence[PairResult], command: str = "") -> Path:
    """Write the whole benchmark directory atomically; returns it."""
    from benchmarks.bench_report import write_report

    kpis = kpi_frame(results, spec.baseline, spec.oracle)
    meta = {
        "command": command, "written": datetime.now(UTC).isoformat(timespec="seconds"),
        "scenarios": list(spec.scenarios), "controllers": list(spec.controllers),
        "house": str(spec.house) if spec.house else "reference-house", "seed": spec.seed,
        "decision_interval_s": spec.decision_interval_s, "options": dict(spec.options),
        "baseline": spec.baseline, "oracle": spec.oracle, "start": spec.start, "days": spec.days,
        "policies": {name: {"path": str(f.path), "env_id": f.meta.get("env_id", ""), "note": f.meta.get("note", "")}
                     for name, f in spec.policy_files.items()},
        "windows": {r.scenario: [r.result.meta.get("scenario_start"), r.result.meta.get("scenario_end")]
                    for r in results},
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "runs": {f"{r.scenario} × {r.controller}": {"wall_time_s": r.result.meta["wall_time_s"]} for r in results},
    }
    with atomic_directory(spec.out, marker=BENCH_MARKER) as tmp:
        kpis.to_csv(tmp / "kpis.csv", index=False)
        for r in results:
            tables = {"plans": r.plans} if r.plans is not None and not r.plans.empty else {}
            if r.scorecard is not None:
                tables["forecast_scorecard"] = r.scorecard.set_index(["field", "lead"])
            save_run(r.result, tmp / "runs" / r.scenario / r.controller, plots=spec.plots, tables=tables,
                     texts={LOG_FILE_NAME: r.solver_log})
        write_report(tmp, kpis, results, meta)
        write_json(tmp / BENCH_MARKER, meta)
    return spec.out
