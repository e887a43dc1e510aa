"""The live runner: ``twin.runner.control_loop`` — the very loop of a simulation — on a wall clock.

The loop runs on ``simpy.rt.RealtimeEnvironment(factor=1/speed)`` whose ``env.now`` is house
seconds since the house clock's origin; decisions fall on multiples of the decision interval
(the same instants as in a simulation of the same period). Every command passes the safety layer
in the run's rollout mode (:mod:`hardware.live.safety`); what the run says about each decision —
``pems/plan``, ``optim_status``, the command journal, events — hangs on the loop's observer hook
(:mod:`hardware.live.observers`), as would an InfluxDB writer or a Parquet history. The run log is
written in parts as the run goes (``hardware.live.log``) and consolidated, with KPIs and plots, at
the end.

A run is a :class:`LiveRun`: a frozen :class:`LiveRunOptions` plus ``run()``::

    LiveRun(config, LiveRunOptions("rule-based", RolloutMode.FULL, Path("out"))).run()
"""

from __future__ import annotations

import gc
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import simpy
import simpy.rt

from hardware.config import LiveConfig
from hardware.errors import LiveError
from hardware.failsafe.events import EventKind
from hardware.failsafe.fallback import GuardedController
from hardware.feeds.source import FeedForecastSource, feed_source
from hardware.live.clock_setup import LiveSetup, establish_clock
from hardware.live.finish import consolidate
from hardware.live.learned import LiveForecasting, live_forecasting
from hardware.live.log import (
    EVENTS,
    JOURNAL,
    META,
    PUBLISHED,
    CommandJournal,
    PartitionedRunLog,
    check_run_directory,
    prepare_run_directory,
    write_json_atomically,
)
from hardware.live.observers import Coverage, JournalWriter, PlanPublisher
from hardware.live.processes import LockstepAck, Stopped, start_when_ready, stop_when_set
from hardware.live.safety import LiveSafety
from hardware.outputs.mode_gate import ModeGate
from hardware.plant.forecasts import ForecastSource, ScenarioForecasts
from hardware.plant.mqtt_house import MqttHouse
from hardware.wire.security import check_transport
from twin.config import HouseConfig, load_house, reference_house
from twin.contracts import Controller
from twin.errors import TwinError
from twin.registry import ControllerContext, make_controller
from twin.runner import DecisionObserver, ProgressFn, RunResult, RunSettings, control_loop, notify_end
from twin.safety import RolloutMode

if TYPE_CHECKING:
    from controllers.savings.counterfactual import SavingsSink
    from hardware.live.savings import DailySavings
    from hardware.outputs.home_assistant import HomeAssistantBridge
    from hardware.outputs.influx import InfluxWriter

log = logging.getLogger(__name__)

#: The run's own log file: every record of the run (solver output too), whatever the console shows.
RUN_LOG = "run.log"


@dataclass(frozen=True)
class LiveRunOptions:
    """What to run and where to write it (the live config says how to reach the house).

    ``duration_s`` house seconds (default: until the forecast source runs out, Ctrl-C or
    ``stop``); ``controller`` (an instance) replaces the registered one of ``controller_name``
    (either way it runs guarded: deadline, last valid plan, rule-based fallback, device defaults);
    ``observers`` are told of every decision besides the run's own (plan, journal).
    """

    controller_name: str
    mode: RolloutMode
    out: Path
    house: HouseConfig | None = None
    duration_s: float | None = None
    speed: float | None = None
    seed: int = 0
    plots: bool = True
    controller: Controller | None = None
    observers: Sequence[DecisionObserver] = field(default=())


class LiveRun:
    """One live run: ``run()`` drives the house behind the broker to the end and writes ``options.out``.

    ``stop()`` (from another thread) ends it as Ctrl-C would; ``on_plant_ready(plant)`` is called
    once the broker answered (tests and benchmarks watch the fail-safe machinery through it). In
    every case the log is consolidated.
    """

    def __init__(self, config: LiveConfig, options: LiveRunOptions, progress: ProgressFn | None = None,
                 on_plant_ready: Callable[[MqttHouse], None] | None = None) -> None:
        self.config = config
        self.options = options
        self.progress = progress
        self.on_plant_ready = on_plant_ready
        self.house = options.house if options.house is not None else (
            load_house(config.house_file) if config.house_file else reference_house())
        self.plant: MqttHouse | None = None
        self.savings: DailySavings | None = None  # daily counterfactual savings, when an output takes them
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def _controller(self, keeper: LiveForecasting | None) -> GuardedController:
        opts, control = self.options, self.config.control
        context = ControllerContext(self.house, None, control.decision_interval_s, opts.seed)
        primary = opts.controller
        if primary is None and keeper is not None and (opts.controller_name == "mpc-learned"
                                                       or self.config.history.learned_forecasts):
            primary = keeper.build(opts.controller_name, context, make_controller)  # trained on the house's history
        if primary is None:
            primary = make_controller(opts.controller_name, context)
        fallback = (make_controller("rule-based", context)
                    if opts.controller_name != "rule-based" or opts.controller else None)
        guarded = GuardedController(primary, self.house, control.decide_deadline_s, fallback,
                                    name=opts.controller_name)
        guarded.reset()
        return guarded

    def _influx(self, out: Path, controller: Controller, plant: MqttHouse,
                observers: list[DecisionObserver]) -> InfluxWriter | None:
        """``[outputs.influxdb]``: results into InfluxDB, an observer with its own thread and spool."""
        influx = self.config.outputs.influxdb
        if influx is None:
            return None
        from hardware.outputs.influx import InfluxWriter
        from hardware.outputs.live_events import EventForwarder
        from hardware.outputs.observer import InfluxObserver

        writer = InfluxWriter(influx, influx.spool_dir or out / "influx-spool")
        observer = InfluxObserver(writer, self.house.room_names, source="live",
                                  heater_kw=[r.heater_power_kw for r in self.house.rooms], controller=controller)
        observers += [observer, EventForwarder(plant.events, observer)]
        return writer

    def _home_assistant(self, controller: Controller, gate: ModeGate,
                        observers: list[DecisionObserver]) -> HomeAssistantBridge | None:
        """``[outputs.home_assistant]``: discovery, sensors and the mode ``select`` on the run's broker.

        Its own connection with the controller's credentials (client id ``<client_id>-ha``); the
        controller's connection keeps ``pems/status`` (birth and last will), which every entity's
        availability follows.
        """
        settings = self.config.outputs.home_assistant
        if settings is None or not settings.enabled:
            return None

        from hardware.outputs.home_assistant import DiscoverySettings, HomeAssistantBridge, HomeAssistantObserver

        broker = self.config.broker
        bridge = HomeAssistantBridge(broker, gate, DiscoverySettings(prefix=settings.prefix,
                                                                     expire_after_s=settings.expire_after_s),
                                     own_status=False, client_id=f"{broker.client_id[:60]}-ha")
        observers.append(HomeAssistantObserver(bridge, settings.hours_ahead, controller=controller))
        return bridge

    def _savings(self, observers: list[DecisionObserver], forecasts: ForecastSource) -> DailySavings | None:
        """Daily counterfactual savings into the outputs that take them (InfluxDB, Home Assistant)."""
        outputs = self.config.outputs
        sinks = [cast("SavingsSink", o) for o in observers if callable(getattr(o, "savings", None))]
        if not outputs.savings or not sinks:
            return None
        from hardware.live.savings import DailySavings

        if outputs.savings_house_file:
            model, note = load_house(Path(outputs.savings_house_file)), f"house model {outputs.savings_house_file}"
        else:
            model, note = self.house, "no identified house model (outputs.savings_house_file): the configured house"
            log.warning("daily savings replay on %s", note)
        daily = DailySavings(self.house, model, sinks, self.config.control.decision_interval_s, note,
                             weather=getattr(forecasts, "recorded_weather", None))
        observers.insert(0, daily)  # ends first: a day still being computed reaches the sinks before they close
        return daily

    def _window(self, setup: LiveSetup, env: simpy.Environment) -> tuple[float, float]:
        """The first decision and the end [house s on the env's clock]."""
        clock, interval = setup.clock, self.config.control.decision_interval_s
        first_s = math.ceil((env.now - 1e-6) / interval) * interval
        if setup.start is not None:
            first_s = max(first_s, clock.seconds(setup.start))
        end_s = math.inf if setup.end is None else clock.seconds(setup.end)
        if self.options.duration_s is not None:
            end_s = min(end_s, first_s + self.options.duration_s)
        if not end_s > first_s:
            raise LiveError(f"nothing to run: the forecast source ends at {setup.end}, before the first decision "
                            f"at {clock.timestamp(first_s).isoformat()}")
        return first_s, end_s

    def run(self) -> RunResult:
        config, opts, house = self.config, self.options, self.house
        config.topics.topic_map(house.room_names)  # a bad topic layout fails before anything starts
        check_transport(config.broker)
        check_run_directory(opts.out)
        # The controller (an MPC builds its model here) is ready before we wait for the house's clock,
        # so that its build never delays the first decision.
        keeper = live_forecasting(config, house, opts.controller_name)  # the house's history; learned forecasters
        controller = self._controller(keeper)
        try:
            setup = establish_clock(config, house, opts.speed)
        except BaseException:
            controller.close()
            if keeper is not None:
                keeper.on_end("not started")
            raise
        clock, control = setup.clock, config.control
        forecasts: ForecastSource = ScenarioForecasts(house, setup.forecasts_scenario, control.horizon_s,
                                                      calendar=setup.calendar)
        if config.feeds is not None:  # the real feeds (OTE, Open-Meteo …) instead of the scenario's replay
            forecasts = feed_source(config, house, base=forecasts)
        interval = control.decision_interval_s
        settings = RunSettings(decision_interval_s=interval, horizon_s=control.horizon_s, seed=opts.seed)
        env: simpy.Environment
        if setup.lockstep:  # the emulator's announced house time paces the run (MqttHouse waits for its readings)
            env = simpy.Environment(initial_time=0.0)
        else:
            env = simpy.rt.RealtimeEnvironment(initial_time=clock.now_s(), factor=1.0 / clock.speed, strict=False)
        first_s, end_s = self._window(setup, env)

        plant = MqttHouse(house, config, clock, env, forecasts, opts.mode)
        if isinstance(forecasts, FeedForecastSource):
            forecasts.health.events = plant.events  # feed fallbacks alert on pems/alerts
        plant.connect()  # before anything is written: an unreachable broker leaves no run directory behind
        try:
            out = prepare_run_directory(opts.out)
        except TwinError:
            plant.close()
            raise
        self.plant = plant
        failsafe = plant.failsafe
        log_file = logging.FileHandler(out / RUN_LOG, encoding="utf-8")  # everything, solver output included
        log_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(log_file)
        plant.events.attach(out / EVENTS)
        failsafe.outbox.attach(out / PUBLISHED)
        recorder = PartitionedRunLog(house.room_names, out, control.log_flush_intervals)
        # The one rollout-mode gate (Home Assistant's select writes through it): read by the safety layer at
        # every decision, which switches the plant's dispatch and the plan publisher with it. Never above
        # the mode the run started in: the devices were reconciled and leased for that one.
        mode_gate = ModeGate(opts.mode, ceiling=opts.mode)
        publisher = PlanPublisher(failsafe, plant.topics, opts.mode, house.room_names, controller)
        bridge: HomeAssistantBridge | None = None

        def switch_mode(old: RolloutMode, new: RolloutMode) -> None:
            plant.set_mode(new)
            publisher.mode = new
            source = mode_gate.history[-1].source if mode_gate.history else "?"
            plant.events.record(EventKind.MODE_CHANGE, f"rollout mode {old.name} -> {new.name} from this decision "
                                f"(requested by {source})", alert=True)
            meta.setdefault("mode_changes", []).append({"time": clock.timestamp(env.now).isoformat(),
                                                        "old": old.value, "new": new.value, "source": source})
            if bridge is not None:
                bridge.publish_mode()

        safety = LiveSafety(house, opts.mode, failsafe, control.lease_s, mode_gate, switch_mode)
        previous = failsafe.previous
        if previous is not None and previous.safety is not None:
            try:
                safety.gate.restore(previous.safety)  # minimum on/off times count what happened before the restart
            except ValueError as exc:
                log.warning("not restoring the safety history: %s", exc)
        coverage = Coverage(house.room_names, lambda: sum(plant.published.values()), bool(plant.allowed))
        observers: list[DecisionObserver] = [
            coverage,
            publisher,
            JournalWriter(CommandJournal(out / JOURNAL), failsafe, house.room_names, controller),
            *opts.observers]
        if setup.lockstep:
            observers.append(LockstepAck(plant))  # last: after everything this decision sends
        if keeper is not None:  # drift alerts go where every alert goes: the event log and pems/alerts
            keeper.alert = lambda message: plant.events.record(EventKind.FORECAST_DRIFT, message, alert=True)
            observers.append(keeper)
        influx_writer = self._influx(out, controller, plant, observers)
        bridge = self._home_assistant(controller, mode_gate, observers)
        if bridge is not None:
            bridge.start()
        self.savings = self._savings(observers, forecasts)
        if self.on_plant_ready is not None:
            self.on_plant_ready(plant)
        meta: dict[str, Any] = {
            "status": "running", "mode": opts.mode.value, "controller": opts.controller_name, "house": house.name,
            "scenario": setup.forecasts_scenario.name, "speed": clock.speed, "lockstep": setup.lockstep,
            "decision_interval_s": interval,
            "horizon_s": control.horizon_s, "seed": opts.seed,
            "house_file": str(config.house_file) if config.house_file and opts.house is None else None,
            "broker": f"{config.broker.host}:{config.broker.port}",
            "first_decision": clock.timestamp(first_s).isoformat(),
            "planned_end": clock.timestamp(end_s).isoformat() if math.isfinite(end_s) else None,
        }
        write_json_atomically(out / META, meta)
        log.info("live run in %s mode from %s, %s", opts.mode.name, meta["first_decision"],
                 f"until {meta['planned_end']}" if meta["planned_end"] else "until stopped")

        gc.freeze()  # everything built so far lives for the run: keep it out of GC passes that would delay decisions
        wall0 = time.perf_counter()
        status = "finished"
        failure: BaseException | None = None
        try:
            loop = control_loop(env, plant, controller, interval, end_s, recorder, safety, self.progress,
                                observers, safety.advisor_filter)
            process = env.process(start_when_ready(env, plant, loop, recorder, first_s, interval,
                                                   control.startup_wait_s, setup.lockstep))
            env.process(stop_when_set(env, self._stop, clock.speed))
            env.run(until=process)
        except (KeyboardInterrupt, Stopped):
            status = "interrupted"
            log.warning("stopped; writing what was logged so far")
        except Exception as exc:  # noqa: BLE001 - recorded in live.json and raised again below
            status, failure = f"failed: {exc}", exc
        finally:
            plant.close()  # the goodbye: every device falls back to its own rule now, not when its lease ends
            controller.close()
            notify_end(observers, status)
            if bridge is not None:
                bridge.stop()
            if influx_writer is not None:
                influx_writer.close()  # what cannot be written now stays in the spool for the next start
            recorder.flush()
            plant.events.close()
            logging.getLogger().removeHandler(log_file)
            log_file.close()
        result = _finish(out, house, opts.controller_name, settings, meta, status, plant, wall0, opts.plots,
                         coverage)
        if failure is not None:
            raise failure
        return result


def _finish(out: Path, house: HouseConfig, controller_name: str, settings: RunSettings, meta: dict[str, Any],
            status: str, plant: MqttHouse, wall0: float, plots: bool, coverage: Coverage) -> RunResult:
    """Consolidate the parts into ``log.parquet``, add KPIs (with coverage) and plots, mark the run finished."""
    log_frame, kpis = consolidate(out, house, plots)
    fields = coverage.fields()
    if kpis:
        kpis.update(readings_coverage=fields["readings_coverage"], commands_coverage=fields["commands_coverage"])
        write_json_atomically(out / "kpis.json", kpis)
    failsafe = plant.failsafe
    meta.update(status=status, wall_time_s=time.perf_counter() - wall0,
                intervals=0 if log_frame is None else len(log_frame), published=dict(plant.published),
                blocked_by_mode=plant.blocked, unsent_while_disconnected=plant.link.unsent if plant.link else 0,
                dropped_messages=plant.store.drops.by_reason(), not_commanded=dict(plant.not_commanded),
                outbox=dict(failsafe.outbox.counts), events=dict(plant.events.counts),
                link_states=[{"state": t.state.value, "wall_s": t.wall_s, "reason": t.reason}
                             for t in failsafe.watchdog.transitions],
                readback={"confirmed": failsafe.readback.stats.confirmed, "retries": failsafe.readback.stats.retries,
                          "missing": failsafe.readback.stats.missing, "overrides": failsafe.readback.stats.overrides,
                          "uncorroborated": failsafe.readback.stats.uncorroborated},
                clock_skew_s=failsafe.skew.estimates(), coverage=fields, coverage_warning=coverage.summary())
    write_json_atomically(out / META, meta)
    return RunResult(log=log_frame, kpis=kpis, scenario=meta["scenario"], controller=controller_name,
                     house=house.name, settings=settings, meta=meta)
