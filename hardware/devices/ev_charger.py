"""The EV charger (wallbox) and what the car tells about itself.

Command: ``ev/charger/set`` ``{"enabled", "current_a", "until", "ttl_s", "seq", "ts"}`` — per-phase
current 6–32 A, or ``enabled: false, current_a: 0`` to stop. The controller thinks in AC power;
the conversion (phases × voltage × current) happens here and nowhere else. Readings:
``ev/charger/status`` ``{"connected", "power_kw", "enabled", "current_a", "seq", "energy_kwh"}`` and
``ev/car/status`` ``{"soc", "energy_needed_kwh", "departure"}`` (the car's API or the owner's plan).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from hardware.config import MaxAgeConfig
from hardware.devices import LeaseTerms, SequenceCounter
from hardware.plant.readings import ReadingStore
from hardware.wire.mqtt import Message
from hardware.wire.schemas import CarStatus, ChargerCommand, ChargerStatus, dump
from hardware.wire.topics import Route, TopicMap
from twin.config import EvChargerConfig

#: The charger protocol's current range while enabled [A] (the house's charger may allow less).
DEVICE_MIN_CURRENT_A = 6.0
DEVICE_MAX_CURRENT_A = 32.0


@dataclass(frozen=True, slots=True)
class EvReadings:
    connected: bool
    power_kw: float  # NaN when stale
    soc: float
    energy_needed_kwh: float
    departure: datetime | None
    stale: frozenset[str]


def charger_payload_power_kw(payload: ChargerCommand, charger: EvChargerConfig) -> float:
    """The AC power a set payload asks for (used by the emulated charger) [kW]."""
    if not payload.enabled:
        return 0.0
    return charger.phases * charger.voltage_v * payload.current_a / 1000.0


class EvChargerAdapter:
    """One wallbox and its car."""

    def __init__(self, charger: EvChargerConfig | None, topics: TopicMap, max_age: MaxAgeConfig) -> None:
        self.charger = charger
        self.topics = topics
        self.max_age = max_age

    def command_message(self, power_kw: float, lease: LeaseTerms, seq: SequenceCounter) -> Message:
        if self.charger is None:
            raise ValueError("an EV command for a house without a charger")
        if power_kw <= 0.0:
            enabled, current = False, 0.0
        else:
            enabled = True
            current = min(max(self.charger.current_a(power_kw), DEVICE_MIN_CURRENT_A), DEVICE_MAX_CURRENT_A)
        payload = ChargerCommand(enabled=enabled, current_a=current, until=lease.until, ttl_s=lease.ttl_s,
                                 seq=seq.next(), ts=lease.issued)
        return Message(self.topics.topic("ev_set"), dump(payload))

    def read(self, store: ReadingStore) -> EvReadings:
        if self.charger is None:
            return EvReadings(False, 0.0, math.nan, 0.0, None, frozenset())
        stale: set[str] = set()
        status = store.fresh(Route("ev_status"), self.max_age.ev_charger_s)
        if not isinstance(status, ChargerStatus):
            # Unknown: assume no car (no EV command is needed for it) and say so.
            return EvReadings(False, math.nan, math.nan, 0.0, None, frozenset({"ev_connected", "ev_power_kw"}))
        soc, needed, departure = math.nan, 0.0, None
        if status.connected:
            car = store.fresh(Route("ev_car_status"), self.max_age.ev_car_s)
            if isinstance(car, CarStatus):
                soc = car.soc if car.soc is not None else math.nan
                needed = car.energy_needed_kwh if car.energy_needed_kwh is not None else 0.0
                departure = car.departure
            else:
                stale.add("ev_soc")
        return EvReadings(status.connected, status.power_kw, soc, needed, departure, frozenset(stale))

    def energy_counter_kwh(self, store: ReadingStore) -> float:
        """Charger energy meter since install [kWh] (NaN unknown; 0 without a charger)."""
        if self.charger is None:
            return 0.0
        status = store.fresh(Route("ev_status"), self.max_age.ev_charger_s)
        if isinstance(status, ChargerStatus) and status.energy_kwh is not None:
            return status.energy_kwh
        return math.nan
