"""Turning planned duty cycles into relay states at the decision rate (5 min).

The plan asks each heater for a duty cycle per block; a relay can only be on or off, must stay
in a state for a minimum time and may switch only so often per hour (``SafetyConfig``). The
executor tracks planned *energy*: per room it keeps the heat the plan asked for minus the heat
delivered (a sigma-delta modulator), switches on once a whole slot's worth is owed and off once
nothing is, and never breaks the relay rules — it applies them exactly as
:class:`twin.safety.SafetyLayer` does (a change counts from when it is observed), so the safety
layer has nothing to correct. Two guards protect comfort against model error and the rounding
of duty cycles to whole slots: a room less than ``comfort_guard_c`` above its lower bound heats
(whatever the plan says), a room less than that below its upper bound does not, and a heater
is not switched on when its shortest pulse would carry the room's air over that (small rooms
with big heaters swing by degrees).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from twin.config import HouseConfig
from twin.contracts import Observation

#: How much heat a room may owe or be owed, in slots (bounds the memory of past rounding).
MAX_DEBT_SLOTS = 2.0


class RelayExecutor:
    """Relay states that follow planned heating power, within the relay rules."""

    def __init__(self, house: HouseConfig, hysteresis_slots: float = 1.0, comfort_guard_c: float = 0.1,
                 pulse_rise_c: np.ndarray | None = None) -> None:
        self.heater_kw = np.array([r.heater_power_kw for r in house.rooms], dtype=float)
        self.rules = house.safety
        self.hysteresis_slots = hysteresis_slots
        self.comfort_guard_c = comfort_guard_c
        #: How much a room's air warms during the shortest heating pulse the relay rules allow [K].
        self.pulse_rise_c = np.zeros(len(self.heater_kw)) if pulse_rise_c is None else np.asarray(pulse_rise_c)
        self.reset()

    def reset(self) -> None:
        n = len(self.heater_kw)
        self._debt_kwh = np.zeros(n)
        self._last_time_s: float | None = None
        self._last_planned_kw = np.zeros(n)
        self._state: np.ndarray | None = None
        self._changed_at = np.full(n, -math.inf)
        self._switches: list[deque[float]] = [deque() for _ in range(n)]

    def decide(self, obs: Observation, planned_kw: np.ndarray, interval_s: float,
               guard_lower_c: np.ndarray | None = None) -> tuple[bool, ...]:
        """Relay states for the next ``interval_s`` seconds, given the plan's heating power per room now.

        ``guard_lower_c`` is the lower bound the comfort guard protects (default: the current one;
        the controller passes the highest one of the coming minutes, so a room is warm when the
        schedule steps up).
        """
        now = obs.time.timestamp()
        actual = np.asarray(obs.relay_on, dtype=bool)
        self._observe(actual, now)
        if self._last_time_s is not None:
            dt_h = max(0.0, now - self._last_time_s) / 3600.0
            delivered = actual * self.heater_kw * dt_h
            self._debt_kwh += self._last_planned_kw * dt_h - delivered
        slot_kwh = self.heater_kw * interval_s / 3600.0
        limit = MAX_DEBT_SLOTS * slot_kwh
        self._debt_kwh = np.clip(self._debt_kwh, -limit, limit)
        planned = np.clip(np.asarray(planned_kw, dtype=float), 0.0, self.heater_kw)
        owed = self._debt_kwh + planned * interval_s / 3600.0  # heat due by the end of the next slot
        h = self.hysteresis_slots
        want = np.where(actual, owed > (0.5 - h / 2) * slot_kwh, owed >= (0.5 + h / 2) * slot_kwh)
        lower = obs.comfort_lower_c if guard_lower_c is None else guard_lower_c
        want |= obs.room_temp_c < lower + self.comfort_guard_c
        ceiling = obs.comfort_upper_c - self.comfort_guard_c
        want &= ~(obs.room_temp_c > ceiling)
        want &= actual | (obs.room_temp_c + self.pulse_rise_c <= ceiling)  # a new pulse must not overshoot
        out = want.copy()
        for j in np.flatnonzero(want != actual):
            if not self._may_switch(j, bool(actual[j]), now):
                out[j] = actual[j]
        self._last_time_s = now
        self._last_planned_kw = planned
        return tuple(bool(x) for x in out)

    def shed(self, obs: Observation, relays: tuple[bool, ...], excess_kw: float) -> tuple[bool, ...]:
        """Relays with at least ``excess_kw`` of heaters switched off, where the rules allow it.

        Heaters about to be switched on are dropped first (not switching is always allowed), then
        running ones that may switch off; within each group, the rooms owed the least heat first.
        """
        out = np.array(relays, dtype=bool)
        actual = np.asarray(obs.relay_on, dtype=bool)
        now = obs.time.timestamp()
        candidates = [j for j in np.flatnonzero(out) if not actual[j]]
        candidates.sort(key=lambda j: self._debt_kwh[j])
        running = [j for j in np.flatnonzero(out) if actual[j] and self._may_switch(j, True, now)]
        running.sort(key=lambda j: self._debt_kwh[j])
        for j in candidates + running:
            if excess_kw <= 0.0:
                break
            out[j] = False
            excess_kw -= self.heater_kw[j]
        return tuple(bool(x) for x in out)

    @staticmethod
    def pulse_s(rules_min_on_s: float, interval_s: float) -> float:
        """The shortest heating pulse [s].

        The safety layer counts a switch from when it *sees* it, one decision later, so a relay
        stays on for at least one interval more than its minimum.
        """
        return (math.ceil(rules_min_on_s / interval_s - 1e-9) + 1) * interval_s

    def _observe(self, actual: np.ndarray, now: float) -> None:
        if self._state is None:
            self._state = actual.copy()
            return
        for j in np.flatnonzero(actual != self._state):
            self._changed_at[j] = now
            self._switches[j].append(now)
        self._state = actual.copy()

    def _may_switch(self, j: int | np.integer, on: bool, now: float) -> bool:
        switches = self._switches[j]
        while switches and switches[0] <= now - 3600.0:
            switches.popleft()
        minimum = self.rules.relay_min_on_s if on else self.rules.relay_min_off_s
        return now - self._changed_at[j] >= minimum and len(switches) < self.rules.relay_max_switches_per_hour
