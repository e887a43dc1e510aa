"""Live speed: how fast a simulated day can go through a real broker and still match the simulation.

For each speed (fastest first), ``pems emulate`` plays a day of the scenario and ``pems live``
(FULL) drives it with the controller, through a throwaway Mosquitto on loopback; the same day
is simulated, and the two are compared decision by decision and KPI by KPI
(``hardware.live.parity``). Prints one line per speed, then the highest speed at which the command
sequences were identical and the wall time of the day at that speed; the last line of output is
one JSON object with the figures. Needs ``mosquitto`` (Debian package).

    python -m benchmarks.live_speed [--controller rule-based] [--speeds 1440,960,480] [--hours 24] [--all]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

from hardware.live.parity import parity
from hardware.wire.local_broker import LocalBroker


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--controller", default="rule-based")
    parser.add_argument("--scenario", default="winter-week-v1")
    parser.add_argument("--start", default="2024-01-15T00:00", help="local start of the day played")
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--speeds", default="2880,1920,1440,960,720,480,360,240",
                        help="comma-separated, tried fastest first")
    parser.add_argument("--all", action="store_true", help="try every speed, not only down to the first match")
    args = parser.parse_args(argv)
    speeds = sorted((float(s) for s in args.speeds.split(",")), reverse=True)

    runs = []
    best = None
    with tempfile.TemporaryDirectory(prefix="pems-live-speed-") as tmp, LocalBroker() as broker:
        for speed in speeds:
            report, session = parity(broker, Path(tmp) / f"x{speed:g}", args.controller, args.scenario, args.start,
                                     args.hours, speed)
            lag = session.emulator_summary().get("command_lag_wall_s") or {}
            run = {"speed": speed, "wall_time_s": round(session.wall_s, 1), "decisions": report.decisions,
                   "identical_decisions": report.identical, "same_commands": report.same_commands,
                   "first_difference": report.first_difference,
                   "max_kpi_rel_diff": report.max_kpi_rel_diff, "kpis_within_1pct": report.kpis_within(0.01),
                   "command_lag_p95_ms": round(lag.get("p95", float("nan")) * 1000, 1),
                   "command_lag_max_ms": round(lag.get("max", float("nan")) * 1000, 1),
                   "late_commands": session.emulator_summary().get("commands_after_next_reading")}
            runs.append(run)
            print(f"{speed:>7g}×: {session.wall_s:6.1f} s wall, {report.identical}/{report.decisions} decisions "
                  f"identical, max KPI difference {report.max_kpi_rel_diff:.2e}, command lag p95 "
                  f"{run['command_lag_p95_ms']} ms", flush=True)
            if report.same_commands and best is None:
                best = run
                if not args.all:
                    break
    figures = {
        "benchmark": "live_speed",
        "controller": args.controller,
        "scenario": args.scenario,
        "start": args.start,
        "simulated_hours": args.hours,
        "highest_speed_with_same_commands": best["speed"] if best else None,
        "wall_time_s_at_that_speed": best["wall_time_s"] if best else None,
        "kpi_max_rel_diff_at_that_speed": best["max_kpi_rel_diff"] if best else None,
        "runs": runs,
        "python": platform.python_version(),
    }
    if best:
        print(f"highest speed with the same command sequence: {best['speed']:g}× — a simulated "
              f"{args.hours:g} h took {best['wall_time_s']} s through the broker")
    else:
        print("no speed tried kept the command sequence identical")
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
