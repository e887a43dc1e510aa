"""Parity: does a controller do through the broker what it does in simulation?

:func:`live_session` plays a scenario window with ``pems emulate`` and drives it with
``pems live`` (two processes, as a user runs them) through a broker; :func:`simulate_window`
runs the same controller on the same window in pure simulation, recording what its safety
layer let through. :func:`compare` then says how many decisions were identical (the same relay
states, battery command, EV power and lease) and how far each KPI moved.

Where exact parity ends: the emulated devices obey a command when it *arrives* — a few
milliseconds after the decision, which is ``speed`` times as many house seconds — while the twin
obeys at the decision instant. The difference is tiny per decision, but a room that sits within
a hair of a thermostat threshold can flip a later decision; so the verdict is identical
command sequences where timing allows, and KPIs within 1 % otherwise.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hardware.emulator.emulated_house import scenario_window
from hardware.live.log import JOURNAL, read_journal, read_run_log
from hardware.live.observers import command_summary
from hardware.wire.local_broker import LocalBroker
from twin.config import HouseConfig, reference_house
from twin.contracts import Command, Observation
from twin.kpis import compute_kpis
from twin.registry import ControllerContext, load_scenario, make_controller
from twin.runner import RunResult, RunSettings, simulate
from twin.safety import SafetyLayer

#: KPIs compared (decision times are wall-clock measurements, and the balance residual is ~0 both ways).
PARITY_KPIS = ("cost", "import_kwh", "export_kwh", "pv_kwh", "self_consumption", "self_sufficiency",
               "discomfort_kh", "peak_import_kw", "battery_cycles", "ev_unmet_kwh", "relay_switches",
               "grid_limit_violation_kwh")
#: Below this, two KPI values count as equal whatever their ratio (e.g. 1e-15 kWh vs 0).
ABS_TOLERANCE = 1e-6
#: Two power setpoints this close are the same command: 1 mW, far below any inverter's resolution. The MPC's
#: arithmetic on readings that crossed the wire can differ in the last bits (−0.19999999999999557 vs
#: −0.1999999999999711 kW); no device can tell them apart.
POWER_TOLERANCE_KW = 1e-6


def pems_executable() -> str:
    return shutil.which("pems") or str(Path(sys.executable).with_name("pems"))


def live_config_text(broker: LocalBroker, scenario: str, speed: float, publish_period_s: float = 60.0,
                     decision_interval_s: float = 300.0, sample_wait_s: float = 2.0, keepalive_s: int = 5,
                     lockstep: bool = False) -> str:
    """A live.toml for running against ``pems emulate`` on ``broker``."""
    age = 3 * publish_period_s
    return (f'[broker]\nhost = "{broker.host}"\nport = {broker.port}\nconnect_timeout_s = 10\n'
            f'keepalive_s = {keepalive_s}\n'
            f'[clock]\nsource = "emulator"\nspeed = {speed}\nwait_s = 60\nlockstep = {str(lockstep).lower()}\n'
            f'[control]\ndecision_interval_s = {decision_interval_s}\nsample_wait_s = {sample_wait_s}\n'
            f'startup_wait_s = 10\n'
            f'[max_age]\nroom_temperature_s = {age}\nheating_status_s = {age}\nbattery_s = {age}\npv_s = {age}\n'
            f'grid_s = {age}\nev_charger_s = {age}\nmax_clock_skew_s = {max(30.0, speed)}\n'
            f'[forecasts]\nscenario = "{scenario}"\n')


def _hhmm(hour: float) -> str:
    minutes = round(hour * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def feeds_config_text(scenario: str, port: int, decision_interval_s: float = 300.0) -> str:
    """``[feeds]`` and ``[comfort]`` for a live run reading prices and weather from ``pems emulate --feeds-port``.

    The tariff and the comfort schedule are the synthetic scenario's own (so the feed path can give
    the controller exactly what the simulation does); PV and household load are replayed from the
    scenario (no feed carries them). Feeds are asked again at every decision.
    """
    import json as _json

    from hardware.emulator.feeds_server import scenario_tariff

    world = load_scenario(scenario)
    tariff = scenario_tariff(world)
    spec = _json.loads(world.metadata.get("spec", "{}")).get("comfort", {})
    wake, night = spec.get("weekday_wake_hour", 6.0), spec.get("weekday_night_hour", 22.0)
    weekend_wake, late = spec.get("weekend_wake_hour", 8.0), spec.get("weekend_night_hour", 23.0)
    away = (f'away = ["{_hhmm(spec["away_start_hour"])}-{_hhmm(spec["away_end_hour"])}"]\n'
            if spec.get("away_on_weekdays", False) else "")
    base = f"http://127.0.0.1:{port}"
    text = (f'[feeds]\ncache_dir = ""\npv_load = "scenario"\n'
            f'[feeds.http]\ntimeout_s = 5\nretries = 1\nbackoff_s = 0.1\n'
            f'[feeds.prices]\nurl = "{base}/services/PublicDataService"\nrefresh_s = {decision_interval_s}\n'
            f'[feeds.weather]\nurl = "{base}/v1/forecast"\nrefresh_s = {decision_interval_s}\n'
            f'[feeds.tariff]\n' + "".join(f"{k} = {v!r}\n" for k, v in tariff.items()))
    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
        start = wake if day in ("mon", "tue", "wed", "thu", "fri") else weekend_wake
        end = late if day in ("fri", "sat") else night  # Friday and Saturday evenings run late
        text += f'[comfort.{day}]\nday = ["{_hhmm(start)}-{_hhmm(end)}"]\n'
        if day not in ("sat", "sun"):
            text += away
    return text


@dataclass
class LiveSession:
    """A finished ``pems emulate`` + ``pems live`` pair and where they wrote."""

    out: Path
    live_returncode: int
    emulator_returncode: int
    live_stderr: str
    emulator_stdout: str
    emulator_journal: Path
    wall_s: float  # from the emulator's start to the live run's end

    def log(self) -> Any:
        return read_run_log(self.out)

    def journal(self) -> list[dict[str, Any]]:
        return read_journal(self.out / JOURNAL)

    def emulator_summary(self) -> dict[str, Any]:
        """The JSON summary ``pems emulate`` prints last."""
        lines = [line for line in self.emulator_stdout.splitlines() if line.startswith("{")]
        return json.loads(lines[-1]) if lines else {}


def _wait_for_line(path: Path, text: str, process: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise RuntimeError(f"pems live exited early ({process.returncode}): {path.read_text(errors='replace')}")
        time.sleep(0.05)
    raise RuntimeError(f"pems live did not get ready within {timeout_s} s: {path.read_text(errors='replace')}")


def live_session(broker: LocalBroker, folder: Path, controller: str, scenario: str, start: str, hours: float,
                 speed: float, mode: str = "full", publish_period_s: float = 60.0,
                 extra_live_args: tuple[str, ...] = (), timeout_s: float | None = None,
                 start_delay_s: float = 5.0, feeds_port: int | None = None, lockstep: bool = False) -> LiveSession:
    """Run ``pems live`` (``mode``) against ``pems emulate`` on ``broker``; both as subprocesses.

    The emulator's house clock starts ``start_delay_s`` wall seconds after it is announced: the live
    runner must have built its controller (the MPC's model: ~1–2 s) and connected by then, or its
    first decision is the next one on the clock and the two worlds start apart.
    """
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "live.toml"
    text = live_config_text(broker, scenario, speed, publish_period_s, lockstep=lockstep)
    if feeds_port is not None:  # prices and weather through the real feed clients, served by the emulator
        text += feeds_config_text(scenario, feeds_port)
    config.write_text(text, encoding="utf-8")
    feed_args = ("--feeds-port", str(feeds_port)) if feeds_port is not None else ()
    if lockstep:  # a co-simulation clock: no start delay, no wall pacing
        feed_args += ("--lockstep",)
    out = folder / "run"
    journal = folder / "emulator-commands.jsonl"
    live_err = folder / "live.stderr"
    pems = pems_executable()
    if timeout_s is None:  # lockstep runs as fast as the controller decides; give a loaded machine room
        timeout_s = 120.0 + hours * 120.0 if lockstep else 60.0 + hours * 3600.0 / speed * 2
    with live_err.open("w") as err:
        live = subprocess.Popen([pems, "live", "--config", str(config), "--controller", controller, "--mode", mode,
                                 "--out", str(out), "--speed", str(speed), "--no-plots", *extra_live_args],
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        _wait_for_line(live_err, "waiting for the emulator's clock", live, 60.0)
        wall0 = time.perf_counter()
        emulator = subprocess.run([pems, "emulate", "--scenario", scenario, "--broker", broker.address,
                                   "--speed", str(speed), "--start", start, "--hours", str(hours),
                                   "--publish-period-s", str(publish_period_s), "--start-delay-s", str(start_delay_s),
                                   "--journal", str(journal), *feed_args],
                                  capture_output=True, text=True, timeout=timeout_s)
        live.wait(timeout=60.0)
        wall_s = time.perf_counter() - wall0
    finally:
        if live.poll() is None:
            live.kill()
    return LiveSession(out=out, live_returncode=live.returncode, emulator_returncode=emulator.returncode,
                       live_stderr=live_err.read_text(errors="replace"),
                       emulator_stdout=emulator.stdout + emulator.stderr, emulator_journal=journal, wall_s=wall_s)


class _RecordingSafety:
    """The default safety layer of a simulation, remembering what it let through."""

    def __init__(self, house: HouseConfig) -> None:
        self.layer = SafetyLayer(house)
        self.names = house.room_names
        self.sent: list[dict[str, Any]] = []

    def __call__(self, command: Command, obs: Observation) -> Command:
        safe = self.layer(command, obs)
        self.sent.append({"time": obs.time.isoformat(), "sent": command_summary(safe, self.names)})
        return safe


def simulate_window(controller: str, scenario: str, start: str, hours: float,
                    house: HouseConfig | None = None,
                    decision_interval_s: float = 300.0) -> tuple[RunResult, list[dict[str, Any]]]:
    """The same controller on the same window, simulated; with the commands its safety layer sent."""
    house = house or reference_house()
    full = load_scenario(scenario)
    window = scenario_window(full, start, hours)
    # The data continues past the run's end (as the live run's forecasts read it: the calendar's next
    # days, not the window repeating itself): simulate from the window's start to the scenario's end
    # and stop after ``hours``.
    continued = full.window(window.start, full.end) if window.end < full.end else window
    policy = make_controller(controller, ControllerContext(house, None, decision_interval_s))
    safety = _RecordingSafety(house)
    result = simulate(house, continued, policy, RunSettings(decision_interval_s=decision_interval_s),
                      controller_name=controller, safety=safety, end_s=window.duration_s)
    return result, safety.sent


@dataclass(frozen=True)
class ParityReport:
    decisions: int
    identical: int
    first_difference: str | None
    kpis_sim: dict[str, Any]
    kpis_live: dict[str, Any]
    kpi_rel_diff: dict[str, float] = field(default_factory=dict)

    @property
    def same_commands(self) -> bool:
        return self.decisions > 0 and self.identical == self.decisions

    @property
    def max_kpi_rel_diff(self) -> float:
        return max(self.kpi_rel_diff.values(), default=0.0)

    def kpis_within(self, tolerance: float = 0.01) -> bool:
        return self.max_kpi_rel_diff <= tolerance


def _rel_diff(a: Any, b: Any) -> float:
    if a is None or b is None:
        return 0.0 if a is None and b is None else math.inf
    a, b = float(a), float(b)
    if abs(a - b) <= ABS_TOLERANCE:
        return 0.0
    return abs(a - b) / max(abs(a), abs(b))


def same_command(a: Any, b: Any) -> bool:
    """Equal, numbers within :data:`POWER_TOLERANCE_KW` (commands as :func:`command_summary` writes them)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_command(a[k], b[k]) for k in a)
    if _is_number(a) and _is_number(b):
        return math.isclose(a, b, rel_tol=0.0, abs_tol=POWER_TOLERANCE_KW)
    return type(a) is type(b) and a == b


def _is_number(value: Any) -> bool:
    return isinstance(value, float | int) and not isinstance(value, bool)


def compare(sim_commands: list[dict[str, Any]], live_commands: list[dict[str, Any]], sim_kpis: dict[str, Any],
            live_kpis: dict[str, Any]) -> ParityReport:
    """Decision by decision (by time) and KPI by KPI."""
    live_by_time = {entry["time"]: entry["sent"] for entry in live_commands}
    identical = 0
    first = None
    for entry in sim_commands:
        if same_command(live_by_time.get(entry["time"]), entry["sent"]):
            identical += 1
        elif first is None:
            first = entry["time"]
    diffs = {k: _rel_diff(sim_kpis.get(k), live_kpis.get(k)) for k in PARITY_KPIS}
    return ParityReport(decisions=len(sim_commands), identical=identical, first_difference=first,
                        kpis_sim={k: sim_kpis.get(k) for k in PARITY_KPIS},
                        kpis_live={k: live_kpis.get(k) for k in PARITY_KPIS}, kpi_rel_diff=diffs)


def parity(broker: LocalBroker, folder: Path, controller: str, scenario: str, start: str, hours: float,
           speed: float, house: HouseConfig | None = None,
           feeds_port: int | None = None, lockstep: bool = False) -> tuple[ParityReport, LiveSession]:
    """Run both worlds and compare them (the live side through ``broker``; with ``feeds_port``, its
    prices and weather through the OTE and Open-Meteo clients against the emulator's feed server)."""
    session = live_session(broker, folder, controller, scenario, start, hours, speed, feeds_port=feeds_port,
                           lockstep=lockstep)
    if session.live_returncode != 0 or session.emulator_returncode != 0:
        raise RuntimeError(f"live run failed ({session.live_returncode}, {session.emulator_returncode}): "
                           f"{session.live_stderr[-2000:]} {session.emulator_stdout[-2000:]}")
    sim, sim_commands = simulate_window(controller, scenario, start, hours, house)
    live_log = session.log()
    report = compare(sim_commands, session.journal(), sim.kpis, compute_kpis(live_log, house or reference_house()))
    return report, session
