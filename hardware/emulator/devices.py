"""How the emulated devices take commands: leases, sequence numbers, and their local rules.

Each device remembers the last sequence number it accepted and ignores anything not newer
(QoS 1 may deliver twice, docs/failsafe.md F7), or newer beyond bounds (``hardware.wire.sequence``: a
poisoned number must not lock a device). A lease ends at the earlier of ``until`` and receipt +
``ttl_s`` (a clock that is off cannot stretch it, F8). When no lease holds, the device follows
its own rule: a room's relay its local thermostat, the inverter SELF_CONSUMPTION, the charger
its default. Pure bookkeeping: no MQTT and no SimPy here.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from hardware.plant.clock import HouseClock
from hardware.wire.schemas import HeatingCommand, Lease
from hardware.wire.sequence import refusal
from twin.config import LocalThermostatConfig


@dataclass(slots=True)
class LeaseSlot:
    """One device's view of its current lease [house s]."""

    last_seq: int = -1
    end_s: float = -math.inf

    def offer(self, payload: Lease, now_s: float, clock: HouseClock) -> str | None:
        """Take the lease of ``payload`` received at ``now_s``; the reason when it is refused."""
        reason = refusal(self.last_seq, payload.seq, time.time())  # the controller runs on this machine's clock
        if reason is not None:
            return reason
        end_s = min(clock.seconds(payload.until), now_s + payload.ttl_s)
        if end_s <= now_s:
            return "expired"
        self.last_seq = payload.seq
        self.end_s = end_s
        return None

    def active(self, now_s: float) -> bool:
        return self.end_s > now_s

    def release(self) -> None:
        self.end_s = -math.inf


def local_thermostat(air_c: np.ndarray, lower_c: np.ndarray, relay_on: np.ndarray,
                     thermostat: LocalThermostatConfig) -> np.ndarray:
    """Each room's own thermostat: the rule ``twin.house.SimHouse`` applies when no lease holds."""
    on_below = thermostat.offset_c - thermostat.hysteresis_c / 2
    off_above = thermostat.offset_c + thermostat.hysteresis_c / 2
    return (air_c < lower_c + on_below) | (relay_on & (air_c <= lower_c + off_above))


class RelayBank:
    """The heating relays of all rooms, each with its own lease."""

    def __init__(self, n_rooms: int) -> None:
        self.slots = [LeaseSlot() for _ in range(n_rooms)]
        self.wanted = np.zeros(n_rooms, dtype=bool)

    def offer(self, room: int, payload: HeatingCommand, now_s: float, clock: HouseClock) -> str | None:
        reason = self.slots[room].offer(payload, now_s, clock)
        if reason is None:
            self.wanted[room] = payload.state == "on"
        return reason

    def leased(self, now_s: float) -> np.ndarray:
        return np.array([s.active(now_s) for s in self.slots], dtype=bool)

    def next_end_s(self, now_s: float) -> float:
        """When the next active lease ends (``inf`` if none is active)."""
        ends = [s.end_s for s in self.slots if s.active(now_s)]
        return min(ends) if ends else math.inf

    def release(self) -> None:
        for slot in self.slots:
            slot.release()
