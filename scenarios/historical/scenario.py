"""Scenarios built from recorded history through a mapping file (the ``pems.scenario_files`` loader).

A historical scenario's issued forecasts are never the recorded future: they are
``LeadTimeErrorForecasts`` on the actuals (synthetic errors growing with lead time, prices
exact only up to their publication) and, where the data archived a real forecast
(``[historical.archived_forecasts]``), that forecast instead (``ArchivedForecasts``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from scenarios.forecast_errors import LeadTimeErrorForecasts
from scenarios.historical.archived import ArchivedForecasts
from scenarios.historical.mapping import load_mapping, mapping_from_dict, read_mapping_text
from scenarios.historical.mapping_spec import HistoricalMapping
from scenarios.historical.quality import DataQuality
from scenarios.historical.reader import read_historical
from twin.errors import ScenarioError
from twin.scenario import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, ForecastModel, Scenario

SCENARIO_COLUMNS = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
log = logging.getLogger(__name__)


def build_scenario(mapping: HistoricalMapping, data: Path | None = None) -> tuple[Scenario, DataQuality]:
    """The scenario ``mapping`` describes, and the quality summary of its data."""
    if not mapping.name:
        raise ScenarioError(f"{mapping.path}: historical.name is required to build a scenario")
    if not mapping.name.endswith(f"-v{mapping.version}"):
        raise ScenarioError(f"{mapping.path}: historical.name = {mapping.name!r} must end with "
                            f"'-v{mapping.version}' (version = {mapping.version})")
    produced = mapping.columns()
    missing = [c for c in REQUIRED_COLUMNS if c not in produced]
    if missing:
        raise ScenarioError(f"{mapping.path}: a scenario needs column(s) {missing}; map them from a source, or "
                            f"use [historical.constants], [historical.climatology], [historical.prices] or "
                            f"[historical.comfort_schedule]")
    frame, quality = read_historical(mapping, data)
    for line in quality.lines():
        log.info("%s: %s", mapping.name, line)
    columns = [c for c in SCENARIO_COLUMNS if c in frame.columns]
    kept_gaps = [c for c in columns if frame[c].isna().any()]
    if kept_gaps:
        raise ScenarioError(f"{mapping.path}: scenario column {kept_gaps[0]!r} has gaps left (gaps = \"keep\"); "
                            f"scenario inputs must be complete")
    data_frame = frame[columns].copy()
    data_frame.index.freq = frame.index.freq
    forecasts: ForecastModel = LeadTimeErrorForecasts(data_frame.index, mapping.seed, mapping.forecast_errors)
    if mapping.archived_forecasts:
        forecasts = ArchivedForecasts(forecasts, {k: frame[v] for k, v in mapping.archived_forecasts.items()},
                                      data_frame.index)
    given = ("Issued forecasts: actuals with a synthetic lead-time error model (LeadTimeErrorForecasts, seed "
             f"{mapping.seed}); day-ahead prices exact up to their publication")
    if mapping.archived_forecasts:
        given += "; " + ", ".join(f"{k} from the archived column {v} where recorded (same value at every lead)"
                                  for k, v in mapping.archived_forecasts.items())
    metadata = {
        "source": "scenarios.historical",
        "mapping": str(mapping.path),
        "currency": mapping.currency,
        "licence": mapping.licence,
        "forecasts_given": given,
        "data_quality": json.dumps(quality.to_dict()),
    }
    if mapping.pv_capacity_kw is not None:
        metadata["pv_capacity_kw"] = str(mapping.pv_capacity_kw)
    if mapping.location is not None:
        loc = mapping.location
        metadata["location"] = json.dumps({"latitude_deg": loc.latitude_deg, "longitude_deg": loc.longitude_deg,
                                           "timezone": loc.timezone, "altitude_m": loc.altitude_m})
    if mapping.country:
        metadata["country"] = mapping.country
    extra = [c for c in frame.columns if c not in SCENARIO_COLUMNS]
    if extra:
        metadata["other_columns"] = ", ".join(extra)
    scenario = Scenario(name=mapping.name, data=data_frame, forecasts=forecasts, description=mapping.description,
                        provenance=f"{mapping.provenance} {given}.".strip(), metadata=metadata)
    return scenario, quality


def load_historical_scenario(path: str | Path, data: Path | None = None) -> Scenario:
    """Build the scenario of a mapping file (raises ScenarioError naming file and key or row)."""
    scenario, _ = build_scenario(load_mapping(path), data)
    return scenario


def load_mapping_file(path: str | Path) -> Scenario | None:
    """The ``pems.scenario_files`` loader: a Scenario, or None when ``path`` is not a historical mapping."""
    path = Path(path)
    if path.suffix.lower() != ".toml" or not path.is_file():
        return None
    data = read_mapping_text(path)
    if data is None:
        return None
    scenario, _ = build_scenario(mapping_from_dict(data, path))
    return scenario
