"""The house's history on disk: ``<dir>/date=YYYY-MM-DD/part-<n>.parquet``, one folder per local day.

Each row is one reading (the live run writes one per decision), with a tz-aware UTC ``time`` column
and canonical columns (``base_load_kw``, ``pv_power_kw``, ``outdoor_temp_c``, ``battery_soc``,
``grid_import_kw``, ``grid_export_kw``, ``battery_power_kw``, ``room_temp_c.<room>``,
``relay_on.<room>`` …). Parts are written whole (to a temporary name, then renamed), so a reader
never sees half a file and a crash loses at most the rows not yet flushed. The folder is a
Hive-partitioned Parquet dataset: ``pandas.read_parquet(dir)`` reads it, and so does the historical
reader through the built-in mapping ``scenarios/historical/mappings/pems_history.toml``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from twin.errors import ScenarioError

TIME_COLUMN = "time"
PARTITION = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


def _next_part(folder: Path) -> Path:
    numbers = [int(p.stem.split("-")[1]) for p in folder.glob("part-*.parquet") if p.stem.split("-")[1].isdigit()]
    return folder / f"part-{max(numbers, default=-1) + 1:05d}.parquet"


def write_partitions(directory: Path, frame: pd.DataFrame, timezone: str) -> list[Path]:
    """Append ``frame`` (tz-aware index = reading times) to the day partitions of ``directory``.

    Rows are split by their local date in ``timezone`` (the house's); each day gets one new part file.
    Returns the files written.
    """
    if not isinstance(frame.index, pd.DatetimeIndex) or frame.index.tz is None:
        raise ScenarioError("history rows need a tz-aware DatetimeIndex")
    if frame.empty:
        return []
    directory = Path(directory)
    utc = frame.index.tz_convert("UTC")
    days = frame.index.tz_convert(timezone).strftime("%Y-%m-%d")
    table = frame.reset_index(drop=True).astype(float)
    table.insert(0, TIME_COLUMN, utc.as_unit("ns"))
    written = []
    for day in sorted(set(days)):
        folder = directory / f"date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        path = _next_part(folder)
        tmp = path.with_name(f".{path.name}.tmp")
        table[np.asarray(days == day)].to_parquet(tmp, index=False)
        os.replace(tmp, path)
        written.append(path)
    return written


def partition_days(directory: Path) -> list[str]:
    """The local dates (YYYY-MM-DD) that have a partition, in order."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(m.group(1) for p in directory.iterdir() if (m := PARTITION.match(p.name)))


def read_history(directory: Path, timezone: str, *, start: pd.Timestamp | None = None,
                 end: pd.Timestamp | None = None, step_minutes: float | None = None) -> pd.DataFrame:
    """The history in ``directory`` as a frame on a tz-aware index (``timezone``), sorted.

    Only partitions whose local date can hold rows in ``[start, end)`` are read. With
    ``step_minutes`` the readings are averaged onto that grid (interval-start labels) and empty
    intervals stay NaN.
    """
    directory = Path(directory)
    days = partition_days(directory)
    if not days:
        raise ScenarioError(f"{directory}: no history partitions (date=YYYY-MM-DD folders)")
    lo = (start.tz_convert(timezone) - pd.Timedelta(days=1)).strftime("%Y-%m-%d") if start is not None else None
    hi = (end.tz_convert(timezone) + pd.Timedelta(days=1)).strftime("%Y-%m-%d") if end is not None else None
    parts = []
    for day in days:
        if (lo and day < lo) or (hi and day > hi):
            continue
        for file in sorted((directory / f"date={day}").glob("part-*.parquet")):
            try:
                parts.append(pd.read_parquet(file))
            except (OSError, ValueError) as exc:
                raise ScenarioError(f"{file}: not a readable history part ({exc})") from None
    if not parts:
        return pd.DataFrame(index=pd.DatetimeIndex([], tz=timezone, name=TIME_COLUMN))
    table = pd.concat(parts, ignore_index=True)
    if TIME_COLUMN not in table:
        raise ScenarioError(f"{directory}: history parts have no {TIME_COLUMN!r} column")
    index = pd.DatetimeIndex(pd.to_datetime(table.pop(TIME_COLUMN), utc=True)).tz_convert(timezone)
    frame = table.set_axis(index).sort_index()
    frame.index.name = TIME_COLUMN
    frame = frame[~frame.index.duplicated(keep="last")]
    if start is not None:
        frame = frame[frame.index >= start]
    if end is not None:
        frame = frame[frame.index < end]
    if step_minutes is not None and not frame.empty:
        frame = frame.resample(pd.Timedelta(minutes=step_minutes), label="left", closed="left").mean()
    return frame


def summarise(frame: pd.DataFrame) -> Mapping[str, dict[str, float]]:
    """Per column: count of readings and their sum (what a round trip compares)."""
    return {c: {"count": int(frame[c].notna().sum()), "sum": float(frame[c].sum())} for c in frame.columns}
