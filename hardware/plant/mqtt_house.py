"""MqttHouse: the real house behind MQTT, as a ``Plant`` the runner loop drives like ``SimHouse``.

``observe()`` builds an ``Observation`` from fresh readings and the forecast source; an input
whose reading is too old is named in ``obs.stale`` and given as NaN (never zero, never the last
value). ``apply()`` publishes each commanded device's lease (QoS 1, never retained, MQTT v5
expiry = lease) — only to the devices :mod:`hardware.plant.dispatch` lets through (rollout mode,
blind rooms), and only through ``hardware.failsafe.layer`` (link state, re-read after reconnecting,
manual overrides, clock skew, the envelope on the wire, read-back). ``take_interval()`` meters the
interval from the devices' counters, so the live run log has the simulated one's schema.

The plant only observes and applies: the plan on ``pems/plan``, ``optim_status``, the command
journal and the events about decisions are observers of the runner loop
(:class:`twin.runner.DecisionObserver`, implemented in :mod:`hardware.live.observers`).

House time is the SimPy clock ``env.now`` (seconds since ``clock.origin``). At a decision
instant the house can wait (``sample_wait_s``) for readings stamped at or after that instant,
so that what the controller sees is the house *now*, not a reading from a moment ago.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter
from collections.abc import Hashable
from datetime import datetime

import simpy

from hardware.config import LiveConfig
from hardware.devices import LeaseTerms
from hardware.devices.encoder import CommandEncoder
from hardware.devices.ev_charger import EvChargerAdapter
from hardware.devices.growatt import GrowattAdapter
from hardware.devices.loxone import LoxoneAdapter
from hardware.errors import LiveError
from hardware.failsafe.events import EventKind
from hardware.failsafe.layer import FailSafe
from hardware.failsafe.persistence import PlannedCommand
from hardware.plant.clock import HouseClock, LockstepClock
from hardware.plant.dispatch import ALLOWED_DEVICES, Dispatch
from hardware.plant.forecasts import ForecastSource, Outlook
from hardware.plant.metering import Counters, EventLedger, interval_meter
from hardware.plant.readings import Reading, ReadingStore
from hardware.wire.mqtt import Message, MqttLink
from hardware.wire.schemas import (
    READING_SCHEMAS,
    ControllerStatus,
    EmulatorAck,
    EmulatorTime,
    PayloadError,
    dump,
    parse_payload,
)
from hardware.wire.topics import READING_KEYS, Route
from twin.config import HouseConfig
from twin.contracts import Command, Observation
from twin.house import IntervalRecord
from twin.safety import RolloutMode

log = logging.getLogger(__name__)

#: How far before a decision instant a reading may be stamped and still count as taken at it [house s]:
#: above the payloads' microsecond timestamps, below the emulator's pre-departure reading (1e-4 s before).
SAMPLE_TOLERANCE_S = 1e-5

__all__ = ["ALLOWED_DEVICES", "MqttHouse"]


class MqttHouse:
    """The house behind the broker. ``connect()`` before the run, ``close()`` after it."""

    def __init__(self, house: HouseConfig, config: LiveConfig, clock: HouseClock, env: simpy.Environment,
                 forecasts: ForecastSource, mode: RolloutMode = RolloutMode.FULL) -> None:
        self.house = house
        self.config = config
        self.clock = clock
        self.env = env
        self.forecasts = forecasts
        self.mode = mode
        self.topics = config.topics.topic_map(house.room_names)
        self.store = ReadingStore(clock, config.max_age.max_clock_skew_s,
                                  max_implausible_s=config.max_age.max_implausible_stamp_s)
        self.ledger = EventLedger(house.grid, len(house.rooms))
        self.store.add_listener(self._book)
        self.loxone = LoxoneAdapter(house, self.topics, config.max_age)
        self.growatt = GrowattAdapter(self.topics, config.max_age, house.battery is not None)
        self.ev = EvChargerAdapter(house.ev_charger, self.topics, config.max_age)
        self.encoder = CommandEncoder(self.loxone, self.growatt, self.ev, house.battery is not None,
                                      house.ev_charger is not None)
        self.dispatch = Dispatch(self.encoder, mode, house.room_names)
        self.allowed = self.dispatch.allowed
        self.published: Counter[str] = Counter()  # device → messages published
        self.not_commanded: Counter[str] = Counter()  # why device commands were held back
        self._sampled_at: float | None = None
        self._stale: frozenset[str] = frozenset()  # of the last observation
        age = config.max_age
        self._max_age_by_key = {
            "room_temperature": age.room_temperature_s, "heating_status": age.heating_status_s,
            "outdoor_temperature": age.outdoor_temperature_s, "battery_status": age.battery_s, "pv_status": age.pv_s,
            "grid_status": age.grid_s, "ev_status": age.ev_charger_s, "ev_car_status": age.ev_car_s}
        self._interval_start_s: float | None = None
        self._interval_counters: Counters | None = None
        self._interval_prices = (math.nan, math.nan)
        # Only a controller that commands devices announces itself: its last will makes them fall back.
        commanding = bool(self.allowed)
        status_topic = self.topics.topic("controller_status")
        self._farewell = Message(status_topic, self._status_payload("offline"), retain=True) if commanding else None
        subscriptions = [t for key in READING_KEYS for t in self.topics.topics(key)]
        #: Lockstep (``pems emulate --lockstep``): house time comes from the emulator, on the readings' connection
        #: (so that it arrives in order with them), and each decision is acknowledged (:meth:`acknowledge`).
        self.lockstep = isinstance(clock, LockstepClock)
        if self.lockstep:
            subscriptions.append(self.topics.topic("emulator_time"))
        birth = Message(status_topic, self._status_payload("online"), retain=True) if commanding else None
        self.failsafe = FailSafe(house, config, self.topics, mode, clock.speed, self.wall_now, clock.now_s,
                                 subscriptions, self._on_message, birth=birth, will=self._farewell)
        self.events = self.failsafe.events
        self._silence = (-1, time.monotonic(), False)  # (readings accepted, since when, alerted)
        self.failsafe.watchdog.on_tick.append(self._check_silence)
        self.store.on_stamp = self.failsafe.on_stamp
        self.store.add_listener(self.failsafe.on_reading)

    @property
    def link(self) -> MqttLink | None:
        """The current connection (a new one after every reconnection)."""
        return self.failsafe.link

    def _status_payload(self, state: str) -> bytes:
        return dump(ControllerStatus(state=state, mode=self.mode.value))

    # --- connection ----------------------------------------------------------------------------------

    def connect(self) -> None:
        self.failsafe.start()

    def close(self) -> None:
        """Say goodbye (devices fall back to their own rules at once) and disconnect."""
        self.failsafe.stop(farewell=self._farewell)

    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        route = self.topics.route(topic)
        if route is None:
            self.store.drops.drop(topic, "unexpected_topic")
            return
        if route.key == "emulator_time":
            self._on_emulator_time(payload)
            return
        if self.failsafe.route(route, topic, payload, retained):
            return
        if route.key not in READING_SCHEMAS:
            self.store.drops.drop(topic, "unexpected_topic")
            return
        if not payload:  # a retained message being cleared
            return
        self.store.offer(route, READING_SCHEMAS[route.key], topic, payload, retained)

    def _on_emulator_time(self, payload: bytes) -> None:
        if not payload or not isinstance(self.clock, LockstepClock):
            return
        try:
            self.clock.advance(parse_payload(EmulatorTime, payload).house_s)
        except PayloadError:
            self.store.drops.drop(self.topics.topic("emulator_time"), "invalid")
            return

    def acknowledge(self, house_s: float) -> None:
        """Lockstep: tell the emulator the decision at ``house_s`` is made and its commands are sent.

        Published on the commands' connection after them, at the same QoS: the emulator receives the
        commands first and may then advance past ``house_s``.
        """
        link = self.link
        if self.lockstep and link is not None:
            link.publish(Message(self.topics.topic("emulator_ack"), dump(EmulatorAck(house_s=house_s)), qos=1))

    def _check_silence(self) -> None:
        """Alert once when no reading at all has been accepted for ``failsafe.no_readings_alert_s``."""
        accepted, since, alerted = self._silence
        now = time.monotonic()
        if self.store.accepted != accepted:
            self._silence = (self.store.accepted, now, False)
            return
        limit = self.config.failsafe.no_readings_alert_s
        if not alerted and now - since > limit:
            self._silence = (accepted, since, True)
            drops = sum(self.store.drops.by_reason().values())
            self.events.record(EventKind.NO_READINGS, f"connected, but no reading accepted for {limit:g} s "
                               f"({drops} dropped as invalid): the broker may be dropping this client's "
                               f"publishes: check the ACL (the devices' users must be allowed to write their "
                               f"topics, and the controller to read them)", alert=True)

    def _book(self, key: Hashable, reading: Reading) -> None:
        house_s = reading.device_s if reading.device_s is not None else self.clock.now_s()
        self.ledger.on_reading(key, reading, house_s)

    def required_readings(self) -> dict[Route, float]:
        """Readings the house cannot be observed without, with their max ages."""
        age = self.config.max_age
        keys = {Route("room_temperature", j): age.room_temperature_s for j in range(len(self.house.rooms))}
        keys.update({Route("heating_status", j): age.heating_status_s for j in range(len(self.house.rooms))})
        keys[Route("pv_status")] = age.pv_s
        keys[Route("grid_status")] = age.grid_s
        if self.house.battery is not None:
            keys[Route("battery_status")] = age.battery_s
        if self.house.ev_charger is not None:
            keys[Route("ev_status")] = age.ev_charger_s
        return keys

    def wait_for_readings(self, timeout_s: float) -> list[str]:
        """Wait until every required reading is fresh; the topics still missing after ``timeout_s``."""
        required = self.required_readings()

        def missing() -> list[Route]:
            keys = [k for k, max_age in required.items() if self.store.fresh(k, max_age) is None]
            # A connected car's needs come on their own topic, a moment after the charger's status: without
            # them the first decision would see a car that wants nothing (found by the MPC's parity test).
            charger = self.store.fresh(Route("ev_status"), self.config.max_age.ev_charger_s)
            if (getattr(charger, "connected", False)
                    and self.store.fresh(Route("ev_car_status"), self.config.max_age.ev_car_s) is None):
                keys.append(Route("ev_car_status"))
            return keys

        self.store.wait_until(lambda: not missing(), timeout_s)
        return [self.topics.topic(k.key, k.room) for k in missing()]

    # --- Plant protocol ------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The house time of the current decision (the SimPy clock)."""
        return self.clock.timestamp(self.env.now)

    def wall_now(self) -> datetime:
        """The house time right now (heartbeats, alerts, re-sent commands: not the last decision's time)."""
        return self.clock.timestamp(self.clock.now_s())

    def _sample(self, t: float) -> None:
        """Wait (bounded) until every fresh reading whose device stamps its readings has reached ``t``."""
        if self._sampled_at == t:
            return
        self._sampled_at = t
        wait_s = self.config.control.sample_wait_s
        if self.lockstep:  # the emulator publishes the readings at t once we acknowledged the last decision
            wait_s = max(wait_s, self.config.clock.wait_s)
        if wait_s <= 0.0:
            return
        limit = self._max_age_by_key
        stamped = [k for k in self.store.keys()
                   if (r := self.store.get(k)) is not None and r.device_s is not None
                   and self.store.age_s(r) <= limit.get(getattr(k, "key", ""), 0.0)]

        def reached() -> bool:
            # A reading stamped just before t (a device reporting a change) does not count as at t.
            return all((r := self.store.get(k)) is not None and r.device_s >= t - SAMPLE_TOLERANCE_S
                       for k in stamped)

        if not self.store.wait_until(reached, wait_s):
            log.debug("readings for t=%.0f s incomplete after %.2f s", t, wait_s)

    def observe(self) -> Observation:
        t = self.env.now
        self._sample(t)
        now = self.clock.timestamp(t)
        outlook = self.forecasts.outlook(now)
        heating = self.loxone.read(self.store)
        inverter = self.growatt.read(self.store)
        ev = self.ev.read(self.store)
        stale = set(heating.stale | inverter.stale | ev.stale)
        base_load = (inverter.grid_power_kw + inverter.pv_power_kw - inverter.battery_power_kw
                     - heating.heating_kw - ev.power_kw)
        if math.isnan(base_load):
            stale.add("base_load_kw")
        else:
            base_load = max(base_load, 0.0)  # meters that disagree slightly must not make a negative load
        outdoor = heating.outdoor_temp_c if math.isfinite(heating.outdoor_temp_c) else outlook.outdoor_temp_c
        if self._interval_counters is None:
            self._start_interval(t, outlook)
        self._stale = frozenset(stale)
        return Observation(
            time=now, room_temp_c=heating.room_temp_c, comfort_lower_c=outlook.comfort_lower_c,
            comfort_upper_c=outlook.comfort_upper_c, relay_on=heating.relay_on, outdoor_temp_c=outdoor,
            pv_power_kw=inverter.pv_power_kw, base_load_kw=base_load,
            grid_power_kw=inverter.grid_power_kw, battery_soc=inverter.battery_soc,
            battery_power_kw=inverter.battery_power_kw, ev_connected=ev.connected, ev_soc=ev.soc,
            ev_energy_needed_kwh=ev.energy_needed_kwh, ev_departure=ev.departure,
            import_price_per_kwh=outlook.import_price_per_kwh, export_price_per_kwh=outlook.export_price_per_kwh,
            forecast=outlook.forecast, stale=frozenset(stale))

    def apply(self, command: Command) -> None:
        """Publish each commanded device's lease; devices the rollout mode forbids get nothing.

        What may go out at all is :class:`~hardware.plant.dispatch.Dispatch`'s call (rollout mode,
        blind rooms); each device is then commanded only if the fail-safe lets it
        (``FailSafe.why_not``); the plan (sequence numbers, leases) is persisted before anything goes out.
        """
        now = self.now()
        if command.until <= now:
            return
        lease = LeaseTerms.of(command, now, self.clock.speed)
        failsafe = self.failsafe
        ready = []
        for part in self.dispatch.device_commands(command, lease, failsafe.seq, self._stale):
            reason = failsafe.why_not(part.device)
            if reason is not None:
                self.not_commanded[reason] += 1
                continue
            ready.append((part.kind, part.device, part.key, part.expected, part.build()))
        if not ready:
            return
        sent_wall = time.time()
        until_wall = sent_wall + lease.expiry_s
        failsafe.save_plan({device: PlannedCommand(device, key, int(json.loads(message.payload)["seq"]), expected,
                                                   until_wall, sent_wall)
                            for _, device, key, expected, message in ready})
        for kind, device, key, expected, message in ready:
            if failsafe.send(device, key, message, expected, lease.ttl_s, lease.expiry_s, self._stale):
                self.published[kind] += 1

    def set_mode(self, mode: RolloutMode) -> None:
        """A lower rollout mode from the next decision on: what may go out (dispatch), the outgoing
        envelope and the controller's status follow; devices no longer commanded keep their last
        lease until it lapses to their own rules."""
        self.mode = mode
        self.dispatch.set_mode(mode)
        self.failsafe.mode = mode
        self.failsafe.outbox.mode = mode

    @property
    def blocked(self) -> int:
        """Device commands the rollout mode refused (a layer above let them through)."""
        return self.dispatch.blocked

    # --- metering ------------------------------------------------------------------------------------

    def _counters(self) -> Counters:
        heating_kwh, switches = self.loxone.counters(self.store)
        inverter = self.growatt.counters(self.store)
        return Counters(pv_kwh=inverter.pv_kwh, import_kwh=inverter.import_kwh, export_kwh=inverter.export_kwh,
                        battery_charge_kwh=inverter.battery_charge_kwh,
                        battery_discharge_kwh=inverter.battery_discharge_kwh,
                        ev_kwh=self.ev.energy_counter_kwh(self.store), heating_room_kwh=heating_kwh,
                        relay_switches_room=switches)

    def _start_interval(self, t: float, outlook: Outlook) -> None:
        self._interval_start_s = t
        self._interval_counters = self._counters()
        self._interval_prices = (outlook.import_price_per_kwh, outlook.export_price_per_kwh)
        self.ledger.take(t)  # what happened before the first interval is not ours

    def take_interval(self) -> IntervalRecord:
        """Close the interval that ends now: meter it from the counters; start the next one."""
        t = self.env.now
        self._sample(t)
        start_counters = self._interval_counters
        end_counters = self._counters()
        violation, unmet, switches = self.ledger.take(t)
        if start_counters is None:  # take_interval before any observe(): an empty interval
            start_counters = end_counters
        meter = interval_meter(start_counters, end_counters, *self._interval_prices, violation, unmet, switches)
        heating = self.loxone.read(self.store)
        inverter = self.growatt.read(self.store)
        ev = self.ev.read(self.store)
        record = IntervalRecord(
            start_s=self._interval_start_s if self._interval_start_s is not None else t, end_s=t, meter=meter,
            room_temp_c=heating.room_temp_c, relay_on=heating.relay_on, battery_soc=inverter.battery_soc,
            ev_connected=ev.connected, ev_soc=ev.soc)
        self._interval_start_s = t
        self._interval_counters = end_counters
        try:
            outlook = self.forecasts.outlook(self.clock.timestamp(t))
            self._interval_prices = (outlook.import_price_per_kwh, outlook.export_price_per_kwh)
        except LiveError:  # the forecast source has run out: this was the last interval
            self._interval_prices = (math.nan, math.nan)
        return record
