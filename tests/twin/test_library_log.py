"""``twin.library_log``: library warnings go to the run's log file and are counted, not printed."""

from __future__ import annotations

import logging

from twin.library_log import SOLVER_LOGGER, library_log


def test_warnings_go_to_the_file_and_are_summarised(tmp_path, capsys):
    path = tmp_path / "solver.log"
    pyomo_logger = logging.getLogger("pyomo.core")
    with library_log(path) as summary:
        pyomo_logger.warning("Loading a SolverResults object with a warning status")
        pyomo_logger.warning("second warning")
        logging.getLogger(SOLVER_LOGGER).debug("Running HiGHS 1.16.0")
        logging.getLogger(SOLVER_LOGGER).debug("WARNING: Problem has some excessively small bounds")
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    text = path.read_text(encoding="utf-8")
    assert "second warning" in text and "Running HiGHS" in text
    assert summary.warnings == 3  # HiGHS's own WARNING line counts too
    line = summary.line("run/solver.log")
    assert line is not None and "3 solver/library warning(s)" in line and "run/solver.log" in line


def test_loggers_are_restored_afterwards(tmp_path):
    logger = logging.getLogger("pyomo")
    before = (logger.propagate, logger.level, list(logger.handlers))
    with library_log(tmp_path / "solver.log") as summary:
        pass
    assert (logger.propagate, logger.level, list(logger.handlers)) == before
    assert summary.line() is None
