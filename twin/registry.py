"""Discovery of controllers and scenarios through entry points, so that ``twin`` imports neither.

A package contributes by declaring, in its ``pyproject.toml``::

    [project.entry-points."pems.controllers"]
    mine = "my_pkg.catalog:controllers"      # () -> Iterable[ControllerEntry]
    [project.entry-points."pems.scenarios"]
    mine = "my_pkg.catalog:scenarios"        # () -> Iterable[ScenarioEntry]
    [project.entry-points."pems.scenario_files"]
    mine = "my_pkg.files:load"               # (Path) -> Scenario | None (None: not my format)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pandas as pd

from twin.config import HouseConfig
from twin.contracts import Controller
from twin.errors import RegistryError, ScenarioError
from twin.scenario import Scenario


@dataclass(frozen=True, slots=True)
class ControllerContext:
    """What a controller factory may use. ``scenario`` is ``None`` in live mode.

    ``options`` are controller-specific settings as text (``{"solver": "glpk"}``); a factory
    rejects keys it does not know with a ``ConfigError``, and may ignore them altogether.
    ``history`` is the recorded data *before* the run (the scenario's rows before its run
    window, canonical columns), for controllers that learn from the past; ``None`` when there
    is none. It never holds anything at or after the run's start.
    """

    house: HouseConfig
    scenario: Scenario | None
    decision_interval_s: float = 300.0
    seed: int = 0
    options: Mapping[str, str] = field(default_factory=dict)
    history: pd.DataFrame | None = None


@dataclass(frozen=True, slots=True)
class ControllerEntry:
    """A named controller factory, registered through the ``pems.controllers`` entry point."""

    name: str
    description: str
    make: Callable[[ControllerContext], Controller]
    #: True when the controller needs a scenario (e.g. an oracle); it then cannot run live.
    needs_scenario: bool = False
    #: True when the controller trains on ``ControllerContext.history`` (e.g. learned forecasts).
    needs_history: bool = False
    #: True when the controller plans with the observation's forecasts: a benchmark then writes
    #: a forecast scorecard (error by lead time) of the forecasts it planned with.
    uses_forecasts: bool = False


@dataclass(frozen=True, slots=True)
class ScenarioEntry:
    """A named scenario loader, registered through the ``pems.scenarios`` entry point."""

    name: str
    description: str
    load: Callable[[], Scenario]


def _collect(group: str) -> list[Any]:
    items = []
    for ep in sorted(entry_points(group=group), key=lambda e: e.name):
        items.extend(ep.load()())
    return items


@functools.cache
def controller_entries() -> dict[str, ControllerEntry]:
    """Every registered controller, by name."""
    return {e.name: e for e in _collect("pems.controllers")}


@functools.cache
def scenario_entries() -> dict[str, ScenarioEntry]:
    """Every registered named scenario, by name."""
    return {e.name: e for e in _collect("pems.scenarios")}


def controller_entry(name: str) -> ControllerEntry:
    """The registered controller ``name``; RegistryError listing the known names otherwise."""
    entries = controller_entries()
    if name not in entries:
        raise RegistryError(f"unknown controller {name!r}; known: {', '.join(sorted(entries))}")
    return entries[name]


def make_controller(name: str, context: ControllerContext) -> Controller:
    """Build the registered controller ``name`` for ``context``."""
    entry = controller_entry(name)
    if entry.needs_scenario and context.scenario is None:
        raise RegistryError(f"controller {name!r} needs a scenario (it sees the actual future)")
    if entry.needs_history and (context.history is None or context.history.empty):
        where = f"scenario {context.scenario.name!r}" if context.scenario is not None else "live mode"
        raise RegistryError(f"controller {name!r} trains on the data before the run, and {where} has none "
                            f"before its start: run a later window (pems bench --start DATE --days N)")
    return entry.make(context)


@functools.lru_cache(maxsize=16)
def _load_named(name: str) -> Scenario:
    return scenario_entries()[name].load()


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A registered scenario by name, or a scenario file any installed loader understands."""
    text = str(name_or_path)
    entries = scenario_entries()
    if text in entries:
        return _load_named(text)
    path = Path(text)
    if not path.exists():
        raise RegistryError(f"unknown scenario {text!r}: neither a registered name "
                            f"({', '.join(sorted(entries))}) nor an existing file")
    for ep in sorted(entry_points(group="pems.scenario_files"), key=lambda e: e.name):
        scenario: Scenario | None = ep.load()(path)
        if scenario is not None:
            return scenario
    raise ScenarioError(f"{path}: no scenario loader understands this file")


def iter_controller_names(include_oracles: bool = True) -> Iterable[str]:
    """Registered controller names, sorted; without those that need a scenario unless ``include_oracles``."""
    return sorted(n for n, e in controller_entries().items() if include_oracles or not e.needs_scenario)
