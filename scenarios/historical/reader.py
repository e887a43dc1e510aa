"""Reading recorded data (CSV/Parquet) through a mapping into canonical columns on a regular grid.

All source-specific reading happens here: parsing time axes (naive or aware, interval
start or end, DST ambiguities), checking them, converting units, resampling to the output
grid and filling gaps by the mapping's policy. :func:`read_historical` returns the frame
and a :class:`~scenarios.historical.quality.DataQuality` summary; every problem is a
:class:`twin.errors.ScenarioError` naming the file, the column and the row (the file's line
number for CSV, counting the header as line 1; the 0-based row for Parquet).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pvlib

from scenarios.historical.mapping import ColumnSpec, HistoricalMapping, SourceSpec, format_of
from scenarios.historical.quality import ColumnQuality, DataQuality, SourceQuality
from scenarios.historical.units import is_meter, to_canonical
from scenarios.prices import apply_tariff, bundled_ote_prices, read_ote_dayahead
from scenarios.synthetic import comfort_schedule, seasonal_curve
from twin.config import Location
from twin.errors import ScenarioError

_MINUTE_NS = 60_000_000_000
log = logging.getLogger(__name__)
_HOUR_NS = 60 * _MINUTE_NS
_DAY_NS = 24 * _HOUR_NS
_WEEK_NS = 7 * _DAY_NS
#: Fewer than this share of a resampled interval's source values → the interval is a gap.
MIN_RESAMPLE_SHARE = 0.5


@dataclass(frozen=True)
class _SourceSeries:
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


# --- reading one source ------------------------------------------------------------------------------

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
        return int(round(spec.interval_minutes * _MINUTE_NS))
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
                          f"is off the file's {interval / _MINUTE_NS:g}-minute grid")


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


def _read_source(spec: SourceSpec, path: Path, location: Location | None, dark_elevation_deg: float) -> _SourceSeries:
    if not spec.format:
        fmt = format_of(path)
        if not fmt:
            raise _fail(path, f"cannot tell the format from the extension {path.suffix!r}: use .csv or .parquet, "
                              f"or set format in the mapping")
        spec = replace(spec, format=fmt)
    if spec.format == "ote-dayahead":
        return _read_ote(spec, path)
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
        last=str(pd.Timestamp(t_ns[-1], tz="UTC")), interval_minutes=interval / _MINUTE_NS,
        dropped_rows=dropped, missing_rows=int(n_grid - len(t_ns)))
    return _SourceSeries(spec, path, int(t_ns[0]), interval, values, zeroed, lines, quality)


def _read_ote(spec: SourceSpec, path: Path) -> _SourceSeries:
    prices, meta = read_ote_dayahead(path)
    t_ns = prices.index.as_unit("ns").asi8
    n = len(t_ns)
    quality = SourceQuality(file=str(path), rows=int(meta["rows"]), first=str(prices.index[0]),
                            last=str(prices.index[-1]), interval_minutes=float(meta["interval_minutes"]),
                            dropped_rows=tuple(str(t) for t in meta["filled"]))
    if meta["empty"]:  # empty price cells: gaps for the gap policy, reported here and in the data-quality summary
        log.warning("%s: %d row(s) with an empty price, filled per the gap policy: first at %s", path,
                    len(meta["empty"]), meta["empty"][0])
    step_ns = int(meta["interval_minutes"]) * _MINUTE_NS
    return _SourceSeries(spec, path, int(t_ns[0]), step_ns, {"spot_price_per_kwh": prices.to_numpy()},
                         {"spot_price_per_kwh": np.zeros(n, bool)}, np.arange(n) + 2, quality)


# --- resampling and gaps -------------------------------------------------------------------------------

def _resample(source: _SourceSeries, name: str, grid_ns: np.ndarray, step_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """Time-weighted mean of the source intervals over each output interval, and the zero-filled mask."""
    src_start, src_step = source.start_ns, source.interval_ns
    values = source.values[name]
    fine = math.gcd(math.gcd(src_step, step_ns), abs(int(grid_ns[0] - src_start)) or src_step)
    per_out = step_ns // fine
    fine_t = grid_ns[0] + np.arange(len(grid_ns) * per_out) * fine
    k = (fine_t - src_start) // src_step
    inside = (k >= 0) & (k < len(values))
    fine_v = np.full(len(fine_t), np.nan)
    fine_v[inside] = values[k[inside]]
    fine_zero = np.zeros(len(fine_t), bool)
    fine_zero[inside] = source.zero_filled[name][k[inside]]
    block = fine_v.reshape(len(grid_ns), per_out)
    present = np.isfinite(block)
    count = present.sum(axis=1)
    total = np.where(present, block, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(count >= MIN_RESAMPLE_SHARE * per_out, total / np.maximum(count, 1), np.nan)
    zero = fine_zero.reshape(len(grid_ns), per_out).any(axis=1)
    return out, zero


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and length of every run of True in ``mask``."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return edges[0::2], edges[1::2] - edges[0::2]


def _fill_gaps(values: np.ndarray, grid_ns: np.ndarray, step_ns: int, interpolate_steps: int, fill_steps: int,
               label: str, source: _SourceSeries | None) -> tuple[np.ndarray, int, int]:
    """Fill ``values`` in place by the gap policy; return it and the interpolated / week-filled counts."""
    missing = np.isnan(values)
    if not missing.any():
        return values, 0, 0
    if missing.all():
        raise ScenarioError(f"{label}: no data at all in the chosen period "
                            f"{pd.Timestamp(grid_ns[0], tz='UTC')} .. {pd.Timestamp(grid_ns[-1], tz='UTC')}")
    original = values.copy()
    starts, lengths = _runs(missing)
    interpolated = week_filled = 0
    week = _WEEK_NS // step_ns
    known = np.flatnonzero(~missing)
    for s, n in zip(starts.tolist(), lengths.tolist(), strict=True):
        if n <= interpolate_steps:
            before, after = s - 1, s + n
            lo = original[before] if before >= 0 else original[after]
            hi = original[after] if after < len(values) else lo
            frac = np.arange(1, n + 1) / (n + 1)
            values[s:s + n] = lo + (hi - lo) * frac
            interpolated += n
            continue
        if n > fill_steps:
            where = f" ({source.path.name} {source.row_ref(int(grid_ns[s]))})" if source is not None else ""
            raise ScenarioError(
                f"{label}: gap of {n} steps ({n * step_ns / _HOUR_NS:g} h) from "
                f"{pd.Timestamp(grid_ns[s], tz='UTC')}{where} is longer than the gap policy allows "
                f"(fill_max_hours); shorten the period or raise the limit")
        target = np.arange(s, s + n)
        filled = np.full(n, np.nan)
        for k in range(1, len(values) // max(week, 1) + 2):
            for sign in (-1, 1):
                todo = np.isnan(filled)
                if not todo.any():
                    break
                pos = target[todo] + sign * k * week
                ok = (pos >= 0) & (pos < len(values))
                pos_ok = pos[ok]
                ok_idx = np.flatnonzero(todo)[ok]
                got = original[pos_ok]
                have = np.isfinite(got)
                filled[ok_idx[have]] = got[have]
            if not np.isnan(filled).any():
                break
        if np.isnan(filled).any():  # no week has data at that time: nearest known value
            rest = np.isnan(filled)
            nearest = known[np.clip(np.searchsorted(known, target[rest]), 0, len(known) - 1)]
            filled[rest] = original[nearest]
        values[s:s + n] = filled
        week_filled += n
    return values, interpolated, week_filled


def _quality(name: str, origin: str, values: np.ndarray, grid_ns: np.ndarray, zero: int, interpolated: int,
             week: int, left: int) -> ColumnQuality:
    missing = np.isnan(values)
    starts, lengths = _runs(missing)
    longest = int(lengths.max()) if lengths.size else 0
    longest_start = str(pd.Timestamp(grid_ns[starts[np.argmax(lengths)]], tz="UTC")) if longest else ""
    return ColumnQuality(name=name, origin=origin, steps=len(values), present=int((~missing).sum()),
                         gaps=int(len(starts)), longest_gap_steps=longest, longest_gap_start=longest_start,
                         zero_filled=zero, interpolated=interpolated, week_filled=week, left_missing=left)


# --- the output grid and synthesized columns ---------------------------------------------------------

def _bound(value: dt.datetime | dt.date | None, zone: str) -> pd.Timestamp | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return pd.Timestamp(value).tz_convert(zone)
    return pd.Timestamp(value).tz_localize(zone, nonexistent="shift_forward")


def output_index(mapping: HistoricalMapping, sources: list[_SourceSeries]) -> pd.DatetimeIndex:
    """The output grid: ``step_minutes`` in absolute time from ``start`` (or the data) to ``end``."""
    step = pd.Timedelta(minutes=mapping.step_minutes)
    step_ns = step.value
    start = _bound(mapping.start, mapping.timezone)
    end = _bound(mapping.end, mapping.timezone)
    if start is None:
        first = max(s.start_ns for s in sources if s.spec.format != "ote-dayahead") if any(
            s.spec.format != "ote-dayahead" for s in sources) else sources[0].start_ns
        start = pd.Timestamp(-(-first // step_ns) * step_ns, tz="UTC")
    if end is None:
        ends = [s.start_ns + len(s.lines) * s.interval_ns for s in sources]
        end = pd.Timestamp(min(ends) // step_ns * step_ns, tz="UTC")
    if end <= start:
        raise ScenarioError(f"{mapping.path}: the period {start} .. {end} is empty")
    periods = int((end - start) // step)
    if periods < 2:
        raise ScenarioError(f"{mapping.path}: the period {start} .. {end} holds fewer than 2 steps")
    index = pd.date_range(start.tz_convert("UTC"), periods=periods, freq=step, unit="ns").tz_convert(mapping.timezone)
    index.freq = step
    return index


def _climatology(mapping: HistoricalMapping, index: pd.DatetimeIndex) -> np.ndarray:
    spec = mapping.climatology
    location = mapping.location
    utc_ns = index.as_unit("ns").asi8
    year_fraction = (utc_ns / _DAY_NS / 365.2425) % 1.0
    north = location is None or location.latitude_deg >= 0
    winter_peak = 14.5 / 365.0 if north else 14.5 / 365.0 + 0.5
    season = 0.5 - 0.5 * np.cos(2 * np.pi * (year_fraction - winter_peak))
    longitude = location.longitude_deg if location is not None else 0.0
    step_h = (utc_ns[1] - utc_ns[0]) / _HOUR_NS
    solar_hour = ((utc_ns % _DAY_NS) / _HOUR_NS + step_h / 2 + longitude / 15.0) % 24.0
    amplitude = spec.diurnal_amplitude_winter_k + (spec.diurnal_amplitude_summer_k
                                                   - spec.diurnal_amplitude_winter_k) * season
    return seasonal_curve(year_fraction, spec.monthly_mean_c) + amplitude * np.cos(
        2 * np.pi * (solar_hour - 15.0) / 24.0)


def _closure(name: str, frame: pd.DataFrame, location: Location, step_s: float) -> np.ndarray:
    """GHI or DHI [W/m²] from the other two by ``GHI = DNI·cos z + DHI`` (sun at interval midpoints)."""
    mid = frame.index + pd.Timedelta(seconds=step_s / 2)
    zenith = pvlib.solarposition.get_solarposition(mid, location.latitude_deg, location.longitude_deg,
                                                   altitude=location.altitude_m)["zenith"].to_numpy()
    cos_z = np.clip(np.cos(np.radians(zenith)), 0.0, None)
    if name == "dni_w_m2":  # only with the sun above 5°: DNI from a small difference is noise
        beam = np.clip(frame["ghi_w_m2"].to_numpy() - frame["dhi_w_m2"].to_numpy(), 0.0, None)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(cos_z > 0.087, np.clip(beam / cos_z, 0.0, 1100.0), 0.0)
    beam = frame["dni_w_m2"].to_numpy() * cos_z
    if name == "ghi_w_m2":
        return beam + frame["dhi_w_m2"].to_numpy()
    return np.clip(frame["ghi_w_m2"].to_numpy() - beam, 0.0, None)


def read_historical(mapping: HistoricalMapping, data: Path | None = None) -> tuple[pd.DataFrame, DataQuality]:
    """Read every source of ``mapping`` onto its output grid; fill gaps by its policy.

    Parameters
    ----------
    mapping : HistoricalMapping
    data : Path, optional
        The file that the mapping's ``@data`` placeholders stand for.

    Returns
    -------
    frame : pd.DataFrame
        Canonical columns (``mapping.columns()``) on a tz-aware, fixed-frequency index.
        Columns with ``gaps = "keep"`` may hold NaN; all others are finite.
    quality : DataQuality
    """
    gaps = mapping.gaps
    sources = [_read_source(s, mapping.resolve(s.file, data), mapping.location, gaps.dark_elevation_deg)
               for s in mapping.sources]
    index = output_index(mapping, sources)
    grid_ns = index.as_unit("ns").asi8
    step_ns = int(grid_ns[1] - grid_ns[0])
    interpolate_steps = int(gaps.interpolate_max_minutes * _MINUTE_NS // step_ns)
    fill_steps = int(gaps.fill_max_hours * _HOUR_NS // step_ns)
    columns: dict[str, np.ndarray] = {}
    qualities: list[ColumnQuality] = []
    for source in sources:
        for column in source.spec.columns:
            values, zero = _resample(source, column.name, grid_ns, step_ns)
            present = values.copy()
            label = f"{source.path}: column {column.column!r} ({column.name})"
            interpolated = week = 0
            if column.gaps == "fill":
                values, interpolated, week = _fill_gaps(values, grid_ns, step_ns, interpolate_steps, fill_steps,
                                                        label, source)
            left = int(np.isnan(values).sum())
            qualities.append(_quality(column.name, f"{source.path.name}:{column.column}", present, grid_ns,
                                      int(zero.sum()), interpolated, week, left))
            columns[column.name] = values
    frame = pd.DataFrame(columns, index=index)
    for name, value in mapping.constants.items():
        frame[name] = value
        qualities.append(_quality(name, "constant", frame[name].to_numpy(), grid_ns, 0, 0, 0, 0))
    if mapping.climatology is not None:
        frame["outdoor_temp_c"] = _climatology(mapping, index)
        origin = "climatology" + (f" ({mapping.climatology.source})" if mapping.climatology.source else "")
        qualities.append(_quality("outdoor_temp_c", origin, frame["outdoor_temp_c"].to_numpy(), grid_ns, 0, 0, 0, 0))
    if mapping.comfort_schedule is not None:
        frame["comfort_mode"] = _comfort(index, mapping)
        qualities.append(_quality("comfort_mode", "comfort schedule", frame["comfort_mode"].to_numpy(dtype=float),
                                  grid_ns, 0, 0, 0, 0))
    if mapping.tariff is not None:
        spot = _bundled_spot(index, mapping)
        frame["spot_price_per_kwh"] = spot
        frame["import_price_per_kwh"], frame["export_price_per_kwh"] = apply_tariff(spot, mapping.tariff)
        for name in ("spot_price_per_kwh", "import_price_per_kwh", "export_price_per_kwh"):
            qualities.append(_quality(name, "bundled OTE 2024 day-ahead + tariff", frame[name].to_numpy(), grid_ns,
                                      0, 0, 0, 0))
    for d in mapping.derived:
        if d.kind == "closure":
            for needed in sorted({"ghi_w_m2", "dni_w_m2", "dhi_w_m2"} - {d.name}):
                if needed not in frame:
                    raise ScenarioError(f"{mapping.path}: {d.name} = \"closure\" needs column {needed}")
            frame[d.name] = _closure(d.name, frame, mapping.location, step_ns / 1e9)
            origin = "closure GHI = DNI·cos z + DHI"
        elif d.kind == "expression":
            from scenarios.history.expression import parse

            frame[d.name] = parse(d.source).evaluate({c: frame[c].to_numpy() for c in frame.columns})
            origin = f"= {d.source}"
        else:
            frame[d.name] = frame[d.source].to_numpy() * d.scale + d.offset
            origin = f"{d.source} × {d.scale:g} + {d.offset:g}"
        qualities.append(_quality(d.name, origin, frame[d.name].to_numpy(), grid_ns, 0, 0, 0, 0))
    frame = frame[[c for c in mapping.columns() if c in frame]]
    quality = DataQuality(start=str(index[0]), end=str(index[-1] + index.freq), step_minutes=mapping.step_minutes,
                          sources=tuple(s.quality for s in sources), columns=tuple(qualities))
    return frame, quality


def _comfort(index: pd.DatetimeIndex, mapping: HistoricalMapping) -> np.ndarray:
    from scenarios.synthetic import _clock

    location = mapping.location or Location(latitude_deg=0.0, longitude_deg=0.0, timezone=mapping.timezone)
    return comfort_schedule(_clock(index, location), mapping.comfort_schedule)


def _bundled_spot(index: pd.DatetimeIndex, mapping: HistoricalMapping) -> np.ndarray:
    spot, meta = bundled_ote_prices()
    hour_ns = spot.index.as_unit("ns").asi8
    position = (index.as_unit("ns").asi8 - hour_ns[0]) // _HOUR_NS
    outside = (position < 0) | (position >= len(hour_ns))
    if outside.any():
        row = int(np.argmax(outside))
        raise ScenarioError(f"{mapping.path}: [historical.prices] has no OTE day-ahead price for {index[row]}: the "
                            f"bundled data cover [{meta['start']}, {meta['end']}) only; set start/end inside it")
    return spot.to_numpy()[position]

