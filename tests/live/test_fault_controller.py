"""docs/failsafe.md §3 scenario 4: the controller itself dies, and comes back.

``pems live`` runs as a real subprocess that we SIGKILL (the broker publishes its last will)
or SIGSTOP (silent, still connected: no will). The devices must be back on their own rules at
once on the will, within the heartbeat timeout when the controller merely falls silent, and —
for a device that heeds neither — when its lease ends (≤ L + 1 s). A restarted controller
(same state file) reconciles before it commands and never reuses a sequence number.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from hardware.faultlab.devices import SimSettings
from hardware.faultlab.harness import lab_config, write_toml
from hardware.faultlab.metrics import duplicate_accepted, switching_violations
from hardware.live.log import EVENTS, PUBLISHED
from hardware.live.parity import pems_executable
from twin.config import reference_house

LEASE_S = 5.0
HOUSE = reference_house()


def start_controller(broker, tmp_path: Path, name: str) -> subprocess.Popen:
    config = write_toml(lab_config(broker.host, broker.port, state_file=tmp_path / "state.json", lease_s=LEASE_S),
                        tmp_path / "live.toml")
    return subprocess.Popen([pems_executable(), "live", "--config", str(config), "--controller", "commissioning",
                             "--mode", "full", "--out", str(tmp_path / name), "--no-plots", "--log-level", "warning"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for(condition, timeout_s: float, what: str, process: subprocess.Popen | None = None) -> float:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"pems live exited ({process.returncode}): {process.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
    return time.monotonic()


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def controller_processes():
    processes = []
    yield processes
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGCONT)
            p.kill()
        p.wait(10)


def test_last_will_releases_at_once_and_a_restart_reconciles_without_repeating(broker, make_sims, tmp_path,
                                                                               controller_processes):
    sims = make_sims()
    first = start_controller(broker, tmp_path, "run1")
    controller_processes.append(first)
    wait_for(lambda: len(sims.accepted()) >= 36, 40, "two decisions reaching the devices", first)
    assert set(sims.sources().values()) == {"pems"}
    killed = time.monotonic()
    first.send_signal(signal.SIGKILL)
    released = wait_for(lambda: set(sims.sources().values()) == {"local"}, 3, "every device on its own rule")
    assert released - killed < 1.0, "the last will hands every device back at once"
    assert {c.cause for c in sims.changes if c.mono > killed} <= {"will"}

    restart_wall, restart_mono = time.time(), time.monotonic()
    second = start_controller(broker, tmp_path, "run2")
    controller_processes.append(second)
    wait_for(lambda: any(d.recv_mono > restart_mono for d in sims.accepted()), 40, "the restarted controller", second)
    time.sleep(2.0)
    second.send_signal(signal.SIGTERM)
    assert second.wait(20) == 0

    assert duplicate_accepted(sims.deliveries) == 0, "a sequence number was used twice across the restart"
    assert not any(switching_violations(sims.changes, HOUSE.safety).values()), \
        "a device that fell back is not switched again before its minimum time"
    seqs = [d.seq for d in sims.deliveries]
    assert len(seqs) == len(set(seqs)), "no command was sent twice"
    events = read_jsonl(tmp_path / "run2" / EVENTS)
    assert any(e["kind"] == "plan_restored" for e in events), "the restarted controller found its persisted plan"
    running_wall = next(e["wall_s"] for e in events if e["kind"] == "link_state" and e["message"].startswith("running"))
    after = [d for d in sims.deliveries if d.recv_wall > restart_wall]
    assert after and min(d.recv_wall for d in after) >= running_wall, "no actuation before the reconciliation"
    published = read_jsonl(tmp_path / "run2" / PUBLISHED)
    first_seq_run2 = min(p["seq"] for p in published)
    assert first_seq_run2 > max(d.seq for d in sims.deliveries if d.recv_wall < restart_wall)
    for device in sims.devices:  # each device reported to the new controller before it was commanded
        first_cmd = min((d.recv_mono for d in after if d.device == device), default=None)
        if first_cmd is not None:
            assert any(restart_mono < t < first_cmd for t, name in sims.status_published if name == device)


def test_silent_controller_heartbeat_then_lease(broker, make_sims, tmp_path, controller_processes):
    heeding = make_sims()  # watches heartbeats (2 s) and the last will
    leases_only = make_sims(SimSettings(heartbeat_timeout_s=float("inf"), honour_will=False, feeds=set()),
                            client_id="lease-sims")  # listens only: one set of devices reports status
    controller = start_controller(broker, tmp_path, "run")
    controller_processes.append(controller)
    wait_for(lambda: len(leases_only.accepted()) >= 36 and len(heeding.accepted()) >= 36, 40, "commands", controller)
    stopped = time.monotonic()
    controller.send_signal(signal.SIGSTOP)  # frozen: still connected, no will, no heartbeats, no renewals
    on_heartbeat = wait_for(lambda: set(heeding.sources().values()) == {"local"}, 5, "heartbeat fallback")
    assert on_heartbeat - stopped <= heeding.settings.heartbeat_timeout_s + 0.5
    assert {c.cause for c in heeding.changes if c.mono > stopped} <= {"heartbeat_lost"}
    on_lease = wait_for(lambda: set(leases_only.sources().values()) == {"local"}, LEASE_S + 3, "lease fallback")
    assert on_lease - stopped <= LEASE_S + 1.0, "every device back on its own rule within L + 1 s"
    assert {c.cause for c in leases_only.changes if c.mono > stopped} <= {"lease_end"}
    assert not [d for d in heeding.deliveries if d.recv_mono > stopped + 0.2], "nothing came from a frozen controller"
