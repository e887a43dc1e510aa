"""Which clock a live run keeps: the wall clock for a real house, or the one a running ``pems emulate`` announces."""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hardware.config import LiveConfig
from hardware.errors import LiveError
from hardware.plant.clock import HouseClock, LockstepClock
from hardware.wire.mqtt import MqttLink
from hardware.wire.schemas import EmulatorClock, PayloadError, parse_payload
from twin.config import HouseConfig
from twin.registry import load_scenario
from twin.scenario import Scenario

log = logging.getLogger(__name__)


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
        if clock.lockstep or house_s < (clock.house_end - clock.house_start).total_seconds():
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
    lockstep: bool = False  # a co-simulation clock: house time is the emulator's, announced step by step


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
    if config.clock.lockstep and not announced.lockstep:
        raise LiveError("clock.lockstep = true, but the emulator plays in real time (start it with --lockstep)")
    interval = config.control.decision_interval_s
    if announced.lockstep and announced.decision_interval_s is not None and not math.isclose(
            announced.decision_interval_s, interval):
        raise LiveError(f"the emulator waits for decisions every {announced.decision_interval_s:g} s, this run "
                        f"decides every {interval:g} s (give pems emulate --decision-interval-s {interval:g})")
    start, end = announced.house_start.astimezone(tz), announced.house_end.astimezone(tz)
    # Forecasts read the scenario from the emulator's start on, past its end (a short window's horizon
    # sees the calendar's next days, as against a real house, not the window repeating itself).
    window = scenario.window(start, scenario.end) if start != scenario.start else scenario
    if announced.lockstep:
        return LiveSetup(LockstepClock(start, announced.wall_start_s, announced.speed), window, start, end,
                         lockstep=True)
    return LiveSetup(HouseClock(start, announced.wall_start_s, announced.speed), window, start, end)
