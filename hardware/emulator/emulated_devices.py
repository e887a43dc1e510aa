"""The emulated devices: what the house emulator's relays, inverter and charger do with a message.

Its own module because it is a concern of its own: ``hardware.emulator.emulated_house`` decides
*when* things happen (wall-clock pacing, the lockstep handshake, publishing readings), the
devices here decide *what* a message does — check a command, take or refuse its lease
(``hardware.emulator.devices``), hand the twin the relay states, battery mode and charger power
it asks for, and fall back to their own rules when the controller says goodbye or falls silent.
Every command is recorded (and journalled) with its outcome.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hardware.devices.ev_charger import charger_payload_power_kw
from hardware.devices.growatt import battery_command_of
from hardware.emulator.devices import LeaseSlot, RelayBank, local_thermostat
from hardware.plant.clock import HouseClock
from hardware.plant.readings import DropCounter
from hardware.wire.schemas import COMMAND_SCHEMAS, ControllerStatus, PayloadError, parse_payload
from hardware.wire.topics import TopicMap
from twin.config import HouseConfig
from twin.contracts import Command
from twin.house import SimHouse

log = logging.getLogger(__name__)

__all__ = ["HEARTBEAT_TIMEOUT_S", "CommandRecord", "EmulatedDevices"]

#: Wall seconds without the controller's heartbeat after which the emulated devices fall back.
HEARTBEAT_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """One command as the emulated devices saw it."""

    house_s: float
    topic: str
    result: str  # "accepted", or why not
    seq: int | None = None
    lag_wall_s: float | None = None  # from the decision (its ``ts``) to its handling here, on the wall clock


class EmulatedDevices:
    """The devices of ``house`` in front of ``twin``: they take commands and hold their leases.

    ``advance(t)`` brings the twin to house second ``t``: the emulator's to give, since it owns the
    SimPy clock (and, in lockstep, the announced house time). ``clock`` is the house clock, set
    when the emulator starts; commands are dated by it. ``lockstep``: house time does not follow
    the wall, so a command's lateness is counted in house time, not measured in wall seconds.
    """

    def __init__(self, house: HouseConfig, twin: SimHouse, topics: TopicMap, advance: Callable[[float], None],
                 lockstep: bool = False, heartbeat_timeout_s: float = HEARTBEAT_TIMEOUT_S,
                 journal: Path | None = None) -> None:
        self.house = house
        self.twin = twin
        self.topics = topics
        self.lockstep = lockstep
        self._advance = advance
        self.clock: HouseClock | None = None
        n = len(house.rooms)
        self.relays = RelayBank(n)
        self.battery_lease = LeaseSlot()
        self.ev_lease = LeaseSlot()
        self.records: list[CommandRecord] = []
        self.rejections = DropCounter(log)
        self.late_in_lockstep = 0  # commands decided before the twin's time (lockstep should make it 0)
        # Sticky: a controller that said goodbye is not waited for again, even if it comes back.
        self.controller_left = False
        self._relay_wake_s = math.inf  # when a room's lease ends or the thermostat of an unleased room ticks
        self._journal = journal.open("a", encoding="utf-8") if journal is not None else None
        # Like the real bridges should: a device falls back to its own rule when the controller's
        # heartbeats stop (a frozen broker or controller leaves no last will) — wall seconds.
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self._last_heartbeat: float | None = None  # time.monotonic() of the last heartbeat seen

    def close(self) -> None:
        """Close the journal (the run is over)."""
        if self._journal is not None:
            self._journal.close()

    # --- the controller's signs of life ------------------------------------------------------------

    def heard_from_controller(self) -> None:
        """A heartbeat (or a lockstep acknowledgement) arrived: the controller is alive. Any thread."""
        self._last_heartbeat = time.monotonic()

    def heartbeat_lost(self) -> bool:
        """Whether the controller fell silent while some device holds its lease."""
        last = self._last_heartbeat
        leased = self.battery_lease.end_s > -math.inf or self.ev_lease.end_s > -math.inf or any(
            s.end_s > -math.inf for s in self.relays.slots)
        return last is not None and leased and time.monotonic() - last > self.heartbeat_timeout_s

    # --- when the house changes by itself ----------------------------------------------------------

    def next_change_s(self) -> float:
        """The next moment the house changes by itself between scheduled readings.

        A room's lease ending (its relay goes to the thermostat), the battery's or charger's lease
        ending (back to their defaults), the battery reaching a SOC limit or the car becoming
        full: the devices report such changes at once, as real meters report on change.
        """
        t = self.twin.t_s
        candidates = [self._relay_wake_s, self.twin.next_power_change_s()]
        candidates += [lease.end_s for lease in (self.battery_lease, self.ev_lease) if lease.end_s > t]
        upcoming = min(candidates)
        return upcoming if upcoming > t + 1e-6 else math.inf

    def wake_relays(self, t: float) -> None:
        """Before a reading at house second ``t``: the relays' own changes due by then (see :meth:`next_change_s`)."""
        if self._relay_wake_s <= t:
            self.refresh_relays(self._relay_wake_s)

    # --- commands ----------------------------------------------------------------------------------

    def record(self, house_s: float, topic: str, result: str, seq: int | None = None,
               lag_wall_s: float | None = None) -> None:
        """Keep (and journal) what became of a message; anything but ``"accepted"`` counts as dropped."""
        record = CommandRecord(house_s, topic, result, seq, lag_wall_s)
        self.records.append(record)
        if result != "accepted":
            self.rejections.drop(topic, result, f"at house second {house_s:.1f}")
        if self._journal is not None:
            self._journal.write(json.dumps({"house_time": self.clock.timestamp(house_s).isoformat(),
                                            "topic": topic, "result": result, "seq": seq,
                                            "lag_wall_s": lag_wall_s}) + "\n")

    def handle(self, batch: list[tuple[str, bytes, bool]], now: float) -> bool:
        """Let the devices take a batch of messages that arrived at house time ``now``.

        A command takes effect at the house time it was decided (its ``ts``) if the twin has not
        lived past that moment yet, else at once: the twin advances lazily, so nothing is
        rewound. This removes the artefact of acceleration — a few milliseconds of network are
        ``speed`` times as many house seconds — as long as a command arrives before the next
        reading is due. Returns ``True`` if any device changed.
        """
        changed = relays_changed = False
        for topic, payload, retained in batch:
            route = self.topics.route(topic)
            if route is None:
                continue
            if route.key == "controller_status":
                self._advance(now)
                changed |= self._controller_status(topic, payload, now)
                continue
            if retained:  # docs/failsafe.md F12: a retained command is a ghost from the past
                self.record(now, topic, "retained")
                continue
            try:
                command = parse_payload(COMMAND_SCHEMAS[route.key], payload)
            except PayloadError as exc:
                self.record(now, topic, f"invalid ({exc.reason})")
                continue
            decided_s = self.clock.seconds(command.ts) if command.ts is not None else now
            if self.lockstep:  # house time does not follow the wall: a command is late if the house has moved on
                lag_wall_s = None
                self.late_in_lockstep += decided_s < self.twin.t_s - 1e-3
            else:
                lag_wall_s = time.time() - self.clock.wall_s(decided_s)
            at = min(max(decided_s, self.twin.t_s), now)
            if relays_changed and at > self.twin.t_s:
                self.refresh_relays(self.twin.t_s)  # the rooms commanded so far, before time moves on
                relays_changed = False
            self._advance(at)
            if route.key == "heating_set":
                reason = self.relays.offer(route.room, command, at, self.clock)
                relays_changed |= reason is None
            elif route.key == "battery_set":
                reason = self._battery(command, at)
            else:
                reason = self._charger(command, at)
            self.record(at, topic, reason or "accepted", command.seq, lag_wall_s)
            changed |= reason is None
        if relays_changed:
            self.refresh_relays(self.twin.t_s)
        if self._journal is not None:
            self._journal.flush()
        return changed

    def _battery(self, command: object, now: float) -> str | None:
        if self.house.battery is None:
            return "no_battery"
        try:
            battery = battery_command_of(command)
        except ValueError:
            return "invalid (mode and power do not fit)"
        reason = self.battery_lease.offer(command, now, self.clock)
        if reason is None:
            self.twin.apply(Command(until=self.clock.timestamp(self.battery_lease.end_s), battery=battery))
        return reason

    def _charger(self, command: object, now: float) -> str | None:
        charger = self.house.ev_charger
        if charger is None:
            return "no_charger"
        reason = self.ev_lease.offer(command, now, self.clock)
        if reason is None:
            self.twin.apply(Command(until=self.clock.timestamp(self.ev_lease.end_s),
                                    ev_power_kw=charger_payload_power_kw(command, charger)))
        return reason

    def _controller_status(self, topic: str, payload: bytes, now: float) -> bool:
        if not payload:
            return False
        try:
            status = parse_payload(ControllerStatus, payload)
        except PayloadError as exc:
            self.record(now, topic, f"invalid ({exc.reason})")
            return False
        if status.state != "offline":
            # Lockstep: a controller that (re)connects re-reads every device before it commands; the house
            # waits for it, so the devices report now (in real time the next sample would come soon anyway).
            return self.lockstep
        self.controller_left = True  # lockstep: nobody to wait for any more
        # The controller is gone (its goodbye or its last will): every device to its own rule, now.
        self.fall_back(now, "controller_offline", topic)
        return True

    # --- the devices' own rules --------------------------------------------------------------------

    def fall_back(self, now: float, why: str, topic: str = "") -> None:
        """Every device to its own rule, now (the controller left, or fell silent)."""
        self._advance(now)
        self.relays.release()
        self.battery_lease.release()
        self.ev_lease.release()
        self.twin.end_leases()
        self._relay_wake_s = math.inf
        self.record(now, topic or self.topics.topic("heartbeat"), why)
        if why == "heartbeat_lost":
            log.warning("no heartbeat from the controller for %.1f s: every device back on its own rule",
                        self.heartbeat_timeout_s)

    def refresh_relays(self, t: float) -> None:
        """Hand the twin the relays' states: leased rooms as commanded, the others by their thermostat."""
        self._advance(t)
        leased = self.relays.leased(t)
        if not leased.any():
            self.twin.end_leases(relays=True, battery=False, ev=False)
            self._relay_wake_s = math.inf
            return
        wanted = self.relays.wanted
        next_tick = math.inf
        if not leased.all():
            obs = self.twin.observe()
            local = local_thermostat(obs.room_temp_c, obs.comfort_lower_c, obs.relay_on, self.house.thermostat)
            wanted = np.where(leased, wanted, local)
            next_tick = t + self.house.thermostat.period_s
        # The twin holds one relay lease: until the last room's ends (when it takes over itself);
        # rooms whose lease ends earlier are handed to their thermostat at a wake-up then.
        last_end = max(s.end_s for s, on in zip(self.relays.slots, leased, strict=True) if on)
        self.twin.apply(Command(until=self.clock.timestamp(last_end), relay_on=tuple(bool(x) for x in wanted)))
        self._relay_wake_s = min(self.relays.next_end_s(t), next_tick)
        if self._relay_wake_s >= last_end:
            self._relay_wake_s = math.inf
