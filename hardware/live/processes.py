"""The live run's SimPy processes besides the control loop itself.

The start (wait for the first decision instant and the house's first readings), the run log's
flushes between decisions, the stop from another thread, and the lockstep acknowledgement to
the emulator. :class:`hardware.live.runner.LiveRun` wires them around ``twin.runner.control_loop``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Generator
from datetime import datetime
from typing import Any

import simpy

from hardware.live.log import PartitionedRunLog
from hardware.plant.mqtt_house import MqttHouse

log = logging.getLogger(__name__)


def flush_between_decisions(env: simpy.Environment, recorder: PartitionedRunLog, first_s: float,
             interval_s: float) -> Generator[simpy.Event, Any, None]:
    """Writes the run log's parts halfway between decisions, where a slow disk delays nothing."""
    yield env.timeout(max(0.0, first_s + interval_s / 2 - env.now))
    while True:
        if recorder.due:
            recorder.flush()
        yield env.timeout(interval_s)


class LockstepAck:
    """Lockstep: acknowledges every decision to the emulator once its commands are out (a decision observer)."""

    def __init__(self, plant: MqttHouse) -> None:
        self.plant = plant

    def on_decision(self, time: datetime, obs: Any, command: Any, info: Any) -> None:
        self.plant.acknowledge(self.plant.clock.seconds(time))

    def on_end(self, status: str) -> None:
        return None


class Stopped(Exception):
    """Raised inside the live loop when the caller's stop event is set."""


def stop_when_set(env: simpy.Environment, stop: threading.Event, speed: float) -> Generator[simpy.Event, Any, None]:
    """Ends the run (as Ctrl-C would) soon after ``stop`` is set: checked every 0.1 wall seconds."""
    while not stop.is_set():
        yield env.timeout(0.1 * speed)
    raise Stopped


def start_when_ready(env: simpy.Environment, plant: MqttHouse, loop: Generator[simpy.Event, Any, None],
           recorder: PartitionedRunLog, first_s: float, interval_s: float,
           startup_wait_s: float, lockstep: bool = False) -> Generator[simpy.Event, Any, None]:
    """Wait for the first decision instant and the first readings, then run the control loop."""
    env.process(flush_between_decisions(env, recorder, first_s, interval_s))
    if first_s > env.now:
        yield env.timeout(first_s - env.now)
    missing = plant.wait_for_readings(startup_wait_s)
    if missing:
        log.warning("starting without fresh readings from %s (they count as stale)", ", ".join(missing))
    if lockstep:  # house time waits for us: the first interval must not depend on which status came first
        plant.failsafe.watchdog.wait_until_reconciled()
    yield env.process(loop)
