"""What the emulated devices report: every reading of the house at one instant, as the real ones would.

Room and outdoor temperatures, each relay's state (with who rules it, the last sequence number it
accepted, its metered energy and switch count), the inverter's SOC, power, mode and counters, the
PV and grid meters, the charger and the car. Counters are totals since the emulator started,
like a meter's; ``ts`` is the house time the readings were true at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from hardware.emulator.devices import LeaseSlot, RelayBank
from hardware.wire.schemas import (
    BatteryStatus,
    CarStatus,
    ChargerStatus,
    GridStatus,
    HeatingStatus,
    OutdoorTemperature,
    Payload,
    PvStatus,
    RoomTemperature,
)
from hardware.wire.topics import TopicMap
from twin import ev as evm
from twin.contracts import Observation
from twin.house import Meter, SimHouse


@dataclass(slots=True)
class MeterTotals:
    """The emulated meters' counters since the emulator started [kWh]."""

    n_rooms: int
    pv_kwh: float = 0.0
    import_kwh: float = 0.0
    export_kwh: float = 0.0
    charge_kwh: float = 0.0
    discharge_kwh: float = 0.0
    ev_kwh: float = 0.0
    heating_room_kwh: np.ndarray = field(default_factory=lambda: np.zeros(0))
    switches_room: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        self.heating_room_kwh = np.zeros(self.n_rooms)
        self.switches_room = np.zeros(self.n_rooms, dtype=np.int64)

    def add(self, m: Meter) -> None:
        self.pv_kwh += m.pv_kwh
        self.import_kwh += m.import_kwh
        self.export_kwh += m.export_kwh
        self.charge_kwh += m.battery_charge_kwh
        self.discharge_kwh += m.battery_discharge_kwh
        self.ev_kwh += m.ev_kwh
        self.heating_room_kwh += m.heating_room_kwh
        self.switches_room += m.relay_switches_room


@dataclass(frozen=True, slots=True)
class DeviceStates:
    """The emulated devices' own state that their readings report (leases, last sequence numbers)."""

    relays: RelayBank
    battery_lease: LeaseSlot
    ev_lease: LeaseSlot


def _seq(slot: LeaseSlot) -> int | None:
    return slot.last_seq if slot.last_seq >= 0 else None


def _source(slot: LeaseSlot, now_s: float) -> str:
    return "pems" if slot.active(now_s) else "local"


def house_readings(twin: SimHouse, obs: Observation, totals: MeterTotals, devices: DeviceStates, topics: TopicMap,
                   ts: datetime) -> list[tuple[str, Payload]]:
    """``(topic, payload)`` of every reading the house's devices publish, for observation ``obs``."""
    house = twin.house
    leased = devices.relays.leased(twin.t_s)
    readings: list[tuple[str, Payload]] = []
    for j in range(len(house.rooms)):
        readings.append((topics.topic("room_temperature", j), RoomTemperature(ts=ts, temp_c=float(obs.room_temp_c[j]))))
        readings.append((topics.topic("heating_status", j), HeatingStatus(
            ts=ts, state="on" if obs.relay_on[j] else "off", source="pems" if leased[j] else "local",
            seq=_seq(devices.relays.slots[j]), energy_kwh=float(totals.heating_room_kwh[j]),
            switches=int(totals.switches_room[j]))))
    readings.append((topics.topic("outdoor_temperature"), OutdoorTemperature(ts=ts, temp_c=obs.outdoor_temp_c)))
    if house.battery is not None:
        readings.append((topics.topic("battery_status"), BatteryStatus(
            ts=ts, soc=obs.battery_soc, power_kw=obs.battery_power_kw, mode=twin.state.battery_cmd.mode.value,
            seq=_seq(devices.battery_lease), source=_source(devices.battery_lease, twin.t_s),
            charge_kwh=totals.charge_kwh, discharge_kwh=totals.discharge_kwh)))
    readings.append((topics.topic("pv_status"), PvStatus(ts=ts, power_kw=obs.pv_power_kw, energy_kwh=totals.pv_kwh)))
    readings.append((topics.topic("grid_status"), GridStatus(ts=ts, power_kw=obs.grid_power_kw,
                                                             import_kwh=totals.import_kwh,
                                                             export_kwh=totals.export_kwh)))
    charger = house.ev_charger
    if charger is not None:
        st = twin.state
        power = 0.0
        if obs.ev_connected:
            limit = twin.scenario.ev_sessions[st.ev_session].charge_limit_kwh
            power = evm.charger_power_kw(st.ev_request_kw, st.ev_energy_kwh, limit, charger)
        request = st.ev_request_kw
        readings.append((topics.topic("ev_status"), ChargerStatus(
            ts=ts, connected=obs.ev_connected, power_kw=power, enabled=request is None or request > 0.0,
            current_a=charger.current_a(power), seq=_seq(devices.ev_lease), source=_source(devices.ev_lease, twin.t_s),
            energy_kwh=totals.ev_kwh)))
        car = (CarStatus(ts=ts, soc=obs.ev_soc, energy_needed_kwh=obs.ev_energy_needed_kwh,
                         departure=obs.ev_departure) if obs.ev_connected else CarStatus(ts=ts))
        readings.append((topics.topic("ev_car_status"), car))
    return readings
