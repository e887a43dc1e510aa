"""The state of the simulated house, its meter, and the record of one interval (data only).

:class:`~twin.house.SimHouse` advances a :class:`HouseState` from event to event; a copy is a
full snapshot (``SimHouse.snapshot`` / ``restore``). :class:`Meter` accumulates energies and
counters between two ``take_interval`` calls, which hand them out as an :class:`IntervalRecord`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

from twin.contracts import BatteryCommand

EVENT_EPS_S = 1e-6
NO_LEASE = -math.inf


@dataclass(slots=True)
class Meter:
    """Energies and counters accumulated since the last :meth:`SimHouse.take_interval`."""

    pv_kwh: float = 0.0
    pv_curtailed_kwh: float = 0.0
    base_load_kwh: float = 0.0
    heating_kwh: float = 0.0
    ev_kwh: float = 0.0
    battery_charge_kwh: float = 0.0
    battery_discharge_kwh: float = 0.0
    import_kwh: float = 0.0
    export_kwh: float = 0.0
    cost: float = 0.0
    grid_limit_violation_kwh: float = 0.0
    ev_unmet_kwh: float = 0.0
    heating_room_kwh: np.ndarray = field(default_factory=lambda: np.zeros(0))  # metered at relay changes
    relay_switches_room: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @classmethod
    def zeros(cls, n_rooms: int) -> Meter:
        return cls(heating_room_kwh=np.zeros(n_rooms), relay_switches_room=np.zeros(n_rooms, dtype=np.int64))

    def copy(self) -> Meter:
        out = Meter(**{f.name: getattr(self, f.name) for f in fields(self)})
        out.heating_room_kwh = self.heating_room_kwh.copy()
        out.relay_switches_room = self.relay_switches_room.copy()
        return out


@dataclass(slots=True)
class HouseState:
    """Everything that changes during a run; :meth:`copy` is a full snapshot."""

    t_s: float
    modes: np.ndarray  # thermal state in modal coordinates (ModalThermal.to_temps @ modes = node °C)
    relay_on: np.ndarray  # bool per room
    relay_since_s: float  # relay on-time is metered up to here
    relay_lease_s: float  # NO_LEASE: the local thermostat rules
    thermostat_next_s: float
    battery_soc: float
    battery_cmd: BatteryCommand
    battery_lease_s: float
    ev_request_kw: float | None
    ev_lease_s: float
    ev_session: int  # first session that has not departed yet
    ev_connected: bool
    ev_energy_kwh: float
    meter: Meter
    windows_open: bool = False
    blinds_down: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    occupant_step: int = -1  # data step at which the occupants last looked around
    interval_start_s: float = 0.0

    def copy(self) -> HouseState:
        return HouseState(
            t_s=self.t_s, modes=self.modes.copy(), relay_on=self.relay_on.copy(), relay_since_s=self.relay_since_s,
            relay_lease_s=self.relay_lease_s, thermostat_next_s=self.thermostat_next_s,
            battery_soc=self.battery_soc, battery_cmd=self.battery_cmd, battery_lease_s=self.battery_lease_s,
            ev_request_kw=self.ev_request_kw, ev_lease_s=self.ev_lease_s, ev_session=self.ev_session,
            ev_connected=self.ev_connected, ev_energy_kwh=self.ev_energy_kwh, meter=self.meter.copy(),
            windows_open=self.windows_open, blinds_down=self.blinds_down.copy(), occupant_step=self.occupant_step,
            interval_start_s=self.interval_start_s)


@dataclass(frozen=True, slots=True)
class IntervalRecord:
    """What happened between two :meth:`SimHouse.take_interval` calls, and the state at its end."""

    start_s: float
    end_s: float
    meter: Meter
    room_temp_c: np.ndarray
    relay_on: np.ndarray
    battery_soc: float
    ev_connected: bool
    ev_soc: float
