"""A commissioning controller: exercises every actuator in turn, to check a live installation's wiring.

Run it in FULL mode against a new installation (or the emulator) and watch the readings follow:
at decision k (counted on the decision grid from the observation time) room ``k mod n`` heats
and every other room is off; the battery cycles CHARGE_FROM_GRID, DISCHARGE_TO_GRID and
SELF_CONSUMPTION at a third of its power limit; a connected car charges at the charger's
minimum and maximum power in turn. Deterministic, and inside every envelope.
"""

from __future__ import annotations

from twin.config import HouseConfig
from twin.contracts import SELF_CONSUMPTION, BatteryCommand, BatteryMode, Command, Observation
from twin.registry import ControllerEntry


class CommissioningController:
    """Cycles the relays, the battery modes and the charger's power, one decision at a time."""

    def __init__(self, house: HouseConfig, decision_interval_s: float = 300.0, lease_s: float = 900.0) -> None:
        self.n_rooms = len(house.rooms)
        self.interval_s = decision_interval_s
        self.lease_s = lease_s
        b = house.battery
        self._battery = (None if b is None else (
            BatteryCommand(BatteryMode.CHARGE_FROM_GRID, b.max_charge_kw / 3),
            BatteryCommand(BatteryMode.DISCHARGE_TO_GRID, b.max_discharge_kw / 3),
            SELF_CONSUMPTION))
        c = house.ev_charger
        self._ev = None if c is None else (c.min_power_kw, c.max_power_kw)

    def decide(self, obs: Observation) -> Command:
        k = int(obs.time.timestamp() // self.interval_s)
        relays = tuple(j == k % self.n_rooms for j in range(self.n_rooms)) if self.n_rooms else None
        battery = self._battery[k % 3] if self._battery is not None else None
        ev = None
        if self._ev is not None:
            ev = self._ev[k % 2] if obs.ev_connected else 0.0
        return Command(until=obs.after(self.lease_s), relay_on=relays, battery=battery, ev_power_kw=ev,
                       plan_note=f"commissioning step {k}")


def catalog() -> list[ControllerEntry]:
    """Controllers the hardware package registers (entry point ``pems.controllers``)."""
    return [ControllerEntry(
        name="commissioning",
        description="Exercises every relay, battery mode and charger power in turn (wiring check for live mode)",
        make=lambda ctx: CommissioningController(ctx.house, ctx.decision_interval_s),
    )]
