"""What the fault lab's device simulators log and how they are set up (``hardware.faultlab.devices``).

Every command a device receives is a :class:`Delivery` (receipt time, sequence number, true age,
accepted or why not), every change of its state a :class:`StateChange` with its cause; the
fault-injection metrics (``hardware.faultlab.metrics``) are computed from these logs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Delivery:
    """One command as a device received it."""

    recv_mono: float
    recv_wall: float  # the true clock
    topic: str
    device: str
    seq: int | None
    age_s: float | None  # true age: receipt minus the command's ``ts`` (the controller runs on the true clock)
    retained: bool
    result: str  # "accepted", or why not
    payload: bytes = b""


@dataclass(frozen=True, slots=True)
class StateChange:
    mono: float
    device: str
    state: str  # "on"/"off", a battery mode, "<current> A"/"off"
    cause: str  # command, lease_end, will, heartbeat_lost, manual, local_rule


@dataclass(slots=True)
class DeviceState:
    """One device: what it does now and under whose rule."""

    name: str
    state: str
    source: str = "local"
    last_seq: int = -1
    lease_end: float = -math.inf  # monotonic
    manual_until: float = -math.inf
    current_a: float = 0.0


@dataclass(slots=True)
class SimSettings:
    status_period_s: float = 1.0
    heartbeat_timeout_s: float = 2.0  # math.inf: ignore heartbeats (leases only)
    max_command_age_s: float = 2.0
    honour_will: bool = True
    skew_s: float = 0.0  # this device clock minus the true clock
    manual_hold_s: float = 60.0
    room_temp_c: tuple[float, ...] = ()  # per room; default 19.5 + 0.2 × index
    thermostat_c: float = 21.0  # local rule: heat below this
    battery_soc: float = 0.5
    car_connected: bool = True
    feeds: set[str] = field(default_factory=lambda: {"room_temperature", "heating_status", "outdoor_temperature",
                                                       "battery_status", "pv_status", "grid_status", "ev_status",
                                                       "ev_car_status"})
