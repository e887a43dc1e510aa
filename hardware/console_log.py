"""Logging for the hardware commands: records to stderr at the chosen level, solver chatter kept off it."""

from __future__ import annotations

import logging
import sys

from twin.errors import ConfigError

#: Loggers whose records go to the run's log file only (solver chatter), never to the console.
QUIET_LOGGERS = ("pyomo", "cplex", "glpk", "cbc", "highs", "appsi")


def _not_solver(record: logging.LogRecord) -> bool:
    return not record.name.startswith(QUIET_LOGGERS)


def configure_logging(level: str) -> None:
    """Log to stderr at ``level`` (debug, info, warning, error); solver output goes to the run's log file."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ConfigError(f"--log-level {level!r} is not one of debug, info, warning, error")
    logging.basicConfig(level=numeric, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_not_solver)  # the run's log file (hardware.live.runner) keeps everything
