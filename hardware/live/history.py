"""The live run's readings kept as the house's history (``scenarios.history.store`` layout).

An observer of the runner loop: ``on_decision(obs, command)`` after every decision, ``on_end()`` when
the run stops. Rows are buffered and written as one part per local day every ``flush_every`` rows,
so a decision never waits for more than appending a dict; a failing disk is logged, never raised
into the loop (the history is an output, and no output may stop the house being controlled).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import pandas as pd

from scenarios.history.store import write_partitions
from twin.contracts import Command, Observation

log = logging.getLogger(__name__)


def observation_row(obs: Observation, rooms: tuple[str, ...]) -> dict[str, float]:
    """The canonical history columns of one observation (stale inputs are recorded as NaN, not as values)."""
    grid = obs.grid_power_kw
    row = {
        "base_load_kw": obs.base_load_kw,
        "pv_power_kw": obs.pv_power_kw,
        "outdoor_temp_c": obs.outdoor_temp_c,
        "battery_soc": obs.battery_soc,
        "battery_power_kw": obs.battery_power_kw,
        "grid_power_kw": grid,
        "grid_import_kw": max(grid, 0.0) if math.isfinite(grid) else math.nan,
        "grid_export_kw": max(-grid, 0.0) if math.isfinite(grid) else math.nan,
        "import_price_per_kwh": obs.import_price_per_kwh,
        "export_price_per_kwh": obs.export_price_per_kwh,
    }
    for i, room in enumerate(rooms):
        row[f"room_temp_c.{room}"] = float(obs.room_temp_c[i])
        row[f"relay_on.{room}"] = float(bool(obs.relay_on[i]))
    for name in obs.stale:
        for column in [c for c in row if c == name or c.startswith(f"{name}.")]:
            row[column] = math.nan
    return {k: float(v) for k, v in row.items()}


class HistoryWriter:
    """Keeps every observation of a live run in ``directory`` (day partitions, local ``timezone``)."""

    def __init__(self, directory: Path, rooms: tuple[str, ...], timezone: str, flush_every: int = 12) -> None:
        self.directory = Path(directory)
        self.rooms = rooms
        self.timezone = timezone
        self.flush_every = flush_every
        self._rows: list[dict[str, float]] = []
        self._times: list[pd.Timestamp] = []
        self.written_rows = 0

    def on_decision(self, obs: Observation, command: Command | None = None, **_: Any) -> None:
        self._times.append(pd.Timestamp(obs.time))
        self._rows.append(observation_row(obs, self.rooms))
        if len(self._rows) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        frame = pd.DataFrame(self._rows, index=pd.DatetimeIndex(self._times))
        try:
            write_partitions(self.directory, frame, self.timezone)
        except OSError as exc:  # keep the rows for the next try; the loop goes on
            log.error("history: cannot write %d rows to %s (%s); will retry", len(frame), self.directory, exc)
            return
        self.written_rows += len(frame)
        self._rows, self._times = [], []

    def on_end(self) -> None:
        self.flush()
