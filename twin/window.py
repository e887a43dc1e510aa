"""A run window of a named scenario: ``--start`` / ``--days`` of ``pems simulate`` (and ``pems bench``)."""

from __future__ import annotations

import pandas as pd

from twin.errors import ScenarioError
from twin.registry import load_scenario
from twin.scenario import Scenario


def window_and_history(name: str, start: str | None = None, days: float | None = None
                    ) -> tuple[Scenario, pd.DataFrame | None]:
    """Scenario ``name`` cut to [start, start + days) and its data before ``start`` (None if none).

    ``start`` is local time of the scenario (a date or a time); whole ``days`` are local calendar
    days, so a window across a DST change still ends at midnight.
    """
    full = load_scenario(name)
    if start is None and days is None:
        return full, None
    if days is not None and not 0.0 < days <= 3660.0:
        raise ScenarioError(f"--days = {days} is outside (0, 3660]")
    try:
        begin = full.start if start is None else pd.Timestamp(start)
    except ValueError:
        raise ScenarioError(f"--start = {start!r} is not a date or time") from None
    begin = begin.tz_localize(full.tz) if begin.tzinfo is None else begin.tz_convert(full.tz)
    end = full.end if days is None else begin + pd.DateOffset(days=int(days)) + pd.Timedelta(days=days % 1)
    if not full.start <= begin < full.end:
        raise ScenarioError(f"{full.name}: --start {begin} is outside the scenario [{full.start}, {full.end})")
    if end > full.end:
        raise ScenarioError(f"{full.name}: the window ends at {end}, after the scenario's end {full.end}")
    window = full.window(begin, end)
    history = full.data[full.index < window.start]
    return window, (history if not history.empty else None)
