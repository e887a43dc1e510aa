"""The safety layer: the last word between any controller and any plant, simulated or real.

Whatever a controller (or a message) asks, the command that leaves this layer respects the
devices' envelopes: relay minimum on/off times and a cap on switches per room per hour, the
battery's power limits, SOC window and mode enum (and at most one mode change per interval),
the charger's current range (0 or [min, max]) and step rate, a bounded lease, the rollout mode
— and it is more conservative when inputs are stale. It is stateful (it remembers when each
device last changed), so one layer serves one plant for one run.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from types import MappingProxyType

import numpy as np

from twin.battery import commanded_power_kw
from twin.config import HouseConfig, SafetyConfig
from twin.contracts import SELF_CONSUMPTION, BatteryCommand, BatteryMode, Command, Observation, epoch_seconds


class RolloutMode(enum.Enum):
    """How much of the house the controller may command (docs/design.md)."""

    SIMULATION = "simulation"  # nothing leaves the controller
    ADVISORY = "advisory"  # the plan is published, no device is commanded
    PARTIAL = "partial"  # the battery only
    FULL = "full"  # every device


#: The rollout-mode table, the one definition: the devices (``heating``, ``battery``, ``ev``) each
#: mode may command. The live plant, the outgoing-command envelope (topic ``<device>_set``) and
#: the CLI all read it.
ALLOWED_DEVICES: Mapping[RolloutMode, frozenset[str]] = MappingProxyType({
    RolloutMode.SIMULATION: frozenset(),
    RolloutMode.ADVISORY: frozenset(),
    RolloutMode.PARTIAL: frozenset({"battery"}),
    RolloutMode.FULL: frozenset({"heating", "battery", "ev"}),
})
#: How the envelope names each device in its messages.
_DEVICE_LABELS = {"heating": "heating", "battery": "battery", "ev": "EV"}


#: Inputs whose staleness makes the layer more conservative, and what it does then.
STALE_BATTERY = "battery_soc"  # → battery back to SELF_CONSUMPTION (never to grid)
STALE_GRID = "grid_power_kw"  # → EV at most at minimum power (the meter may hide an overload)


def envelope_problems(command: Command, obs: Observation, house: HouseConfig, config: SafetyConfig,
                      mode: RolloutMode = RolloutMode.FULL) -> list[str]:
    """What in ``command`` lies outside the static envelope (empty when it is safe to send).

    Stateless: relay timing is checked by :class:`SafetyLayer` itself, not here.
    """
    problems = []
    lease_s = command.until.timestamp() - obs.time.timestamp()
    if not 0.0 < lease_s <= config.max_lease_s + 1e-6:
        problems.append(f"lease of {lease_s:.1f} s outside (0, {config.max_lease_s}] s")
    allowed = ALLOWED_DEVICES[mode]
    commanded = {"heating": command.relay_on is not None, "battery": command.battery is not None,
                 "ev": command.ev_power_kw is not None}
    if any(given and device not in allowed for device, given in commanded.items()):
        if not allowed:
            problems.append(f"a device command in {mode.name} mode")
        else:
            barred = " or ".join(label for device, label in _DEVICE_LABELS.items() if device not in allowed)
            problems.append(f"a {barred} command in {mode.name} mode")
    if command.relay_on is not None and len(command.relay_on) != len(house.rooms):
        problems.append(f"{len(command.relay_on)} relay states for {len(house.rooms)} rooms")
    battery = command.battery
    if battery is not None:
        b = house.battery
        if b is None or not isinstance(battery.mode, BatteryMode):
            problems.append("battery command without a battery or with an unknown mode")
        else:
            power = commanded_power_kw(battery)
            if not (-b.max_discharge_kw - 1e-9 <= power <= b.max_charge_kw + 1e-9):
                problems.append(f"battery power {power} kW outside [-{b.max_discharge_kw}, {b.max_charge_kw}]")
            if battery.reserve_soc is not None and not b.soc_min - 1e-9 <= battery.reserve_soc <= b.soc_max + 1e-9:
                problems.append(f"reserve SOC {battery.reserve_soc} outside [{b.soc_min}, {b.soc_max}]")
            if STALE_BATTERY in obs.stale and battery.mode is not BatteryMode.SELF_CONSUMPTION:
                problems.append("battery commanded from a stale SOC")
    ev = command.ev_power_kw
    if ev is not None:
        c = house.ev_charger
        if c is None:
            problems.append("EV command without a charger")
        elif not (ev == 0.0 or c.min_power_kw - 1e-9 <= ev <= c.max_power_kw + 1e-9):
            problems.append(f"EV power {ev} kW neither 0 nor in [{c.min_power_kw:.3f}, {c.max_power_kw:.3f}]")
        elif STALE_GRID in obs.stale and ev > c.min_power_kw + 1e-9:
            problems.append("EV above minimum power with a stale grid meter")
    return problems


class SafetyLayer:
    """Brings every command inside the envelope; use one instance per plant and run.

    Called as ``safety(command, obs) -> command`` (the runner's ``SafetyFilter``).
    """

    def __init__(self, house: HouseConfig, config: SafetyConfig | None = None,
                 mode: RolloutMode = RolloutMode.FULL) -> None:
        self.house = house
        self.config = config or house.safety
        self.set_mode(mode)
        n = len(house.rooms)
        # Plain Python on 16 rooms: numpy's per-call overhead made these paths a quarter of a simulated year.
        self._relay_tuple: tuple[bool, ...] | None = None  # as last observed
        self._relay_array: np.ndarray | None = None  # the read-only array it was read from, if any
        self._relay_changed_at = [-math.inf] * n
        self._relay_switches: list[deque[float]] = [deque() for _ in range(n)]
        self._battery_last: BatteryCommand | None = None
        self._battery_changed_at = -math.inf
        self._ev_last: float | None = None
        self._ev_changed_at = -math.inf
        self.interventions = 0  # commands this layer had to change

    def set_mode(self, mode: RolloutMode) -> None:
        """The rollout mode from the next command on (the device timers and history are kept)."""
        self.mode = mode
        allowed = ALLOWED_DEVICES[mode]
        self._may_heat, self._may_battery, self._may_ev = "heating" in allowed, "battery" in allowed, "ev" in allowed

    def __call__(self, command: Command, obs: Observation) -> Command:
        now = obs.epoch_s
        self._observe_relays(obs, now)
        until = self._bounded_until(command.until, obs.time, now)
        relays = battery = ev = None
        if self._may_heat:
            relays = self._relays(command.relay_on, obs, now)
        if self._may_ev:
            ev = self._ev(command.ev_power_kw, obs, now)
        if self._may_battery:
            battery = self._battery(command.battery, obs, now)
        if (until is command.until and relays is command.relay_on and battery is command.battery
                and ev == command.ev_power_kw):
            return command  # the common case: nothing to change
        self.interventions += 1
        return command.with_devices(until, relays, battery, ev)

    # --- per device --------------------------------------------------------------------------------

    def _bounded_until(self, until: datetime, now: datetime, now_s: float) -> datetime:
        if epoch_seconds(until) - now_s > self.config.max_lease_s:
            return datetime.fromtimestamp(now_s + self.config.max_lease_s, now.tzinfo)
        return until

    def _observe_relays(self, obs: Observation, now: float) -> None:
        """Learn relay changes from the plant (local thermostat, manual override, our own)."""
        relays = obs.relay_on
        if relays is self._relay_array:
            return  # the same read-only array as last time (the twin replaces it when a relay changes)
        if isinstance(relays, np.ndarray):
            actual = tuple(relays.tolist())
            self._relay_array = None if relays.flags.writeable else relays
        else:
            actual = tuple(bool(x) for x in relays)
            self._relay_array = None
        previous = self._relay_tuple
        self._relay_tuple = actual
        if previous is None or actual == previous:
            return
        for j, (was, now_on) in enumerate(zip(previous, actual, strict=True)):
            if was != now_on:
                self._relay_changed_at[j] = now
                self._relay_switches[j].append(now)

    def _relays(self, wanted: tuple[bool, ...] | None, obs: Observation, now: float) -> tuple[bool, ...] | None:
        n = len(self.house.rooms)
        if wanted is None or len(wanted) != n:
            return None  # malformed: leave the relays to their current lease or local rule
        current = self._relay_tuple
        assert current is not None, "_observe_relays runs first"
        if wanted == current:
            return wanted  # no relay changes: nothing to hold back
        cfg = self.config
        result = [bool(x) for x in wanted]
        blocked = False
        for j, (is_on, want) in enumerate(zip(current, result, strict=True)):
            if want == is_on:
                continue
            if now - self._relay_changed_at[j] < (cfg.relay_min_on_s if is_on else cfg.relay_min_off_s):
                result[j], blocked = is_on, True
                continue
            switches = self._relay_switches[j]
            while switches and switches[0] <= now - 3600.0:
                switches.popleft()
            if len(switches) >= cfg.relay_max_switches_per_hour:
                result[j], blocked = is_on, True
        if not blocked and all(type(x) is bool for x in wanted):
            return wanted  # keep identity: the caller can tell nothing changed
        return tuple(result)

    def _battery(self, wanted: BatteryCommand | None, obs: Observation, now: float) -> BatteryCommand | None:
        b = self.house.battery
        if wanted is None or b is None:
            return None
        if wanted is self._battery_last and STALE_BATTERY not in obs.stale:
            return wanted  # unchanged and already checked
        original = wanted
        if not isinstance(wanted, BatteryCommand) or not isinstance(wanted.mode, BatteryMode):
            wanted = SELF_CONSUMPTION
        if STALE_BATTERY in obs.stale:
            wanted = SELF_CONSUMPTION
        mode = wanted.mode
        # A new command only where clamping changes a value (most commands are inside the envelope).
        if mode is BatteryMode.CHARGE_FROM_GRID:
            power = min(max(wanted.power_kw, 0.0), b.max_charge_kw)
            if power != wanted.power_kw:
                wanted = replace(wanted, power_kw=power)
        elif mode is BatteryMode.DISCHARGE_TO_GRID:
            power = min(max(wanted.power_kw, 0.0), b.max_discharge_kw)
            if power != wanted.power_kw:
                wanted = replace(wanted, power_kw=power)
        elif mode is BatteryMode.POWER_SETPOINT:
            power = min(max(wanted.power_kw, -b.max_discharge_kw), b.max_charge_kw)
            if power != wanted.power_kw:
                wanted = replace(wanted, power_kw=power)
        elif mode is BatteryMode.BACKUP_RESERVE:
            reserve = min(max(wanted.reserve_soc if wanted.reserve_soc is not None else b.soc_min, b.soc_min),
                          b.soc_max)
            if reserve != wanted.reserve_soc:
                wanted = replace(wanted, reserve_soc=reserve)
        last = self._battery_last
        if last is not None and mode is not last.mode and mode is not BatteryMode.SELF_CONSUMPTION:
            if now - self._battery_changed_at < self.config.battery_min_mode_interval_s:
                wanted = last  # too soon for another mode change (falling back to self-consumption always may)
        if last is None or wanted.mode is not last.mode:
            self._battery_changed_at = now
        if wanted is not original and wanted == original:
            wanted = original  # keep identity: the caller can tell nothing changed
        self._battery_last = wanted
        return wanted

    def _ev(self, wanted: float | None, obs: Observation, now: float) -> float | None:
        c = self.house.ev_charger
        if wanted is None or c is None:
            return None
        power = 0.0 if not math.isfinite(wanted) or wanted < c.min_power_kw - 1e-9 else min(wanted, c.max_power_kw)
        if STALE_GRID in obs.stale and power > c.min_power_kw:
            power = c.min_power_kw
        last = self._ev_last
        if last is not None and power != last and power > last:
            if now - self._ev_changed_at < self.config.ev_min_change_interval_s:
                power = last  # current steps up at most every ev_min_change_interval_s; down at once
        if last is None or power != last:
            self._ev_changed_at = now
        self._ev_last = power
        return power

    # --- history across restarts (live mode: docs/failsafe.md F10) --------------------------------------------

    def restart_timers(self, now: datetime) -> None:
        """Devices may have changed without this layer seeing it (a lost link, a restart): as of ``now``.

        Every relay's minimum on/off time, the battery's mode interval and the charger's step
        interval start again at ``now`` — a device that fell back to its own rule while nobody
        watched is not switched again at once (a charger whose current is unknown counts as
        stopped: it steps up after the interval).
        """
        t = now.timestamp()
        self._relay_changed_at = [t] * len(self._relay_changed_at)
        self._battery_changed_at = t
        self._ev_changed_at = t
        if self._ev_last is None:
            self._ev_last = 0.0

    def history(self) -> SafetyHistory:
        """What this layer remembers about the devices' recent changes (to survive a restart)."""
        relays = self._relay_tuple
        return SafetyHistory(
            relay_on=relays, relay_changed_at_s=tuple(float(x) for x in self._relay_changed_at),
            relay_switches_s=tuple(tuple(d) for d in self._relay_switches),
            battery=None if self._battery_last is None else (
                self._battery_last.mode.value, self._battery_last.power_kw, self._battery_last.reserve_soc),
            battery_changed_at_s=self._battery_changed_at, ev_power_kw=self._ev_last,
            ev_changed_at_s=self._ev_changed_at)

    def restore(self, history: SafetyHistory) -> None:
        """Continue from :meth:`history` of an earlier run of the same house (times are Unix seconds).

        Minimum on/off times and switch caps then count the changes made before a restart; a
        history of another house (different room count) is refused with ``ValueError``.
        """
        n = len(self.house.rooms)
        if len(history.relay_changed_at_s) != n or len(history.relay_switches_s) != n or (
                history.relay_on is not None and len(history.relay_on) != n):
            raise ValueError(f"safety history for {len(history.relay_changed_at_s)} rooms, this house has {n}")
        if history.relay_on is not None:
            self._relay_tuple = tuple(bool(x) for x in history.relay_on)
            self._relay_array = None
        self._relay_changed_at = [float(x) for x in history.relay_changed_at_s]
        self._relay_switches = [deque(times) for times in history.relay_switches_s]
        if history.battery is not None and self.house.battery is not None:
            mode, power_kw, reserve_soc = history.battery
            self._battery_last = BatteryCommand(BatteryMode(mode), power_kw, reserve_soc)
            self._battery_changed_at = history.battery_changed_at_s
        self._ev_last = history.ev_power_kw
        self._ev_changed_at = history.ev_changed_at_s


@dataclass(frozen=True, slots=True)
class SafetyHistory:
    """The state :class:`SafetyLayer` keeps between commands, as plain values [Unix s; −inf never]."""

    relay_on: tuple[bool, ...] | None
    relay_changed_at_s: tuple[float, ...]
    relay_switches_s: tuple[tuple[float, ...], ...]
    battery: tuple[str, float, float | None] | None  # (mode, power_kw, reserve_soc) of the last command
    battery_changed_at_s: float
    ev_power_kw: float | None
    ev_changed_at_s: float
