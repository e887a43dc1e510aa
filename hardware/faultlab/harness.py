"""A controller under test against the device simulators, on a throwaway broker: for tests and benchmarks.

:func:`lab_config` writes the live configuration of a fast real-time lab — 1 s decisions, 5 s
leases, keepalive 2 s, heartbeats every 0.25 s, the wall clock — and :class:`LabController`
runs ``hardware.live.runner.LiveRun`` (the real live runner: ``MqttHouse``, the fail-safe
machinery, the safety layer) in a thread of this process, so a test can watch its states while
it kills, freezes or restarts the broker. ``pems live`` in a subprocess (to kill the controller
itself) takes the same configuration as a TOML file (:func:`write_toml`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hardware.config import LiveConfig, live_config_from_dict
from hardware.failsafe.watchdog import LinkState, Transition
from hardware.live.runner import LiveRun, LiveRunOptions
from hardware.plant.mqtt_house import MqttHouse
from twin.config import HouseConfig, reference_house
from twin.contracts import Controller
from twin.runner import RunResult
from twin.safety import RolloutMode

#: Forecasts replayed on the calendar (the lab runs on the wall clock).
LAB_SCENARIO = "winter-week-v1"


def lab_config(host: str, port: int, *, state_file: Path | str = "", keepalive_s: int = 2, lease_s: float = 5.0,
               decision_interval_s: float = 1.0, max_age_s: float = 3.0,
               extra: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The live configuration of the lab as TOML-shaped data (``extra`` tables merged on top)."""
    data: dict[str, dict[str, Any]] = {
        "broker": {"host": host, "port": port, "keepalive_s": keepalive_s, "connect_timeout_s": 5,
                   "client_id": "pems-lab"},
        "clock": {"source": "wall"},
        "control": {"decision_interval_s": decision_interval_s, "sample_wait_s": 0.0, "startup_wait_s": 5.0,
                    "lease_s": lease_s, "decide_deadline_s": 0.5, "log_flush_intervals": 30},
        "max_age": {key: max_age_s for key in ("room_temperature_s", "heating_status_s", "outdoor_temperature_s",
                                                "battery_s", "pv_s", "grid_s", "ev_charger_s", "ev_car_s")},
        "failsafe": {"heartbeat_s": 0.25, "fresh_link_s": 1.0, "link_timeout_s": min(3.0, 2 * keepalive_s + 1),
                     "reconnect_min_s": 0.2, "reconnect_max_s": 1.0, "reconnect_timeout_s": 2.0,
                     "refused_retry_s": 2.0, "reconcile_timeout_s": 10.0, "readback_timeout_s": 1.5,
                     "readback_retries": 2, "override_hold_s": 30.0, "state_file": str(state_file)},
        "forecasts": {"scenario": LAB_SCENARIO},
    }
    for table, values in (extra or {}).items():
        data.setdefault(table, {}).update(values)
    return data


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def write_toml(data: Mapping[str, Any], path: Path) -> Path:
    """Write ``{table: {key: value}}`` (tables one level deep, sub-tables as dotted names) as TOML."""
    lines = []
    for table, values in data.items():
        lines.append(f"[{table}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items() if not isinstance(value, Mapping)]
        for key, value in values.items():
            if isinstance(value, Mapping):
                lines.append(f"[{table}.{key}]")
                lines += [f"{k} = {_toml_value(v)}" for k, v in value.items()]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(path)


class LabController:
    """A :class:`LiveRun` in a thread: ``start()``, watch :attr:`plant`, ``stop()`` for its :class:`RunResult`."""

    def __init__(self, config: LiveConfig | Mapping[str, Any], out: Path, controller_name: str = "commissioning",
                 mode: RolloutMode = RolloutMode.FULL, controller: Controller | None = None,
                 house: HouseConfig | None = None) -> None:
        self.config = config if isinstance(config, LiveConfig) else live_config_from_dict(config)
        self.out = Path(out)
        self.controller_name = controller_name
        self.mode = mode
        self.controller = controller
        self.house = house or reference_house()
        self.plant: MqttHouse | None = None
        self.result: RunResult | None = None
        self.failure: BaseException | None = None
        self._ready = threading.Event()
        self._run_obj: LiveRun | None = None
        self._thread: threading.Thread | None = None

    def _ready_cb(self, plant: MqttHouse) -> None:
        self.plant = plant
        self._ready.set()

    def _run(self) -> None:
        try:
            self.result = self._run_obj.run()
        except BaseException as exc:  # noqa: BLE001 - handed to the thread that asked for the run
            self.failure = exc
            self._ready.set()

    def start(self, timeout_s: float = 30.0, running: bool = True) -> LabController:
        """Start the run; wait until the broker answered (and, with ``running``, until it commands)."""
        options = LiveRunOptions(self.controller_name, self.mode, self.out, house=self.house, plots=False,
                                 controller=self.controller)
        self._run_obj = LiveRun(self.config, options, on_plant_ready=self._ready_cb)
        self._thread = threading.Thread(target=self._run, name="lab-controller", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise TimeoutError(f"the controller did not connect within {timeout_s} s")
        if self.failure is not None:
            raise self.failure
        if running:
            self.wait_state(LinkState.RUNNING, timeout_s)
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def transitions(self) -> list[Transition]:
        return list(self.plant.failsafe.watchdog.transitions) if self.plant is not None else []

    def wait_state(self, state: LinkState, timeout_s: float, after: float = -1.0) -> Transition:
        """The first transition into ``state`` at or after monotonic time ``after`` (waits for it)."""
        deadline = time.monotonic() + timeout_s
        while True:
            for transition in self.transitions:
                if transition.state is state and transition.mono_s >= after:
                    return transition
            if self.failure is not None:
                raise self.failure
            if time.monotonic() > deadline:
                states = [(t.state.value, round(t.mono_s - after, 3), t.reason) for t in self.transitions[-5:]]
                raise TimeoutError(f"no transition to {state.value} within {timeout_s} s (last: {states})")
            time.sleep(0.01)

    def stop(self, timeout_s: float = 30.0) -> RunResult:
        if self._run_obj is not None:
            self._run_obj.stop()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise TimeoutError("the live run did not stop")
        if self.failure is not None:
            raise self.failure
        return self.result
