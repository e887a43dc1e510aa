"""Loxone: heating relays (one per room), room temperatures and the outdoor temperature.

Commands: ``loxone/heating/{room}/set`` ``{"state": "on"|"off", "until", "ttl_s", "seq", "ts"}``,
one message per room, absolute state (idempotent). Readings: ``loxone/room/{room}/temperature``
``{"temp_c"}``, ``loxone/heating/{room}/status`` ``{"state", "source", "seq", "energy_kwh",
"switches"}``, ``loxone/outdoor/temperature`` ``{"temp_c"}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hardware.config import MaxAgeConfig
from hardware.devices import LeaseTerms, SequenceCounter
from hardware.plant.readings import ReadingStore
from hardware.wire.mqtt import Message
from hardware.wire.schemas import HeatingCommand, HeatingStatus, OutdoorTemperature, RoomTemperature, dump
from hardware.wire.topics import Route, TopicMap
from twin.config import HouseConfig


@dataclass(frozen=True, slots=True)
class HeatingReadings:
    room_temp_c: np.ndarray  # NaN where stale
    relay_on: np.ndarray  # last reported state (False if never reported); stale ones named in ``stale``
    heating_kw: float  # Σ heater power of the rooms whose relay is on; NaN if any relay state is stale
    outdoor_temp_c: float  # NaN when stale
    stale: frozenset[str]


class LoxoneAdapter:
    """Heating relays, room temperatures and the outdoor sensor of one house."""

    def __init__(self, house: HouseConfig, topics: TopicMap, max_age: MaxAgeConfig) -> None:
        self.rooms = house.room_names
        self.topics = topics
        self.max_age = max_age
        self.heater_kw = np.array([r.heater_power_kw for r in house.rooms])

    def relay_messages(self, relay_on: tuple[bool, ...], lease: LeaseTerms, seq: SequenceCounter,
                       skip: frozenset[int] = frozenset()) -> list[Message]:
        """One lease per room; rooms in ``skip`` get none (their own thermostat takes over)."""
        if len(relay_on) != len(self.rooms):
            raise ValueError(f"{len(relay_on)} relay states for {len(self.rooms)} rooms")
        return [self.relay_message(j, on, lease, seq) for j, on in enumerate(relay_on) if j not in skip]

    def relay_message(self, room: int, on: bool, lease: LeaseTerms, seq: SequenceCounter) -> Message:
        """The lease of one room's relay (index ``room``)."""
        return Message(self.topics.topic("heating_set", room),
                       dump(HeatingCommand(state="on" if on else "off", until=lease.until, ttl_s=lease.ttl_s,
                                           seq=seq.next(), ts=lease.issued)))

    def read(self, store: ReadingStore) -> HeatingReadings:
        n = len(self.rooms)
        temps = np.full(n, math.nan)
        relays = np.zeros(n, dtype=bool)
        stale: set[str] = set()
        relays_known = True
        for j, room in enumerate(self.rooms):
            temp = store.fresh(Route("room_temperature", j), self.max_age.room_temperature_s)
            if isinstance(temp, RoomTemperature):
                temps[j] = temp.temp_c
            else:
                stale.add(f"room_temp_c.{room}")
            reading = store.get(Route("heating_status", j))
            if reading is not None:
                relays[j] = reading.payload.state == "on"
            if reading is None or store.age_s(reading) > self.max_age.heating_status_s:
                stale.add(f"relay_on.{room}")
                relays_known = False
        outdoor = store.fresh(Route("outdoor_temperature"), self.max_age.outdoor_temperature_s)
        if not isinstance(outdoor, OutdoorTemperature):
            stale.add("outdoor_temp_c")
        temps.flags.writeable = False
        relays.flags.writeable = False
        return HeatingReadings(
            room_temp_c=temps, relay_on=relays,
            heating_kw=float(self.heater_kw @ relays) if relays_known else math.nan,
            outdoor_temp_c=outdoor.temp_c if isinstance(outdoor, OutdoorTemperature) else math.nan,
            stale=frozenset(stale))

    def counters(self, store: ReadingStore) -> tuple[np.ndarray, np.ndarray]:
        """Metered heating energy [kWh] and switch count per room since install (NaN / −1 unknown)."""
        n = len(self.rooms)
        energy = np.full(n, math.nan)
        switches = np.full(n, -1, dtype=np.int64)
        for j in range(n):
            reading = store.fresh(Route("heating_status", j), self.max_age.heating_status_s)
            if isinstance(reading, HeatingStatus):
                if reading.energy_kwh is not None:
                    energy[j] = reading.energy_kwh
                if reading.switches is not None:
                    switches[j] = reading.switches
        return energy, switches
