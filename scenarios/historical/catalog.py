"""Named historical scenarios bundled with the project (``scenarios/historical/specs/*.toml``).

Each spec is a mapping file reading the small data excerpts in ``scenarios/historical/data``
(provenance and licence next to them). Entry point ``pems.scenarios``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from scenarios.historical.mapping import load_mapping
from scenarios.historical.mapping_spec import HistoricalMapping
from scenarios.historical.scenario import build_scenario
from twin.errors import ScenarioError
from twin.registry import ScenarioEntry
from twin.scenario import Scenario


def bundled_mappings() -> list[HistoricalMapping]:
    """The bundled historical specs, sorted by name."""
    folder = resources.files("scenarios.historical").joinpath("specs")
    mappings = []
    for item in folder.iterdir():
        if item.name.endswith(".toml"):
            mappings.append(load_mapping(Path(str(item))))
    names = [m.name for m in mappings]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ScenarioError(f"scenarios/historical/specs: scenario name(s) {duplicates} defined twice")
    return sorted(mappings, key=lambda m: m.name)


def bundled_mapping(name: str) -> HistoricalMapping:
    """The bundled mapping ``name`` (``historical/specs/<name>.toml``)."""
    for mapping in bundled_mappings():
        if mapping.name == name:
            return mapping
    raise ScenarioError(f"no bundled historical scenario {name!r}")


def _loader(mapping: HistoricalMapping):  # noqa: ANN202 - a zero-argument factory
    def load() -> Scenario:
        return build_scenario(mapping)[0]
    return load


def catalog() -> list[ScenarioEntry]:
    """The ``pems.scenarios`` entry point: one entry per bundled historical spec."""
    return [ScenarioEntry(name=m.name, description=m.description, load=_loader(m)) for m in bundled_mappings()]
