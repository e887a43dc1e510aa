"""The control loop — one SimPy process for every plant — and ``simulate`` for the twin.

Every ``decision_interval_s`` the loop observes the plant, asks the controller, passes the
command through the safety filter and applies it; at the end of each interval it records
what the plant metered. The same loop runs on ``simpy.Environment`` (simulation) and
``simpy.rt.RealtimeEnvironment`` (live).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd
import simpy

from twin.config import HouseConfig
from twin.contracts import Command, Controller, Observation
from twin.errors import ConfigError
from twin.house import IntervalRecord, SimHouse
from twin.kpis import compute_kpis
from twin.runlog import RunLogRecorder
from twin.safety import SafetyLayer
from twin.scenario import PerfectForecasts, Scenario

#: ``(command, observation) -> command``: the last word before a command reaches a plant.
SafetyFilter = Callable[[Command, Observation], Command]
#: Called now and then with ``(done_s, total_s)``.
ProgressFn = Callable[[float, float], None]


class DecisionObserver(Protocol):
    """Sees every decision after it was applied and metered (outputs: InfluxDB, Home Assistant, …).

    Must not block: an observer that does I/O hands the work to its own thread.
    """

    def on_decision(self, obs: Observation, command: Command | None, decide_s: float, *,
                    interval: IntervalRecord | None = None, controller: Any = None) -> None: ...

    def on_end(self) -> None: ...


class MeteredPlant(Protocol):
    """A plant that can also report what happened over the interval that just ended."""

    def observe(self) -> Observation: ...

    def apply(self, command: Command) -> None: ...

    def take_interval(self) -> IntervalRecord: ...


@dataclass(frozen=True, slots=True)
class RunSettings:
    """How a run is driven. ``horizon_s`` is how far forecasts reach."""

    decision_interval_s: float = 300.0
    horizon_s: float = 48 * 3600.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1.0 <= self.decision_interval_s <= 86400.0:
            raise ConfigError(f"decision_interval_s = {self.decision_interval_s} is outside [1, 86400] s",
                              "decision_interval_s")
        if not 3600.0 <= self.horizon_s <= 14 * 86400.0:
            raise ConfigError(f"horizon_s = {self.horizon_s} is outside [3600, 1209600] s", "horizon_s")


@dataclass(frozen=True)
class RunResult:
    log: pd.DataFrame
    kpis: dict[str, Any]
    scenario: str
    controller: str
    house: str
    settings: RunSettings
    meta: dict[str, Any] = field(default_factory=dict)


def control_loop(env: simpy.Environment, plant: MeteredPlant, controller: Controller, interval_s: float,
                 end_s: float, recorder: RunLogRecorder, safety: SafetyFilter | None = None,
                 progress: ProgressFn | None = None, observers: tuple[DecisionObserver, ...] = ()
                 ) -> Generator[simpy.Event, Any, None]:
    """SimPy process: decide, apply, wait, record — until ``end_s`` on the env's clock."""
    start_env = env.now
    total = end_s - start_env
    if not math.isfinite(total):
        progress = None  # a live run without an end: nothing to show progress against
    report_every = max(1, int(total / interval_s / 200)) if progress is not None else 1
    k = 0
    while env.now < end_s - 1e-9:
        obs = plant.observe()
        t0 = time.perf_counter()
        command = controller.decide(obs)
        decide_s = time.perf_counter() - t0
        if safety is not None:
            command = safety(command, obs)
        plant.apply(command)
        yield env.timeout(min(interval_s, end_s - env.now))
        interval = plant.take_interval()
        recorder.record(obs.time, obs, command, decide_s, interval)
        for observer in observers:
            observer.on_decision(obs, command, decide_s, interval=interval, controller=controller)
        k += 1
        if progress is not None and k % report_every == 0:
            progress(env.now - start_env, total)
    if progress is not None:
        progress(total, total)


def simulate(house: HouseConfig, scenario: Scenario, controller: Controller, settings: RunSettings | None = None,
             *, controller_name: str = "", safety: SafetyFilter | None = None,
             progress: ProgressFn | None = None, observers: tuple[DecisionObserver, ...] = ()) -> RunResult:
    """Run ``controller`` on the twin of ``house`` through ``scenario``; return the log and KPIs.

    A controller with ``perfect_foresight = True`` (an oracle) is shown the actual future
    instead of the scenario's issued forecasts. Every command passes ``safety`` (by default a
    fresh :class:`~twin.safety.SafetyLayer` with the house's envelopes) before the plant.
    """
    settings = settings or RunSettings()
    if getattr(controller, "perfect_foresight", False):
        scenario = scenario.with_forecasts(PerfectForecasts())
    env = simpy.Environment()
    plant = SimHouse(house, scenario, env, horizon_s=settings.horizon_s)
    if hasattr(controller, "reset"):
        controller.reset()
    recorder = RunLogRecorder(house.room_names)
    safety = safety if safety is not None else SafetyLayer(house)
    env.process(control_loop(env, plant, controller, settings.decision_interval_s, plant.duration_s, recorder,
                             safety, progress, observers))
    wall0 = time.perf_counter()
    env.run()
    wall_s = time.perf_counter() - wall0
    for observer in observers:
        observer.on_end()
    log = recorder.to_frame()
    kpis = compute_kpis(log, house)
    meta = {"wall_time_s": wall_s, "simulated_s": plant.duration_s,
            "intervals": len(log), "forecasts": scenario.forecasts.name,
            "scenario_start": scenario.start.isoformat(), "scenario_end": scenario.end.isoformat()}
    return RunResult(log=log, kpis=kpis, scenario=scenario.name, controller=controller_name or type(
        controller).__name__, house=house.name, settings=settings, meta=meta)
