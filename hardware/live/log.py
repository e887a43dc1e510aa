"""The live run directory, written as the run goes so that a crash loses little.

Layout of ``--out DIR``::

    live.json          what runs (mode, controller, house, clock); rewritten atomically at the end
    commands.jsonl     one line per decision: the advice and what was sent (appended, flushed)
    published.jsonl    every device command that went out, with its sequence number
    events.jsonl       what the fail-safe machinery noticed: link states, alerts, overrides
    log/part-*.parquet the run log in chunks of ``flush_every`` intervals, each written atomically
    log.parquet        at a clean end: all parts in one file (same schema as a simulated run)
    kpis.json, plots/  at a clean end

A directory that exists and is not empty is refused: a live log is measured history and is
never overwritten.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from twin.contracts import Command, Observation
from twin.errors import TwinError
from twin.house import IntervalRecord
from twin.output import json_ready, write_atomically
from twin.runlog import RunLogRecorder

PARTS = "log"
META = "live.json"
JOURNAL = "commands.jsonl"
EVENTS = "events.jsonl"  # link states, alerts, overrides, ... (hardware.failsafe.events)
PUBLISHED = "published.jsonl"  # every command published, with its sequence number (hardware.failsafe.outbox)


def check_run_directory(out: Path) -> None:
    """Refuse an ``out`` that exists and is not an empty directory."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TwinError(f"{out} exists and is not empty; a live run never overwrites one (choose another --out)")


def prepare_run_directory(out: Path) -> Path:
    """Create ``out`` (it must not exist, or be empty)."""
    check_run_directory(out)
    out = Path(out)
    (out / PARTS).mkdir(parents=True, exist_ok=True)
    return out


def write_json_atomically(path: Path, data: Mapping[str, Any]) -> None:
    write_atomically(path, lambda tmp: tmp.write_text(json.dumps(json_ready(data), indent=2) + "\n",
                                                      encoding="utf-8"))


class PartitionedRunLog:
    """A run-log recorder (``record()`` as ``twin.runlog.RunLogRecorder``) that writes parts as it goes."""

    def __init__(self, room_names: Sequence[str], out: Path, flush_every: int = 12) -> None:
        self.room_names = tuple(room_names)
        self.folder = Path(out) / PARTS
        self.flush_every = flush_every
        self._chunk = RunLogRecorder(self.room_names)
        self._next_part = 0
        self.intervals = 0

    def record(self, start: datetime, obs: Observation, command: Command | None, decide_time_s: float,
               interval: IntervalRecord) -> None:
        self._chunk.record(start, obs, command, decide_time_s, interval)
        self.intervals += 1

    @property
    def due(self) -> bool:
        """Enough intervals for the next part (the runner flushes between decisions, not during one)."""
        return len(self._chunk) >= self.flush_every

    def flush(self) -> None:
        """Write the intervals recorded since the last flush as the next part."""
        if not len(self._chunk):
            return
        frame = self._chunk.to_frame()
        path = self.folder / f"part-{self._next_part:06d}.parquet"
        write_atomically(path, lambda tmp: frame.to_parquet(tmp))
        self._next_part += 1
        self._chunk = RunLogRecorder(self.room_names)


def read_run_log(out: Path) -> pd.DataFrame:
    """The run log of a live run directory: ``log.parquet`` if the run ended cleanly, else its parts."""
    out = Path(out)
    if (out / "log.parquet").exists():
        return pd.read_parquet(out / "log.parquet")
    parts = sorted((out / PARTS).glob("part-*.parquet"))
    if not parts:
        raise TwinError(f"{out}: no run log (neither log.parquet nor {PARTS}/part-*.parquet)")
    return pd.concat([pd.read_parquet(p) for p in parts])


class CommandJournal:
    """Appends one JSON line per decision and flushes it, so the file survives a crash."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._file = self.path.open("a", encoding="utf-8")

    def write(self, entry: Mapping[str, Any]) -> None:
        self._file.write(json.dumps(json_ready(entry)) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_journal(path: Path) -> list[dict[str, Any]]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]
