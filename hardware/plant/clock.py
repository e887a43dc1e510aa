"""The house clock: where wall time (Unix seconds) and house time meet, and how fast house time runs.

Against the real house the clock is the wall clock (``speed`` 1). Against the emulator both
sides use the clock the emulator announces, so a day can be played in minutes while both agree
on what time it is in the house. House time inside the live loop is "seconds since ``origin``"
(SimPy's ``env.now``); :meth:`HouseClock.timestamp` converts, in the house's time zone.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class HouseClock:
    """House time ``origin + (wall − wall_origin_s) × speed``."""

    origin: datetime  # tz-aware: the house's time zone
    wall_origin_s: float  # Unix time at which the house clock showed ``origin``
    speed: float = 1.0

    def __post_init__(self) -> None:
        if self.origin.tzinfo is None:
            raise ValueError(f"origin must be timezone-aware, got {self.origin!r}")
        if not (math.isfinite(self.speed) and self.speed > 0):
            raise ValueError(f"speed must be a positive number, got {self.speed!r}")

    @classmethod
    def wall(cls, origin: datetime) -> HouseClock:
        """The real-time clock, counting seconds from ``origin`` (a tz-aware instant)."""
        return cls(origin=origin, wall_origin_s=origin.timestamp(), speed=1.0)

    def now_s(self, wall_s: float | None = None) -> float:
        """House seconds since ``origin`` at Unix time ``wall_s`` (default: now)."""
        wall_s = time.time() if wall_s is None else wall_s
        return (wall_s - self.wall_origin_s) * self.speed

    def wall_s(self, house_s: float) -> float:
        """Unix time at which the house clock shows ``house_s``."""
        return self.wall_origin_s + house_s / self.speed

    def timestamp(self, house_s: float) -> datetime:
        """The house's wall time at ``house_s`` (tz of ``origin``, correct across DST)."""
        return datetime.fromtimestamp(self.origin.timestamp() + house_s, self.origin.tzinfo)

    def seconds(self, when: datetime) -> float:
        """House seconds of a tz-aware ``when``."""
        return when.timestamp() - self.origin.timestamp()

    def wall_duration_s(self, house_s: float) -> float:
        """How long ``house_s`` house seconds take on the wall clock."""
        return house_s / self.speed


class LockstepClock(HouseClock):
    """A co-simulation clock (``pems emulate --lockstep``): house time is what the emulator last announced.

    The emulator publishes its house time on ``emulator_time`` before the readings of that instant
    and waits at each decision instant for the controller's acknowledgement, so house time no longer
    follows the wall: :meth:`now_s` is the last announced time (set by :meth:`advance`, from the
    network thread). ``speed`` stays the nominal pace for what is still timed on the wall (leases'
    wall expiry, read-back windows); the conversions of house time to the calendar are unchanged.
    """

    __slots__ = ("_house_s",)
    _house_s: float

    def __init__(self, origin: datetime, wall_origin_s: float, speed: float = 1.0) -> None:
        super().__init__(origin, wall_origin_s, speed)
        object.__setattr__(self, "_house_s", 0.0)

    def advance(self, house_s: float) -> None:
        """The emulator says house time is ``house_s`` (never backwards)."""
        if house_s > self._house_s:
            object.__setattr__(self, "_house_s", house_s)

    def now_s(self, wall_s: float | None = None) -> float:
        """The emulator's last announced house time (``wall_s`` has no meaning in lockstep)."""
        return self._house_s
