"""The figures of the fault-injection suite, computed from what the devices logged (pure functions).

Each counter is defined so that a fault it is meant to catch shows up as a non-zero count; the
unit tests feed each one a log with exactly such a fault (``tests/live/test_faultlab_metrics.py``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from hardware.failsafe.envelope import payload_problems
from hardware.failsafe.outbox import Published
from hardware.faultlab.devices import Delivery, StateChange
from hardware.wire.topics import TopicMap
from twin.config import HouseConfig, SafetyConfig
from twin.safety import RolloutMode

TOLERANCE_S = 1e-3


@dataclass(frozen=True, slots=True)
class Outage:
    """One injected broker fault: when it began and when the broker was back [time.time()]."""

    kind: str  # kill, freeze, restart
    fault_wall: float
    back_wall: float


def issued_wall(delivery: Delivery) -> float | None:
    """When the controller issued a delivered command (its ``ts`` on the true clock)."""
    return None if delivery.age_s is None else delivery.recv_wall - delivery.age_s


def replayed_after_outage(deliveries: Iterable[Delivery], outages: Sequence[Outage]) -> int:
    """Commands issued before a fault that reached a device after the broker was back (the replay hazard)."""
    count = 0
    for d in deliveries:
        issued = issued_wall(d)
        if issued is None:
            continue
        count += any(issued < o.fault_wall and d.recv_wall > o.back_wall for o in outages)
    return count


def stale_deliveries(deliveries: Iterable[Delivery], max_age_s: float) -> tuple[int, int]:
    """``(accepted, rejected)`` commands that arrived older than ``max_age_s`` (true age)."""
    accepted = rejected = 0
    for d in deliveries:
        if d.age_s is not None and d.age_s > max_age_s:
            if d.result == "accepted":
                accepted += 1
            else:
                rejected += 1
    return accepted, rejected


def duplicate_accepted(deliveries: Iterable[Delivery]) -> int:
    """Commands a device took more than once (the same ``seq``), or whose ``seq`` was not above the last."""
    last: dict[str, int] = {}
    duplicates = 0
    for d in sorted((d for d in deliveries if d.result == "accepted"), key=lambda d: d.recv_mono):
        if d.seq is None:
            continue
        if d.seq <= last.get(d.device, -1):
            duplicates += 1
        last[d.device] = max(d.seq, last.get(d.device, -1))
    return duplicates


def unsafe_payloads(messages: Iterable[tuple[str, bytes]], house: HouseConfig, topics: TopicMap,
                    mode: RolloutMode = RolloutMode.FULL) -> list[str]:
    """Every command on the wire that fails the envelope check (an empty payload clears a retained one)."""
    problems = []
    for topic, payload in messages:
        route = topics.route(topic)
        if route is None or route.key not in ("heating_set", "battery_set", "ev_set") or not payload:
            continue
        problems += [f"{topic}: {p}" for p in payload_problems(route.key, payload, house, mode)]
    return problems


def lost_while_connected(published: Iterable[Published], deliveries: Iterable[Delivery],
                         excluded: Sequence[tuple[float, float]] = ()) -> int:
    """Commands the controller published that no device received, outside the ``excluded`` wall windows.

    Exclude each fault's window from its injection (minus the time a command takes through
    the broker) to the controller's SAFE: what is published into a dying broker is lost by
    definition, and what reaches a frozen one arrives late (counted as stale instead).
    """
    received = {(d.device, d.seq) for d in deliveries}
    lost = 0
    for p in published:
        if any(a <= p.wall_s <= b for a, b in excluded):
            continue
        lost += (p.device, p.seq) not in received
    return lost


def switching_violations(changes: Iterable[StateChange], config: SafetyConfig) -> dict[str, int]:
    """Device changes a command made against the safety envelope (docs/failsafe.md F14).

    ``relay_min_time``: a relay a command switched sooner than its minimum on/off time after
    its previous change (whatever caused that one); ``relay_rate``: a command switched a relay
    that had already switched ``relay_max_switches_per_hour`` times within the hour;
    ``battery_mode``: a command moved the inverter to a *different* non-self-consumption mode
    within ``battery_min_mode_interval_s`` of the previous commanded change; ``ev_step``: a
    command raised the charging current within ``ev_min_change_interval_s`` of the previous
    commanded change. Re-asserting a device's commanded state after it fell back is not a change.
    """
    by_device: dict[str, list[StateChange]] = defaultdict(list)
    for change in changes:
        by_device[change.device].append(change)
    out = {"relay_min_time": 0, "relay_rate": 0, "battery_mode": 0, "ev_step": 0}
    for device, history in by_device.items():
        history.sort(key=lambda c: c.mono)
        if device.startswith("heating."):
            for i, change in enumerate(history):
                if change.cause != "command" or i == 0:
                    continue
                previous = history[i - 1]
                minimum = config.relay_min_on_s if previous.state == "on" else config.relay_min_off_s
                if change.mono - previous.mono < minimum - TOLERANCE_S:
                    out["relay_min_time"] += 1
                within_hour = [c for c in history[:i] if c.mono > change.mono - 3600.0]
                if len(within_hour) >= config.relay_max_switches_per_hour:
                    out["relay_rate"] += 1
            continue
        commanded = [c for c in history if c.cause == "command"]
        for previous, change in zip(commanded, commanded[1:], strict=False):
            gap = change.mono - previous.mono
            if device == "battery":
                if (change.state != previous.state and change.state != "self_consumption"
                        and gap < config.battery_min_mode_interval_s - TOLERANCE_S):
                    out["battery_mode"] += 1
            elif device == "ev" and _amps(change.state) > _amps(previous.state):
                if gap < config.ev_min_change_interval_s - TOLERANCE_S:
                    out["ev_step"] += 1
    return out


def _amps(state: str) -> float:
    return 0.0 if state == "off" else float(state.removesuffix(" A"))


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """p50, p95 and max of ``values`` (``None`` for an empty list)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return {"p50": None, "p95": None, "max": None, "n": 0}
    a = np.asarray(finite)
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)), "max": float(a.max()),
            "n": len(finite)}
