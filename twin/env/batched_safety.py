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
        self._switch_ring_s = np.full((n, rooms, self._max_switches), -np.inf)
        self._switch_next = np.zeros((n, rooms), dtype=np.intp)  # slot of the oldest switch, overwritten next
        self.battery_mode = np.full(n, NO_MODE, dtype=np.intp)  # the last command let through
        self.battery_kw = np.zeros(n)
        self.battery_reserve_soc = np.full(n, np.nan)
        self._battery_changed_at_s = np.full(n, -np.inf)
        self.ev_kw = np.full(n, np.nan)  # NaN: no command remembered yet
        self._ev_changed_at_s = np.full(n, -np.inf)
        self._rows = np.arange(n)[:, None]
        self._cols = np.arange(rooms)[None, :]

    def reset(self, which: np.ndarray) -> None:
        """Fresh layers (as ``SafetyLayer(house)``) for the houses where ``which`` is True."""
        self._relay_known[which] = False
        self._relay_changed_at_s[which] = -np.inf
        self._switch_ring_s[which] = -np.inf
        self._switch_next[which] = 0
        self.battery_mode[which] = NO_MODE
        self.battery_kw[which] = 0.0
        self.battery_reserve_soc[which] = np.nan
        self._battery_changed_at_s[which] = -np.inf
        self.ev_kw[which] = np.nan
        self._ev_changed_at_s[which] = -np.inf

    def observe_relays(self, relay_on: np.ndarray, now_s: np.ndarray, which: np.ndarray) -> None:
        """Learn the relay changes the plants made since the last command (``_observe_relays``)."""
        changed = (relay_on != self._relay_seen) & (self._relay_known & which)[:, None]
        if changed.any():
            house_idx, room_idx = np.nonzero(changed)
            now_at = now_s[house_idx]
            self._relay_changed_at_s[house_idx, room_idx] = now_at
            slot = self._switch_next[house_idx, room_idx]
            self._switch_ring_s[house_idx, room_idx, slot] = now_at
            self._switch_next[house_idx, room_idx] = (slot + 1) % self._max_switches
        np.copyto(self._relay_seen, relay_on, where=which[:, None])
        self._relay_known |= which

    def relays(self, wanted: np.ndarray, given: np.ndarray, now_s: np.ndarray) -> np.ndarray:
        """The relay states let through (``_relays``); rows where ``given`` is False are ignored.

        A change is held back while the relay's minimum on/off time runs, or while the room has
        switched ``relay_max_switches_per_hour`` times within the last hour.
        """
        current = self._relay_seen
        change = (wanted != current) & given[:, None]
        if not change.any():
            return wanted
        cfg = self.config
        min_s = np.where(current, cfg.relay_min_on_s, cfg.relay_min_off_s)
        too_soon = now_s[:, None] - self._relay_changed_at_s < min_s
        oldest_s = self._switch_ring_s[self._rows, self._cols, self._switch_next]
        too_many = oldest_s > now_s[:, None] - 3600.0
        allowed: np.ndarray = np.where(change & (too_soon | too_many), current, wanted)
        return allowed

    def battery(self, mode: np.ndarray, power_kw: np.ndarray, reserve_soc: np.ndarray, given: np.ndarray,
                now_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The battery commands let through (``_battery``): power and reserve within the battery's
        limits, and at most one change to a mode other than self-consumption per
        ``battery_min_mode_interval_s``. Rows where ``given`` is False are left alone.
        """
        b = self.house.battery
        assert b is not None, "battery commands only for a house with a battery"
        lo = np.where(mode == _CHARGE, 0.0, np.where(mode == _DISCHARGE, 0.0, -b.max_discharge_kw))
        hi = np.where(mode == _DISCHARGE, b.max_discharge_kw, b.max_charge_kw)
        power = np.minimum(np.maximum(power_kw, lo), hi)
        clamped = (mode != _SC) & (mode != _BACKUP)
        power = np.where(clamped, power, power_kw)
        reserve = reserve_soc
        backup = mode == _BACKUP
        if backup.any():
            wanted_reserve = np.where(np.isnan(reserve_soc), b.soc_min, reserve_soc)
            reserve = np.where(backup, np.minimum(np.maximum(wanted_reserve, b.soc_min), b.soc_max), reserve_soc)
        last = self.battery_mode
        too_soon = ((last != NO_MODE) & (mode != last) & (mode != _SC)
                    & (now_s - self._battery_changed_at_s < self.config.battery_min_mode_interval_s))
        keep = too_soon & given
        mode = np.where(keep, last, mode)
        power = np.where(keep, self.battery_kw, power)
        reserve = np.where(keep, self.battery_reserve_soc, reserve)
        changed = given & ((last == NO_MODE) | (mode != last))
        self._battery_changed_at_s = np.where(changed, now_s, self._battery_changed_at_s)
        np.copyto(self.battery_mode, mode, where=given)
        np.copyto(self.battery_kw, power, where=given)
        np.copyto(self.battery_reserve_soc, reserve, where=given)
        return mode, power, reserve

    def ev(self, wanted_kw: np.ndarray, given: np.ndarray, now_s: np.ndarray) -> np.ndarray:
        """The charger powers let through (``_ev``): 0 or within [min, max], stepping up at most
        every ``ev_min_change_interval_s``. Rows where ``given`` is False are left alone."""
        c = self.house.ev_charger
        assert c is not None, "EV commands only for a house with a charger"
        stop = ~np.isfinite(wanted_kw) | (wanted_kw < c.min_power_kw - 1e-9)
        power = np.where(stop, 0.0, np.minimum(wanted_kw, c.max_power_kw))
        last = self.ev_kw
        known = ~np.isnan(last)
        held = known & (power > last) & (now_s - self._ev_changed_at_s < self.config.ev_min_change_interval_s)
        power = np.where(held, last, power)
        changed = given & (~known | (power != last))
        self._ev_changed_at_s = np.where(changed, now_s, self._ev_changed_at_s)
        np.copyto(self.ev_kw, power, where=given)
        return power
