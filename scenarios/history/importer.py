"""``pems history import``: the owner's InfluxDB history → the house's history folder (day partitions).

The window is cut into chunks of ``source.chunk_days``; each column is one aggregated query per
chunk (a year of 15-min data never sits in one answer). Values are converted to canonical units,
put on the grid, the ``[derived]`` expressions evaluated, and the folder written under a temporary
name and renamed at the end: an import that fails leaves no half-written history.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from scenarios.historical.units import to_canonical
from scenarios.history.expression import parse
from scenarios.history.import_config import ImportConfig, SeriesSpec
from scenarios.history.influx import InfluxError, connect
from scenarios.history.store import partition_days, write_partitions
from twin.errors import ScenarioError


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote: the folder, its rows and days, and the readings found per column."""

    out: Path
    rows: int
    days: int
    readings: dict[str, int]  # per column: grid steps with a value


def _canonical(values: np.ndarray, spec: SeriesSpec, step_s: float) -> np.ndarray:
    values = values * spec.scale
    if spec.unit == "%":
        return values / 100.0
    return to_canonical(values, spec.unit, step_s)


def chunks(start: pd.Timestamp, end: pd.Timestamp, days: float) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """[start, end) cut into queries of at most ``days`` (one query per chunk keeps memory bounded)."""
    edges = list(pd.date_range(start, end, freq=pd.Timedelta(days=days)))
    if edges[-1] < end:
        edges.append(end)
    return list(zip(edges[:-1], edges[1:], strict=True))


def import_history(config: ImportConfig, start: pd.Timestamp, end: pd.Timestamp, out: Path,
                   progress: Callable[[float, float], None] | None = None) -> ImportResult:
    """Import ``[start, end)`` into ``out`` (which must not hold history yet)."""
    if end <= start:
        raise ScenarioError(f"--to {end} must be after --from {start}")
    out = Path(out)
    if partition_days(out):
        raise ScenarioError(f"{out}: already holds history partitions; import into a new folder")
    step = pd.Timedelta(minutes=config.step_minutes)
    step_s = step.total_seconds()
    client = connect(config.source)
    tmp = out.with_name(f".{out.name}.importing")
    shutil.rmtree(tmp, ignore_errors=True)
    readings = {c.name: 0 for c in config.columns}
    rows = 0
    try:
        client.check(config.columns)
        parts = chunks(start, end, config.source.chunk_days)
        total = len(parts) * len(config.columns)
        done = 0
        for lo, hi in parts:
            grid = pd.date_range(lo.tz_convert("UTC").ceil(step), hi.tz_convert("UTC"), freq=step, inclusive="left")
            frame = pd.DataFrame(index=grid)
            for spec in config.columns:
                raw = client.series(spec, lo, hi, config.step_minutes)
                raw = raw[~raw.index.duplicated(keep="last")].reindex(grid)
                frame[spec.name] = _canonical(raw.to_numpy(dtype=float), spec, step_s)
                readings[spec.name] += int(np.isfinite(frame[spec.name]).sum())
                done += 1
                if progress is not None:
                    progress(done, total)
            for name, text in config.derived.items():
                frame[name] = parse(text).evaluate({c: frame[c].to_numpy() for c in frame.columns})
            frame = frame.dropna(how="all")
            frame.index = pd.DatetimeIndex(frame.index).tz_convert(config.timezone)
            rows += len(frame)
            write_partitions(tmp, frame, config.timezone)
        empty = [c for c in config.columns if readings[c.name] == 0]
        if empty:
            spec = empty[0]
            raise InfluxError(f"columns.{spec.name}: no data for measurement {spec.measurement!r} field "
                              f"{spec.field!r}" + (f" tags {dict(spec.tags)}" if spec.tags else "")
                              + f" between {start} and {end}; check the names and tags")
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            out.rmdir()  # an empty folder (partition_days found nothing in it); a non-empty one raises OSError
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        close = getattr(client, "close", None)
        if close is not None:
            close()
    return ImportResult(out, rows, len(partition_days(out)), readings)
