"""The live runner: ``twin.runner.control_loop`` — the very loop of a simulation — on a wall clock.

The loop runs on ``simpy.rt.RealtimeEnvironment(factor=1/speed)`` whose ``env.now`` is house
seconds since the house clock's origin; decisions fall on multiples of the decision interval
(the same instants as in a simulation of the same period). Every command passes the safety layer
in the run's rollout mode; the advice (the same envelope as if in FULL mode) goes to
``pems/plan`` and, with what was actually sent, to the command journal. The run log is written
in parts as the run goes (``hardware.live.log``) and consolidated, with KPIs and plots, at the end.
"""

from __future__ import annotations

import gc
import logging
import math
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import simpy
import simpy.rt

from hardware.config import LiveConfig
from hardware.errors import LiveError
from hardware.failsafe.events import EventKind
from hardware.failsafe.fallback import GuardedController
from hardware.failsafe.watchdog import LinkState
from hardware.live.log import (
    EVENTS,
    JOURNAL,
    META,
    PUBLISHED,
    CommandJournal,
    PartitionedRunLog,
    check_run_directory,
    prepare_run_directory,
    read_run_log,
    write_atomically,
    write_json_atomically,
)
from hardware.plant.clock import HouseClock
from hardware.plant.forecasts import ScenarioForecasts
from hardware.plant.mqtt_house import MqttHouse, command_summary
from hardware.wire.mqtt import MqttLink
from hardware.wire.schemas import EmulatorClock, PayloadError, parse_payload
from hardware.wire.security import check_transport
from twin.config import HouseConfig, load_house, reference_house
from twin.contracts import Command, Controller, Observation
from twin.errors import TwinError
from twin.kpis import compute_kpis
from twin.registry import ControllerContext, load_scenario, make_controller
from twin.runner import ProgressFn, RunResult, RunSettings, control_loop
from twin.safety import RolloutMode, SafetyLayer
from twin.scenario import Scenario

log = logging.getLogger(__name__)


class LiveSafety:
    """The safety filter of a live run: the envelope in the run's mode, the advice, the journal.

    ``lease_s`` cuts every command's lease (``control.lease_s``); ``guard`` is the controller's
    :class:`GuardedController`, whose verdict is published as ``optim_status``.
    """

    def __init__(self, house: HouseConfig, mode: RolloutMode, plant: MqttHouse, journal: CommandJournal,
                 lease_s: float | None = None, guard: GuardedController | None = None) -> None:
        self.gate = SafetyLayer(house, mode=mode)
        # The advice is the command as it would be sent in FULL mode (a layer of its own: it is stateful).
        self.advisor = SafetyLayer(house, mode=RolloutMode.FULL) if mode is not RolloutMode.FULL else None
        self.plant = plant
        self.journal = journal
        self.lease_s = lease_s
        self.guard = guard
        self._last_source = "primary"  # who decided last: primary, last_plan, fallback, defaults
        self.restarted = plant.failsafe.previous is not None  # a persisted plan: a restart
        self.decisions = 0

    def __call__(self, command: Command, obs: Observation) -> Command:
        if self.lease_s is not None and command.until > obs.after(self.lease_s):
            command = replace(command, until=obs.after(self.lease_s))
        failsafe = self.plant.failsafe
        if self.restarted or (failsafe.watchdog.outages and failsafe.state is not LinkState.RUNNING):
            # The devices fell back to their own rules while we were away (or may have, before a
            # restart): no device is switched again before its minimum time from now.
            for layer in (self.gate, self.advisor):
                if layer is not None:
                    layer.restart_timers(obs.time)
            self.restarted = False
        sent = self.gate(command, obs)
        advice = self.advisor(command, obs) if self.advisor is not None else sent
        self.plant.publish_plan(obs, advice, sent)
        verdict = self.guard.verdict if self.guard is not None else None
        if verdict is not None:
            self.plant.publish_optim_status(obs, verdict, self.guard.name)
            if verdict.source != self._last_source:
                self.plant.events.record(EventKind.OPTIM_STATUS, f"decisions by {verdict.source} ({verdict.status})"
                                         + (f": {verdict.detail}" if verdict.detail else ""),
                                         alert=True)
                self._last_source = verdict.source
        names = self.plant.house.room_names
        self.journal.write({"time": obs.time.isoformat(), "stale": sorted(obs.stale),
                            "link": self.plant.failsafe.state.value,
                            "optim_status": None if verdict is None else verdict.status,
                            "advice": command_summary(advice, names), "sent": command_summary(sent, names)})
        self.decisions += 1
        return sent


def await_emulator_clock(config: LiveConfig, topic: str, wait_s: float) -> EmulatorClock:
    """The clock a running ``pems emulate`` announces (retained); waits up to ``wait_s`` for a live one."""
    found: list[EmulatorClock] = []
    arrived = threading.Event()

    def on_message(_topic: str, payload: bytes, _retained: bool) -> None:
        if not payload:
            return
        try:
            clock = parse_payload(EmulatorClock, payload)
        except PayloadError as exc:
            log.warning("ignoring a malformed emulator clock: %s", exc)
            return
        house_s = (time.time() - clock.wall_start_s) * clock.speed
        if house_s < (clock.house_end - clock.house_start).total_seconds():
            found.append(clock)
            arrived.set()
        else:
            log.info("the emulator clock on %s belongs to a run that has ended; waiting for a new one", topic)

    link = MqttLink(config.broker, [topic], on_message, client_id=f"{config.broker.client_id}-clock")
    link.start()
    log.info("waiting for the emulator's clock on %s", topic)
    try:
        if not arrived.wait(wait_s):
            raise LiveError(f"no running emulator announced its clock on {topic} within {wait_s:g} s "
                            f"(start `pems emulate`, or set clock.source = 'wall' for a real house)")
    finally:
        link.stop()
    return found[-1]


@dataclass(frozen=True, slots=True)
class LiveSetup:
    """Where and when a live run happens."""

    clock: HouseClock
    forecasts_scenario: Scenario  # the scenario (window) forecasts come from
    start: datetime | None  # no decision before this (the emulated house's start)
    end: datetime | None  # when the forecast source runs out
    calendar: bool = False  # forecasts replayed on the calendar (a real house, real time)


def establish_clock(config: LiveConfig, house: HouseConfig, speed: float | None) -> LiveSetup:
    """The house clock: the wall clock, or the emulator's (whose speed and scenario must match ours)."""
    scenario = load_scenario(config.forecasts.scenario)
    if config.clock.source == "wall":
        if speed not in (None, 1.0):
            raise LiveError(f"--speed {speed:g} needs clock.source = 'emulator': a real house runs in real time")
        tz = ZoneInfo(house.location.timezone)
        now = datetime.now(tz)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return LiveSetup(HouseClock.wall(midnight), scenario, None, None, calendar=True)
    topic = config.topics.topic_map(house.room_names).topic("emulator_clock")
    announced = await_emulator_clock(config, topic, config.clock.wait_s)
    wanted = speed if speed is not None else config.clock.speed
    if not math.isclose(wanted, announced.speed, rel_tol=1e-9):
        raise LiveError(f"speed {wanted:g} does not match the emulator's {announced.speed:g} "
                        f"(give --speed {announced.speed:g})")
    if announced.scenario != scenario.name:
        raise LiveError(f"the emulator plays scenario {announced.scenario!r}, the live config forecasts "
                        f"{scenario.name!r} (forecasts.scenario)")
    try:
        tz = ZoneInfo(announced.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise LiveError(f"the emulator announced an unknown time zone {announced.timezone!r}") from None
    start, end = announced.house_start.astimezone(tz), announced.house_end.astimezone(tz)
    window = scenario.window(start, end) if (start, end) != (scenario.start, scenario.end) else scenario
    return LiveSetup(HouseClock(start, announced.wall_start_s, announced.speed), window, start, end)


def _flusher(env: simpy.Environment, recorder: PartitionedRunLog, first_s: float,
             interval_s: float) -> Generator[simpy.Event, Any, None]:
    """Writes the run log's parts halfway between decisions, where a slow disk delays nothing."""
    yield env.timeout(max(0.0, first_s + interval_s / 2 - env.now))
    while True:
        if recorder.due:
            recorder.flush()
        yield env.timeout(interval_s)


class Stopped(Exception):
    """Raised inside the live loop when the caller's stop event is set."""


def _stopper(env: simpy.Environment, stop: threading.Event, speed: float) -> Generator[simpy.Event, Any, None]:
    """Ends the run (as Ctrl-C would) soon after ``stop`` is set: checked every 0.1 wall seconds."""
    while not stop.is_set():
        yield env.timeout(0.1 * speed)
    raise Stopped


def _loop(env: simpy.Environment, plant: MqttHouse, controller: Controller, interval_s: float, first_s: float,
          end_s: float, recorder: PartitionedRunLog, safety: LiveSafety, startup_wait_s: float,
          progress: ProgressFn | None, observers: tuple[Any, ...] = ()) -> Generator[simpy.Event, Any, None]:
    env.process(_flusher(env, recorder, first_s, interval_s))
    if first_s > env.now:
        yield env.timeout(first_s - env.now)
    missing = plant.wait_for_readings(startup_wait_s)
    if missing:
        log.warning("starting without fresh readings from %s (they count as stale)", ", ".join(missing))
    yield env.process(control_loop(env, plant, controller, interval_s, end_s, recorder, safety, progress,
                                   observers))


def run_live(config: LiveConfig, controller_name: str, mode: RolloutMode, out: Path, *,
             house: HouseConfig | None = None, duration_s: float | None = None, speed: float | None = None,
             seed: int = 0, progress: ProgressFn | None = None, plots: bool = True,
             controller: Controller | None = None, stop: threading.Event | None = None,
             plant_ready: Callable[[MqttHouse], None] | None = None, observers: tuple[Any, ...] = ()) -> RunResult:
    """Drive the house behind the broker with a registered controller until the end; write ``out``.

    The run ends after ``duration_s`` house seconds, when the forecast source runs out, on
    ``KeyboardInterrupt`` (SIGINT/SIGTERM in the CLI) or when ``stop`` is set — in every case
    the log is consolidated. ``controller`` (an instance) replaces the registered one of
    ``controller_name``; either way it runs guarded (``hardware.failsafe.fallback``: deadline, last valid
    plan, rule-based fallback, device defaults). ``plant_ready(plant)`` is called once the
    broker answered (tests and benchmarks watch the fail-safe machinery through it).
    """
    if house is None:
        house = load_house(config.house_file) if config.house_file else reference_house()
    config.topics.topic_map(house.room_names)  # a bad topic layout fails before anything starts
    check_transport(config.broker)
    check_run_directory(out)
    setup = establish_clock(config, house, speed)
    clock = setup.clock
    control = config.control
    forecasts = ScenarioForecasts(house, setup.forecasts_scenario, control.horizon_s, calendar=setup.calendar)
    interval = control.decision_interval_s
    settings = RunSettings(decision_interval_s=interval, horizon_s=control.horizon_s, seed=seed)
    context = ControllerContext(house, None, interval, seed)
    primary = controller if controller is not None else make_controller(controller_name, context)
    fallback = make_controller("rule-based", context) if controller_name != "rule-based" or controller else None
    controller = GuardedController(primary, house, control.decide_deadline_s, fallback, name=controller_name)
    controller.reset()

    env = simpy.rt.RealtimeEnvironment(initial_time=clock.now_s(), factor=1.0 / clock.speed, strict=False)
    first_s = math.ceil((env.now - 1e-6) / interval) * interval
    if setup.start is not None:
        first_s = max(first_s, clock.seconds(setup.start))
    end_s = math.inf if setup.end is None else clock.seconds(setup.end)
    if duration_s is not None:
        end_s = min(end_s, first_s + duration_s)
    if not end_s > first_s:
        raise LiveError(f"nothing to run: the forecast source ends at {setup.end}, before the first decision "
                        f"at {clock.timestamp(first_s).isoformat()}")

    plant = MqttHouse(house, config, clock, env, forecasts, mode)
    plant.connect()  # before anything is written: an unreachable broker leaves no run directory behind
    try:
        out = prepare_run_directory(out)
    except TwinError:
        plant.close()
        raise
    plant.events.attach(out / EVENTS)
    plant.failsafe.outbox.attach(out / PUBLISHED)
    recorder = PartitionedRunLog(house.room_names, out, control.log_flush_intervals)
    journal = CommandJournal(out / JOURNAL)
    safety = LiveSafety(house, mode, plant, journal, control.lease_s, controller)
    previous = plant.failsafe.previous
    if previous is not None and previous.safety is not None:
        try:
            safety.gate.restore(previous.safety)  # minimum on/off times count what happened before the restart
        except ValueError as exc:
            log.warning("not restoring the safety history: %s", exc)
    plant.safety_history = safety.gate.history
    influx_writer = None
    if config.outputs.influxdb is not None:  # results into InfluxDB: an observer with its own thread and spool
        from hardware.outputs.influx import InfluxWriter
        from hardware.outputs.observer import InfluxObserver

        influx = config.outputs.influxdb
        influx_writer = InfluxWriter(influx, influx.spool_dir or out / "influx-spool")
        from hardware.outputs.live_events import EventForwarder

        influx_observer = InfluxObserver(influx_writer, house.room_names, source="live",
                                         heater_kw=[r.heater_power_kw for r in house.rooms])
        observers = (*observers, influx_observer, EventForwarder(plant.events, influx_observer))
    if plant_ready is not None:
        plant_ready(plant)
    meta: dict[str, Any] = {
        "status": "running", "mode": mode.value, "controller": controller_name, "house": house.name,
        "scenario": setup.forecasts_scenario.name, "speed": clock.speed, "decision_interval_s": interval,
        "horizon_s": control.horizon_s, "seed": seed, "broker": f"{config.broker.host}:{config.broker.port}",
        "first_decision": clock.timestamp(first_s).isoformat(),
        "planned_end": clock.timestamp(end_s).isoformat() if math.isfinite(end_s) else None,
    }
    write_json_atomically(out / META, meta)
    log.info("live run in %s mode from %s, %s", mode.name, meta["first_decision"],
             f"until {meta['planned_end']}" if meta["planned_end"] else "until stopped")

    gc.freeze()  # everything built so far lives for the run: keep it out of GC passes that would delay decisions
    wall0 = time.perf_counter()
    status = "finished"
    failure: BaseException | None = None
    try:
        process = env.process(_loop(env, plant, controller, interval, first_s, end_s, recorder, safety,
                                    control.startup_wait_s, progress, observers))
        if stop is not None:
            env.process(_stopper(env, stop, clock.speed))
        env.run(until=process)
    except (KeyboardInterrupt, Stopped):
        status = "interrupted"
        log.warning("stopped; writing what was logged so far")
    except Exception as exc:  # noqa: BLE001 - recorded in live.json and raised again below
        status, failure = f"failed: {exc}", exc
    finally:
        plant.close()  # the goodbye: every device falls back to its own rule now, not when its lease ends
        controller.close()
        journal.close()
        recorder.flush()
        plant.events.close()
        for observer in observers:
            observer.on_end()
        if influx_writer is not None:
            influx_writer.close()  # what cannot be written now stays in the spool for the next start
    result = _finish(out, house, controller_name, settings, meta, status, plant, wall0, plots)
    if failure is not None:
        raise failure
    return result


def _finish(out: Path, house: HouseConfig, controller_name: str, settings: RunSettings, meta: dict[str, Any],
            status: str, plant: MqttHouse, wall0: float, plots: bool) -> RunResult:
    """Consolidate the parts into ``log.parquet``, add KPIs and plots, and mark the run finished."""
    if recorder_parts_exist(out):
        log_frame = read_run_log(out)
        write_atomically(out / "log.parquet", lambda tmp: log_frame.to_parquet(tmp))
        for part in sorted((out / "log").glob("part-*.parquet")):
            part.unlink()
        (out / "log").rmdir()
    else:
        log_frame = None
    kpis = compute_kpis(log_frame, house) if log_frame is not None and len(log_frame) else {}
    if kpis:
        write_json_atomically(out / "kpis.json", kpis)
        if plots:
            from twin.plots import write_plots  # matplotlib only when plotting

            write_plots(log_frame, out / "plots")
    failsafe = plant.failsafe
    meta.update(status=status, wall_time_s=time.perf_counter() - wall0,
                intervals=0 if log_frame is None else len(log_frame), published=dict(plant.published),
                blocked_by_mode=plant.blocked, unsent_while_disconnected=plant.link.unsent if plant.link else 0,
                dropped_messages=plant.store.drops.by_reason(), not_commanded=dict(plant.not_commanded),
                outbox=dict(failsafe.outbox.counts), events=dict(plant.events.counts),
                link_states=[{"state": t.state.value, "wall_s": t.wall_s, "reason": t.reason}
                             for t in failsafe.watchdog.transitions],
                readback={"confirmed": failsafe.readback.stats.confirmed, "retries": failsafe.readback.stats.retries,
                          "missing": failsafe.readback.stats.missing, "overrides": failsafe.readback.stats.overrides},
                clock_skew_s=failsafe.skew.estimates())
    write_json_atomically(out / META, meta)
    return RunResult(log=log_frame, kpis=kpis, scenario=meta["scenario"], controller=controller_name,
                     house=house.name, settings=settings, meta=meta)


def recorder_parts_exist(out: Path) -> bool:
    return any((out / "log").glob("part-*.parquet"))
