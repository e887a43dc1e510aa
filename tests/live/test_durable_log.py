"""A crash must not lose the day: ``kill -9`` of ``pems live`` loses at most the decision in flight.

``pems live`` runs as a real subprocess against the fault lab's devices (decisions every second,
Parquet parts only every 30 intervals, so everything after the last part is in the journal),
and is SIGKILLed at random moments. ``pems live finish RUN_DIR`` must then turn the directory
into a finished one (log.parquet, kpis.json, plots) marked as ended by a crash, holding every
decision the command journal shows except at most the one in flight.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd

from hardware.faultlab.harness import lab_config, write_toml
from hardware.live.parity import pems_executable


def _decisions(run: Path) -> int:
    path = run / "commands.jsonl"
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text().splitlines() if line.strip())


def test_kill_9_at_random_moments_loses_at_most_the_decision_in_flight(broker, make_sims, tmp_path):
    make_sims()
    config = write_toml(lab_config(broker.host, broker.port, state_file=tmp_path / "state.json"),
                        tmp_path / "live.toml")
    rng = random.Random(12)
    kept, made = 0, 0
    for k in range(3):
        run = tmp_path / f"run{k}"
        process = subprocess.Popen([pems_executable(), "live", "--config", str(config), "--controller",
                                    "commissioning", "--mode", "full", "--out", str(run), "--no-plots",
                                    "--log-level", "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while _decisions(run) < 2:
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "pems live never decided"
            time.sleep(0.05)
        time.sleep(rng.uniform(1.0, 6.0))
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        decisions = _decisions(run)
        assert json.loads((run / "live.json").read_text())["status"] == "running"
        finished = subprocess.run([pems_executable(), "live", "finish", str(run)], capture_output=True, text=True,
                                  timeout=120)
        assert finished.returncode == 0, finished.stdout + finished.stderr
        meta = json.loads((run / "live.json").read_text())
        assert meta["status"] == "crashed" and meta["finished_by"] == "pems live finish"
        log = pd.read_parquet(run / "log.parquet")
        assert len(log) >= decisions - 1, f"{len(log)} intervals logged of {decisions} decisions"
        assert log.index.is_monotonic_increasing and not log.index.has_duplicates
        assert (run / "kpis.json").exists() and (run / "plots").is_dir()
        assert not (run / "log").exists(), "parts and journals consolidated"
        kept, made = kept + len(log), made + decisions
        again = subprocess.run([pems_executable(), "live", "finish", str(run)], capture_output=True, text=True,
                               timeout=60)
        assert again.returncode != 0 and "already ended" in again.stdout + again.stderr
    print(f"\nlog completeness after kill -9: {kept} of {made} decisions logged ({100 * kept / made:.1f} %; "
          f"the {made - kept} lost were in flight)")
