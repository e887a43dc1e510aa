"""The envelope check on the wire: is this command payload safe to send to this house's device?

``twin.safety.envelope_problems`` checks a :class:`~twin.contracts.Command` (docs/failsafe.md's
``check_envelope()``); this module checks what actually leaves — one device's payload, after
the adapters turned the command into amperes and leases — against the same limits: the
rollout mode, the lease bound, the battery's power limits, SOC window and mode, the charger's
current range (0 or [min, max] of *this* charger), and, with a stale SOC, self-consumption only.
The outbox runs it on every command before publishing (the last gate, OpenEMS ``fitWithin``);
the fault-injection tests run it on every command a spy saw on the broker.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from hardware.wire.schemas import (
    COMMAND_SCHEMAS,
    BatteryCommandPayload,
    ChargerCommand,
    HeatingCommand,
    Lease,
    PayloadError,
    parse_payload,
)
from twin.config import HouseConfig
from twin.contracts import BatteryMode
from twin.safety import ALLOWED_DEVICES, STALE_BATTERY, STALE_GRID, RolloutMode

#: Command topic keys each rollout mode may publish to: ``<device>_set`` of twin.safety.ALLOWED_DEVICES.
MODE_KEYS = {mode: frozenset(f"{device}_set" for device in devices) for mode, devices in ALLOWED_DEVICES.items()}
TOLERANCE = 1e-6


def lease_problems(payload: Lease, max_lease_s: float, speed: float = 1.0) -> list[str]:
    """A lease longer than the house allows, or an ``until`` that disagrees with ``ts + ttl_s``."""
    problems = []
    if payload.ttl_s > max_lease_s + TOLERANCE:
        problems.append(f"lease ttl_s = {payload.ttl_s} s exceeds the maximum {max_lease_s} s")
    if payload.ts is not None:
        span_s = (payload.until - payload.ts).total_seconds()
        if span_s > max_lease_s + TOLERANCE:
            problems.append(f"until is {span_s:.1f} s after ts, beyond the maximum lease {max_lease_s} s")
    return problems


def battery_problems(payload: BatteryCommandPayload, house: HouseConfig, stale: Collection[str] = ()) -> list[str]:
    b = house.battery
    if b is None:
        return ["a battery command for a house without a battery"]
    mode = BatteryMode(payload.mode)
    power = payload.power_kw
    problems = []
    if mode is BatteryMode.CHARGE_FROM_GRID and not -TOLERANCE <= power <= b.max_charge_kw + TOLERANCE:
        problems.append(f"charge power {power} kW outside [0, {b.max_charge_kw}]")
    if mode is BatteryMode.DISCHARGE_TO_GRID and not -TOLERANCE <= power <= b.max_discharge_kw + TOLERANCE:
        problems.append(f"discharge power {power} kW outside [0, {b.max_discharge_kw}]")
    setpoint_ok = -b.max_discharge_kw - TOLERANCE <= power <= b.max_charge_kw + TOLERANCE
    if mode is BatteryMode.POWER_SETPOINT and not setpoint_ok:
        problems.append(f"power setpoint {power} kW outside [-{b.max_discharge_kw}, {b.max_charge_kw}]")
    if mode is BatteryMode.BACKUP_RESERVE and (
            payload.reserve_soc is None or not b.soc_min - TOLERANCE <= payload.reserve_soc <= b.soc_max + TOLERANCE):
        problems.append(f"reserve SOC {payload.reserve_soc} outside [{b.soc_min}, {b.soc_max}]")
    if STALE_BATTERY in stale and mode is not BatteryMode.SELF_CONSUMPTION:
        problems.append(f"{mode.value} commanded from a stale SOC")
    return problems


def charger_problems(payload: ChargerCommand, house: HouseConfig, stale: Collection[str] = ()) -> list[str]:
    c = house.ev_charger
    if c is None:
        return ["an EV command for a house without a charger"]
    if not payload.enabled:
        return [] if payload.current_a == 0.0 else [f"current {payload.current_a} A while disabled"]
    if not c.min_current_a - TOLERANCE <= payload.current_a <= c.max_current_a + TOLERANCE:
        return [f"current {payload.current_a} A outside [{c.min_current_a}, {c.max_current_a}] A"]
    if STALE_GRID in stale and payload.current_a > c.min_current_a + TOLERANCE:
        return [f"current {payload.current_a} A above the minimum with a stale grid meter"]
    return []


def payload_problems(key: str, payload: bytes, house: HouseConfig, mode: RolloutMode = RolloutMode.FULL,
                     stale: Collection[str] = (), now: datetime | None = None) -> list[str]:
    """What is wrong with sending ``payload`` on command topic ``key`` (empty: safe to send).

    ``key`` is a command topic key (``heating_set``, ``battery_set``, ``ev_set``); ``stale``
    the observation's stale inputs; ``now`` (house clock) checks that ``until`` is ahead and
    within the maximum lease.
    """
    if key not in COMMAND_SCHEMAS:
        return [f"{key!r} is not a command topic"]
    if key not in MODE_KEYS[mode]:
        return [f"{key} is not allowed in {mode.name} mode"]
    try:
        parsed = parse_payload(COMMAND_SCHEMAS[key], payload)
    except PayloadError as exc:
        return [f"malformed {key} payload ({exc})"]
    max_lease_s = house.safety.max_lease_s
    problems = lease_problems(parsed, max_lease_s)
    if now is not None:
        ahead_s = (parsed.until - now).total_seconds()
        if not 0.0 < ahead_s <= max_lease_s + TOLERANCE:
            problems.append(f"until is {ahead_s:.1f} s from now, outside (0, {max_lease_s}] s")
    if isinstance(parsed, BatteryCommandPayload):
        problems += battery_problems(parsed, house, stale)
    elif isinstance(parsed, ChargerCommand):
        problems += charger_problems(parsed, house, stale)
    elif isinstance(parsed, HeatingCommand) and not house.rooms:
        problems.append("a heating command for a house without rooms")
    return problems
