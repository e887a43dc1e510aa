"""The data-quality summary every historical load produces: coverage, gaps and what was filled."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd


@dataclass(frozen=True, slots=True)
class ColumnQuality:
    """What one canonical column looked like on the output grid, before and after filling.

    Counts are output steps. ``coverage`` is the share of steps with a value in the source
    (empty cells read as zero by ``missing = "zero"/"zero_when_dark"`` count as present).
    """

    name: str
    origin: str  # "file.csv:column", "constant", "derived", "climatology", …
    steps: int
    present: int
    gaps: int
    longest_gap_steps: int
    longest_gap_start: str
    zero_filled: int
    interpolated: int
    week_filled: int
    left_missing: int

    @property
    def coverage(self) -> float:
        return self.present / self.steps if self.steps else 0.0


@dataclass(frozen=True, slots=True)
class SourceQuality:
    """One source file: rows read, rows dropped (non-existent local times), its interval."""

    file: str
    rows: int
    first: str
    last: str
    interval_minutes: float
    dropped_rows: tuple[str, ...] = ()
    missing_rows: int = 0


@dataclass(frozen=True, slots=True)
class DataQuality:
    """The summary of one load: per source and per column."""

    start: str
    end: str
    step_minutes: float
    sources: tuple[SourceQuality, ...]
    columns: tuple[ColumnQuality, ...]

    def column(self, name: str) -> ColumnQuality:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def as_frame(self) -> pd.DataFrame:
        rows = [dict(asdict(c), coverage=c.coverage) for c in self.columns]
        return pd.DataFrame(rows).set_index("name")

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "step_minutes": self.step_minutes,
                "sources": [asdict(s) for s in self.sources],
                "columns": [dict(asdict(c), coverage=round(c.coverage, 6)) for c in self.columns]}

    def lines(self) -> list[str]:
        """A plain-text summary, one line per source and column."""
        out = [f"data {self.start} .. {self.end} every {self.step_minutes:g} min"]
        for s in self.sources:
            dropped = f", dropped {len(s.dropped_rows)} row(s) at non-existent local times" if s.dropped_rows else ""
            out.append(f"  {s.file}: {s.rows} rows every {s.interval_minutes:g} min, {s.first} .. {s.last}, "
                       f"{s.missing_rows} missing row(s){dropped}")
        for c in self.columns:
            gap = (f", longest gap {c.longest_gap_steps} steps from {c.longest_gap_start}"
                   if c.longest_gap_steps else "")
            out.append(f"  {c.name:<24} {c.coverage:7.2%} covered, {c.gaps} gap(s){gap}; filled: "
                       f"{c.zero_filled} zero, {c.interpolated} interpolated, {c.week_filled} from another week; "
                       f"{c.left_missing} left missing  [{c.origin}]")
        return out
