"""What the live house consumed and produced over a control interval, from its meters.

Energies are differences of the devices' own counters (what a meter is for), so a live interval
is metered as exactly as a simulated one. The base load is not metered separately: it is what
the balance leaves (PV + import + discharge − heating − EV − charge − export). Two quantities
have no counter and are booked from readings by device time in an :class:`EventLedger`: energy
drawn above the grid limits (power held between readings) and energy a car still lacked when it
left. A counter that went backwards (a device reset) makes its interval unknown (NaN), never a
negative energy.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from hardware.plant.readings import Reading
from hardware.wire.schemas import CarStatus, ChargerStatus, GridStatus, HeatingStatus
from hardware.wire.topics import Route
from twin.config import GridConfig
from twin.grid import limit_violation_kw
from twin.house import Meter


@dataclass(frozen=True, slots=True)
class Counters:
    """Every energy counter of the house at one instant [kWh since install]; NaN unknown."""

    pv_kwh: float
    import_kwh: float
    export_kwh: float
    battery_charge_kwh: float
    battery_discharge_kwh: float
    ev_kwh: float
    heating_room_kwh: np.ndarray
    relay_switches_room: np.ndarray  # −1 unknown


def _delta(end: float, start: float) -> float:
    d = end - start
    return d if d >= 0.0 else math.nan  # NaN stays NaN; a reset counter is unknown


def interval_meter(start: Counters, end: Counters, import_price_per_kwh: float, export_price_per_kwh: float,
                   grid_limit_violation_kwh: float, ev_unmet_kwh: float, observed_switches: np.ndarray) -> Meter:
    """The :class:`twin.house.Meter` of one interval between two counter snapshots."""
    pv = _delta(end.pv_kwh, start.pv_kwh)
    imp = _delta(end.import_kwh, start.import_kwh)
    exp = _delta(end.export_kwh, start.export_kwh)
    charge = _delta(end.battery_charge_kwh, start.battery_charge_kwh)
    discharge = _delta(end.battery_discharge_kwh, start.battery_discharge_kwh)
    ev = _delta(end.ev_kwh, start.ev_kwh)
    room = end.heating_room_kwh - start.heating_room_kwh
    room[room < 0] = math.nan
    heating = float(room.sum())
    known = (end.relay_switches_room >= 0) & (start.relay_switches_room >= 0)
    switches = np.where(known, end.relay_switches_room - start.relay_switches_room, observed_switches)
    switches = np.maximum(switches, 0).astype(np.int64)
    base = pv + imp + discharge - heating - ev - charge - exp
    return Meter(
        pv_kwh=pv, pv_curtailed_kwh=math.nan,  # a PV meter sees what was produced, not what was curtailed
        base_load_kwh=max(base, 0.0) if math.isfinite(base) else math.nan, heating_kwh=heating, ev_kwh=ev,
        battery_charge_kwh=charge, battery_discharge_kwh=discharge, import_kwh=imp, export_kwh=exp,
        cost=imp * import_price_per_kwh - exp * export_price_per_kwh,
        grid_limit_violation_kwh=grid_limit_violation_kwh, ev_unmet_kwh=ev_unmet_kwh,
        heating_room_kwh=room, relay_switches_room=switches)


class EventLedger:
    """Books, by device time, what only a sequence of readings reveals.

    Fed from the reading store (a listener, on the network thread); :meth:`take` hands over
    everything booked up to a house time.
    """

    def __init__(self, grid: GridConfig, n_rooms: int) -> None:
        self.grid = grid
        self.n_rooms = n_rooms
        self._lock = threading.Lock()
        self._violation: list[tuple[float, float]] = []  # (house s, kWh)
        self._unmet: list[tuple[float, float]] = []
        self._switches: list[tuple[float, int]] = []  # (house s, room)
        self._grid: tuple[float, float] | None = None  # last (house s, power kW)
        self._connected: bool | None = None
        self._relays: dict[int, str] = {}
        self._car_needed_kwh = math.nan

    def on_reading(self, key: Hashable, reading: Reading, house_s: float) -> None:
        """Book one accepted reading taken at ``house_s`` (device time, or receipt on the house clock)."""
        if not isinstance(key, Route):
            return
        payload = reading.payload
        with self._lock:
            if isinstance(payload, GridStatus):
                if self._grid is not None and house_s > self._grid[0]:
                    t0, power = self._grid
                    over = limit_violation_kw(max(power, 0.0), max(-power, 0.0), self.grid.import_limit_kw,
                                              self.grid.export_limit_kw)
                    if over > 0.0:
                        self._violation.append((house_s, over * (house_s - t0) / 3600.0))
                self._grid = (house_s, payload.power_kw)
            elif isinstance(payload, CarStatus):
                self._car_needed_kwh = (payload.energy_needed_kwh if payload.energy_needed_kwh is not None
                                        else math.nan)
            elif isinstance(payload, ChargerStatus):
                if self._connected and not payload.connected:
                    self._unmet.append((house_s, self._car_needed_kwh))
                self._connected = payload.connected
            elif isinstance(payload, HeatingStatus) and key.room is not None:
                previous = self._relays.get(key.room)
                if previous is not None and previous != payload.state:
                    self._switches.append((house_s, key.room))
                self._relays[key.room] = payload.state

    def take(self, until_s: float) -> tuple[float, float, np.ndarray]:
        """``(grid_limit_violation_kwh, ev_unmet_kwh, relay switches per room)`` booked up to ``until_s``."""
        eps = 1e-6
        with self._lock:
            violation = [v for t, v in self._violation if t <= until_s + eps]
            self._violation = [(t, v) for t, v in self._violation if t > until_s + eps]
            unmet = [v for t, v in self._unmet if t <= until_s + eps]
            self._unmet = [(t, v) for t, v in self._unmet if t > until_s + eps]
            switches = np.zeros(self.n_rooms, dtype=np.int64)
            for t, room in self._switches:
                if t <= until_s + eps:
                    switches[room] += 1
            self._switches = [(t, r) for t, r in self._switches if t > until_s + eps]
        return float(sum(violation)), float(sum(unmet)), switches
