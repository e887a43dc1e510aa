"""What the emulator plays and when: the scenario's window, and the house times at which it publishes readings."""

from __future__ import annotations

import numpy as np
import pandas as pd

from twin.errors import ConfigError
from twin.scenario import Scenario

#: Seconds before a departure at which the car's last state is published: what it still needs then is
#: booked as unmet. Short enough that a car charging at 11 kW gains < 1e-6 kWh meanwhile (1 ms was 3e-6 kWh,
#: visible in the MPC's parity KPIs); long enough for the payload's microsecond timestamp to tell the two
#: readings apart, and above the live runner's ``SAMPLE_TOLERANCE_S`` so that it is not taken for the
#: reading at the departure instant.
PRE_DEPARTURE_S = 1e-4


def scenario_window(scenario: Scenario, start: str | None = None, hours: float | None = None) -> Scenario:
    """The part of ``scenario`` from ``start`` (ISO 8601; local to the scenario without an offset) for ``hours``."""
    if start is None and hours is None:
        return scenario
    try:
        begin = pd.Timestamp(start) if start is not None else scenario.start
    except ValueError:
        raise ConfigError(f"--start {start!r} is not an ISO 8601 time") from None
    begin = begin.tz_localize(scenario.tz) if begin.tzinfo is None else begin.tz_convert(scenario.tz)
    if not scenario.start <= begin < scenario.end:
        raise ConfigError(f"--start {begin} is outside the scenario [{scenario.start}, {scenario.end})")
    if hours is not None and not 0 < hours <= 24 * 3660:
        raise ConfigError(f"--hours {hours} must be positive")
    if hours is not None:
        # A window holds its data points in [begin, end): two of them need more than one step.
        minimum_h = scenario.step_s / 3600.0
        if hours <= minimum_h:
            raise ConfigError(f"--hours {hours:g} is too short: the scenario's data points are "
                              f"{scenario.step_s / 60:g} min apart and the emulator needs at least two "
                              f"(give more than --hours {minimum_h:g})")
    end = begin + pd.Timedelta(hours=hours) if hours is not None else scenario.end
    return scenario.window(begin, min(end, scenario.end))


def sample_times(scenario: Scenario, period_s: float, end_s: float | None = None) -> list[float]:
    """House seconds at which the emulator publishes every reading (until ``end_s``, default the scenario's end)."""
    end = scenario.duration_s if end_s is None else min(end_s, scenario.duration_s)
    steps = np.arange(len(scenario.index)) * scenario.step_s  # inputs change at each data point
    times = set(np.arange(0.0, end, period_s).tolist()) | set(steps[steps <= end].tolist()) | {end}
    start = scenario.start.timestamp()
    for s in scenario.ev_sessions:
        for t in (s.arrival.timestamp() - start, s.departure.timestamp() - start - PRE_DEPARTURE_S,
                  s.departure.timestamp() - start):
            if 0.0 <= t <= end:
                times.add(t)
    return sorted(times)
