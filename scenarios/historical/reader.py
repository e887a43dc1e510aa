"""Reading recorded data (CSV/Parquet) through a mapping into canonical columns on a regular grid.

Each source file is read onto its own grid by ``scenarios.historical.sources``; here the
sources are resampled to the output grid and gaps filled by the mapping's policy.
:func:`read_historical` returns the frame and a
:class:`~scenarios.historical.quality.DataQuality` summary; every problem is a
:class:`twin.errors.ScenarioError` naming the file, the column and the row (the file's line
number for CSV, counting the header as line 1; the 0-based row for Parquet).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pvlib

from scenarios.calendar import DAY_NS, HOUR_NS, MINUTE_NS, calendar_of, seasonal_curve
from scenarios.historical.mapping_spec import HistoricalMapping
from scenarios.historical.quality import ColumnQuality, DataQuality
from scenarios.historical.sources import SourceSeries, read_source
from scenarios.prices import apply_tariff, bundled_ote_prices
from scenarios.synthetic import comfort_schedule
from twin.config import Location
from twin.errors import ScenarioError

_WEEK_NS = 7 * DAY_NS
#: Fewer than this share of a resampled interval's source values → the interval is a gap.
MIN_RESAMPLE_SHARE = 0.5


# --- resampling and gaps -------------------------------------------------------------------------------

def _resample(source: SourceSeries, name: str, grid_ns: np.ndarray, step_ns: int) -> tuple[np.ndarray, np.ndarray]:
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
               label: str, source: SourceSeries | None) -> tuple[np.ndarray, int, int]:
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
                f"{label}: gap of {n} steps ({n * step_ns / HOUR_NS:g} h) from "
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


def output_index(mapping: HistoricalMapping, sources: list[SourceSeries]) -> pd.DatetimeIndex:
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
    year_fraction = (utc_ns / DAY_NS / 365.2425) % 1.0
    north = location is None or location.latitude_deg >= 0
    winter_peak = 14.5 / 365.0 if north else 14.5 / 365.0 + 0.5
    season = 0.5 - 0.5 * np.cos(2 * np.pi * (year_fraction - winter_peak))
    longitude = location.longitude_deg if location is not None else 0.0
    step_h = (utc_ns[1] - utc_ns[0]) / HOUR_NS
    solar_hour = ((utc_ns % DAY_NS) / HOUR_NS + step_h / 2 + longitude / 15.0) % 24.0
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
    sources = [read_source(s, mapping.resolve(s.file, data), mapping.location, gaps.dark_elevation_deg)
               for s in mapping.sources]
    index = output_index(mapping, sources)
    grid_ns = index.as_unit("ns").asi8
    step_ns = int(grid_ns[1] - grid_ns[0])
    interpolate_steps = int(gaps.interpolate_max_minutes * MINUTE_NS // step_ns)
    fill_steps = int(gaps.fill_max_hours * HOUR_NS // step_ns)
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
    location = mapping.location or Location(latitude_deg=0.0, longitude_deg=0.0, timezone=mapping.timezone)
    return comfort_schedule(calendar_of(index, location), mapping.comfort_schedule)


def _bundled_spot(index: pd.DatetimeIndex, mapping: HistoricalMapping) -> np.ndarray:
    spot, meta = bundled_ote_prices()
    hour_ns = spot.index.as_unit("ns").asi8
    position = (index.as_unit("ns").asi8 - hour_ns[0]) // HOUR_NS
    outside = (position < 0) | (position >= len(hour_ns))
    if outside.any():
        row = int(np.argmax(outside))
        raise ScenarioError(f"{mapping.path}: [historical.prices] has no OTE day-ahead price for {index[row]}: the "
                            f"bundled data cover [{meta['start']}, {meta['end']}) only; set start/end inside it")
    return spot.to_numpy()[position]

