"""The live run directory, written as the run goes so that a crash loses little.

Layout of ``--out DIR``::

    live.json          what runs (mode, controller, house, clock); rewritten atomically at the end
    commands.jsonl     one line per decision: the advice and what was sent (appended, flushed)
    published.jsonl    every device command that went out, with its sequence number
    events.jsonl       what the fail-safe machinery noticed: link states, alerts, overrides
    log/journal-N.jsonl every interval as it ends, appended and fsynced (the chunk not yet compacted)
    log/part-N.parquet the run log in chunks of ``flush_every`` intervals, each written atomically;
                       chunk N's journal is deleted once its part is on disk
    log.parquet        at the end (or after ``pems live finish``): all parts in one file (same schema
                       as a simulated run)
    kpis.json, plots/  at the end

Durability: an interval is on disk (journalled and fsynced) the moment it ends, so ``kill -9``
loses at most the decision in flight. A crashed run directory (``live.json`` still says
"running") is turned into a normal one by :func:`hardware.live.finish.finish_run`
(``pems live finish RUN_DIR``).

A directory that exists and is not empty is refused: a live log is measured history and is
never overwritten.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from twin.contracts import Command, Observation
from twin.errors import TwinError
from twin.house import IntervalRecord
from twin.output import json_ready, write_atomically
from twin.runlog import RunLogRecorder, RunLogRow

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


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot journal {type(value).__name__}")


def journal_line(row: RunLogRow, tz: tzinfo | None) -> str:
    """One interval as a journal line (NaN as JSON's ``NaN``, which Python reads back)."""
    return json.dumps({"tz": str(tz) if tz is not None else None, "row": list(row)}, default=_json_default) + "\n"


def read_journal_rows(path: Path) -> tuple[list[RunLogRow], tzinfo | None]:
    """The intervals of one journal; a torn last line (the crash came mid-write) is skipped."""
    rows: list[RunLogRow] = []
    tz: tzinfo | None = None
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
            values = entry["row"]
            row = RunLogRow(*(tuple(v) if isinstance(v, list) else v for v in values))
        except (ValueError, KeyError, TypeError):
            continue
        if entry.get("tz"):
            tz = _zone(entry["tz"])
        rows.append(row)
    return rows, tz


def _zone(name: str) -> tzinfo:
    """The zone a journal names (a fixed offset without a zone name reads back as UTC: same instants)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


class PartitionedRunLog:
    """A run-log recorder (``record()`` as ``twin.runlog.RunLogRecorder``) that is on disk as it goes.

    Every interval is appended to the open chunk's journal and fsynced when it is recorded (at
    the interval's end); every ``flush_every`` intervals the chunk is compacted into a Parquet part
    and its journal deleted.
    """

    def __init__(self, room_names: Sequence[str], out: Path, flush_every: int = 12, durable: bool = True) -> None:
        self.room_names = tuple(room_names)
        self.folder = Path(out) / PARTS
        self.flush_every = flush_every
        self.durable = durable
        self._chunk = RunLogRecorder(self.room_names)
        self._next_part = 0
        self._journal: IO[str] | None = None
        self.intervals = 0

    def _journal_path(self, part: int) -> Path:
        return self.folder / f"journal-{part:06d}.jsonl"

    def record(self, start: datetime, obs: Observation, command: Command | None, decide_time_s: float,
               interval: IntervalRecord) -> None:
        self._chunk.record(start, obs, command, decide_time_s, interval)
        self.intervals += 1
        row = self._chunk.last_row
        if self.durable and row is not None:
            if self._journal is None:
                self._journal = self._journal_path(self._next_part).open("a", encoding="utf-8")
            self._journal.write(journal_line(row, start.tzinfo))
            self._journal.flush()
            os.fsync(self._journal.fileno())

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
        if self._journal is not None:  # the part holds what the journal did: the journal goes
            self._journal.close()
            self._journal = None
        self._journal_path(self._next_part).unlink(missing_ok=True)
        self._next_part += 1
        self._chunk = RunLogRecorder(self.room_names)


def read_run_log(out: Path, room_names: Sequence[str] | None = None) -> pd.DataFrame:
    """The run log of a live run directory: ``log.parquet`` if it was consolidated, else its parts and journals.

    A journal whose part exists is a compaction the crash interrupted: the part wins. Journals
    need the house's ``room_names`` to be read (taken from the parts when not given).
    """
    out = Path(out)
    if (out / "log.parquet").exists():
        return pd.read_parquet(out / "log.parquet")
    folder = out / PARTS
    parts = {int(p.stem.split("-")[1]): p for p in folder.glob("part-*.parquet")}
    journals = {int(p.stem.split("-")[1]): p for p in folder.glob("journal-*.jsonl")}
    frames = {n: pd.read_parquet(p) for n, p in parts.items()}
    for n, path in journals.items():
        if n in frames:
            continue
        names = room_names if room_names is not None else _room_names(frames)
        if names is None:
            raise TwinError(f"{out}: a journal without the house's room names (give room_names)")
        recorder = RunLogRecorder(names)
        rows, tz = read_journal_rows(path)
        for row in rows:
            recorder.append_row(row, tz)
        if len(recorder):
            frames[n] = recorder.to_frame()
    if not frames:
        raise TwinError(f"{out}: no run log (neither log.parquet nor {PARTS}/part-*.parquet or journal-*.jsonl)")
    return pd.concat([frames[n] for n in sorted(frames)])


def _room_names(frames: Mapping[int, pd.DataFrame]) -> tuple[str, ...] | None:
    from twin.runlog import room_names_of

    for frame in frames.values():
        return tuple(room_names_of(frame))
    return None


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
