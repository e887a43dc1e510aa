"""The safety layer of N houses at once: :class:`~twin.safety.SafetyLayer`'s rules over a leading axis.

Each house has its own memory, as each single environment has its own ``SafetyLayer``; the
rules are the same, in full rollout mode and with fresh inputs (a twin's observations are never
stale). The layer's per-room deque of switch times becomes a ring buffer of the last
``relay_max_switches_per_hour`` switches: a room may not switch again while the oldest of them
is less than an hour old — the same as "at least that many switches in the last hour", as switch
times only grow.

Times are the observations' epoch seconds, as ``SafetyLayer`` reads them.
"""

from __future__ import annotations

import numpy as np

from twin.battery import MODE_CODE
from twin.config import HouseConfig
from twin.contracts import BatteryMode

#: Battery mode code of "no command remembered yet" (``SafetyLayer._battery_last is None``).
NO_MODE = -1
_SC = MODE_CODE[BatteryMode.SELF_CONSUMPTION]
_CHARGE = MODE_CODE[BatteryMode.CHARGE_FROM_GRID]
_DISCHARGE = MODE_CODE[BatteryMode.DISCHARGE_TO_GRID]
_BACKUP = MODE_CODE[BatteryMode.BACKUP_RESERVE]
_SETPOINT = MODE_CODE[BatteryMode.POWER_SETPOINT]


class BatchedSafety:
    """The memory and rules of ``num_envs`` safety layers of ``house`` (full rollout mode).

    Parameters
    ----------
    house
        The house every layer guards (its ``safety`` configuration applies).
    num_envs
        Number of layers.
    """

    def __init__(self, house: HouseConfig, num_envs: int) -> None:
        self.house = house
        self.config = cfg = house.safety
        n, rooms = num_envs, len(house.rooms)
        self._max_switches = cfg.relay_max_switches_per_hour
        self._relay_seen = np.zeros((n, rooms), dtype=bool)  # relays as last observed
        self._relay_known = np.zeros(n, dtype=bool)  # False: no observation yet (a fresh layer)
        self._relay_changed_at_s = np.full((n, rooms), -np.inf)
        # The last switches of each room, flat (house, room, slot); _oldest[house·rooms + room] is the slot
        # of the oldest one (overwritten next).
        self._switches_s = np.full(n * rooms * self._max_switches, -np.inf)
        self._oldest = np.zeros(n * rooms, dtype=np.intp)
        self._slot0 = np.arange(n * rooms) * self._max_switches  # flat index of each room's first slot
        self._rooms = rooms
        self.battery_mode = np.full(n, NO_MODE, dtype=np.intp)  # the last command let through
        self.battery_kw = np.zeros(n)
        self.battery_reserve_soc = np.full(n, np.nan)
        self._battery_changed_at_s = np.full(n, -np.inf)
        self.ev_kw = np.full(n, np.nan)  # NaN: no command remembered yet
        self._ev_changed_at_s = np.full(n, -np.inf)
        self._everyone_known = False
        # Power limits per battery mode code (SafetyLayer._battery); none for the modes that follow the house.
        b = house.battery
        lo, hi = np.full(len(MODE_CODE), -np.inf), np.full(len(MODE_CODE), np.inf)
        if b is not None:
            lo[[_CHARGE, _DISCHARGE, _SETPOINT]] = (0.0, 0.0, -b.max_discharge_kw)
            hi[[_CHARGE, _DISCHARGE, _SETPOINT]] = (b.max_charge_kw, b.max_discharge_kw, b.max_charge_kw)
        self._battery_lo_kw, self._battery_hi_kw = lo, hi

    def reset(self, which: np.ndarray) -> None:
        """Fresh layers (as ``SafetyLayer(house)``) for the houses where ``which`` is True."""
        self._relay_known[which] = False
        self._everyone_known = False
        self._relay_changed_at_s[which] = -np.inf
        ring = self._switches_s.reshape(len(which), self._rooms, self._max_switches)
        ring[which] = -np.inf
        self._oldest.reshape(len(which), self._rooms)[which] = 0
        self.battery_mode[which] = NO_MODE
        self.battery_kw[which] = 0.0
        self.battery_reserve_soc[which] = np.nan
        self._battery_changed_at_s[which] = -np.inf
        self.ev_kw[which] = np.nan
        self._ev_changed_at_s[which] = -np.inf

    def observe_relays(self, relay_on: np.ndarray, now_s: np.ndarray, which: np.ndarray,
                       everyone: bool = False) -> None:
        """Learn the relay changes the plants made since the last command (``_observe_relays``).

        ``everyone``: ``which`` is all True (skips the masks).
        """
        changed = relay_on != self._relay_seen
        if not (everyone and self._everyone_known):
            changed &= (which if self._everyone_known else self._relay_known & which)[:, None]
        if changed.any():
            np.copyto(self._relay_changed_at_s, now_s[:, None], where=changed)
            rooms = np.flatnonzero(changed)  # house · rooms + room
            oldest = self._oldest[rooms]
            self._switches_s[self._slot0[rooms] + oldest] = now_s[rooms // self._rooms]
            oldest += 1
            self._oldest[rooms] = np.remainder(oldest, self._max_switches, out=oldest)
        if everyone:
            np.copyto(self._relay_seen, relay_on)
        else:
            np.copyto(self._relay_seen, relay_on, where=which[:, None])
        if not self._everyone_known:
            self._relay_known |= which
            self._everyone_known = bool(self._relay_known.all())

    def relays(self, wanted: np.ndarray, given: np.ndarray, now_s: np.ndarray, all_given: bool = False) -> np.ndarray:
        """The relay states let through (``_relays``); rows where ``given`` is False are ignored (``all_given``: none).

        A change is held back while the relay's minimum on/off time runs, or while the room has
        switched ``relay_max_switches_per_hour`` times within the last hour.
        """
        current = self._relay_seen
        change = wanted != current
        if not all_given:
            change &= given[:, None]
        if not np.count_nonzero(change):
            return wanted
        cfg = self.config
        since_s = now_s[:, None] - self._relay_changed_at_s
        if cfg.relay_min_on_s == cfg.relay_min_off_s:
            blocked = since_s < cfg.relay_min_on_s
        else:
            blocked = since_s < np.where(current, cfg.relay_min_on_s, cfg.relay_min_off_s)
        oldest_s = self._switches_s[self._slot0 + self._oldest].reshape(current.shape)
        blocked |= oldest_s > (now_s - 3600.0)[:, None]
        blocked &= change
        allowed: np.ndarray = wanted ^ blocked  # a blocked change keeps the current state
        return allowed

    def battery(self, mode: np.ndarray, power_kw: np.ndarray, reserve_soc: np.ndarray, given: np.ndarray,
                now_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The battery commands let through (``_battery``).

        Power and reserve within the battery's limits, and at most one change to a mode other than self-consumption per
        ``battery_min_mode_interval_s``. Rows where ``given`` is False are left alone.
        """
        b = self.house.battery
        assert b is not None, "battery commands only for a house with a battery"
        power = np.minimum(np.maximum(power_kw, self._battery_lo_kw[mode]), self._battery_hi_kw[mode])
        reserve = reserve_soc
        backup = mode == _BACKUP
        if np.count_nonzero(backup):
            wanted_reserve = np.where(np.isnan(reserve_soc), b.soc_min, reserve_soc)
            reserve = np.where(backup, np.minimum(np.maximum(wanted_reserve, b.soc_min), b.soc_max), reserve_soc)
        last = self.battery_mode
        # No remembered command has its change time at -inf, so "too soon" never holds for it.
        other = mode != last
        too_soon = other & (mode != _SC)
        too_soon &= now_s - self._battery_changed_at_s < self.config.battery_min_mode_interval_s
        too_soon &= given
        if np.count_nonzero(too_soon):
            mode = np.where(too_soon, last, mode)
            power = np.where(too_soon, self.battery_kw, power)
            reserve = np.where(too_soon, self.battery_reserve_soc, reserve)
            other &= ~too_soon
        other &= given
        np.copyto(self._battery_changed_at_s, now_s, where=other)
        np.copyto(self.battery_mode, mode, where=given)
        np.copyto(self.battery_kw, power, where=given)
        np.copyto(self.battery_reserve_soc, reserve, where=given)
        return mode, power, reserve

    def ev(self, wanted_kw: np.ndarray, given: np.ndarray, now_s: np.ndarray, all_given: bool = False) -> np.ndarray:
        """The charger powers let through (``_ev``).

        0 or within [min, max], stepping up at most every ``ev_min_change_interval_s``. Rows where
        ``given`` is False are left alone; ``all_given``: every row is given (and finite).
        """
        c = self.house.ev_charger
        assert c is not None, "EV commands only for a house with a charger"
        stop = wanted_kw < c.min_power_kw - 1e-9
        if not all_given:
            stop |= ~np.isfinite(wanted_kw)
        power = np.where(stop, 0.0, np.minimum(wanted_kw, c.max_power_kw))
        last = self.ev_kw  # NaN when none: every comparison with it is False, as "last is None"
        held = power > last
        held &= now_s - self._ev_changed_at_s < self.config.ev_min_change_interval_s
        if np.count_nonzero(held):
            power = np.where(held, last, power)
        changed = power != last
        if all_given:
            np.copyto(self._ev_changed_at_s, now_s, where=changed)
            np.copyto(self.ev_kw, power)
            return power
        changed &= given
        np.copyto(self._ev_changed_at_s, now_s, where=changed)
        np.copyto(self.ev_kw, power, where=given)
        return power
