"""The control loop — one SimPy process for every plant — and ``simulate`` for the twin.

Every ``decision_interval_s`` the loop observes the plant, asks the controller, passes the
command through the safety filter and applies it; at the end of each interval it records
what the plant metered. The same loop runs on ``simpy.Environment`` (simulation) and
``simpy.rt.RealtimeEnvironment`` (live).

Observers: everything a run publishes or stores about its decisions hangs on one hook
-----------------------------------------------------------------------------------
A :class:`DecisionObserver` is told of every decision right after the command reached the plant
(``on_decision(time, obs, command, info)``: the decision instant, what the controller saw, the
command as applied, and a :class:`PlanInfo` with the controller's own proposal, the advice and
the decision time) and once when the run is over (``on_end(status)``). The plant only observes
and applies; the plan on ``pems/plan``, the command journal, the event log, an InfluxDB writer
or a Parquet history are observers. Observers run in the loop, so one must return quickly (a
slow output queues its work and writes it from a thread of its own); an observer that raises is
logged and skipped — an output never stops the house being controlled. An observer that also
wants what the plant metered over the interval (energy, cost: an InfluxDB writer) defines
``on_interval(time, obs, command, interval)``, called when the interval ends (optional: see
:func:`notify_interval`). ``on_end`` is called by
whoever drives the loop (:func:`simulate`, the live runner) with ``"finished"``, ``"interrupted"``,
``"failed: …"`` or ``"crashed"``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
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

log = logging.getLogger(__name__)

#: ``(command, observation) -> command``: the last word before a command reaches a plant.
SafetyFilter = Callable[[Command, Observation], Command]
#: Called now and then with ``(done_s, total_s)``.
ProgressFn = Callable[[float, float], None]


@dataclass(frozen=True, slots=True)
class PlanInfo:
    """What an observer may want to know about a decision besides the command applied.

    ``proposed`` is the controller's command before the safety filter; ``advice`` the command
    as the full-rollout envelope would have sent it (equal to the applied command unless the
    run is in a restricted rollout mode); ``decide_s`` the controller's wall time [s].
    """

    proposed: Command
    advice: Command
    decide_s: float


class DecisionObserver(Protocol):
    """Told of every decision of a run, and of its end (see the module docstring)."""

    def on_decision(self, time: datetime, obs: Observation, command: Command, info: PlanInfo) -> None: ...

    def on_end(self, status: str) -> None: ...


def notify_decision(observers: Sequence[DecisionObserver], obs: Observation, command: Command,
                    info: PlanInfo) -> None:
    """Tell every observer; one that raises is logged and the others still hear of the decision."""
    for observer in observers:
        try:
            observer.on_decision(obs.time, obs, command, info)
        except Exception:  # noqa: BLE001 - an output must never stop control
            log.exception("observer %s failed on the decision at %s", type(observer).__name__, obs.time)


def notify_interval(observers: Sequence[DecisionObserver], obs: Observation, command: Command,
                    interval: IntervalRecord) -> None:
    """``on_interval`` of the observers that define it, when the interval after a decision has been metered."""
    for observer in observers:
        hook = getattr(observer, "on_interval", None)
        if hook is None:
            continue
        try:
            hook(obs.time, obs, command, interval)
        except Exception:  # noqa: BLE001 - an output must never stop control
            log.exception("observer %s failed on the interval from %s", type(observer).__name__, obs.time)


def notify_end(observers: Sequence[DecisionObserver], status: str) -> None:
    """``on_end(status)`` for every observer; one that raises is logged, the others still end."""
    for observer in observers:
        try:
            observer.on_end(status)
        except Exception:  # noqa: BLE001 - one output's failure must not lose the others' ends
            log.exception("observer %s failed at the end of the run", type(observer).__name__)


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
    """One run: its log, KPIs, names, settings and metadata (wall time, scenario span)."""

    log: pd.DataFrame
    kpis: dict[str, Any]
    scenario: str
    controller: str
    house: str
    settings: RunSettings
    meta: dict[str, Any] = field(default_factory=dict)


def control_loop(env: simpy.Environment, plant: MeteredPlant, controller: Controller, interval_s: float,
                 end_s: float, recorder: RunLogRecorder, safety: SafetyFilter | None = None,
                 progress: ProgressFn | None = None, observers: Sequence[DecisionObserver] = (),
                 advisor: SafetyFilter | None = None) -> Generator[simpy.Event, Any, None]:
    """SimPy process: decide, apply, tell the observers, wait, record — until ``end_s`` on the env's clock.

    ``advisor`` gives the advice of :class:`PlanInfo` (by default the applied command itself).
    """
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
        proposed = command
        if safety is not None:
            command = safety(command, obs)
        plant.apply(command)
        if observers:
            advice = advisor(proposed, obs) if advisor is not None else command
            notify_decision(observers, obs, command, PlanInfo(proposed, advice, decide_s))
        yield env.timeout(min(interval_s, end_s - env.now))
        interval = plant.take_interval()
        recorder.record(obs.time, obs, command, decide_s, interval)
        if observers:
            notify_interval(observers, obs, command, interval)
        k += 1
        if progress is not None and k % report_every == 0:
            progress(env.now - start_env, total)
    if progress is not None:
        progress(total, total)


def simulate(house: HouseConfig, scenario: Scenario, controller: Controller, settings: RunSettings | None = None,
             *, controller_name: str = "", safety: SafetyFilter | None = None,
             progress: ProgressFn | None = None, observers: Sequence[DecisionObserver] = (),
             end_s: float | None = None) -> RunResult:
    """Run ``controller`` on the twin of ``house`` through ``scenario``; return the log and KPIs.

    ``end_s`` (house seconds from the scenario's start) stops the run early while the forecasts still
    read the scenario beyond it (as a live run of a few hours sees the calendar's next two days).

    A controller with ``perfect_foresight = True`` (an oracle) is shown the actual future
    instead of the scenario's issued forecasts. Every command passes ``safety`` (by default a
    fresh :class:`~twin.safety.SafetyLayer` with the house's envelopes) before the plant;
    ``observers`` hear of every decision and of the end, as in a live run.
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
    stop_s = plant.duration_s if end_s is None else min(end_s, plant.duration_s)
    env.process(control_loop(env, plant, controller, settings.decision_interval_s, stop_s, recorder,
                             safety, progress, observers))
    wall0 = time.perf_counter()
    try:
        env.run()
    except BaseException as exc:
        notify_end(observers, "interrupted" if isinstance(exc, KeyboardInterrupt) else f"failed: {exc}")
        raise
    notify_end(observers, "finished")
    wall_s = time.perf_counter() - wall0
    log = recorder.to_frame()
    kpis = compute_kpis(log, house)
    meta = {"wall_time_s": wall_s, "simulated_s": plant.duration_s,
            "intervals": len(log), "forecasts": scenario.forecasts.name,
            "scenario_start": scenario.start.isoformat(), "scenario_end": scenario.end.isoformat()}
    return RunResult(log=log, kpis=kpis, scenario=scenario.name, controller=controller_name or type(
        controller).__name__, house=house.name, settings=settings, meta=meta)
