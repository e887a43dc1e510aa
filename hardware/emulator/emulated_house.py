"""The house emulator: ``SimHouse`` on a realtime clock, speaking the real devices' topics.

It announces its clock (retained) so that a live runner agrees on the house time, publishes
every reading the real devices publish — every ``publish_period_s`` of house time, at each EV
arrival and departure, and right after it obeys a command (read-back) — and its devices behave
like the real ones (``hardware.emulator.emulated_devices``): they take leases, ignore old
sequence numbers and retained commands, and fall back to their local rules when a lease ends or
the controller's last will says it is offline. With ``speed`` N the house lives N× faster than
the wall clock. Readings carry the house time they were true at (``ts``) and meter counters
since the start, like real meters.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import math
import queue
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import simpy

from hardware.config import BrokerConfig
from hardware.emulator.devices import LeaseSlot, RelayBank
from hardware.emulator.emulated_devices import HEARTBEAT_TIMEOUT_S, CommandRecord, EmulatedDevices
from hardware.emulator.readings import DeviceStates, MeterTotals, house_readings
from hardware.emulator.schedule import PRE_DEPARTURE_S, sample_times, scenario_window
from hardware.plant.clock import HouseClock, LockstepClock
from hardware.plant.readings import DropCounter
from hardware.wire.mqtt import Message, MqttLink
from hardware.wire.schemas import EmulatorAck, EmulatorClock, EmulatorTime, PayloadError, dump, parse_payload
from hardware.wire.topics import READING_KEYS, TopicMap
from twin.config import HouseConfig
from twin.house import SimHouse
from twin.scenario import Scenario

log = logging.getLogger(__name__)

__all__ = ["HEARTBEAT_TIMEOUT_S", "PRE_DEPARTURE_S", "CommandRecord", "HouseEmulator", "sample_times",
           "scenario_window"]


#: Lockstep: wall seconds to wait for the controller's acknowledgement before playing on without it.
LOCKSTEP_ACK_TIMEOUT_S = 300.0
#: How often the play loop wakes at least, to notice a silence [wall s].
HEARTBEAT_CHECK_S = 0.25


class HouseEmulator:
    """Plays ``scenario`` on the twin of ``house`` behind ``broker``; :meth:`run` until the scenario ends."""

    def __init__(self, house: HouseConfig, scenario: Scenario, broker: BrokerConfig, topics: TopicMap,
                 speed: float = 1.0, publish_period_s: float = 60.0, start_delay_s: float = 2.0,
                 journal: Path | None = None, client_id: str = "pems-emulator",
                 heartbeat_timeout_s: float = HEARTBEAT_TIMEOUT_S, lockstep: bool = False,
                 decision_interval_s: float = 300.0, ack_timeout_s: float = LOCKSTEP_ACK_TIMEOUT_S,
                 end_s: float | None = None) -> None:
        if not (math.isfinite(speed) and 0.01 <= speed <= 100_000):
            raise ValueError(f"speed = {speed!r} is outside [0.01, 100000]")
        if not 1.0 <= publish_period_s <= 3600.0:
            raise ValueError(f"publish_period_s = {publish_period_s!r} is outside [1, 3600] s")
        if lockstep and not 1.0 <= decision_interval_s <= 86400.0:
            raise ValueError(f"decision_interval_s = {decision_interval_s!r} is outside [1, 86400] s")
        self.house = house
        self.scenario = scenario
        # Lockstep (a co-simulation clock): house time advances past a decision instant only once the
        # controller has acknowledged it on ``emulator_ack``; it is announced on ``emulator_time``.
        self.lockstep = lockstep
        self.decision_interval_s = decision_interval_s
        self.ack_timeout_s = ack_timeout_s
        self._acked_s = -math.inf  # the last decision instant the controller acknowledged [house s]
        self._ack_seen = threading.Event()
        self._ack_given_up = False  # the controller stopped acknowledging: play on without it
        self.ack_waits = 0  # decision instants the emulator waited at
        self.ack_wait_wall_s = 0.0
        self.topics = topics
        self.speed = speed
        self.publish_period_s = publish_period_s
        self.start_delay_s = start_delay_s
        self.env = simpy.Environment()
        self.twin = SimHouse(house, scenario, self.env, horizon_s=3600.0)
        # ``end_s``: play only the first ``end_s`` house seconds of ``scenario`` (whose data, EV sessions
        # included, continue past the end: a car that leaves after it is not made to leave at it).
        self.duration_s = scenario.duration_s if end_s is None else min(end_s, scenario.duration_s)
        self.devices = EmulatedDevices(house, self.twin, topics, self._advance, lockstep, heartbeat_timeout_s,
                                       journal)
        self.totals = MeterTotals(len(house.rooms))
        self.samples = 0
        self._inbox: queue.Queue[tuple[str, bytes, bool]] = queue.Queue(maxsize=10_000)
        subscriptions = [*topics.command_topics(), topics.topic("controller_status"), topics.topic("heartbeat")]
        if lockstep:
            subscriptions.append(topics.topic("emulator_ack"))
        # A whole house's readings go out in bursts: room for many samples in paho's queue.
        broker = dataclasses.replace(broker, max_queued_messages=10_000)
        self.link = MqttLink(broker, subscriptions, self._on_message, client_id=client_id,
                             on_connected=self._on_connected)

    # --- the devices' state, where callers have always found it ------------------------------------

    @property
    def clock(self) -> HouseClock | None:
        """The house clock, from :meth:`run` on (the devices date commands by it)."""
        return self.devices.clock

    @property
    def relays(self) -> RelayBank:
        return self.devices.relays

    @property
    def battery_lease(self) -> LeaseSlot:
        return self.devices.battery_lease

    @property
    def ev_lease(self) -> LeaseSlot:
        return self.devices.ev_lease

    @property
    def records(self) -> list[CommandRecord]:
        """Every command as the devices saw it, in the order they handled them."""
        return self.devices.records

    @property
    def rejections(self) -> DropCounter:
        return self.devices.rejections

    @property
    def heartbeat_timeout_s(self) -> float:
        return self.devices.heartbeat_timeout_s

    @property
    def late_in_lockstep(self) -> int:
        """Commands decided before the twin's time (lockstep should make it 0)."""
        return self.devices.late_in_lockstep

    # --- inbound (network thread) -------------------------------------------------------------------

    def _on_connected(self) -> None:
        """Every (re)connection: the clock again (retained), since a restarted broker may have lost it."""
        if self.clock is not None:
            self._announce_clock()

    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        if self.lockstep and topic == self.topics.topic("emulator_ack"):
            # After the commands of that decision (same connection, same QoS): they are in the inbox already.
            try:
                acked = parse_payload(EmulatorAck, payload).house_s
            except PayloadError as exc:
                self.rejections.drop(topic, f"invalid ({exc.reason})", "")
                return
            self._acked_s = max(self._acked_s, acked)
            self.devices.heard_from_controller()  # an acknowledgement is a sign of life too
            self._ack_seen.set()
            return
        if topic == self.topics.topic("heartbeat"):
            if not retained:
                self.devices.heard_from_controller()
            return
        try:
            self._inbox.put_nowait((topic, payload, retained))
        except queue.Full:
            self.devices.record(self.twin.t_s, topic, "inbox_full")

    # --- the realtime loop --------------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None, linger_s: float = 1.0) -> None:
        """Connect, announce the clock, and play the scenario in real time × speed until its end."""
        self.link.start()
        try:
            self._clear_retained()
            if self.lockstep:
                self.devices.clock = LockstepClock(self.scenario.start.to_pydatetime(), time.time(), self.speed)
            else:
                self.devices.clock = HouseClock(self.scenario.start.to_pydatetime(), time.time() + self.start_delay_s,
                                        self.speed)
            self._announce_clock()
            gc.freeze()  # the twin and the scenario live for the run: keep them out of GC passes
            if self.lockstep:
                self._play_lockstep(stop)
            else:
                self._play(stop)
            time.sleep(linger_s)  # let the last readings reach a runner before the clock disappears
        finally:
            self.link.publish(Message(self.topics.topic("emulator_clock"), b"", retain=True))
            self.link.stop()
            self.devices.close()

    def _play(self, stop: threading.Event | None) -> None:
        clock = self.clock
        due = sample_times(self.scenario, self.publish_period_s, self.duration_s)
        i = 0
        while i < len(due):
            if stop is not None and stop.is_set():
                return
            change = self.devices.next_change_s()
            delay = clock.wall_s(min(due[i], change)) - time.time()
            if self.devices.heartbeat_lost() and clock.now_s() >= 0.0:
                clock_s = clock.now_s()
                while i < len(due) and due[i] <= clock_s:  # readings that are due go out first
                    self._publish_sample(due[i])
                    i += 1
                self.devices.fall_back(min(max(clock_s, self.twin.t_s), self.duration_s), "heartbeat_lost")
                self._publish_sample(self.twin.t_s)  # the devices' own rules, reported at once
                continue
            early = delay > HEARTBEAT_CHECK_S  # wake up now and then to notice a silence
            try:
                wait_s = min(delay, HEARTBEAT_CHECK_S)
                item = self._inbox.get(timeout=wait_s) if wait_s > 0 else self._inbox.get_nowait()
            except queue.Empty:
                item = None
            if item is None and early:
                continue
            if item is not None:
                batch = [item]
                while True:
                    try:
                        batch.append(self._inbox.get_nowait())
                    except queue.Empty:
                        break
                clock_s = clock.now_s()  # negative before the house clock starts
                now = min(max(clock_s, self.twin.t_s), self.duration_s)
                while i < len(due) and due[i] <= clock_s:  # readings that are due go out first
                    self._publish_sample(due[i])
                    i += 1
                if self.devices.handle(batch, now) and clock_s >= 0.0:
                    self._publish_sample(self.twin.t_s)  # read-back: the state right after the command
                continue
            t = min(due[i], change)
            self.devices.wake_relays(t)
            self._publish_sample(t)  # on schedule, or because something changed by itself
            if due[i] <= t:
                i += 1

    def _play_lockstep(self, stop: threading.Event | None) -> None:
        """Lockstep: the readings as fast as the controller acknowledges its decisions; no wall pacing.

        Before any reading after a decision instant ``d`` (a multiple of ``decision_interval_s``), the
        emulator waits until the controller has acknowledged ``d`` — by then its commands for ``d`` are
        in the inbox (they travel before the acknowledgement on one connection) and take effect at
        ``d`` exactly. House time is announced on ``emulator_time`` before each sample.
        """
        due = sample_times(self.scenario, self.publish_period_s, self.duration_s)
        i = 0
        while i < len(due):
            if stop is not None and stop.is_set():
                return
            self._drain_inbox()
            t = min(due[i], self.devices.next_change_s())
            gate = self._gate_before(t)
            if gate is not None and self._acked_s < gate - 1e-3 and not self._controller_gone():
                self._await_ack(gate, stop)
                continue  # the commands may have changed what happens next
            self.devices.wake_relays(t)
            self._publish_sample(t)
            if due[i] <= t:
                i += 1
        self._drain_inbox()

    def _controller_gone(self) -> bool:
        """Lockstep: nobody to wait for any more (the controller left, or stopped acknowledging)."""
        return self._ack_given_up or self.devices.controller_left

    def _gate_before(self, t: float) -> float | None:
        """The last decision instant strictly before house second ``t`` (``None`` before the first)."""
        if t <= 0.0:
            return None
        k = math.ceil(t / self.decision_interval_s - 1e-9) - 1
        return min(k * self.decision_interval_s, self.duration_s)

    def _drain_inbox(self) -> bool:
        batch: list[tuple[str, bytes, bool]] = []
        while True:
            try:
                batch.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        if not batch:
            return False
        if self.devices.handle(batch, self.twin.t_s):
            self._publish_sample(self.twin.t_s)  # read-back: the state right after the command
        return True

    def _await_ack(self, gate: float, stop: threading.Event | None) -> None:
        """Wait (wall clock, bounded) until the controller acknowledged the decision at ``gate``."""
        wall0 = time.monotonic()
        self.ack_waits += 1
        while self._acked_s < gate - 1e-3 and not self._controller_gone():
            if stop is not None and stop.is_set():
                return
            if time.monotonic() - wall0 > self.ack_timeout_s:
                log.warning("lockstep: no acknowledgement of house second %.0f within %.0f wall s; playing on "
                            "without waiting for the controller", gate, self.ack_timeout_s)
                self._ack_given_up = True
                break
            self._ack_seen.wait(0.05)
            self._ack_seen.clear()
            self._drain_inbox()  # commands (and the controller's goodbye) as they come
        self._drain_inbox()
        self.ack_wait_wall_s += time.monotonic() - wall0

    def _advance(self, t: float) -> None:
        t = min(t, self.duration_s)
        if t > self.env.now:
            self.env.run(until=t)
        self.twin.sync()
        if isinstance(self.clock, LockstepClock):
            self.clock.advance(self.twin.t_s)

    # --- outbound -----------------------------------------------------------------------------------

    def _clear_retained(self) -> None:
        """Remove readings a previous run left retained (they would look newer than ours)."""
        for key in READING_KEYS:
            for topic in self.topics.topics(key):
                self.link.publish(Message(topic, b"", retain=True))

    def _announce_clock(self) -> None:
        s = self.scenario
        end = s.start + pd.Timedelta(seconds=self.duration_s)
        clock = EmulatorClock(scenario=s.name, house_start=s.start.to_pydatetime(), house_end=end.to_pydatetime(),
                              wall_start_s=self.clock.wall_origin_s, speed=self.speed,
                              timezone=self.house.location.timezone, lockstep=self.lockstep,
                              decision_interval_s=self.decision_interval_s if self.lockstep else None)
        self.link.publish(Message(self.topics.topic("emulator_clock"), dump(clock), retain=True))

    def _publish_sample(self, t: float) -> None:
        """Every reading of the house at house time ``t``, with the meters' counters."""
        self._advance(t)
        if self.lockstep:  # house time first, then its readings (in order on this connection, all at QoS 0)
            self.link.publish(Message(self.topics.topic("emulator_time"),
                                      dump(EmulatorTime(house_s=self.twin.t_s)), qos=0))
        obs = self.twin.observe()
        self.totals.add(self.twin.take_interval().meter)
        d = self.devices
        devices = DeviceStates(relays=d.relays, battery_lease=d.battery_lease, ev_lease=d.ev_lease)
        for topic, payload in house_readings(self.twin, obs, self.totals, devices, self.topics,
                                             self.clock.timestamp(self.twin.t_s)):
            # Like the real devices' bridges: readings at QoS 0 (the next one follows), retained.
            self.link.publish(Message(topic, dump(payload), retain=True, qos=0))
        self.samples += 1

    def summary(self) -> dict[str, object]:
        """Counts of what happened, and how late commands arrived (wall seconds after their decision)."""
        results = Counter(r.result for r in self.records)
        lags = np.array([r.lag_wall_s for r in self.records if r.lag_wall_s is not None])
        late = sum(1 for r in self.records if r.result == "accepted" and r.lag_wall_s is not None
                   and r.lag_wall_s * self.speed > self.publish_period_s) + self.late_in_lockstep
        return {"samples": self.samples, "commands": dict(results), "house_end_s": self.twin.t_s,
                "dropped_while_disconnected": self.link.unsent,
                "command_lag_wall_s": None if not lags.size else {
                    "p50": float(np.percentile(lags, 50)), "p95": float(np.percentile(lags, 95)),
                    "max": float(lags.max())},
                "commands_after_next_reading": late,
                **({"lockstep": {"ack_waits": self.ack_waits, "ack_wait_wall_s": round(self.ack_wait_wall_s, 3)}}
                   if self.lockstep else {})}
