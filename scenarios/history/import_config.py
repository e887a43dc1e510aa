"""``history.toml``: where the owner's InfluxDB is and how its series map onto canonical columns.

::

    [source]
    kind = "influxdb1"                 # or "influxdb2"
    url = "http://192.168.1.10:8086"
    database = "home"                  # influxdb1; retention_policy optional
    username = "pems"                  # influxdb1, optional; password from password_env
    password_env = "INFLUX_PASSWORD"
    # org = "home"; bucket = "home"; token_env = "INFLUX_TOKEN"   # influxdb2
    timeout_s = 30
    chunk_days = 7                     # one query per column per chunk

    [history]
    timezone = "Europe/Prague"         # partitions are local days
    step_minutes = 15                  # readings are aggregated onto this grid

    [columns]                          # canonical name = series
    pv_power_kw = { measurement = "solar", field = "InputPower", unit = "W" }
    "relay_on.living" = { measurement = "relay", field = "state", tags = { tag1 = "heating", room = "living" } }

    [derived]                          # canonical name = expression of columns
    base_load_kw = "grid_import_kw - grid_export_kw + pv_power_kw - battery_power_kw"

Every problem raises :class:`twin.errors.ConfigError` naming the file and the key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

from scenarios.historical.units import CANONICAL_NAME, allowed_units
from scenarios.history.expression import parse
from twin.config import Location, read_toml
from twin.errors import ConfigError, ScenarioError

KINDS = ("influxdb1", "influxdb2")
AGGREGATIONS = ("mean", "sum", "min", "max", "first", "last", "median")
#: Units for columns without a unit suffix (``battery_soc``, ``relay_on.<room>``): a fraction, or percent.
FRACTION_UNITS = ("1", "%")


@dataclass(frozen=True, slots=True)
class SeriesSpec:
    """One InfluxDB series → one canonical column (``aggregation`` over each grid step)."""

    name: str
    measurement: str
    field: str
    unit: str
    tags: Mapping[str, str] = dataclass_field(default_factory=dict)
    aggregation: str = "mean"
    scale: float = 1.0


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """Where the history is read from: an InfluxDB 1.x or 2.x and how to log in."""

    kind: str
    url: str
    database: str = ""
    retention_policy: str = ""
    username: str = ""
    password: str = ""
    org: str = ""
    bucket: str = ""
    token: str = ""
    timeout_s: float = 30.0
    chunk_days: float = 7.0


@dataclass(frozen=True, slots=True)
class ImportConfig:
    """A parsed ``history.toml``: the source, the series to read and how they map to the canonical columns."""

    path: Path
    source: SourceConfig
    timezone: str
    step_minutes: float
    columns: tuple[SeriesSpec, ...]
    derived: Mapping[str, str] = dataclass_field(default_factory=dict)


def _fail(path: Path, key: str, message: str) -> ConfigError:
    return ConfigError(f"{path}: {key} {message}")


def _known(table: Mapping[str, Any], allowed: set[str], key: str, path: Path) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise _fail(path, f"{key}.{extra[0]}", f"is not a known key; known: {', '.join(sorted(allowed))}")


def _text(table: Mapping[str, Any], name: str, key: str, path: Path, default: str | None = None) -> str:
    value = table.get(name, default)
    if value is None:
        raise _fail(path, f"{key}.{name}", "is required")
    if not isinstance(value, str):
        raise _fail(path, f"{key}.{name}", f"= {value!r} must be a string")
    return value


def _number(table: Mapping[str, Any], name: str, key: str, path: Path, default: float, lo: float, hi: float) -> float:
    value = table.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise _fail(path, f"{key}.{name}", f"= {value!r} must be a number in [{lo:g}, {hi:g}]")
    return float(value)


def _secret(table: Mapping[str, Any], name: str, key: str, path: Path) -> str:
    """A secret is named by the environment variable that holds it, never written in the file."""
    if name.removesuffix("_env") in table:
        raise _fail(path, f"{key}.{name.removesuffix('_env')}", f"must not be in the file: set {name} = \"VAR\" "
                                                               f"and export VAR")
    variable = _text(table, name, key, path, "")
    if variable and variable not in os.environ:
        raise _fail(path, f"{key}.{name}", f"= {variable!r}: that environment variable is not set")
    return os.environ.get(variable, "") if variable else ""


def _series(name: str, value: Any, path: Path) -> SeriesSpec:
    key = f"columns.{name}"
    if not CANONICAL_NAME.match(name):
        raise _fail(path, key, "is not a canonical column name (e.g. pv_power_kw, room_temp_c.living)")
    if not isinstance(value, Mapping):
        raise _fail(path, key, f"must be a table {{ measurement = …, field = … }}, got {value!r}")
    _known(value, {"measurement", "field", "tags", "unit", "aggregation", "scale"}, key, path)
    units = allowed_units(name) or FRACTION_UNITS
    unit = _text(value, "unit", key, path, units[0] if units in (FRACTION_UNITS, ("1",)) else None)
    if unit not in units or unit.endswith("_meter"):
        raise _fail(path, f"{key}.unit", f"= {unit!r} is not a unit for {name}; use one of "
                                         f"{', '.join(u for u in units if not u.endswith('_meter'))}")
    tags = value.get("tags", {})
    if not isinstance(tags, Mapping) or not all(isinstance(v, str) for v in tags.values()):
        raise _fail(path, f"{key}.tags", f"= {tags!r} must be a table of strings, e.g. {{ room = \"living\" }}")
    aggregation = _text(value, "aggregation", key, path, "mean")
    if aggregation not in AGGREGATIONS:
        raise _fail(path, f"{key}.aggregation", f"= {aggregation!r} is not one of {', '.join(AGGREGATIONS)}")
    scale = _number(value, "scale", key, path, 1.0, -1e9, 1e9)
    if scale == 0.0:
        raise _fail(path, f"{key}.scale", "must not be 0")
    return SeriesSpec(name, _text(value, "measurement", key, path), _text(value, "field", key, path), unit,
                      dict(tags), aggregation, scale)


def load_import_config(path: str | Path) -> ImportConfig:
    """Read and check ``history.toml``."""
    path = Path(path)
    data = read_toml(path, "the history import configuration")
    _known(data, {"source", "history", "columns", "derived"}, "", path)
    src = data.get("source")
    if not isinstance(src, Mapping):
        raise _fail(path, "source", "is required: a [source] table (kind, url, …)")
    _known(src, {"kind", "url", "database", "retention_policy", "username", "password_env", "org", "bucket",
                 "token_env", "timeout_s", "chunk_days", "password", "token"}, "source", path)
    kind = _text(src, "kind", "source", path)
    if kind not in KINDS:
        raise _fail(path, "source.kind", f"= {kind!r} is not one of {', '.join(KINDS)}")
    url = _text(src, "url", "source", path)
    if not url.startswith(("http://", "https://")):
        raise _fail(path, "source.url", f"= {url!r} must start with http:// or https://")
    source = SourceConfig(
        kind=kind, url=url.rstrip("/"), database=_text(src, "database", "source", path, None if kind == "influxdb1"
                                                         else ""),
        retention_policy=_text(src, "retention_policy", "source", path, ""),
        username=_text(src, "username", "source", path, ""), password=_secret(src, "password_env", "source", path),
        org=_text(src, "org", "source", path, None if kind == "influxdb2" else ""),
        bucket=_text(src, "bucket", "source", path, None if kind == "influxdb2" else ""),
        token=_secret(src, "token_env", "source", path),
        timeout_s=_number(src, "timeout_s", "source", path, 30.0, 0.1, 3600.0),
        chunk_days=_number(src, "chunk_days", "source", path, 7.0, 0.01, 366.0))
    hist = data.get("history", {})
    if not isinstance(hist, Mapping):
        raise _fail(path, "history", "must be a table")
    _known(hist, {"timezone", "step_minutes"}, "history", path)
    timezone = _text(hist, "timezone", "history", path)
    try:
        Location(latitude_deg=0.0, longitude_deg=0.0, timezone=timezone)
    except ConfigError:
        raise _fail(path, "history.timezone", f"= {timezone!r} is not a known IANA time zone") from None
    step = _number(hist, "step_minutes", "history", path, 15.0, 1.0, 1440.0)
    if 1440.0 % step:
        raise _fail(path, "history.step_minutes", f"= {step:g} must divide a day")
    columns_table = data.get("columns")
    if not isinstance(columns_table, Mapping) or not columns_table:
        raise _fail(path, "columns", "must name at least one column ([columns] table)")
    columns = tuple(_series(n, v, path) for n, v in columns_table.items())
    derived = data.get("derived", {})
    if not isinstance(derived, Mapping):
        raise _fail(path, "derived", "must be a table of name = \"expression\"")
    names = [c.name for c in columns]
    for name, text in derived.items():
        if not isinstance(text, str) or allowed_units(name) is None:
            raise _fail(path, f"derived.{name}", "must be a canonical name ending in its unit = \"expression\"")
        try:
            unknown = [c for c in parse(text).columns if c not in names]
        except ScenarioError as exc:
            raise _fail(path, f"derived.{name}", str(exc)) from None
        if unknown:
            raise _fail(path, f"derived.{name}", f"reads {unknown[0]!r}, which is not a column (names: {names})")
        names.append(name)
    return ImportConfig(path, source, timezone, step, columns, dict(derived))
