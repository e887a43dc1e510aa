"""Keep solver and library logs off the console: into a run's log file, summarised as one line.

Pyomo and the MPC's solver back-ends log through :mod:`logging` (APPSI hands HiGHS's own output to
the ``controllers.mpc.highs`` logger line by line). Without a handler, Python prints every WARNING
of them on stderr — during a long run, thousands of lines. :func:`library_log` sends those loggers
to one file for the duration of a run and counts the warnings, so that the console shows a single
summary line (:meth:`LibraryLogSummary.line`) and the details stay in the run directory.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

#: Loggers whose records go to the run's log file instead of the console.
LIBRARY_LOGGERS = ("pyomo", "controllers", "scenarios")
#: HiGHS's own log (written by the MPC's HiGHS back-end at DEBUG level).
SOLVER_LOGGER = "controllers.mpc.highs"
#: The name of the file in a run directory.
LOG_FILE_NAME = "solver.log"


@dataclass
class LibraryLogSummary:
    """Warnings (and worse) that went to the log file during a run."""

    path: Path
    warnings: int = 0
    first: str = ""
    _seen: set[str] = field(default_factory=set)

    def line(self, where: str | None = None) -> str | None:
        """One console line about the warnings, or None when there were none."""
        if not self.warnings:
            return None
        return (f"{self.warnings} solver/library warning(s), e.g. {self.first!r}; "
                f"details in {where or self.path}")


class _Counter(logging.Handler):
    """Counts WARNING records, and HiGHS's own ``WARNING: ...`` lines (which APPSI logs at DEBUG)."""

    def __init__(self, summary: LibraryLogSummary) -> None:
        super().__init__(level=logging.DEBUG)
        self.summary = summary

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.WARNING and not (
                record.name == SOLVER_LOGGER and record.getMessage().lstrip().upper().startswith("WARNING")):
            return
        self.summary.warnings += 1
        if not self.summary.first:
            self.summary.first = record.getMessage()[:200]


@contextmanager
def library_log(path: Path, loggers: tuple[str, ...] = LIBRARY_LOGGERS) -> Iterator[LibraryLogSummary]:
    """Send ``loggers`` (and the solver's own log) to ``path`` while the block runs.

    The loggers stop propagating to the root logger meanwhile, so nothing of them reaches the
    console; their previous state is restored afterwards.
    """
    summary = LibraryLogSummary(Path(path))
    file_handler = logging.FileHandler(path, encoding="utf-8")
    file_handler.setLevel(logging.DEBUG)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    counter = _Counter(summary)
    saved: list[tuple[logging.Logger, bool, int]] = []
    for name in loggers:
        logger = logging.getLogger(name)
        saved.append((logger, logger.propagate, logger.level))
        logger.addHandler(file_handler)
        logger.addHandler(counter)
        logger.propagate = False
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
    solver = logging.getLogger(SOLVER_LOGGER)
    solver_level = solver.level
    solver.setLevel(logging.DEBUG)
    try:
        yield summary
    finally:
        solver.setLevel(solver_level)
        for logger, propagate, level in saved:
            logger.removeHandler(file_handler)
            logger.removeHandler(counter)
            logger.propagate = propagate
            logger.setLevel(level)
        file_handler.close()
