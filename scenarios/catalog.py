"""Named, versioned synthetic scenarios, defined by TOML spec files in ``scenarios/specs/``.

A spec file holds one ``[synthetic_scenario]`` table (the marker other loaders can skip on),
with optional sub-tables ``location``, ``tariff``, ``climate``, ``load``, ``ev``, ``comfort``
and ``forecast_errors`` whose keys are the fields of the matching dataclasses in
:mod:`scenarios.synthetic`, :mod:`scenarios.prices` and :mod:`scenarios.forecast_errors`::

    [synthetic_scenario]
    name = "winter-week-v1"     # must end in -v<version>
    version = 1
    description = "..."
    start = 2024-01-15          # local date; the scenario starts at its midnight
    days = 7
    step_minutes = 15
    seed = 20240115

    [synthetic_scenario.ev]
    weekend_trip_probability = 0.3

Versions and what changed between them: ``scenarios/specs/README.md``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from scenarios.synthetic import generate
from scenarios.synthetic_spec import SyntheticSpec
from twin.errors import ConfigError, ScenarioError
from twin.params import build
from twin.registry import ScenarioEntry
from twin.scenario import Scenario

#: The TOML table that marks a file as a synthetic scenario spec.
SPEC_TABLE = "synthetic_scenario"


def spec_from_dict(data: Mapping[str, Any], source: str = "<spec>") -> SyntheticSpec:
    """Parse a spec from parsed TOML (the whole document, with its ``[synthetic_scenario]`` table).

    Raises
    ------
    ScenarioError
        Naming ``source`` and the dotted field, its value and the allowed range or values.
    """
    if SPEC_TABLE not in data:
        raise ScenarioError(f"{source}: no [{SPEC_TABLE}] table")
    extra = sorted(set(data) - {SPEC_TABLE})
    if extra:
        raise ScenarioError(f"{source}: unexpected top-level key {extra[0]!r}; everything belongs in "
                            f"[{SPEC_TABLE}]")
    table = data[SPEC_TABLE]
    try:
        spec = build(SyntheticSpec, table, SPEC_TABLE)
    except ConfigError as exc:
        raise ScenarioError(f"{source}: {exc}") from None
    suffix = f"-v{spec.version}"
    if not spec.name.endswith(suffix):
        raise ScenarioError(f"{source}: {SPEC_TABLE}.name = {spec.name!r} must end with {suffix!r} "
                            f"(version = {spec.version})")
    return spec


def load_spec(path: str | Path) -> SyntheticSpec:
    """Read and validate a spec file; a malformed one raises ScenarioError naming file and field."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"{path}: spec file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: not valid TOML ({exc})") from None
    return spec_from_dict(data, str(path))


def load_spec_file(path: str | Path) -> Scenario | None:
    """The ``pems.scenario_files`` loader: a Scenario, or None when ``path`` is not a synthetic spec.

    Files without the ``.toml`` extension, and TOML files without a ``[synthetic_scenario]``
    table, return None so that other loaders can try. A spec that has the table but is
    malformed raises ScenarioError naming the file and the field.
    """
    path = Path(path)
    if path.suffix.lower() != ".toml" or not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        if f"[{SPEC_TABLE}" in text:  # meant to be a spec: say what is wrong
            raise ScenarioError(f"{path}: not valid TOML ({exc})") from None
        return None  # perhaps another loader's format
    if SPEC_TABLE not in data:
        return None
    return generate(spec_from_dict(data, str(path)))


def bundled_specs() -> list[SyntheticSpec]:
    """The specs shipped in ``scenarios/specs/``, sorted by name."""
    specs = []
    folder = resources.files("scenarios").joinpath("specs")
    for item in folder.iterdir():
        if item.name.endswith(".toml"):
            with resources.as_file(item) as file:
                specs.append(load_spec(file))
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ScenarioError(f"scenarios/specs: scenario name(s) {duplicates} defined twice")
    return sorted(specs, key=lambda s: s.name)


def _loader(spec: SyntheticSpec):  # noqa: ANN202 - a zero-argument factory
    return lambda: generate(spec)


def catalog() -> list[ScenarioEntry]:
    """The ``pems.scenarios`` entry point: one entry per bundled spec (generated on load)."""
    return [ScenarioEntry(name=spec.name, description=spec.description, load=_loader(spec))
            for spec in bundled_specs()]
