"""Device adapters: each turns its part of a ``Command`` into device payloads, and device readings
into its part of an ``Observation``.

``loxone`` (heating relays, room and outdoor temperatures), ``growatt`` (battery inverter, PV
and grid meters), ``ev_charger`` (wallbox and car). Every command is a lease (:class:`LeaseTerms`)
with a fresh sequence number (:class:`SequenceCounter`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime

from twin.contracts import Command


@dataclass(frozen=True, slots=True)
class LeaseTerms:
    """The lease every message of one command carries.

    ``until`` is absolute (house clock), ``ttl_s`` relative [house s]; ``expiry_s`` is the MQTT
    message expiry [wall s], so that a command the broker could not deliver in time is dropped
    by the broker rather than delivered late.
    """

    issued: datetime
    until: datetime
    ttl_s: float
    expiry_s: float

    @classmethod
    def of(cls, command: Command, now: datetime, speed: float = 1.0) -> LeaseTerms:
        ttl_s = command.until.timestamp() - now.timestamp()
        if not (math.isfinite(ttl_s) and ttl_s > 0):
            raise ValueError(f"command lease ends at {command.until}, not after {now}")
        return cls(issued=now, until=command.until, ttl_s=ttl_s, expiry_s=ttl_s / speed)


class SequenceCounter:
    """Strictly increasing sequence numbers that stay increasing across restarts.

    Seeded from the wall clock in microseconds, so a restarted controller does not reuse the
    numbers its predecessor sent (devices ignore ``seq`` ≤ the last one they accepted).
    """

    def __init__(self, start: int | None = None) -> None:
        self._last = (time.time_ns() // 1000) if start is None else start

    def next(self) -> int:
        self._last = max(self._last + 1, time.time_ns() // 1000)
        return self._last
