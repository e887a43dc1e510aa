"""The latest valid reading of every input, how old it is, and what was dropped on the way in.

Messages arrive on paho's network thread; the control loop reads on its own. Each accepted
reading keeps its monotonic receive time and, when the device stamps it, its device time.
Its age is the larger of the two views (house seconds), so a reading is fresh only if it was
both received and taken recently. A retained message without a device time has an unknown age
(it may be hours old): it never counts as fresh. Rejected messages — malformed, out of range,
stamped in the future, stamped implausibly far from their receipt (``max_implausible_s``: not
fed to the clock-skew estimate either), older than the reading they would replace — are dropped and counted per
topic and reason, and logged (the first few per topic, then every hundredth).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from hardware.plant.clock import HouseClock, LockstepClock
from hardware.wire.schemas import PayloadError, Status, parse_payload

log = logging.getLogger(__name__)

#: Drops logged in full per topic before logging only every hundredth.
LOG_FIRST_DROPS = 5


@dataclass(frozen=True, slots=True)
class Reading:
    payload: Status
    received_mono: float
    retained: bool
    device_s: float | None  # the device's ``ts`` in house seconds, if it stamps its readings


class DropCounter:
    """Counts dropped messages per ``(topic, reason)`` and logs them without flooding."""

    def __init__(self, logger: logging.Logger = log) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self._per_topic: Counter[str] = Counter()
        self._log = logger
        self._lock = threading.Lock()

    def drop(self, topic: str, reason: str, detail: str = "") -> None:
        with self._lock:
            self.counts[(topic, reason)] += 1
            self._per_topic[topic] += 1
            n = self._per_topic[topic]
        if n <= LOG_FIRST_DROPS or n % 100 == 0:
            self._log.warning("dropped message on %s (%s, %d so far on this topic): %s", topic, reason, n,
                              detail[:200])

    def total(self, topic: str | None = None) -> int:
        with self._lock:
            if topic is None:
                return sum(self.counts.values())
            return self._per_topic[topic]

    def by_reason(self) -> dict[str, int]:
        with self._lock:
            out: Counter[str] = Counter()
            for (_, reason), n in self.counts.items():
                out[reason] += n
            return dict(out)


#: ``listener(key, reading)`` is called (under the store's lock, in arrival order) for each accepted reading.
Listener = Callable[[Hashable, Reading], None]
#: ``on_stamp(key, offset_s, retained)``: a valid reading's device time minus ours at receipt [house s],
#: before it is judged (a reading "from the future" is dropped, but its stamp still tells the clock skew).
StampHook = Callable[[Hashable, float, bool], None]


class ReadingStore:
    """Thread-safe latest reading per key, with ages in house seconds."""

    def __init__(self, clock: HouseClock, max_clock_skew_s: float, drops: DropCounter | None = None,
                 max_implausible_s: float = math.inf) -> None:
        self.clock = clock
        self.max_clock_skew_s = max_clock_skew_s
        self.max_implausible_s = max_implausible_s
        self.drops = drops or DropCounter()
        self._latest: dict[Hashable, Reading] = {}
        self._changed = threading.Condition()
        self._listeners: list[Listener] = []
        self.on_stamp: StampHook | None = None
        self.accepted = 0

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def offer(self, key: Hashable, schema: type[Status], topic: str, payload: bytes, retained: bool) -> bool:
        """Validate and store a message; ``False`` (and counted) when it is dropped."""
        received = time.monotonic()
        try:
            reading = parse_payload(schema, payload)
        except PayloadError as exc:
            self.drops.drop(topic, exc.reason, str(exc))
            return False
        device_s = self.clock.seconds(reading.ts) if reading.ts is not None else None
        if device_s is not None:
            offset_s = device_s - self.clock.now_s()
            # A stamp this far from the receipt is no clock skew but a broken or hostile message: it tells
            # nothing about the device's clock (retained readings may be old, never from the far future).
            if offset_s > self.max_implausible_s or (not retained and offset_s < -self.max_implausible_s):
                self.drops.drop(topic, "implausible_timestamp", f"stamped {reading.ts.isoformat()}, "
                                f"{offset_s:+.0f} s from its receipt")
                return False
            if self.on_stamp is not None:
                self.on_stamp(key, offset_s, retained)
        if device_s is not None and device_s > self.clock.now_s() + self.max_clock_skew_s:
            self.drops.drop(topic, "from_future", f"stamped {reading.ts.isoformat()}")
            return False
        with self._changed:
            previous = self._latest.get(key)
            if (device_s is not None and previous is not None and previous.device_s is not None
                    and device_s < previous.device_s):
                self.drops.drop(topic, "out_of_order", f"stamped {reading.ts.isoformat()}, older than the last")
                return False
            accepted = Reading(reading, received, retained, device_s)
            self._latest[key] = accepted
            self.accepted += 1
            for listener in self._listeners:
                listener(key, accepted)
            self._changed.notify_all()
        return True

    def get(self, key: Hashable) -> Reading | None:
        with self._changed:
            return self._latest.get(key)

    def age_s(self, reading: Reading, now_mono: float | None = None) -> float:
        """How old ``reading`` is [house s]; ``inf`` for a retained reading without a device time."""
        now_mono = time.monotonic() if now_mono is None else now_mono
        age = (now_mono - reading.received_mono) * self.clock.speed
        if reading.device_s is not None:
            if isinstance(self.clock, LockstepClock):  # house time does not follow the wall: only the stamp counts
                return self.clock.now_s() - reading.device_s
            return max(age, self.clock.now_s() - reading.device_s)
        return math.inf if reading.retained else age

    def fresh(self, key: Hashable, max_age_s: float) -> Status | None:
        """The latest payload of ``key`` if it is at most ``max_age_s`` old, else ``None``."""
        reading = self.get(key)
        if reading is None or self.age_s(reading) > max_age_s:
            return None
        return reading.payload

    def wait_until(self, done: Callable[[], bool], timeout_s: float) -> bool:
        """Block until ``done()`` (checked at every new reading) or ``timeout_s`` wall seconds."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not done():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
        return True

    def keys(self) -> list[Hashable]:
        with self._changed:
            return list(self._latest)
