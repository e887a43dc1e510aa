"""Action vector → :class:`~twin.contracts.Command`: the mapping shared by the environment and the adapter.

Every component lies in [-1, 1] (Gymnasium's recommended normalised Box), and the zero action
is what the house does on its own — the inverter's self-consumption, the car charging, rooms
heated to their comfort band — so an untrained, zero-centred policy starts from sensible
behaviour rather than from an idle battery and a car left empty:

* ``battery``: |a| ≤ 0.1 leaves the inverter in ``SELF_CONSUMPTION`` (it follows the net load);
  beyond, a signed power setpoint (``POWER_SETPOINT``) growing from 0 at the band's edge:
  ``(a − 0.1)/0.9 · max_charge_kw`` for a > 0.1, ``(a + 0.1)/0.9 · max_discharge_kw`` for
  a < −0.1 [kW, + charge].
* ``ev``: a ≤ −0.5 stops the charger; above, it asks ``min_power_kw + (a + 0.5)/1.5 ·
  (max_power_kw − min_power_kw)`` [kW] (a charger cannot run below its minimum current).
* ``heat.<room>``, heating mode ``"relay"``: the relay is on when a > 0.
  Heating mode ``"setpoint"``: a sets a target of ``comfort_lower_c + 1 K + a · 1 K`` and the
  relay is on while the room is below it (a thermostat the policy moves every step).

A non-finite component leaves its device alone (``None`` in the command: the device stays
under its lease or its local rule). Every command is a lease of ``lease_s``; the safety layer
(not this module) brings it inside the devices' envelopes.
"""

from __future__ import annotations

import math

import numpy as np
from gymnasium import spaces

from twin.battery import MODE_CODE
from twin.config import HouseConfig
from twin.contracts import SELF_CONSUMPTION, BatteryCommand, BatteryMode, Command, Observation
from twin.errors import ConfigError

HEATING_MODES = ("relay", "setpoint")
SETPOINT_OFFSET_C = 1.0  # target at a = 0, above the comfort band's lower bound [K]
SETPOINT_SPAN_C = 1.0  # target moves ± this much over a ∈ [-1, 1] [K]
SELF_CONSUMPTION_BAND = 0.1  # |battery action| up to this: the inverter's self-consumption mode
EV_STOP_BELOW = -0.5  # EV action at or below this: charger stopped


def lease_for(decision_interval_s: float, max_lease_s: float) -> float:
    """Lease of each command [s]: two decision intervals, at most the safety layer's maximum.

    Two, so that one late decision does not drop the devices to their local rules.
    """
    return min(2.0 * decision_interval_s, max_lease_s)


class ActionDecoder:
    """Turns an action vector of :attr:`space` into a :class:`Command` at an observation's time.

    Args:
        house: The house whose devices define the components.
        decision_interval_s: Seconds between decisions (sets the lease).
        heating: ``"relay"`` or ``"setpoint"`` (see the module docstring).
    """

    def __init__(self, house: HouseConfig, decision_interval_s: float = 900.0, heating: str = "relay") -> None:
        if heating not in HEATING_MODES:
            raise ConfigError(f"heating = {heating!r} must be one of {HEATING_MODES}", "heating")
        self.house = house
        self.heating = heating
        self.lease_s = lease_for(decision_interval_s, house.safety.max_lease_s)
        names = []
        if house.battery is not None:
            names.append("battery")
        if house.ev_charger is not None:
            names.append("ev")
        names += [f"heat.{room}" for room in house.room_names]
        if not names:
            raise ConfigError(f"house {house.name!r} has nothing to control (no battery, charger or rooms)", "house")
        self.names = tuple(names)
        self.space = spaces.Box(-1.0, 1.0, shape=(len(names),), dtype=np.float32)
        b = house.battery
        self._charge_kw = b.max_charge_kw if b is not None else 0.0
        self._discharge_kw = b.max_discharge_kw if b is not None else 0.0
        c = house.ev_charger
        self._ev_min_kw = c.min_power_kw if c is not None else 0.0
        self._ev_span_kw = c.max_power_kw - c.min_power_kw if c is not None else 0.0
        self._heat_from = int(b is not None) + int(c is not None)
        self._n_rooms = len(house.rooms)
        self._all_given_mask: np.ndarray | None = None

    def decode(self, action: np.ndarray, obs: Observation) -> Command:
        """The command that ``action`` asks for at ``obs.time`` (before the safety layer)."""
        if isinstance(action, np.ndarray) and action.shape == self.space.shape:
            values = action.tolist()
        else:
            a = np.asarray(action, dtype=float)
            if a.shape != self.space.shape:
                raise ValueError(f"action has shape {a.shape}, expected {self.space.shape} "
                                 f"({', '.join(self.names)})")
            values = a.tolist()
        k = 0
        battery = ev = relays = None
        if self.house.battery is not None:
            x = values[0]
            if math.isfinite(x):
                x = _clip(x)
                if x > SELF_CONSUMPTION_BAND:
                    kw = (x - SELF_CONSUMPTION_BAND) / (1.0 - SELF_CONSUMPTION_BAND) * self._charge_kw
                    battery = BatteryCommand(BatteryMode.POWER_SETPOINT, kw)
                elif x < -SELF_CONSUMPTION_BAND:
                    kw = (x + SELF_CONSUMPTION_BAND) / (1.0 - SELF_CONSUMPTION_BAND) * self._discharge_kw
                    battery = BatteryCommand(BatteryMode.POWER_SETPOINT, kw)
                else:
                    battery = SELF_CONSUMPTION
            k = 1
        if self.house.ev_charger is not None:
            x = values[k]
            if math.isfinite(x):
                x = _clip(x)
                ev = (self._ev_min_kw + (x - EV_STOP_BELOW) / (1.0 - EV_STOP_BELOW) * self._ev_span_kw
                      if x > EV_STOP_BELOW else 0.0)
        if self._n_rooms:
            heat = values[self._heat_from:]
            if all(map(math.isfinite, heat)):
                if self.heating == "relay":
                    relays = tuple([x > 0.0 for x in heat])  # a list first: faster than a generator
                else:
                    target = obs.comfort_lower_c + SETPOINT_OFFSET_C + np.clip(heat, -1.0, 1.0) * SETPOINT_SPAN_C
                    relays = tuple((obs.room_temp_c < target).tolist())
        return Command(until=obs.after(self.lease_s), relay_on=relays, battery=battery, ev_power_kw=ev,
                       plan_note="policy")


    def decode_v(self, actions: np.ndarray, comfort_lower_c: np.ndarray, room_temp_c: np.ndarray) -> BatchCommands:
        """:meth:`decode` of one action per house (rows of ``actions``), as arrays.

        ``comfort_lower_c`` and ``room_temp_c`` are each house's observed ``(houses, rooms)`` values
        (read in ``"setpoint"`` mode). A device whose component is not finite gets no command
        (``given`` False), as ``None`` in :meth:`decode`.
        """
        a = np.asarray(actions, dtype=float)
        if a.ndim != 2 or a.shape[1:] != self.space.shape:
            raise ValueError(f"actions have shape {a.shape}, expected (houses, {self.space.shape[0]}) "
                             f"({', '.join(self.names)})")
        n = a.shape[0]
        # One sum tells whether every component is finite (the usual case): then every device is given,
        # and one all-True mask serves all of them (read only: it is shared).
        all_finite = math.isfinite(a.sum())
        finite = self._all_given(a.shape) if all_finite else np.isfinite(a)
        clipped = np.minimum(np.maximum(a, -1.0), 1.0)  # _clip() for every finite component
        out = BatchCommands(n, self._n_rooms)
        out.all_given = all_finite
        k = 0
        if self.house.battery is not None:
            x = clipped[:, 0]
            out.battery_given = finite[:, 0]
            band = 1.0 - SELF_CONSUMPTION_BAND
            charge = x > SELF_CONSUMPTION_BAND
            discharge = x < -SELF_CONSUMPTION_BAND
            setpoint = charge | discharge
            out.battery_mode = np.where(setpoint, _SETPOINT, _SELF_CONSUMPTION)
            # decode()'s (x ∓ band) / band · power in one pass: x - copysign(band, x) is x - band when charging and
            # x + band when discharging (the same operations); in the band it is ±0 (self-consumption ignores it).
            kw = np.subtract(x, np.copysign(SELF_CONSUMPTION_BAND, x))
            kw /= band
            kw *= self._charge_kw if self._charge_kw == self._discharge_kw else np.where(
                charge, self._charge_kw, self._discharge_kw)
            kw *= setpoint
            out.battery_kw = kw
            k = 1
        if self.house.ev_charger is not None:
            x = clipped[:, k]
            out.ev_given = finite[:, k]
            out.ev_kw = np.where(x > EV_STOP_BELOW, self._ev_min_kw + (x - EV_STOP_BELOW) / (1.0 - EV_STOP_BELOW)
                                 * self._ev_span_kw, 0.0)
        if self._n_rooms:
            heat = a[:, self._heat_from:]
            relays_given: np.ndarray = finite[:, 0] if all_finite else np.all(finite[:, self._heat_from:], axis=1)
            out.relays_given = relays_given
            if self.heating == "relay":
                out.relay_on = heat > 0.0
            else:
                target = comfort_lower_c + SETPOINT_OFFSET_C + clipped[:, self._heat_from:] * SETPOINT_SPAN_C
                out.relay_on = room_temp_c < target
        return out

    def _all_given(self, shape: tuple[int, ...]) -> np.ndarray:
        """A read-only all-True ``shape`` mask, kept between calls."""
        mask = self._all_given_mask
        if mask is None or mask.shape != shape:
            mask = np.ones(shape, dtype=bool)
            mask.flags.writeable = False
            self._all_given_mask = mask
        return mask


_SETPOINT = MODE_CODE[BatteryMode.POWER_SETPOINT]
_SELF_CONSUMPTION = MODE_CODE[BatteryMode.SELF_CONSUMPTION]


class BatchCommands:
    """The commands of many houses as arrays (see :meth:`ActionDecoder.decode_v`).

    ``*_given`` is False where a device gets no command. ``battery_mode`` holds ``twin.battery.MODE_CODE`` values,
    ``battery_kw`` the ``BatteryCommand.power_kw`` (no reserve: the decoder never asks for one).
    Devices the house lacks keep empty arrays.
    """

    def __init__(self, n: int, n_rooms: int) -> None:
        empty = np.zeros(0)
        none = np.zeros(0, dtype=bool)
        self.n, self.n_rooms = n, n_rooms
        self.all_given = False  # True: every device of every house is given a command
        self.battery_given, self.battery_mode, self.battery_kw = none, np.zeros(0, dtype=np.intp), empty
        self.ev_given, self.ev_kw = none, empty
        self.relays_given, self.relay_on = none, np.zeros((0, n_rooms), dtype=bool)


def _clip(x: float) -> float:
    return -1.0 if x < -1.0 else 1.0 if x > 1.0 else x
