"""The TOML mapping that tells the historical reader how to read recorded data.

One ``[historical]`` table (the marker other scenario loaders skip on)::

    [historical]
    name = "fr-home-2024-v1"          # needed to build a scenario; must end in -v<version>
    country = "FR"                     # ISO code for public holidays (forecasters); subdivision optional
    version = 1
    timezone = "Europe/Paris"          # of the output index
    step_minutes = 30                  # output grid
    start = 2024-03-01                 # local date (midnight) or offset date-time; optional
    end = 2025-01-01                   # exclusive; optional

    [historical.location]              # twin.config.Location fields (for "zero_when_dark")
    latitude_deg = 48.83
    longitude_deg = 6.86

    [historical.gaps]                  # GapPolicy
    interpolate_max_minutes = 60       # linear interpolation up to this long
    fill_max_hours = 48                # longer gaps: same time of week from the nearest week with data

    [[historical.sources]]             # SourceSpec, one per file
    file = "data/home.csv"             # relative to the mapping; "@data" = the file given on the
                                       # command line, "@data_dir/x.csv" = a file next to it
    time_column = "timestamp_utc"      # or no time column: ``start`` + row × ``interval_minutes``
    timezone = "UTC"                   # zone of naive timestamps
    label = "start"                    # a row's timestamp is its interval's "start" or "end"
    ambiguous = "error"                # naive times in a repeated (fall-back) hour: error|infer|first|second
    nonexistent = "error"              # naive times in a skipped (spring-forward) hour: error|drop
    [historical.sources.columns]       # canonical name = ColumnSpec
    base_load_kw = { column = "load", unit = "W" }

Optional tables: ``constants`` (canonical name = number), ``derived`` (``ghi_w_m2 = "closure"``,
``name = {from = "other", scale = 1, offset = 0}`` or ``name = {expr = "a - b + c"}``),
``prices`` (bundled OTE day-ahead +
``scenarios.prices.Tariff``), ``climatology`` (an outdoor temperature curve when none was
measured), ``comfort_schedule`` (``scenarios.synthetic_spec.ComfortScheduleParams``),
``forecast_errors`` (``scenarios.forecast_errors.ForecastErrorParams``) and
``archived_forecasts`` (``pv_power_kw = "pv_forecast_kw"``: issued forecasts recorded in the data) and
``identify`` (settings of ``pems identify``, see ``controllers.estimation.identify``).
Every problem raises :class:`twin.errors.ScenarioError` naming the mapping file and the key.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scenarios.forecast_errors import ForecastErrorParams
from scenarios.historical.mapping_spec import (
    AMBIGUOUS,
    CLOSURE_COLUMNS,
    DATA_PLACEHOLDER,
    FORMATS,
    GAPS,
    LABELS,
    MAPPING_TABLE,
    MISSING,
    NONEXISTENT,
    PRICE_SOURCES,
    ClimatologySpec,
    ColumnSpec,
    DerivedSpec,
    GapPolicy,
    HistoricalMapping,
    SourceSpec,
)
from scenarios.historical.units import CANONICAL_NAME, allowed_units
from scenarios.prices import Tariff
from scenarios.synthetic_spec import ComfortScheduleParams
from twin.config import Location
from twin.errors import ConfigError, ScenarioError
from twin.params import build, check_number

_TOP_KEYS = {"country", "subdivision", "identify",
             "name", "version", "description", "provenance", "licence", "currency", "timezone", "step_minutes",
             "start", "end", "seed", "location", "gaps", "sources", "constants", "derived", "prices",
             "climatology", "comfort_schedule", "forecast_errors", "archived_forecasts", "pv_capacity_kw"}
_SOURCE_KEYS = {"file", "format", "time_column", "time_format", "timezone", "label", "ambiguous", "nonexistent",
                "start", "interval_minutes", "columns"}
_COLUMN_KEYS = {"column", "unit", "scale", "offset", "missing", "gaps", "clip_min", "clip_max"}


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, message: str) -> ScenarioError:
        return ScenarioError(f"{self.source}: {key} {message}")

    def table(self, value: Any, key: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(key, f"must be a table, got {value!r}")
        return value

    def unknown(self, table: Mapping[str, Any], allowed: set[str], key: str) -> None:
        extra = sorted(set(table) - allowed)
        if extra:
            raise self.fail(f"{key}.{extra[0]}", f"is not a known key; known: {', '.join(sorted(allowed))}")

    def text(self, table: Mapping[str, Any], name: str, key: str, default: str | None = None,
             choices: tuple[str, ...] | None = None) -> str:
        if name not in table:
            if default is None:
                raise self.fail(f"{key}.{name}", "is required")
            return default
        value = table[name]
        if not isinstance(value, str):
            raise self.fail(f"{key}.{name}", f"= {value!r} must be a string")
        if choices is not None and value not in choices:
            raise self.fail(f"{key}.{name}", f"= {value!r} is not one of {', '.join(choices)}")
        return value

    def number(self, table: Mapping[str, Any], name: str, key: str, default: float | None = None,
               lo: float = -1e300, hi: float = 1e300) -> float | None:
        if name not in table:
            return default
        value = table[name]
        try:
            check_number(f"{key}.{name}", value, lo, hi)
        except ConfigError:
            raise self.fail(f"{key}.{name}", f"= {value!r} must be a number in [{lo:g}, {hi:g}]") from None
        return float(value)

    def dataclass(self, cls: type, value: Any, key: str, base: Any = None) -> Any:
        try:
            return build(cls, self.table(value, key), key, base)
        except ConfigError as exc:
            raise ScenarioError(f"{self.source}: {exc}") from None

    def column(self, name: str, value: Any, key: str) -> ColumnSpec:
        key = f"{key}.{name}"
        if not CANONICAL_NAME.match(name):
            raise self.fail(key, "is not a canonical column name (lower case, ending in its unit, e.g. "
                                 "base_load_kw, outdoor_temp_c, room_temp_c.living)")
        units = allowed_units(name)
        if units is None:
            raise self.fail(key, "does not end in a known unit suffix (_kw, _c, _w_m2, _per_kwh, _m_s)")
        if isinstance(value, str):
            value = {"column": value}
        table = self.table(value, key)
        self.unknown(table, _COLUMN_KEYS, key)
        unit = self.text(table, "unit", key, default="1" if units == ("1",) else None)
        if unit not in units:
            raise self.fail(f"{key}.unit", f"= {unit!r} is not a unit for {name}; use one of {', '.join(units)}")
        spec = ColumnSpec(
            name=name, column=self.text(table, "column", key), unit=unit,
            scale=self.number(table, "scale", key, 1.0), offset=self.number(table, "offset", key, 0.0),
            missing=self.text(table, "missing", key, "gap", MISSING), gaps=self.text(table, "gaps", key, "fill", GAPS),
            clip_min=self.number(table, "clip_min", key), clip_max=self.number(table, "clip_max", key))
        if spec.scale == 0.0:
            raise self.fail(f"{key}.scale", "must not be 0")
        return spec

    def source_spec(self, value: Any, key: str) -> SourceSpec:
        table = self.table(value, key)
        self.unknown(table, _SOURCE_KEYS, key)
        columns_table = self.table(table.get("columns", {}), f"{key}.columns")
        columns = tuple(self.column(n, v, f"{key}.columns") for n, v in columns_table.items())
        file = self.text(table, "file", key)
        fmt = self.text(table, "format", key, "", FORMATS + ("",))
        if not fmt and file != DATA_PLACEHOLDER:  # for @data: from the file given at read time
            fmt = format_of(Path(file))
            if not fmt:
                raise self.fail(f"{key}.format", f"cannot be inferred from {file!r}: give one of {', '.join(FORMATS)}")
        if fmt == "ote-dayahead":
            if columns:
                raise self.fail(f"{key}.columns", "must be empty for format ote-dayahead (it gives "
                                                  "spot_price_per_kwh)")
            columns = (ColumnSpec("spot_price_per_kwh", "price_eur_mwh", "per_kWh"),)
        elif not columns:
            raise self.fail(f"{key}.columns", "names no column")
        spec = SourceSpec(
            file=file, columns=columns, format=fmt, time_column=self.text(table, "time_column", key, ""),
            time_format=self.text(table, "time_format", key, ""), timezone=self.text(table, "timezone", key, "UTC"),
            label=self.text(table, "label", key, "start", LABELS),
            ambiguous=self.text(table, "ambiguous", key, "error", AMBIGUOUS),
            nonexistent=self.text(table, "nonexistent", key, "error", NONEXISTENT),
            start=self.text(table, "start", key, "") if not isinstance(table.get("start"), dt.datetime)
            else table["start"].isoformat(),
            interval_minutes=self.number(table, "interval_minutes", key, None, 1e-3, 1e6))
        _check_zone(spec.timezone, f"{key}.timezone", self)
        if fmt != "ote-dayahead" and not spec.time_column and not spec.start:
            raise self.fail(key, "needs a time_column, or start and interval_minutes for a file without one")
        if spec.start and not spec.time_column and spec.interval_minutes is None:
            raise self.fail(f"{key}.interval_minutes", "is required with start (no time column)")
        return spec

    def derived(self, name: str, value: Any, key: str) -> DerivedSpec:
        key = f"{key}.{name}"
        if value == "closure":
            if name not in CLOSURE_COLUMNS:
                raise self.fail(key, "= 'closure' derives ghi_w_m2, dhi_w_m2 or dni_w_m2 only (GHI = DNI·cos z + DHI)")
            return DerivedSpec(name, "closure")
        table = self.table(value, key)
        self.unknown(table, {"from", "scale", "offset", "expr"}, key)
        if allowed_units(name) is None:
            raise self.fail(key, "does not end in a known unit suffix")
        if "expr" in table:  # a column as an expression of others (e.g. load = import − export + PV − battery)
            if set(table) != {"expr"}:
                raise self.fail(key, "takes expr alone, or from/scale/offset")
            from scenarios.history.expression import parse

            text = self.text(table, "expr", key)
            try:
                parse(text)
            except ScenarioError as exc:
                raise self.fail(f"{key}.expr", str(exc)) from None
            return DerivedSpec(name, "expression", text)
        return DerivedSpec(name, "linear", self.text(table, "from", key), self.number(table, "scale", key, 1.0),
                           self.number(table, "offset", key, 0.0))


def format_of(path: Path) -> str:
    """The file format its extension implies (a folder: a partitioned Parquet dataset), or "" if none."""
    if path.is_dir():
        return "parquet"
    return {".csv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}.get(path.suffix.lower(), "")


def _check_zone(name: str, key: str, parser: _Parser) -> None:
    try:
        Location(latitude_deg=0.0, longitude_deg=0.0, timezone=name)
    except ConfigError:
        raise parser.fail(key, f"= {name!r} is not a known IANA time zone") from None


def mapping_from_dict(data: Mapping[str, Any], path: Path) -> HistoricalMapping:
    """Parse a mapping document (with its ``[historical]`` table) read from ``path``."""
    p = _Parser(str(path))
    if MAPPING_TABLE not in data:
        raise ScenarioError(f"{path}: no [{MAPPING_TABLE}] table")
    extra = sorted(set(data) - {MAPPING_TABLE})
    if extra:
        raise p.fail(extra[0], f"is outside [{MAPPING_TABLE}]; everything belongs in it")
    key = MAPPING_TABLE
    top = p.table(data[key], key)
    p.unknown(top, _TOP_KEYS, key)
    sources_value = top.get("sources")
    if not isinstance(sources_value, list) or not sources_value:
        raise p.fail(f"{key}.sources", "must be a non-empty array of tables ([[historical.sources]])")
    sources = tuple(p.source_spec(v, f"{key}.sources[{i}]") for i, v in enumerate(sources_value))
    timezone = p.text(top, "timezone", key)
    _check_zone(timezone, f"{key}.timezone", p)
    step = p.number(top, "step_minutes", key, None, 1.0, 1440.0)
    if step is None:
        raise p.fail(f"{key}.step_minutes", "is required")
    if 1440.0 % step and step % 60.0:
        raise p.fail(f"{key}.step_minutes", f"= {step:g} must divide a day")
    constants = dict(p.table(top.get("constants", {}), f"{key}.constants"))
    for name, value in constants.items():
        if allowed_units(name) is None or isinstance(value, bool) or not isinstance(value, int | float):
            raise p.fail(f"{key}.constants.{name}", f"= {value!r} must be a number for a canonical column")
    derived = tuple(p.derived(n, v, f"{key}.derived")
                    for n, v in p.table(top.get("derived", {}), f"{key}.derived").items())
    tariff = None
    if "prices" in top:
        prices = dict(p.table(top["prices"], f"{key}.prices"))
        p.text(prices, "source", f"{key}.prices", None, PRICE_SOURCES)
        prices.pop("source")
        tariff = p.dataclass(Tariff, prices, f"{key}.prices")
    location = p.dataclass(Location, top["location"], f"{key}.location") if "location" in top else None
    archived = dict(p.table(top.get("archived_forecasts", {}), f"{key}.archived_forecasts"))
    for field_name, column in archived.items():
        if field_name != "pv_power_kw" or not isinstance(column, str):
            raise p.fail(f"{key}.archived_forecasts.{field_name}", "only pv_power_kw = \"<canonical column>\" "
                                                                   "is supported")
    version = top.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise p.fail(f"{key}.version", f"= {version!r} must be a positive integer")
    seed = top.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise p.fail(f"{key}.seed", f"= {seed!r} must be a non-negative integer")
    mapping = HistoricalMapping(
        path=path, sources=sources, timezone=timezone, step_minutes=step,
        name=p.text(top, "name", key, ""), version=version, description=p.text(top, "description", key, ""),
        provenance=p.text(top, "provenance", key, ""), licence=p.text(top, "licence", key, ""),
        currency=p.text(top, "currency", key, "EUR"),
        start=_when(top.get("start"), f"{key}.start", p), end=_when(top.get("end"), f"{key}.end", p), seed=seed,
        location=location,
        gaps=p.dataclass(GapPolicy, top["gaps"], f"{key}.gaps") if "gaps" in top else GapPolicy(),
        constants={k: float(v) for k, v in constants.items()}, derived=derived, tariff=tariff,
        climatology=p.dataclass(ClimatologySpec, top["climatology"], f"{key}.climatology")
        if "climatology" in top else None,
        comfort_schedule=p.dataclass(ComfortScheduleParams, top["comfort_schedule"], f"{key}.comfort_schedule")
        if "comfort_schedule" in top else None,
        forecast_errors=p.dataclass(ForecastErrorParams, top["forecast_errors"], f"{key}.forecast_errors")
        if "forecast_errors" in top else ForecastErrorParams(),
        archived_forecasts=archived,
        pv_capacity_kw=p.number(top, "pv_capacity_kw", key, None, 0.01, 1e4),
        country=p.text(top, "country", key, "") or None,
        subdivision=p.text(top, "subdivision", key, "") or None,
        identify=dict(p.table(top.get("identify", {}), f"{key}.identify")),
    )
    names = mapping.columns()
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise p.fail(key, f"produces column(s) {duplicated} more than once")
    for d in derived:
        if d.kind == "linear" and d.source not in names:
            raise p.fail(f"{key}.derived.{d.name}.from", f"= {d.source!r} is not a column of this mapping")
        if d.kind == "expression":
            from scenarios.history.expression import parse

            unknown = [c for c in parse(d.source).columns if c not in names]
            if unknown:
                raise p.fail(f"{key}.derived.{d.name}.expr", f"reads {unknown[0]!r}, not a column of this mapping")
    if any(c.missing == "zero_when_dark" for s in sources for c in s.columns) and location is None:
        raise p.fail(f"{key}.location", "is required by missing = \"zero_when_dark\" (sun position)")
    if any(d.kind == "closure" for d in derived) and location is None:
        raise p.fail(f"{key}.location", "is required by a \"closure\" column (sun position)")
    for field_name, column in archived.items():
        if column not in names:
            raise p.fail(f"{key}.archived_forecasts.{field_name}", f"= {column!r} is not a column of this mapping")
    return mapping


def _when(value: Any, key: str, parser: _Parser) -> dt.datetime | dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise parser.fail(key, f"= {value} needs a UTC offset (e.g. 2024-03-01T00:00:00+01:00) or use a date")
        return value
    if isinstance(value, dt.date):
        return value
    raise parser.fail(key, f"= {value!r} must be a date or an offset date-time (unquoted TOML)")


def read_mapping_text(path: Path) -> dict[str, Any] | None:
    """The parsed TOML of ``path``, or None when it is TOML without a ``[historical]`` table."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{path}: mapping file not found") from None
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read the mapping file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"{path}: mapping file is not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        if f"[{MAPPING_TABLE}" in text:
            raise ScenarioError(f"{path}: not valid TOML ({exc})") from None
        return None
    return data if MAPPING_TABLE in data else None


def load_mapping(path: str | Path) -> HistoricalMapping:
    """Read and validate a mapping file; every problem names the file and the key."""
    path = Path(path)
    data = read_mapping_text(path)
    if data is None:
        raise ScenarioError(f"{path}: not a historical mapping (no [{MAPPING_TABLE}] table, or not TOML)")
    return mapping_from_dict(data, path)
