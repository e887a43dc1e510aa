"""The devices of a house as small, real-time MQTT clients that log everything they receive.

What a device bridge (Loxone, the Growatt inverter, the wallbox) must do for the controller to
be safe, written out as the reference the fault-injection suite measures against (docs/failsafe.md §2):

* a command is a **lease**: it holds for ``min(ttl_s, until − ts)`` from its *receipt* on the
  device's own monotonic clock (so no clock skew can stretch it), then the device returns to
  its **local rule** (relay → room thermostat, inverter → self-consumption, charger → stop);
* it takes a command only with a **higher sequence number** than the last it took (QoS 1 may
  deliver twice; an old command replayed changes nothing) — within bounds
  (``hardware.wire.sequence``: a newer session epoch not ahead of the controller's clock, or a
  counter jump of at most ``MAX_COUNTER_JUMP``), never a **retained** one (ghost
  switching), never one **older** than ``max_command_age_s`` — its age measured against the
  controller's clock, which the device learns from the controller's heartbeats (the smallest
  ``receipt − ts`` seen), so the device's own clock may be off by any amount;
* it falls back to its local rule at once on the controller's **last will** (``pems/status``
  ``offline``) and when the controller's **heartbeats stop** for ``heartbeat_timeout_s`` (a
  frozen controller leaves no will);
* it reports its status — state, who rules it (``source``), the last sequence number it took,
  stamped with its own clock — periodically, right after taking a command (read-back), and
  when the controller announces itself (``online``), so a reconnected controller can re-read
  every device before commanding.

Every command received is logged as a :class:`Delivery` (receipt time, sequence number, true
age, accepted or why not), every change of a device's state as a :class:`StateChange` with its
cause: the fault-injection metrics (``hardware.faultlab.metrics``) are computed from these logs.
Times here are the test process's ``time.monotonic()`` and ``time.time()`` (the true clock).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as paho
from paho.mqtt.subscribeoptions import SubscribeOptions

from hardware.faultlab.records import Delivery, DeviceState, SimSettings, StateChange
from hardware.wire.schemas import (
    COMMAND_SCHEMAS,
    BatteryCommandPayload,
    BatteryStatus,
    CarStatus,
    ChargerCommand,
    ChargerStatus,
    ControllerStatus,
    GridStatus,
    Heartbeat,
    HeatingCommand,
    HeatingStatus,
    OutdoorTemperature,
    Payload,
    PayloadError,
    PvStatus,
    RoomTemperature,
    dump,
    parse_payload,
)
from hardware.wire.sequence import refusal
from hardware.wire.topics import TopicMap
from twin.config import HouseConfig

__all__ = ["Delivery", "DeviceSims", "DeviceState", "SimSettings", "StateChange"]

#: Heartbeat offsets a device keeps to learn the controller's clock.
OFFSET_WINDOW = 30
STATUS_KEY = {"battery": "battery_status", "ev": "ev_status"}


class DeviceSims:
    """Every device of ``house`` behind one paho client (MQTT v5) with a 20 Hz tick thread."""

    def __init__(self, house: HouseConfig, topics: TopicMap, host: str, port: int,
                 settings: SimSettings | None = None, username: str = "", password: str | None = None,
                 client_id: str = "device-sims") -> None:
        self.house = house
        self.topics = topics
        self.settings = settings or SimSettings()
        s = self.settings
        self.tz = UTC
        n = len(house.rooms)
        self.room_temp_c = tuple(s.room_temp_c) or tuple(19.5 + 0.2 * j for j in range(n))
        self.devices: dict[str, DeviceState] = {}
        for j, room in enumerate(house.room_names):
            self.devices[f"heating.{room}"] = DeviceState(f"heating.{room}", self._local_relay(j))
        if house.battery is not None:
            self.devices["battery"] = DeviceState("battery", "self_consumption")
        if house.ev_charger is not None:
            self.devices["ev"] = DeviceState("ev", "off")
        self.deliveries: list[Delivery] = []
        self.changes: list[StateChange] = []
        self.status_published: list[tuple[float, str]] = []  # (mono, device) of every status report
        self.births: list[float] = []  # mono of every controller "online"
        self.offline: list[float] = []
        self.heartbeats = 0
        self.last_heartbeat = -math.inf
        self._offsets: deque[float] = deque(maxlen=OFFSET_WINDOW)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._next_status = 0.0
        self._thread: threading.Thread | None = None
        self._energy = 0.0
        self._by_topic = {topics.topic("heating_set", j): (f"heating.{r}", "heating_set")
                          for j, r in enumerate(house.room_names)}
        self._by_topic[topics.topic("battery_set")] = ("battery", "battery_set")
        self._by_topic[topics.topic("ev_set")] = ("ev", "ev_set")
        self._status_topic = topics.topic("controller_status")
        self._heartbeat_topic = topics.topic("heartbeat")
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
        if username:
            client.username_pw_set(username, password)
        client.reconnect_delay_set(min_delay=1, max_delay=2)  # back soon after a broker restart
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        self.client = client
        self._host, self._port = host, port
        self._connected = threading.Event()

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self, timeout_s: float = 5.0) -> DeviceSims:
        self.client.connect(self._host, self._port, keepalive=5)
        self.client.loop_start()
        if not self._connected.wait(timeout_s):
            raise RuntimeError(f"device sims could not connect to {self._host}:{self._port}")
        self._thread = threading.Thread(target=self._run, name="device-sims", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.client.loop_stop()
        self.client.disconnect()

    def _on_connect(self, client: paho.Client, userdata: object, flags: object, reason_code: paho.ReasonCode,
                    properties: object) -> None:
        if reason_code.is_failure:
            return
        client.subscribe([(t, SubscribeOptions(qos=1)) for t in self._by_topic]
                         + [(self._status_topic, SubscribeOptions(qos=1)),
                            (self._heartbeat_topic, SubscribeOptions(qos=0))])
        self._connected.set()
        self._next_status = 0.0  # report at once after (re)connecting

    # --- the device clock ----------------------------------------------------------------------------

    def device_now(self) -> datetime:
        """This device's clock (the true clock plus ``skew_s``)."""
        return datetime.now(self.tz) + timedelta(seconds=self.settings.skew_s)

    # --- inbound -------------------------------------------------------------------------------------

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        recv_mono, recv_wall = time.monotonic(), time.time()
        topic, payload = msg.topic, msg.payload
        if topic == self._heartbeat_topic:
            self._heartbeat(payload, recv_mono)
        elif topic == self._status_topic:
            self._controller_status(payload, recv_mono)
        elif topic in self._by_topic:
            self._command(topic, payload, bool(msg.retain), recv_mono, recv_wall)

    def _heartbeat(self, payload: bytes, recv_mono: float) -> None:
        try:
            beat = parse_payload(Heartbeat, payload)
        except PayloadError:
            return
        with self._lock:
            self.heartbeats += 1
            offset = (self.device_now() - beat.ts).total_seconds()
            self._offsets.append(offset)
            # A heartbeat held up in a frozen broker is old news: it proves life only as of when it was sent.
            age = max(0.0, offset - min(self._offsets))
            self.last_heartbeat = max(self.last_heartbeat, recv_mono - age)

    def _controller_status(self, payload: bytes, recv_mono: float) -> None:
        if not payload:
            return
        try:
            status = parse_payload(ControllerStatus, payload)
        except PayloadError:
            return
        with self._lock:
            if status.state == "online":
                self.births.append(recv_mono)
                self._next_status = 0.0  # the controller asks: report everything now
            else:
                self.offline.append(recv_mono)
                if self.settings.honour_will:
                    self._release_all("will", recv_mono)

    def _command(self, topic: str, payload: bytes, retained: bool, recv_mono: float, recv_wall: float) -> None:
        name, key = self._by_topic[topic]
        seq = age = None
        result = "accepted"
        command: Payload | None = None
        if not payload:
            return  # a retained command being cleared
        try:
            command = parse_payload(COMMAND_SCHEMAS[key], payload)
            seq = command.seq
            if command.ts is not None:
                age = recv_wall - command.ts.timestamp()
        except PayloadError as exc:
            result = f"invalid ({exc.reason})"
        with self._lock:
            device = self.devices.get(name)
            if result == "accepted":
                result = self._judge(device, command, retained, recv_mono)
            if result == "accepted":
                lease_s = min(command.ttl_s, (command.until - command.ts).total_seconds()
                              if command.ts is not None else command.ttl_s)
                device.last_seq = command.seq
                device.lease_end = recv_mono + lease_s
                device.manual_until = -math.inf
                self._obey(device, command, recv_mono)
            self.deliveries.append(Delivery(recv_mono, recv_wall, topic, name, seq, age, retained, result, payload))
            if result == "accepted":
                self._publish_status(name)  # read-back at once

    def _judge(self, device: DeviceState | None, command: Payload, retained: bool, now: float) -> str:
        s = self.settings
        if device is None:
            return "no_such_device"
        if retained:
            return "retained"
        if now - self.last_heartbeat > s.heartbeat_timeout_s:
            return "no_heartbeat"
        # The controller's clock as this device knows it: its own, less the offset its heartbeats showed.
        controller_now_s = self.device_now().timestamp() - (min(self._offsets) if self._offsets else 0.0)
        reason = refusal(device.last_seq, command.seq, controller_now_s)
        if reason is not None:
            return reason
        if command.ts is not None and self._offsets:
            offset = min(self._offsets)  # device clock − controller clock + the quickest transit
            age = (self.device_now() - command.ts).total_seconds() - offset
            if age > s.max_command_age_s:
                return "stale"
        if command.ttl_s <= 0:
            return "expired"
        return "accepted"

    def _obey(self, device: DeviceState, command: Payload, now: float) -> None:
        if isinstance(command, HeatingCommand):
            self._set(device, command.state, "pems", "command", now)
        elif isinstance(command, BatteryCommandPayload):
            self._set(device, command.mode, "pems", "command", now)
        elif isinstance(command, ChargerCommand):
            device.current_a = command.current_a
            self._set(device, f"{command.current_a:g} A" if command.enabled else "off", "pems", "command", now)

    # --- device state --------------------------------------------------------------------------------

    def _local_relay(self, room: int) -> str:
        return "on" if self.room_temp_c[room] < self.settings.thermostat_c else "off"

    def _local_state(self, device: DeviceState) -> str:
        if device.name.startswith("heating."):
            return self._local_relay(self.house.room_names.index(device.name.removeprefix("heating.")))
        return "self_consumption" if device.name == "battery" else "off"

    def _set(self, device: DeviceState, state: str, source: str, cause: str, now: float) -> None:
        device.source = source
        if state != device.state:
            device.state = state
            self.changes.append(StateChange(now, device.name, state, cause))
        if device.name == "ev" and state == "off":
            device.current_a = 0.0

    def _release_all(self, cause: str, now: float) -> None:
        for device in self.devices.values():
            if device.source == "pems":
                device.lease_end = -math.inf
                self._set(device, self._local_state(device), "local", cause, now)

    def override(self, room: str, on: bool) -> None:
        """A person at the wall switch: the relay follows the hand, not the lease (seq unchanged)."""
        with self._lock:
            device = self.devices[f"heating.{room}"]
            now = time.monotonic()
            device.manual_until = now + self.settings.manual_hold_s
            device.lease_end = -math.inf
            self._set(device, "on" if on else "off", "manual", "manual", now)
            self._publish_status(device.name)

    def stop_feed(self, *keys: str) -> None:
        with self._lock:
            self.settings.feeds.difference_update(keys)

    def start_feed(self, *keys: str) -> None:
        with self._lock:
            self.settings.feeds.update(keys)

    # --- the tick ------------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            now = time.monotonic()
            with self._lock:
                heartbeat_lost = now - self.last_heartbeat > self.settings.heartbeat_timeout_s
                for device in self.devices.values():
                    if device.source == "manual" and now >= device.manual_until:
                        self._set(device, self._local_state(device), "local", "local_rule", now)
                    elif device.source == "pems" and now >= device.lease_end:
                        self._set(device, self._local_state(device), "local", "lease_end", now)
                    elif device.source == "pems" and heartbeat_lost:
                        device.lease_end = -math.inf
                        self._set(device, self._local_state(device), "local", "heartbeat_lost", now)
                if now >= self._next_status:
                    self._next_status = now + self.settings.status_period_s
                    self._publish_all()

    # --- outbound ------------------------------------------------------------------------------------

    def _status_of(self, name: str, ts: datetime) -> tuple[str, Payload]:
        device = self.devices[name]
        seq = device.last_seq if device.last_seq >= 0 else None
        if name.startswith("heating."):
            j = self.house.room_names.index(name.removeprefix("heating."))
            return self.topics.topic("heating_status", j), HeatingStatus(
                ts=ts, state=device.state, source=device.source, seq=seq, energy_kwh=self._energy, switches=0)
        if name == "battery":
            power = {"charge_from_grid": 1.0, "discharge_to_grid": -1.0}.get(device.state, 0.0)
            return self.topics.topic("battery_status"), BatteryStatus(
                ts=ts, soc=self.settings.battery_soc, power_kw=power, mode=device.state, seq=seq,
                source=device.source, charge_kwh=self._energy, discharge_kwh=self._energy)
        charger = self.house.ev_charger
        power = charger.phases * charger.voltage_v * device.current_a / 1000.0
        return self.topics.topic("ev_status"), ChargerStatus(
            ts=ts, connected=self.settings.car_connected, power_kw=power if self.settings.car_connected else 0.0,
            enabled=device.state != "off", current_a=device.current_a, seq=seq, source=device.source,
            energy_kwh=self._energy)

    def _publish_status(self, name: str) -> None:
        key = "heating_status" if name.startswith("heating.") else STATUS_KEY[name]
        if key not in self.settings.feeds:
            return
        topic, payload = self._status_of(name, self.device_now())
        self.client.publish(topic, dump(payload), qos=0, retain=True)
        self.status_published.append((time.monotonic(), name))

    def _publish_all(self) -> None:
        ts = self.device_now()
        feeds = self.settings.feeds
        for name in self.devices:
            self._publish_status(name)
        readings: list[tuple[str, str, Payload]] = []
        for j in range(len(self.house.rooms)):
            readings.append(("room_temperature", self.topics.topic("room_temperature", j),
                             RoomTemperature(ts=ts, temp_c=self.room_temp_c[j])))
        readings += [
            ("outdoor_temperature", self.topics.topic("outdoor_temperature"), OutdoorTemperature(ts=ts, temp_c=2.0)),
            ("pv_status", self.topics.topic("pv_status"), PvStatus(ts=ts, power_kw=0.5, energy_kwh=self._energy)),
            ("grid_status", self.topics.topic("grid_status"),
             GridStatus(ts=ts, power_kw=1.5, import_kwh=self._energy, export_kwh=0.0)),
        ]
        if self.house.ev_charger is not None and self.settings.car_connected:
            readings.append(("ev_car_status", self.topics.topic("ev_car_status"),
                             CarStatus(ts=ts, soc=0.4, energy_needed_kwh=20.0,
                                       departure=ts + timedelta(hours=10))))
        for key, topic, payload in readings:
            if key in feeds:
                self.client.publish(topic, dump(payload), qos=0, retain=True)

    def clear_retained(self, topics: Iterable[str] | None = None) -> None:
        """Remove what these sims left retained on the broker."""
        for topic in topics or [t for key in ("room_temperature", "heating_status", "outdoor_temperature",
                                              "battery_status", "pv_status", "grid_status", "ev_status",
                                              "ev_car_status") for t in self.topics.topics(key)]:
            self.client.publish(topic, b"", qos=1, retain=True)

    # --- views for tests --------------------------------------------------------------------------------

    def accepted(self, device: str | None = None) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.result == "accepted" and (device is None or d.device == device)]

    def sources(self) -> dict[str, str]:
        with self._lock:
            return {name: d.source for name, d in self.devices.items()}
