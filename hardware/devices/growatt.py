"""Growatt hybrid inverter: battery modes, SOC and power; the PV and grid meters behind it.

Command: ``growatt/battery/set_mode`` ``{"mode", "power_kw", "reserve_soc", "until", "ttl_s",
"seq", "ts"}`` with the inverter's own mode names (:class:`twin.contracts.BatteryMode` values).
Readings: ``growatt/battery/status`` ``{"soc", "power_kw", "mode", "seq", "charge_kwh",
"discharge_kwh"}``, ``growatt/pv/status`` ``{"power_kw", "energy_kwh"}``, ``growatt/grid/status``
``{"power_kw", "import_kwh", "export_kwh"}`` (power + import / − export).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hardware.config import MaxAgeConfig
from hardware.devices import LeaseTerms, SequenceCounter
from hardware.plant.readings import ReadingStore
from hardware.wire.mqtt import Message
from hardware.wire.schemas import BatteryCommandPayload, BatteryStatus, GridStatus, PvStatus, dump
from hardware.wire.topics import Route, TopicMap
from twin.contracts import BatteryCommand, BatteryMode
from twin.safety import STALE_BATTERY, STALE_GRID


@dataclass(frozen=True, slots=True)
class InverterReadings:
    battery_soc: float  # NaN when stale (or no battery)
    battery_power_kw: float
    pv_power_kw: float
    grid_power_kw: float
    stale: frozenset[str]


@dataclass(frozen=True, slots=True)
class InverterCounters:
    """Energy counters since install [kWh]; NaN when unknown."""

    pv_kwh: float
    import_kwh: float
    export_kwh: float
    battery_charge_kwh: float
    battery_discharge_kwh: float


def battery_command_of(payload: BatteryCommandPayload) -> BatteryCommand:
    """The inverter's view of a set_mode payload (used by the emulated inverter).

    Raises ``ValueError`` for a combination the inverter cannot take (a negative power for
    CHARGE_FROM_GRID, BACKUP_RESERVE without a reserve).
    """
    return BatteryCommand(BatteryMode(payload.mode), payload.power_kw, payload.reserve_soc)


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


class GrowattAdapter:
    """The battery inverter and the PV and grid meters it reports."""

    def __init__(self, topics: TopicMap, max_age: MaxAgeConfig, has_battery: bool) -> None:
        self.topics = topics
        self.max_age = max_age
        self.has_battery = has_battery

    def battery_message(self, cmd: BatteryCommand, lease: LeaseTerms, seq: SequenceCounter) -> Message:
        payload = BatteryCommandPayload(mode=cmd.mode.value, power_kw=cmd.power_kw, reserve_soc=cmd.reserve_soc,
                                        until=lease.until, ttl_s=lease.ttl_s, seq=seq.next(), ts=lease.issued)
        return Message(self.topics.topic("battery_set"), dump(payload))

    def read(self, store: ReadingStore) -> InverterReadings:
        stale: set[str] = set()
        soc = power = math.nan
        if self.has_battery:
            battery = store.fresh(Route("battery_status"), self.max_age.battery_s)
            if isinstance(battery, BatteryStatus):
                soc, power = battery.soc, battery.power_kw
            else:
                stale.update((STALE_BATTERY, "battery_power_kw"))
        else:
            power = 0.0
        pv = store.fresh(Route("pv_status"), self.max_age.pv_s)
        if not isinstance(pv, PvStatus):
            stale.add("pv_power_kw")
        grid = store.fresh(Route("grid_status"), self.max_age.grid_s)
        if not isinstance(grid, GridStatus):
            stale.add(STALE_GRID)
        return InverterReadings(
            battery_soc=soc, battery_power_kw=power,
            pv_power_kw=pv.power_kw if isinstance(pv, PvStatus) else math.nan,
            grid_power_kw=grid.power_kw if isinstance(grid, GridStatus) else math.nan,
            stale=frozenset(stale))

    def counters(self, store: ReadingStore) -> InverterCounters:
        pv = store.fresh(Route("pv_status"), self.max_age.pv_s)
        grid = store.fresh(Route("grid_status"), self.max_age.grid_s)
        battery = store.fresh(Route("battery_status"), self.max_age.battery_s)
        charge = discharge = 0.0 if not self.has_battery else math.nan
        if isinstance(battery, BatteryStatus):
            charge, discharge = _or_nan(battery.charge_kwh), _or_nan(battery.discharge_kwh)
        return InverterCounters(
            pv_kwh=_or_nan(pv.energy_kwh) if isinstance(pv, PvStatus) else math.nan,
            import_kwh=_or_nan(grid.import_kwh) if isinstance(grid, GridStatus) else math.nan,
            export_kwh=_or_nan(grid.export_kwh) if isinstance(grid, GridStatus) else math.nan,
            battery_charge_kwh=charge, battery_discharge_kwh=discharge)
