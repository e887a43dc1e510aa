"""Live faults: the fault-injection scenarios of docs/failsafe.md §3, repeated, every figure measured at the devices.

A real Mosquitto on loopback, the device simulators of ``hardware.faultlab`` (which log every
command they receive and every change they make), and the real live runner as the controller
(``commissioning`` controller — it asks for a relay, battery or charger change at every 1 s
decision, so the safety envelope is under constant pressure — 5 s leases, keepalive 5 s,
heartbeats every 1 s). Phases:

1. **Broker faults**: ``--kills`` SIGKILLs (every fifth one while frozen, so unacknowledged QoS 1
   commands sit in paho's queue) and ``--freezes`` SIGSTOPs of 3 × keepalive, at random phases,
   each followed by a restart (same port) or SIGCONT.
2. **Controller death**: ``pems live`` as a subprocess, SIGKILLed (its last will) and SIGSTOPped
   (silent) ``--deaths`` times each, then restarted on the same state file.
3. **Intruders**: a read-only user publishes to every command topic over MQTT 3.1.1 and 5.
4. **Canaries**: the same measurements pointed at faults made on purpose (a naive paho client
   replaying after a crash, an out-of-envelope command, a relay flipped every second, a publish
   into a dead broker, an authorised second writer) — each must count more than zero, so the
   zeros above are measurements, not blind spots.

Prints each phase's figures; the last line of output is one JSON object. Needs ``mosquitto``,
``mosquitto_passwd`` (Debian ``mosquitto``). Takes about 15 minutes with the defaults.

    python -m benchmarks.live_faults [--kills 25] [--freezes 25] [--deaths 5] [--keepalive 5] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import random
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from rich.progress import Progress

from benchmarks.live_fault_attacks import canaries, intruders
from benchmarks.live_faults_lab import (
    HOUSE,
    MAX_COMMAND_AGE_S,
    TOPICS,
    Wire,
    _counts,
    _jsonl,
    _wait,
    lab_settings,
    sim_settings,
)
from hardware.failsafe.watchdog import LinkState
from hardware.faultlab.devices import DeviceSims
from hardware.faultlab.harness import LabController, lab_config, write_toml
from hardware.faultlab.metrics import (
    Outage,
    duplicate_accepted,
    lost_while_connected,
    percentiles,
    replayed_after_outage,
    stale_deliveries,
    switching_violations,
    unsafe_payloads,
)
from hardware.live.log import EVENTS, PUBLISHED
from hardware.live.parity import pems_executable
from hardware.wire.local_broker import LocalBroker

# --- phase 1: broker faults -----------------------------------------------------------------------------

def broker_faults(folder: Path, kills: int, freezes: int, keepalive_s: int, rng: random.Random,
                  progress: Progress) -> dict:
    with LocalBroker() as broker:
        sims = DeviceSims(HOUSE, TOPICS, broker.host, broker.port, sim_settings()).start()
        wire = Wire(broker)
        config = lab_config(broker.host, broker.port, state_file=folder / "state.json", keepalive_s=keepalive_s,
                            extra=lab_settings(keepalive_s))
        lab = LabController(config, folder / "run").start()
        faults = ["kill"] * kills + ["freeze"] * freezes
        rng.shuffle(faults)
        to_safe = {"kill": [], "freeze": []}
        recovery, first_command, outages, excluded = [], [], [], []
        task = progress.add_task("broker faults", total=len(faults))
        for k, kind in enumerate(faults):
            time.sleep(rng.uniform(2.0, 4.0))  # a random phase of the 1 s decision cycle
            fault_wall, fault_mono = time.time(), time.monotonic()
            if kind == "kill":
                if k % 5 == 0:  # frozen first: QoS 1 commands go unacknowledged, then the crash
                    broker.freeze()
                    time.sleep(0.8)
                crash_mono = time.monotonic()
                broker.kill()
                safe = lab.wait_state(LinkState.SAFE, 2 * keepalive_s + 5, after=fault_mono)
                to_safe["kill"].append(safe.mono_s - crash_mono)
                time.sleep(rng.uniform(0.2, 1.0))
                broker.start()
            else:
                broker.freeze()
                safe = lab.wait_state(LinkState.SAFE, 2 * keepalive_s + 5, after=fault_mono)
                to_safe["freeze"].append(safe.mono_s - fault_mono)
                time.sleep(max(0.0, 3 * keepalive_s - (time.monotonic() - fault_mono)))
                broker.thaw()
            back_wall, back_mono = time.time(), time.monotonic()
            outages.append(Outage(kind, fault_wall, back_wall))
            excluded.append((fault_wall - 0.1, safe.wall_s + 0.05))
            running = lab.wait_state(LinkState.RUNNING, 60, after=back_mono)
            recovery.append(running.mono_s - back_mono)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                after = [d.recv_mono for d in sims.accepted() if d.recv_mono > back_mono]
                if after:
                    first_command.append(min(after) - back_mono)
                    break
                time.sleep(0.02)
            progress.advance(task)
        time.sleep(2.0)
        result = lab.stop()
        sims.stop()
        wire.close()
        published = list(lab.plant.failsafe.outbox.published)
        stale_accepted, stale_rejected = stale_deliveries(sims.deliveries, MAX_COMMAND_AGE_S)
        figures = {
            "cycles": {"kill": kills, "freeze": freezes},
            "time_to_safe_after_crash_s": percentiles(to_safe["kill"]),
            "time_to_safe_after_freeze_s": percentiles(to_safe["freeze"]),
            "detection_bound_s": 2 * keepalive_s + 1,
            "recovery_to_running_s": percentiles(recovery),
            "recovery_to_first_accepted_command_s": percentiles(first_command),
            "unsafe_commands": len(unsafe_payloads(wire.commands, HOUSE, TOPICS)),
            "replayed_after_outage": replayed_after_outage(sims.deliveries, outages),
            "stale_accepted": stale_accepted,
            "stale_arrived_and_refused": stale_rejected,
            "duplicate_accepted": duplicate_accepted(sims.deliveries),
            "commands_published": len(published),
            "commands_lost_while_connected": lost_while_connected(published, sims.deliveries, excluded),
            "commands_purged_from_paho": lab.plant.failsafe.watchdog.purged,
            "relay_switching_violations": switching_violations(sims.changes, HOUSE.safety),
            "deliveries": len(sims.deliveries),
            "rejected_by_devices": _counts(d.result for d in sims.deliveries if d.result != "accepted"),
            "link_states": _counts(s["state"] for s in result.meta["link_states"]),
        }
    return figures


# --- phase 2: controller death --------------------------------------------------------------------------

def controller_deaths(folder: Path, deaths: int, keepalive_s: int, progress: Progress) -> dict:
    with LocalBroker() as broker:
        heeding = DeviceSims(HOUSE, TOPICS, broker.host, broker.port, sim_settings()).start()
        # Devices that heed neither will nor heartbeat: only their leases end their obedience. They
        # listen only (no status of their own on the same topics as the heeding devices').
        leases_only = DeviceSims(HOUSE, TOPICS, broker.host, broker.port,
                                 sim_settings(heartbeat_timeout_s=float("inf"), honour_will=False, feeds=set()),
                                 client_id="lease-sims").start()
        config = write_toml(lab_config(broker.host, broker.port, state_file=folder / "state.json",
                                       keepalive_s=keepalive_s, extra=lab_settings(keepalive_s)),
                            folder / "live.toml")
        on_will, on_heartbeat, on_lease, restart_to_command = [], [], [], []
        early = 0
        runs = []
        task = progress.add_task("controller deaths", total=2 * deaths)
        for k in range(2 * deaths):
            out = folder / f"run{k}"
            runs.append(out)
            started_wall, started = time.time(), time.monotonic()
            process = subprocess.Popen([pems_executable(), "live", "--config", str(config), "--controller",
                                        "commissioning", "--mode", "full", "--out", str(out), "--no-plots",
                                        "--log-level", "error"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            first = _wait(lambda s=started: [d.recv_mono for d in heeding.accepted() if d.recv_mono > s], 60)
            if k > 0 and first:
                restart_to_command.append(min(first) - started)
            time.sleep(2.5)
            died = time.monotonic()
            if k % 2 == 0:
                process.send_signal(signal.SIGKILL)  # the broker publishes the last will at once
                if _wait(lambda: set(heeding.sources().values()) == {"local"}, 10):
                    on_will.append(time.monotonic() - died)
            else:
                process.send_signal(signal.SIGSTOP)  # silent: only heartbeats and leases tell
                if _wait(lambda: set(heeding.sources().values()) == {"local"}, 10):
                    on_heartbeat.append(time.monotonic() - died)
            if _wait(lambda: set(leases_only.sources().values()) == {"local"}, 15):
                on_lease.append(time.monotonic() - died)
            if k % 2 == 1:
                process.send_signal(signal.SIGKILL)
                process.send_signal(signal.SIGCONT)
            process.wait(10)
            events = _jsonl(out / EVENTS)
            running = [e["wall_s"] for e in events if e["kind"] == "link_state" and e["message"].startswith("running")]
            if running:  # anything this run's devices took before it was RUNNING was an actuation before reconciling
                early += sum(1 for d in heeding.accepted() if started_wall < d.recv_wall < running[0])
            progress.advance(task)
        heeding.stop()
        leases_only.stop()
        published = [p for out in runs for p in _jsonl(out / PUBLISHED)]
    return {
        "cycles": {"sigkill": deaths, "sigstop": deaths},
        "device_fallback_on_last_will_s": percentiles(on_will),
        "device_fallback_on_heartbeat_loss_s": percentiles(on_heartbeat),
        "device_fallback_on_lease_end_s": percentiles(on_lease),
        "lease_s": 5.0,
        "restart_to_first_command_s": percentiles(restart_to_command),
        "duplicate_accepted": duplicate_accepted(heeding.deliveries) + duplicate_accepted(leases_only.deliveries),
        "sequence_numbers_reused": len(published) - len({p["seq"] for p in published}),
        "actuations_before_reconciliation": early,
        "relay_switching_violations": switching_violations(heeding.changes, HOUSE.safety),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=25)
    parser.add_argument("--freezes", type=int, default=25)
    parser.add_argument("--deaths", type=int, default=5, help="controller SIGKILLs, and as many SIGSTOPs")
    parser.add_argument("--intruder-rounds", type=int, default=10)
    parser.add_argument("--keepalive", type=int, default=5, help="broker keepalive [s] (≤ 5 on a LAN)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 unless every must-be-zero figure is 0 and every canary above 0 (for CI)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the controller's warnings (SAFE, stale rooms) are expected here
    rng = random.Random(args.seed)
    wall0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pems-live-faults-") as tmp, Progress() as progress:
        folder = Path(tmp)
        (folder / "broker").mkdir()
        (folder / "deaths").mkdir()
        phases = {"broker_faults": broker_faults(folder / "broker", args.kills, args.freezes, args.keepalive, rng,
                                                 progress)}
        print("broker faults:", json.dumps(phases["broker_faults"]), flush=True)
        phases["controller_deaths"] = controller_deaths(folder / "deaths", args.deaths, args.keepalive, progress)
        print("controller deaths:", json.dumps(phases["controller_deaths"]), flush=True)
        phases["intruders"] = intruders(args.intruder_rounds)
        print("intruders:", json.dumps(phases["intruders"]), flush=True)
        phases["canaries"] = canaries(folder)
        print("canaries (must be > 0):", json.dumps(phases["canaries"]), flush=True)
    b, d, i = phases["broker_faults"], phases["controller_deaths"], phases["intruders"]
    zeros = {
        "unsafe_commands": b["unsafe_commands"],
        "stale_or_replayed_deliveries_accepted": b["stale_accepted"] + b["replayed_after_outage"]
        + b["duplicate_accepted"] + d["duplicate_accepted"],
        "unauthorized_deliveries": i.get("unauthorized_deliveries"),
        "commands_lost_while_connected": b["commands_lost_while_connected"],
        "relay_switching_violations": sum(b["relay_switching_violations"].values())
        + sum(d["relay_switching_violations"].values()),
        "actuations_before_reconciliation": d["actuations_before_reconciliation"],
        "sequence_numbers_reused": d["sequence_numbers_reused"],
    }
    figures = {
        "benchmark": "live_faults", "seed": args.seed, "keepalive_s": args.keepalive,
        "wall_time_s": round(time.perf_counter() - wall0, 1), "machine": platform.machine(),
        "python": platform.python_version(), "must_be_zero": zeros, **phases,
    }
    print(json.dumps(figures))
    if args.check:
        blind = [k for k, v in phases["canaries"].items() if not v]
        if i.get("canary_authorised_deliveries") == 0:
            blind.append("canary_authorised_deliveries")
        failed = [k for k, v in zeros.items() if v]
        if failed or blind:
            raise SystemExit(f"non-zero: {failed}; canaries that saw nothing: {blind}")
    return figures


if __name__ == "__main__":
    main()
