"""What a live run says about each decision: observers of the runner loop (``twin.runner.DecisionObserver``).

* :class:`PlanPublisher` — the decision on ``pems/plan`` (advice and what was sent, retained),
  how it was made on ``pems/optim_status``, and an event (with an alert) whenever the source of
  the decisions changes (primary → last valid plan → fallback → device defaults);
* :class:`JournalWriter` — one line per decision in ``commands.jsonl`` (appended and flushed);
* :class:`Coverage` — how many decisions saw fresh readings and how many sent a command
  (a run that received no data must not report a perfect day).

Neither is inside the plant or the safety layer: the plant observes and applies, these report.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from hardware.failsafe.events import EventKind
from hardware.failsafe.fallback import GuardedController
from hardware.failsafe.layer import FailSafe
from hardware.live.log import CommandJournal
from hardware.wire.mqtt import Message
from hardware.wire.schemas import OptimStatus, dump
from hardware.wire.topics import TopicMap
from twin.contracts import Command, Observation
from twin.runner import PlanInfo
from twin.safety import STALE_GRID, RolloutMode


def command_summary(command: Command | None, room_names: tuple[str, ...]) -> dict[str, Any] | None:
    """A command as plain JSON data (for ``pems/plan`` and the command journal)."""
    if command is None:
        return None
    battery = command.battery
    return {
        "until": command.until.isoformat(),
        "relay_on": dict(zip(room_names, command.relay_on, strict=True)) if command.relay_on is not None else None,
        "battery": None if battery is None else {"mode": battery.mode.value, "power_kw": battery.power_kw,
                                                 "reserve_soc": battery.reserve_soc},
        "ev_power_kw": command.ev_power_kw,
        "plan_status": command.plan_label,
    }


class PlanPublisher:
    """``pems/plan``, ``pems/optim_status`` and the decision-source events (none in SIMULATION)."""

    def __init__(self, failsafe: FailSafe, topics: TopicMap, mode: RolloutMode, room_names: tuple[str, ...],
                 guard: GuardedController | None = None) -> None:
        self.failsafe = failsafe
        self.topics = topics
        self.mode = mode
        self.room_names = room_names
        self.guard = guard
        self._last_source = "primary"  # who decided last: primary, last_plan, fallback, defaults

    def on_decision(self, time: datetime, obs: Observation, command: Command, info: PlanInfo) -> None:
        if self.mode is not RolloutMode.SIMULATION:  # the mode the decision was made in (LiveSafety sets it)
            payload = {"ts": time.isoformat(), "mode": self.mode.value, "link": self.failsafe.state.value,
                       "advice": command_summary(info.advice, self.room_names),
                       "sent": command_summary(command, self.room_names)}
            self.failsafe.publish(Message(self.topics.topic("plan"), json.dumps(payload).encode(), retain=True))
        verdict = self.guard.verdict if self.guard is not None else None
        if verdict is None:
            return
        status = OptimStatus(ts=time, status=verdict.status, controller=self.guard.name[:128],
                             detail=verdict.detail[:1000])
        self.failsafe.publish(Message(self.topics.topic("optim_status"), dump(status), retain=True))
        if verdict.source != self._last_source:
            self.failsafe.events.record(EventKind.OPTIM_STATUS, f"decisions by {verdict.source} ({verdict.status})"
                                        + (f": {verdict.detail}" if verdict.detail else ""), alert=True)
            self._last_source = verdict.source

    def on_end(self, status: str) -> None:
        """Nothing to close: the controller's farewell on ``pems/status`` is the plant's."""


class JournalWriter:
    """``commands.jsonl``: per decision the time, stale inputs, link state, optim status, advice and sent."""

    def __init__(self, journal: CommandJournal, failsafe: FailSafe, room_names: tuple[str, ...],
                 guard: GuardedController | None = None) -> None:
        self.journal = journal
        self.failsafe = failsafe
        self.room_names = room_names
        self.guard = guard
        self.decisions = 0

    def on_decision(self, time: datetime, obs: Observation, command: Command, info: PlanInfo) -> None:
        verdict = self.guard.verdict if self.guard is not None else None
        self.journal.write({"time": time.isoformat(), "stale": sorted(obs.stale),
                            "fresh_readings": had_readings(obs, self.room_names), "link": self.failsafe.state.value,
                            "optim_status": None if verdict is None else verdict.status,
                            "advice": command_summary(info.advice, self.room_names),
                            "sent": command_summary(command, self.room_names)})
        self.decisions += 1

    def on_end(self, status: str) -> None:
        self.journal.close()


def had_readings(obs: Observation, room_names: tuple[str, ...]) -> bool:
    """Did the decision see the house? Not if every room's temperature and the grid meter were stale."""
    blind_rooms = all(f"room_temp_c.{room}" in obs.stale for room in room_names)
    return not (blind_rooms and STALE_GRID in obs.stale)


class Coverage:
    """Counts decisions with fresh readings and decisions that sent a command; ``fields()`` for the KPIs."""

    def __init__(self, room_names: tuple[str, ...], published: Callable[[], int], commands: bool) -> None:
        self.room_names = room_names
        self.published = published  # total device commands published so far
        self.commands = commands  # does this rollout mode command anything
        self.decisions = 0
        self.with_readings = 0
        self.with_commands = 0
        self._published = published()

    def on_decision(self, time: datetime, obs: Observation, command: Command, info: PlanInfo) -> None:
        self.decisions += 1
        self.with_readings += had_readings(obs, self.room_names)
        total = self.published()
        self.with_commands += total > self._published
        self._published = total

    def on_end(self, status: str) -> None:
        """Nothing to close."""

    def fields(self) -> dict[str, Any]:
        """``readings_coverage`` and ``commands_coverage`` (fractions of decisions; the latter ``None``
        in a mode that commands nothing), with the counts."""
        n = self.decisions
        return {"decisions": n, "decisions_with_readings": self.with_readings,
                "readings_coverage": self.with_readings / n if n else 0.0,
                "decisions_with_commands": self.with_commands if self.commands else None,
                "commands_coverage": (self.with_commands / n if n else 0.0) if self.commands else None}

    def summary(self) -> str:
        """A warning for the summary line when data or commands were missing ('' when complete)."""
        f = self.fields()
        parts = []
        if f["decisions_with_readings"] < f["decisions"]:
            parts.append(f"fresh readings at {f['decisions_with_readings']} of {f['decisions']} decisions")
        if self.commands and f["decisions_with_commands"] < f["decisions"]:
            parts.append(f"commands sent at {f['decisions_with_commands']} of {f['decisions']}")
        return ("; ".join(parts) + ": the KPIs cover only what was seen") if parts else ""
