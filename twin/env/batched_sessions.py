"""The scenario's EV sessions as arrays, for the houses of the array engine (``twin.env.batched_dynamics``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.house import SimHouse


@dataclass(frozen=True, slots=True, eq=False)
class EvSessions:
    """Every EV session of the scenario, padded with one that never comes (index = number of sessions).

    A house's present session is an index into these arrays; past the last session it points at the
    padding, whose arrival and departure are ``inf``.
    """

    arrival_s: np.ndarray  #: scenario seconds
    departure_s: np.ndarray  #: scenario seconds
    departure_epoch_s: np.ndarray  #: epoch seconds (the observation's hours to departure)
    charge_limit_kwh: np.ndarray
    capacity_kwh: np.ndarray
    target_kwh: np.ndarray  #: the energy each session needs by its departure
    arrival_kwh: np.ndarray  #: the car's energy when it arrives

    @classmethod
    def of(cls, twin: SimHouse) -> EvSessions:
        """The sessions of ``twin``'s scenario (the same products as ``HouseDynamics``)."""
        sessions = twin._sessions
        capacity_kwh = np.array([*(s.capacity_kwh for s in sessions), 1.0])
        target_soc = np.array([*(s.target_soc for s in sessions), 0.0])
        arrival_soc = np.array([*(s.arrival_soc for s in sessions), 0.0])
        return cls(arrival_s=np.array([*twin._arrival_s, np.inf]),
                   departure_s=np.array([*twin._departure_s, np.inf]),
                   departure_epoch_s=np.array([*(s.departure.timestamp() for s in sessions), np.inf]),
                   charge_limit_kwh=np.array([*(s.charge_limit_kwh for s in sessions), np.inf]),
                   capacity_kwh=capacity_kwh, target_kwh=target_soc * capacity_kwh,
                   arrival_kwh=arrival_soc * capacity_kwh)
