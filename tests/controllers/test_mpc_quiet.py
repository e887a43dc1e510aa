"""``pems simulate --controller mpc`` keeps the solver's chatter off the console (in the run's solver.log)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from twin.library_log import LOG_FILE_NAME

PEMS = shutil.which("pems") or str(Path(sys.executable).with_name("pems"))
SPECS = Path(__file__).resolve().parents[2] / "scenarios" / "specs"
#: What HiGHS, APPSI or Pyomo print when they talk on the console.
CHATTER = re.compile(r"highs|pyomo|changecoeff|^\s*warning", re.IGNORECASE)


def test_simulate_mpc_prints_no_solver_lines(tmp_path):
    # One winter day (the week's spec, shortened): enough re-plans with the car away and present,
    # which is where HiGHS used to warn about zero coefficients at every solve.
    spec = (SPECS / "winter-week-v1.toml").read_text(encoding="utf-8")
    spec = spec.replace('name = "winter-week-v1"', 'name = "winter-day-quiet-v1"').replace("days = 7", "days = 1")
    path = tmp_path / "winter-day.toml"
    path.write_text(spec, encoding="utf-8")
    out = tmp_path / "run"
    proc = subprocess.run([PEMS, "simulate", "--scenario", str(path), "--controller", "mpc", "--out", str(out),
                           "--no-plots"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = (proc.stdout + proc.stderr).splitlines()
    chatter = [line for line in lines if CHATTER.search(line)]
    assert len(chatter) == 0, f"{len(chatter)} solver lines on the console, e.g. {chatter[:3]}"
    # Real warnings (e.g. HiGHS's "excessively small bounds") are summarised in at most one line.
    assert sum("solver/library warning" in line for line in lines) <= 1
    log = (out / LOG_FILE_NAME).read_text(encoding="utf-8")
    assert "controllers.mpc.highs" in log, "HiGHS's own log did not reach the run's solver.log"
