"""What a historical mapping says: frozen dataclasses of its sources, columns and policies.

``scenarios.historical.mapping`` parses a mapping file into a :class:`HistoricalMapping`;
``scenarios.historical.reader`` reads the data it describes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scenarios.forecast_errors import ForecastErrorParams
from scenarios.prices import Tariff
from scenarios.synthetic_spec import ComfortScheduleParams
from twin.config import Location
from twin.errors import ScenarioError
from twin.params import bounded, check_bounds

#: The TOML table that marks a file as a historical mapping.
MAPPING_TABLE = "historical"
DATA_PLACEHOLDER = "@data"
DATA_DIR_PLACEHOLDER = "@data_dir/"
FORMATS = ("csv", "parquet", "ote-dayahead")
LABELS = ("start", "end")
AMBIGUOUS = ("error", "infer", "first", "second")
NONEXISTENT = ("error", "drop")
MISSING = ("gap", "zero", "zero_when_dark")
GAPS = ("fill", "keep")
PRICE_SOURCES = ("ote-cz-2024",)
CLOSURE_COLUMNS = ("ghi_w_m2", "dhi_w_m2", "dni_w_m2")


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One canonical column read from a source column.

    ``value = (raw × scale + offset)`` converted from ``unit``, then clipped to
    ``[clip_min, clip_max]`` when given. ``missing`` says what an empty cell means: a gap
    (filled by the gap policy), zero, or zero while the sun is below the horizon (PV meters
    that log nothing at night). ``gaps = "keep"`` leaves gaps as NaN (for columns that are not
    scenario inputs, e.g. an archived forecast).
    """

    name: str
    column: str
    unit: str
    scale: float = 1.0
    offset: float = 0.0
    missing: str = "gap"
    gaps: str = "fill"
    clip_min: float | None = None
    clip_max: float | None = None


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """One file and how to read its time axis."""

    file: str
    columns: tuple[ColumnSpec, ...]
    format: str = ""
    time_column: str = ""
    time_format: str = ""
    timezone: str = "UTC"
    label: str = "start"
    ambiguous: str = "error"
    nonexistent: str = "error"
    start: str = ""
    interval_minutes: float | None = None


@dataclass(frozen=True, slots=True)
class GapPolicy:
    """How gaps (missing rows or empty cells) on the output grid are filled, per column.

    Gaps up to ``interpolate_max_minutes`` are interpolated linearly (held at the edges);
    longer ones up to ``fill_max_hours`` take the value at the same time of week from the
    nearest week that has one; anything longer is an error. ``dark_elevation_deg`` is the
    sun elevation below which ``missing = "zero_when_dark"`` reads an empty cell as 0.
    """

    interpolate_max_minutes: float = bounded(0.0, 1440.0, "min", default=60.0)
    fill_max_hours: float = bounded(0.0, 24.0 * 31, "h", default=48.0)
    dark_elevation_deg: float = bounded(-10.0, 20.0, "deg", default=0.0)

    def __post_init__(self) -> None:
        check_bounds(self)


@dataclass(frozen=True, slots=True)
class ClimatologySpec:
    """An outdoor temperature curve from monthly normals, for data without a measurement.

    Mean-preserving seasonal curve through ``monthly_mean_c`` (Jan..Dec) plus a diurnal
    cosine peaking at 15:00 solar time, amplitude blended between winter and summer.
    """

    monthly_mean_c: tuple[float, ...] = bounded(-50.0, 50.0, "°C", default=(0.0,) * 12, length=12)
    diurnal_amplitude_winter_k: float = bounded(0.0, 15.0, "K", default=2.0)
    diurnal_amplitude_summer_k: float = bounded(0.0, 15.0, "K", default=5.0)
    source: str = ""

    def __post_init__(self) -> None:
        check_bounds(self)


@dataclass(frozen=True, slots=True)
class DerivedSpec:
    """A column derived from others.

    ``name = from × scale + offset`` (``kind = "linear"``), or one of GHI, DNI, DHI by the
    closure ``GHI = DNI·cos z + DHI`` from the other two (``kind = "closure"``), or an arithmetic
    expression of other columns in ``source`` (``kind = "expression"``, ``scenarios.history.expression``).
    """

    name: str
    kind: str
    source: str = ""
    scale: float = 1.0
    offset: float = 0.0


@dataclass(frozen=True, slots=True)
class HistoricalMapping:
    """A parsed mapping file; ``path`` is where it was read from (relative files resolve there)."""

    path: Path
    sources: tuple[SourceSpec, ...]
    timezone: str
    step_minutes: float
    name: str = ""
    version: int = 1
    description: str = ""
    provenance: str = ""
    licence: str = ""
    currency: str = "EUR"
    start: dt.datetime | dt.date | None = None
    end: dt.datetime | dt.date | None = None
    seed: int = 0
    location: Location | None = None
    gaps: GapPolicy = GapPolicy()
    constants: Mapping[str, float] = field(default_factory=dict)
    derived: tuple[DerivedSpec, ...] = ()
    tariff: Tariff | None = None
    climatology: ClimatologySpec | None = None
    comfort_schedule: ComfortScheduleParams | None = None
    forecast_errors: ForecastErrorParams = ForecastErrorParams()
    archived_forecasts: Mapping[str, str] = field(default_factory=dict)
    pv_capacity_kw: float | None = None
    country: str | None = None
    subdivision: str | None = None
    identify: Mapping[str, Any] = field(default_factory=dict)  # read by ``pems identify``

    def columns(self) -> list[str]:
        """Every canonical column this mapping produces, in order."""
        names = [c.name for s in self.sources for c in s.columns]
        names += list(self.constants) + [d.name for d in self.derived]
        if self.tariff is not None:
            names += ["spot_price_per_kwh", "import_price_per_kwh", "export_price_per_kwh"]
        if self.climatology is not None:
            names.append("outdoor_temp_c")
        if self.comfort_schedule is not None:
            names.append("comfort_mode")
        return names

    def resolve(self, file: str, data: Path | None) -> Path:
        """The path of a source ``file``, resolving the ``@data`` placeholders."""
        if file == DATA_PLACEHOLDER:
            if data is None:
                raise ScenarioError(f"{self.path}: a source reads {DATA_PLACEHOLDER}: give the data file "
                                    f"(--data FILE)")
            return data
        if file.startswith(DATA_DIR_PLACEHOLDER):
            if data is None:
                raise ScenarioError(f"{self.path}: a source reads {file}: give the data file (--data FILE)")
            return data.parent / file[len(DATA_DIR_PLACEHOLDER):]
        path = Path(file)
        return path if path.is_absolute() else (self.path.parent / path).resolve()
