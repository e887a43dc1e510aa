"""Everything between ``MqttHouse.apply`` and the broker that keeps the house safe when things fail.

One object per live run, composed of the pieces of docs/failsafe.md §2 — each in its own module:

* :mod:`hardware.failsafe.watchdog` — the link and its states (CONNECTING → RECONCILING → RUNNING ↔ SAFE),
  heartbeats and their echo, reconnection with backoff, refusals as alerts;
* :mod:`hardware.failsafe.outbox` — publish now or never, after the last envelope check;
* :mod:`hardware.failsafe.readback` — confirmation of every command, retries, manual overrides;
* :mod:`hardware.failsafe.skew` — device clocks measured from their stamps;
* :mod:`hardware.failsafe.hygiene` — retained and foreign commands on the command topics;
* :mod:`hardware.failsafe.persistence` — sequence numbers, last plan and safety history across restarts;
* :mod:`hardware.failsafe.events` — the event log and the alerts for ``pems/alerts``.

A device (``heating.<room>``, ``battery``, ``ev``) is commanded only while the watchdog says
RUNNING with a fresh echo, *and* it has reported its status since the current connection was
made (re-read before acting), *and* it is not held off after a manual override, *and* its
clock agrees with ours.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Collection, Hashable
from datetime import datetime

from hardware.config import LiveConfig
from hardware.failsafe.envelope import MODE_KEYS
from hardware.failsafe.events import EventKind, EventLog
from hardware.failsafe.hygiene import CommandTopicGuard
from hardware.failsafe.outbox import Outbox
from hardware.failsafe.persistence import PersistentSequence, PlannedCommand, StateStore
from hardware.failsafe.readback import Expected, ReadbackTracker
from hardware.failsafe.skew import SkewMonitor
from hardware.failsafe.watchdog import LinkState, Watchdog
from hardware.plant.readings import Reading
from hardware.wire.mqtt import Message, MessageHandler, MqttLink
from hardware.wire.schemas import (
    BatteryStatus,
    ChargerStatus,
    ControllerStatus,
    HeatingStatus,
    PayloadError,
    parse_payload,
)
from hardware.wire.topics import COMMAND_KEYS, Route, TopicMap
from twin.config import HouseConfig
from twin.safety import RolloutMode

log = logging.getLogger(__name__)

#: A retained status stamped at most this long before the connection still counts as re-read [house s].
REREAD_TOLERANCE_S = 1e-3


def device_of(route: Route, room_names: tuple[str, ...]) -> str | None:
    """The commandable device a reading belongs to (whose clock stamped it), or ``None``."""
    if route.key in ("heating_status", "room_temperature", "heating_set"):
        return f"heating.{room_names[route.room]}"
    if route.key in ("battery_status", "pv_status", "grid_status", "battery_set"):
        return "battery"
    if route.key in ("ev_status", "ev_set"):
        return "ev"
    return None


#: Status readings a device answers commands with.
STATUS_KEYS = frozenset({"heating_status", "battery_status", "ev_status"})
STATUS_TYPES = (HeatingStatus, BatteryStatus, ChargerStatus)


class FailSafe:
    """The controller's guarded link to the devices; see the module docstring."""

    def __init__(self, house: HouseConfig, config: LiveConfig, topics: TopicMap, mode: RolloutMode,
                 speed: float, now: Callable[[], datetime], now_house_s: Callable[[], float],
                 subscriptions: list[str], on_message: MessageHandler, birth: Message | None,
                 will: Message | None) -> None:
        self.house = house
        self.config = config
        self.failsafe = config.failsafe
        self.topics = topics
        self.mode = mode
        self.speed = speed
        self._now_house_s = now_house_s
        self.events = EventLog()
        self.state_store = StateStore(config.failsafe.state_file, house.name)
        self.previous = self.state_store.load()
        self.seq = PersistentSequence(self.state_store)
        self.readback = ReadbackTracker(config.failsafe, self.events, speed,
                                        resync=lambda device, seen: self.seq.resync(seen))
        self.skew = SkewMonitor(config.max_age.max_clock_skew_s, self.events)
        self._reported: dict[str, float] = {}  # device → monotonic time of its last live status
        self._connected_house_s = -math.inf
        # The devices this mode commands: re-read after every (re)connection before any command.
        kinds = MODE_KEYS[mode]
        self.devices = (([f"heating.{r}" for r in house.room_names] if "heating_set" in kinds else [])
                        + (["battery"] if house.battery and "battery_set" in kinds else [])
                        + (["ev"] if house.ev_charger and "ev_set" in kinds else []))
        heartbeats = bool(kinds)
        # Our own status topic too: a foreign "offline" there makes every device drop our leases.
        self._subscriptions = [*subscriptions, topics.topic("heartbeat"), topics.topic("controller_status")]
        self._answered_mono = -math.inf  # when a foreign status or heartbeat was last answered
        self._stopping = False
        self._command_topics = list(topics.command_topics())
        self._on_message = on_message
        self._birth, self._will = birth, will

        def factory(attempt: int) -> MqttLink:
            broker = config.broker
            client_id = broker.client_id if attempt == 0 else f"{broker.client_id}-r{attempt}"
            return MqttLink(broker, self._subscriptions, self._on_message, client_id=client_id, will=self._will,
                            birth=self._birth, no_local=self._command_topics, auto_reconnect=False,
                            on_disconnected=self.watchdog.link_lost, on_connected=self._link_up)

        self.watchdog = Watchdog(config.failsafe, factory, topics.topic("heartbeat"), topics.topic("alerts"),
                                 self.events, self._reconciled, now, heartbeats=heartbeats, birth=birth,
                                 alerts=mode is not RolloutMode.SIMULATION)
        self.outbox = Outbox(self.watchdog, house, mode, self.readback, self.events, self.seq.next, now, speed,
                             max_in_flight=config.broker.max_queued_messages)
        self.hygiene = CommandTopicGuard(mode, self.events, self.watchdog.publish)
        self.watchdog.on_tick.append(lambda: self.readback.check(self.outbox.resend))
        self.watchdog.on_safe.append(self.readback.forget)
        if self.previous is not None:
            self._restore_plan()

    # --- lifecycle -----------------------------------------------------------------------------------

    @property
    def link(self) -> MqttLink | None:
        return self.watchdog.link

    @property
    def state(self) -> LinkState:
        return self.watchdog.state

    def start(self) -> None:
        self.watchdog.start()

    def stop(self, farewell: Message | None) -> None:
        self._stopping = True  # our own farewell is coming back: not to be answered
        link = self.watchdog.stop()
        if link is not None and link.connected.is_set():
            link.stop(farewell=farewell)
        elif link is not None:
            link.abandon(with_will=True)
        self.outbox.close()

    def _link_up(self) -> None:
        self._connected_house_s = self._now_house_s()

    # --- inbound (paho's network thread) --------------------------------------------------------------

    def route(self, route: Route, topic: str, payload: bytes, retained: bool) -> bool:
        """Handle what is the fail-safe's own business; ``False`` for readings (the caller stores them)."""
        if route.key == "heartbeat":
            if not self.watchdog.echo(payload):
                self._answer("a heartbeat of another session on our heartbeat topic")
            return True
        if route.key == "controller_status":
            self._on_controller_status(payload, retained)
            return True
        if route.key in COMMAND_KEYS:
            self.hygiene.on_message(route, topic, payload, retained)
            return True
        return False

    def _on_controller_status(self, payload: bytes, retained: bool) -> None:
        """Our own ``pems/status``: an "offline" we did not send is answered with our birth again."""
        if retained or not payload or self._birth is None or self._stopping:
            return  # retained: from before we subscribed (our birth replaced it); ours only if we command
        try:
            status = parse_payload(ControllerStatus, payload)
        except PayloadError:
            status = None
        if status is not None and status.state == "online":
            return
        self.events.record(EventKind.FOREIGN_STATUS, "someone else published our status as "
                           f"{'offline' if status is not None else 'unreadable'}: the devices would drop our "
                           "leases; announcing online again", alert=True)
        self._answer(None)

    def _answer(self, why: str | None) -> None:
        """Re-publish our birth (retained) — at most once per heartbeat period; ``why``: also an alert."""
        now = time.monotonic()
        if (self._birth is None or self._stopping
                or now - self._answered_mono < self.config.failsafe.heartbeat_s):
            return
        self._answered_mono = now
        if why is not None:
            self.events.record(EventKind.FOREIGN_STATUS, f"{why}: announcing online again", alert=False)
        self.watchdog.publish(self._birth)

    def on_stamp(self, key: Hashable, offset_s: float, retained: bool) -> None:
        if retained or not isinstance(key, Route) or key.key == "ev_car_status":
            return  # a retained stamp may be hours old; the car's clock is the car maker's
        device = device_of(key, self.house.room_names)
        if device is not None:
            self.skew.sample(device, offset_s)

    def on_reading(self, key: Hashable, reading: Reading) -> None:
        """An accepted reading: a device re-read, a command confirmed, an override noticed."""
        if not isinstance(key, Route) or key.key not in STATUS_KEYS:
            return
        device = device_of(key, self.house.room_names)
        fresh = not reading.retained or (reading.device_s is not None
                                         and reading.device_s >= self._connected_house_s - REREAD_TOLERANCE_S)
        if fresh:
            self._reported[device] = reading.received_mono
        self.readback.on_status(device, reading.payload, reading.retained)

    # --- what may be commanded --------------------------------------------------------------------------

    def _reconciled(self, since_mono: float) -> bool:
        missing = [d for d in self.devices if self._reported.get(d, -1.0) <= since_mono]
        if not missing and self.devices:
            self.events.record(EventKind.RECONCILED, f"{len(self.devices)} devices re-read "
                               f"{time.monotonic() - since_mono:.2f} s after connecting")
        return not missing

    def why_not(self, device: str) -> str | None:
        """Why ``device`` may not be commanded now (``None``: it may)."""
        if self.watchdog.state is LinkState.RECONCILING:
            self.watchdog.check_reconciled()  # the last device may have reported a moment ago
        if not self.watchdog.may_command():
            return f"link {self.watchdog.state.value}"
        if self._reported.get(device, -1.0) <= self.watchdog.connected_since:
            return "not re-read since the connection was made"
        if self.readback.held_off(device):
            return "held off after a manual override"
        if self.skew.untrusted(device):
            return "its clock is off"
        return None

    def send(self, device: str, key: str, message: Message, expected: Expected, lease_house_s: float,
             expiry_s: float, stale: Collection[str] = frozenset()) -> bool:
        """Publish one device command now or never; ``stale``: the inputs stale at its decision."""
        return self.outbox.send(device, key, message, expected, lease_house_s, expiry_s, stale=stale)

    def save_plan(self, plan: dict[str, PlannedCommand]) -> None:
        """Persist the latest command per device, with the safety history staged for this decision."""
        self.state_store.save_plan(plan)

    def publish(self, message: Message) -> bool:
        """A non-command message (plan, optim_status): sent if connected, never in SIMULATION."""
        return self.mode is not RolloutMode.SIMULATION and self.watchdog.publish(message)

    # --- restart ------------------------------------------------------------------------------------

    def _restore_plan(self) -> None:
        """Commands of the previous run whose leases still run: their read-back tells what the devices do."""
        now_wall, now_mono = time.time(), time.monotonic()
        live = [p for p in self.previous.plan if p.until_wall_s > now_wall]
        for planned in live:
            self.readback.remember(planned.device, planned.seq, planned.expected,
                                   now_mono + (planned.until_wall_s - now_wall),
                                   planned.until_wall_s - planned.sent_wall_s)
        self.events.record(EventKind.PLAN_RESTORED, f"state of a previous run saved "
                           f"{now_wall - self.previous.saved_wall_s:.0f} s ago: sequence numbers above "
                           f"{self.previous.seq_reserved}, {len(live)} of {len(self.previous.plan)} leases still "
                           f"running; starting in SAFE until every device is re-read")
