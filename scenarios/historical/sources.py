"""Reading one recorded source file (CSV/Parquet, or an OTE day-ahead file) onto its own grid.

Parses the time axis (naive or aware, interval start or end, DST ambiguities), checks it,
and converts the mapped columns to canonical units. Every problem is a
:class:`twin.errors.ScenarioError` naming the file, the column and the row (the file's line
number for CSV, counting the header as line 1; the 0-based row for Parquet).
``scenarios.historical.reader`` resamples the sources onto the output grid.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pvlib

from scenarios.calendar import MINUTE_NS
from scenarios.historical.mapping import format_of
from scenarios.historical.mapping_spec import ColumnSpec, SourceSpec
from scenarios.historical.quality import SourceQuality
from scenarios.historical.units import is_meter, to_canonical
from scenarios.prices import read_ote_dayahead
from twin.config import Location
from twin.errors import ScenarioError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceSeries:
    """One source on its own regular UTC grid: canonical values, NaN where missing."""

    spec: SourceSpec
    path: Path
    start_ns: int
    interval_ns: int
    values: dict[str, np.ndarray]
    zero_filled: dict[str, np.ndarray]  # bool per source interval
    lines: np.ndarray  # file line (CSV) or row (Parquet) of each grid position; -1 for missing rows
    quality: SourceQuality

    def row_ref(self, t_ns: int) -> str:
        """Where in the file the data around ``t_ns`` is: the last row at or before it."""
        k = int((t_ns - self.start_ns) // self.interval_ns)
        word = "line" if self.spec.format == "csv" else "row"
        if 0 <= k < len(self.lines) and self.lines[k] >= 0:
            return f"{word} {int(self.lines[k])}"
        k = min(max(k, 0), len(self.lines) - 1)
        known = np.flatnonzero(self.lines[: k + 1] >= 0)
        if known.size == 0:
            return "before its first row"
        return f"after {word} {int(self.lines[known[-1]])}"


def _fail(path: Path, message: str) -> ScenarioError:
    return ScenarioError(f"{path}: {message}")


def _line(spec: SourceSpec, i: int) -> str:
    return f"line {i + 2}" if spec.format == "csv" else f"row {i}"


def _read_table(spec: SourceSpec, path: Path) -> pd.DataFrame:
    wanted = [c.column for c in spec.columns] + ([spec.time_column] if spec.time_column else [])
    if not path.is_file() and not (spec.format == "parquet" and path.is_dir()):
        raise _fail(path, "data file not found")
    try:
        if spec.format == "parquet":
            import pyarrow.dataset as ds

            # a folder is a Hive-partitioned dataset (the house's history: date=YYYY-MM-DD/part-*.parquet)
            present = ds.dataset(path, format="parquet", partitioning="hive").schema.names
            missing = [c for c in dict.fromkeys(wanted) if c not in present]
            if missing:
                raise _fail(path, f"column {missing[0]!r} not found; the file has {present}")
            return pd.read_parquet(path, columns=list(dict.fromkeys(wanted)))
        header = pd.read_csv(path, nrows=0).columns.tolist()
        missing = [c for c in dict.fromkeys(wanted) if c not in header]
        if missing:
            raise _fail(path, f"column {missing[0]!r} not found; the file has {header}")
        return pd.read_csv(path, usecols=list(dict.fromkeys(wanted)), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise _fail(path, f"not a readable {spec.format} file ({exc})") from None
    except ValueError as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise _fail(path, f"not a readable {spec.format} file ({exc})") from None


def _naive_to_utc(naive: pd.DatetimeIndex, spec: SourceSpec, path: Path, column: str) -> tuple[np.ndarray, np.ndarray]:
    """UTC ns of naive local times in ``spec.timezone``, and a keep-mask (non-existent times dropped)."""
    if spec.ambiguous == "error":
        ambiguous: str | np.ndarray = "raise"
    elif spec.ambiguous == "infer":
        ambiguous = "infer"
    else:
        ambiguous = np.full(len(naive), spec.ambiguous == "first")
    nonexistent = "raise" if spec.nonexistent == "error" else "NaT"
    try:
        local = naive.tz_localize(spec.timezone, ambiguous=ambiguous, nonexistent=nonexistent)
    except (ValueError, TypeError):  # pandas' AmbiguousTimeError and NonExistentTimeError are ValueErrors
        bad = _first_problem_time(naive, spec.timezone)
        if bad is None:
            raise _fail(path, f"column {column!r}: cannot place the local times in {spec.timezone}") from None
        i, kind = bad
        fix = "nonexistent = \"drop\"" if kind.startswith("non") else "ambiguous = \"infer\", \"first\" or \"second\""
        raise _fail(path, f"column {column!r} {_line(spec, i)}: local time {naive[i]} is {kind} in "
                          f"{spec.timezone}; say how to read it in the mapping ({fix})") from None
    keep = ~local.isna()
    return local.as_unit("ns").asi8, np.asarray(keep)


def _first_problem_time(naive: pd.DatetimeIndex, zone: str) -> tuple[int, str] | None:
    earliest = pd.DatetimeIndex(naive.tz_localize(zone, ambiguous="NaT", nonexistent="NaT"))
    bad = np.flatnonzero(earliest.isna())
    if not bad.size:
        return None
    i = int(bad[0])
    shifted = pd.DatetimeIndex([naive[i]]).tz_localize(zone, ambiguous=[True], nonexistent="NaT")
    return i, "non-existent (skipped by a DST change)" if shifted.isna()[0] else "ambiguous (repeated by a DST change)"


def _time_axis(spec: SourceSpec, table: pd.DataFrame, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """UTC ns of every row's timestamp (as labelled) and a keep-mask."""
    n = len(table)
    if not spec.time_column:
        start = pd.Timestamp(spec.start)
        step = pd.Timedelta(minutes=spec.interval_minutes)
        if start.tzinfo is not None:
            return pd.date_range(start, periods=n, freq=step).tz_convert("UTC").as_unit("ns").asi8, np.ones(n, bool)
        naive = pd.date_range(start, periods=n, freq=step)
        return _naive_to_utc(naive, spec, path, "<row number>")
    raw = table[spec.time_column]
    text = raw.astype(str).str.strip()
    fmt = spec.time_format or "ISO8601"
    try:
        parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc=False)
    except (ValueError, TypeError):  # mixed offsets: parse in UTC
        parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc=True)
    bad = np.asarray(parsed.isna())
    if bad.any():
        i = int(np.argmax(bad))
        raise _fail(path, f"column {spec.time_column!r} {_line(spec, i)}: {raw.iloc[i]!r} is not a timestamp"
                          + (f" in format {spec.time_format!r}" if spec.time_format else ""))
    index = pd.DatetimeIndex(parsed)
    if index.tz is not None:
        return index.tz_convert("UTC").as_unit("ns").asi8, np.ones(n, bool)
    return _naive_to_utc(index, spec, path, spec.time_column)


def _interval_ns(spec: SourceSpec, t_ns: np.ndarray, path: Path) -> int:
    if spec.interval_minutes is not None:
        return int(round(spec.interval_minutes * MINUTE_NS))
    diffs = np.diff(t_ns)
    if diffs.size == 0:
        raise _fail(path, "needs at least 2 rows to infer its interval (or give interval_minutes)")
    values, counts = np.unique(diffs, return_counts=True)
    return int(values[np.argmax(counts)])


def _check_times(spec: SourceSpec, t_ns: np.ndarray, rows: np.ndarray, interval: int, path: Path) -> None:
    column = spec.time_column or "<row number>"
    diffs = np.diff(t_ns)
    if (diffs == 0).any():
        k = int(np.argmax(diffs == 0)) + 1
        raise _fail(path, f"column {column!r} {_line(spec, int(rows[k]))}: duplicated timestamp "
                          f"{pd.Timestamp(t_ns[k], tz='UTC')} (also at {_line(spec, int(rows[k - 1]))})")
    if (diffs < 0).any():
        k = int(np.argmax(diffs < 0)) + 1
        raise _fail(path, f"column {column!r} {_line(spec, int(rows[k]))}: timestamp {pd.Timestamp(t_ns[k], tz='UTC')} "
                          f"is earlier than the row before it (timestamps must increase)")
    off_grid = (t_ns - t_ns[0]) % interval != 0
    if off_grid.any():
        k = int(np.argmax(off_grid))
        raise _fail(path, f"column {column!r} {_line(spec, int(rows[k]))}: timestamp {pd.Timestamp(t_ns[k], tz='UTC')} "
                          f"is off the file's {interval / MINUTE_NS:g}-minute grid")


def _numeric(spec: SourceSpec, column: ColumnSpec, raw: pd.Series, path: Path) -> np.ndarray:
    if raw.dtype == object or pd.api.types.is_string_dtype(raw.dtype):
        text = raw.astype(str).str.strip()
        empty = text.isin(["", "nan", "NaN", "NA", "null", "None"]).to_numpy()
        values = pd.to_numeric(text.where(~empty, None), errors="coerce").to_numpy(dtype=float)
        bad = np.isnan(values) & ~empty
    else:
        values = raw.to_numpy(dtype=float)
        bad = np.zeros(len(values), bool)
    bad |= np.isinf(values)
    if bad.any():
        i = int(np.argmax(bad))
        raise _fail(path, f"column {column.column!r} {_line(spec, i)}: {raw.iloc[i]!r} is not a number")
    return values


def read_source(spec: SourceSpec, path: Path, location: Location | None, dark_elevation_deg: float) -> SourceSeries:
    """One source file as a :class:`SourceSeries` (canonical units, its own grid); problems name file, column, line."""
    if not spec.format:
        fmt = format_of(path)
        if not fmt:
            raise _fail(path, f"cannot tell the format from the extension {path.suffix!r}: use .csv or .parquet, "
                              f"or set format in the mapping")
        spec = replace(spec, format=fmt)
    if spec.format == "ote-dayahead":
        return read_ote(spec, path)
    table = _read_table(spec, path)
    if len(table) < 2:
        raise _fail(path, f"has {len(table)} data row(s); at least 2 are needed")
    t_ns, keep = _time_axis(spec, table, path)
    rows = np.flatnonzero(keep)
    dropped = tuple(str(v) for v in (table[spec.time_column] if spec.time_column else pd.Series(
        np.arange(len(table)))).to_numpy()[~keep])
    t_ns = t_ns[keep]
    interval = _interval_ns(spec, t_ns, path)
    _check_times(spec, t_ns, rows, interval, path)
    if spec.label == "end":
        t_ns = t_ns - interval
    n_grid = int((t_ns[-1] - t_ns[0]) // interval) + 1
    position = (t_ns - t_ns[0]) // interval
    lines = np.full(n_grid, -1, dtype=np.int64)
    lines[position] = rows + (2 if spec.format == "csv" else 0)
    interval_s = interval / 1e9
    values: dict[str, np.ndarray] = {}
    zeroed: dict[str, np.ndarray] = {}
    sun_down = None
    for column in spec.columns:
        raw = _numeric(spec, column, table[column.column].iloc[rows].reset_index(drop=True), path)
        series = np.full(n_grid, np.nan)
        series[position] = raw * column.scale + column.offset
        if is_meter(column.unit):
            energy = np.diff(series, append=np.nan)  # interval k: reading k+1 - reading k
            backwards = energy < 0
            if backwards.any():
                k = int(np.argmax(backwards))
                word = "line" if spec.format == "csv" else "row"
                raise _fail(path, f"column {column.column!r} {word} {int(lines[k + 1])}: meter reading decreases "
                                  f"({series[k]:g} -> {series[k + 1]:g}): a meter reset or a wrong unit "
                                  f"({column.unit})")
            series = energy
        series = to_canonical(series, column.unit, interval_s)
        if column.clip_min is not None or column.clip_max is not None:
            series = np.clip(series, column.clip_min, column.clip_max)
        zero = np.zeros(n_grid, bool)
        if column.missing == "zero":
            zero = np.isnan(series)
        elif column.missing == "zero_when_dark":
            if sun_down is None:
                mid = pd.DatetimeIndex(t_ns[0] + np.arange(n_grid) * interval + interval // 2, tz="UTC")
                elevation = pvlib.solarposition.get_solarposition(
                    mid, location.latitude_deg, location.longitude_deg, altitude=location.altitude_m)[
                    "apparent_elevation"].to_numpy()
                sun_down = elevation < dark_elevation_deg
            zero = np.isnan(series) & sun_down
        series[zero] = 0.0
        values[column.name] = series
        zeroed[column.name] = zero
    quality = SourceQuality(
        file=str(path), rows=len(table), first=str(pd.Timestamp(t_ns[0], tz="UTC")),
        last=str(pd.Timestamp(t_ns[-1], tz="UTC")), interval_minutes=interval / MINUTE_NS,
        dropped_rows=dropped, missing_rows=int(n_grid - len(t_ns)))
    return SourceSeries(spec, path, int(t_ns[0]), interval, values, zeroed, lines, quality)


def read_ote(spec: SourceSpec, path: Path) -> SourceSeries:
    """An OTE day-ahead price file as a :class:`SourceSeries` of ``spot_price_per_kwh``."""
    prices, meta = read_ote_dayahead(path)
    t_ns = prices.index.as_unit("ns").asi8
    n = len(t_ns)
    quality = SourceQuality(file=str(path), rows=int(meta["rows"]), first=str(prices.index[0]),
                            last=str(prices.index[-1]), interval_minutes=float(meta["interval_minutes"]),
                            dropped_rows=tuple(str(t) for t in meta["filled"]))
    if meta["empty"]:  # empty price cells: gaps for the gap policy, reported here and in the data-quality summary
        log.warning("%s: %d row(s) with an empty price, filled per the gap policy: first at %s", path,
                    len(meta["empty"]), meta["empty"][0])
    step_ns = int(meta["interval_minutes"]) * MINUTE_NS
    return SourceSeries(spec, path, int(t_ns[0]), step_ns, {"spot_price_per_kwh": prices.to_numpy()},
                         {"spot_price_per_kwh": np.zeros(n, bool)}, np.arange(n) + 2, quality)
