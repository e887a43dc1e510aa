"""Clock skew between the controller and each device, measured from their timestamped status (docs/failsafe.md F8).

A status stamped ``ts`` by the device and received at controller time ``t`` gives ``ts − t``,
the device clock's offset from ours plus (minus) the message's travel time. The **median** of
``ts − t`` over the last :data:`WINDOW` live (non-retained) readings estimates the offset
[house s] — not the maximum, so that one reading with a wild stamp (a bridge's bug, a replayed
message, an attacker's year 9999) moves nothing once the device has reported once (the lower
median of an even count is the middle reading nearer our clock, never the mean of the two).
Stamps beyond ``max_implausible_s`` never get here: the reading store drops them at the boundary
and counts them as ``implausible_timestamp``. Beyond ``limit_s`` the device's clock is not trusted: an
alert is raised, and the controller stops commanding that device (its readings then look
stale or "from the future" anyway, so it is left to its own rules) until the skew is back
within the limit. Commands never depend on the device's clock for their length: a lease is
``ttl_s`` from receipt, and the controller's own timers are monotonic.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterable

from hardware.failsafe.events import EventKind, EventLog

#: Live readings per device whose offsets the estimate is the median of.
WINDOW = 9


def robust_offset(samples: Iterable[float]) -> float:
    """The median; of an even count, the middle value nearer zero (one wild reading never moves it)."""
    ordered = sorted(samples)
    n = len(ordered)
    if n % 2:
        return ordered[n // 2]
    return min(ordered[n // 2 - 1], ordered[n // 2], key=abs)


class SkewMonitor:
    """Per device: recent ``ts − t`` samples, the estimate, and whether it is over the limit."""

    def __init__(self, limit_s: float, events: EventLog) -> None:
        self.limit_s = limit_s
        self.events = events
        self._lock = threading.Lock()
        self._samples: dict[str, deque[float]] = {}
        self._over: set[str] = set()

    def sample(self, device: str, offset_s: float) -> None:
        """One live reading of ``device``: its stamp minus our clock at receipt [house s]."""
        if not math.isfinite(offset_s):
            return
        with self._lock:
            samples = self._samples.setdefault(device, deque(maxlen=WINDOW))
            samples.append(offset_s)
            estimate = robust_offset(samples)
            over = abs(estimate) > self.limit_s
            changed = over != (device in self._over)
            if changed:
                (self._over.add if over else self._over.discard)(device)
        if changed:
            if over:
                self.events.record(EventKind.CLOCK_SKEW, f"clock is {estimate:+.1f} s off ours (limit "
                                   f"±{self.limit_s:g} s): not commanding it until that is fixed", device, alert=True)
            else:
                self.events.record(EventKind.CLOCK_SKEW, f"clock back within ±{self.limit_s:g} s "
                                   f"({estimate:+.1f} s)", device)

    def skew_s(self, device: str) -> float:
        """The estimated offset of ``device``'s clock from ours [house s] (NaN before any reading)."""
        with self._lock:
            samples = self._samples.get(device)
            return robust_offset(samples) if samples else math.nan

    def untrusted(self, device: str) -> bool:
        with self._lock:
            return device in self._over

    def estimates(self) -> dict[str, float]:
        with self._lock:
            return {d: robust_offset(s) for d, s in self._samples.items() if s}
