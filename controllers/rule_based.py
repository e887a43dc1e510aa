"""The rule-based baseline: what the house does today.

Each room has a thermostat with hysteresis on its comfort band (heat below
``lower + on_margin_c``, stop above ``lower + off_margin_c``, otherwise keep the relay as
it is); the battery stays in SELF_CONSUMPTION; the car charges at full power when connected.
Commands are leases of ``lease_s`` renewed at every decision, so if the controller stops the
devices return to their own local behaviour within one lease.
"""

from __future__ import annotations

from dataclasses import dataclass

from twin.config import HouseConfig
from twin.contracts import SELF_CONSUMPTION, Command, Observation


@dataclass(frozen=True, slots=True)
class RuleBasedSettings:
    """Thresholds of the rule-based controller (relative to the comfort band) [K]."""

    on_margin_c: float = 0.2
    off_margin_c: float = 0.8
    lease_s: float = 900.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.on_margin_c < self.off_margin_c <= 5.0:
            raise ValueError(f"need 0 <= on_margin_c ({self.on_margin_c}) < off_margin_c ({self.off_margin_c}) <= 5")
        if not 60.0 <= self.lease_s <= 86400.0:
            raise ValueError(f"lease_s = {self.lease_s} is outside [60, 86400] s")


class RuleBasedController:
    """Thermostats with hysteresis, battery self-consumption, EV at full power."""

    def __init__(self, house: HouseConfig, settings: RuleBasedSettings | None = None) -> None:
        self.settings = settings or RuleBasedSettings()
        self._ev_max_kw = house.ev_charger.max_power_kw if house.ev_charger is not None else None
        self._has_battery = house.battery is not None

    def decide(self, obs: Observation) -> Command:
        s = self.settings
        temp, lower = obs.room_temp_c, obs.comfort_lower_c
        relays = (temp < lower + s.on_margin_c) | (obs.relay_on & (temp <= lower + s.off_margin_c))
        ev = None
        if self._ev_max_kw is not None:
            ev = self._ev_max_kw if obs.ev_connected else 0.0
        return Command(until=obs.after(s.lease_s), relay_on=tuple(relays.tolist()),
                       battery=SELF_CONSUMPTION if self._has_battery else None, ev_power_kw=ev)
