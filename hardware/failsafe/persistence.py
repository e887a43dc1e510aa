"""What a controller must remember across a crash: sequence numbers, its last plan, its safety history.

docs/failsafe.md F10: a restarted controller starts in SAFE, reads every device, reconciles what they
run with the plan it persisted (their ``seq`` against the plan's), and only then commands —
with sequence numbers above any it used before (devices ignore ``seq`` ≤ the last they took,
so a reused number would be a lost command, and an old plan replayed a duplicate actuation).

The state file is JSON, replaced atomically (write a temporary sibling, fsync, rename, fsync
the folder): a crash leaves the old file or the new one, never half of either. Sequence
numbers (a session epoch and a counter, ``hardware.wire.sequence``) are reserved ahead
(:data:`SEQ_HEADROOM`) so that the file is written rarely for them, not for every command; a
restart starts an epoch newer than the reservation's even if the wall clock went backwards.
The plan (last command per device) and the safety layer's history
(relay changes, battery mode, EV current: minimum on/off times hold across a restart) are
written before each decision's commands go out.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from hardware.devices import SequenceCounter
from hardware.errors import LiveError
from hardware.wire.sequence import compose, split
from twin.output import write_atomically
from twin.safety import SafetyHistory

FORMAT_VERSION = 1
#: Sequence numbers reserved ahead of use (counter values of the session epoch, ``hardware.wire.sequence``).
SEQ_HEADROOM = 600_000_000


@dataclass(frozen=True, slots=True)
class PlannedCommand:
    """The last command sent to one device."""

    device: str  # "heating.<room>", "battery", "ev"
    key: str  # command topic key
    seq: int
    expected: dict[str, Any]  # what its status shows when it obeys (``hardware.failsafe.readback``)
    until_wall_s: float  # Unix time its lease ends
    sent_wall_s: float


@dataclass(frozen=True, slots=True)
class ControllerState:
    house: str
    seq_reserved: int  # every sequence number used so far is ≤ this
    plan: tuple[PlannedCommand, ...] = ()
    safety: SafetyHistory | None = None
    saved_wall_s: float = 0.0
    version: int = FORMAT_VERSION


def write_json_durably(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` with ``data`` atomically and durably (temp + fsync + rename + fsync dir)."""
    write_atomically(path, lambda tmp: tmp.write_text(json.dumps(data), encoding="utf-8"), durable=True)


def _state_from_json(data: dict[str, Any]) -> ControllerState:
    safety = data.get("safety")
    if safety is not None:
        battery = safety.get("battery")
        safety = SafetyHistory(
            relay_on=None if safety["relay_on"] is None else tuple(bool(x) for x in safety["relay_on"]),
            relay_changed_at_s=tuple(float(x) for x in safety["relay_changed_at_s"]),
            relay_switches_s=tuple(tuple(float(t) for t in room) for room in safety["relay_switches_s"]),
            battery=None if battery is None else (str(battery[0]), float(battery[1]),
                                                  None if battery[2] is None else float(battery[2])),
            battery_changed_at_s=float(safety["battery_changed_at_s"]),
            ev_power_kw=None if safety["ev_power_kw"] is None else float(safety["ev_power_kw"]),
            ev_changed_at_s=float(safety["ev_changed_at_s"]))
    plan = tuple(PlannedCommand(device=str(p["device"]), key=str(p["key"]), seq=int(p["seq"]),
                                expected=dict(p["expected"]), until_wall_s=float(p["until_wall_s"]),
                                sent_wall_s=float(p["sent_wall_s"])) for p in data.get("plan", ()))
    return ControllerState(house=str(data["house"]), seq_reserved=int(data["seq_reserved"]), plan=plan, safety=safety,
                           saved_wall_s=float(data.get("saved_wall_s", 0.0)), version=int(data["version"]))


class StateStore:
    """The controller's state file (``failsafe.state_file``); ``None`` path: remember nothing."""

    def __init__(self, path: str | Path | None, house: str) -> None:
        self.path = Path(path) if path else None
        self.house = house
        self.writes = 0
        self._lock = threading.Lock()
        self._state = ControllerState(house=house, seq_reserved=-1)
        self._staged_safety: SafetyHistory | None = None

    def load(self) -> ControllerState | None:
        """The state a previous run left (``None`` if there is none); a file that does not parse is an error."""
        if self.path is None or not self.path.exists():
            return None
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            state = _state_from_json(data)
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise LiveError(f"{self.path}: the controller's state file cannot be read ({exc}); move it away to "
                            f"start without it (sequence numbers then restart from the wall clock)") from None
        if state.version != FORMAT_VERSION:
            raise LiveError(f"{self.path}: state file format {state.version}, this version reads {FORMAT_VERSION}")
        if state.house != self.house:
            raise LiveError(f"{self.path}: the state of house {state.house!r}, not {self.house!r}")
        with self._lock:
            self._state = state
        return state

    @property
    def state(self) -> ControllerState:
        return self._state

    def _write(self, state: ControllerState) -> None:
        self._state = state
        if self.path is None:
            return
        data = asdict(state)
        write_json_durably(self.path, data)
        self.writes += 1

    def reserve(self, seq: int) -> None:
        """Make sure ``seq`` is covered by the persisted reservation before it is used."""
        with self._lock:
            if seq > self._state.seq_reserved:
                self._write(replace(self._state, seq_reserved=seq + SEQ_HEADROOM, saved_wall_s=time.time()))

    def stage_safety(self, safety: SafetyHistory | None) -> None:
        """The safety history after this decision's filter: written with the decision's plan."""
        with self._lock:
            self._staged_safety = safety

    def save_plan(self, plan: dict[str, PlannedCommand], safety: SafetyHistory | None = None) -> None:
        """Persist the latest command per device (merged into the previous plan) and the safety history.

        ``safety`` defaults to the history staged by :meth:`stage_safety` (the live safety filter
        stages it before the plant applies the command, so both reach the disk in one write).
        """
        with self._lock:
            merged = {p.device: p for p in self._state.plan}
            merged.update(plan)
            history = safety if safety is not None else self._staged_safety
            self._write(replace(self._state, plan=tuple(merged[d] for d in sorted(merged)), safety=history,
                                 saved_wall_s=time.time()))


class PersistentSequence(SequenceCounter):
    """Sequence numbers of one session epoch (``hardware.wire.sequence``) that never repeat across restarts.

    The epoch is the wall clock at the start, and always newer than any epoch the persisted
    reservation covers (a restart within the same second still gets a newer one);
    :meth:`resync` starts a newer epoch during the run (a device reported a number we never sent).
    """

    def __init__(self, store: StateStore) -> None:
        previous_epoch = split(store.state.seq_reserved)[0] if store.state.seq_reserved >= 0 else -1
        self.epoch = max(int(time.time()), previous_epoch + 1)
        super().__init__(compose(self.epoch, 0))
        self.store = store
        self._lock = threading.Lock()
        self.resyncs = 0

    def next(self) -> int:
        with self._lock:
            self._last += 1
            if split(self._last)[0] != self.epoch:  # the counter ran out: a new epoch
                self.epoch += 1
                self._last = compose(self.epoch, 1)
            value = self._last
            self.store.reserve(value)
            return value

    def resync(self, seen: int) -> int:
        """Start an epoch newer than ours, the clock's and ``seen``'s (a number a device took); the new epoch."""
        with self._lock:
            self.epoch = max(self.epoch + 1, int(time.time()), split(seen)[0] + 1)
            self._last = compose(self.epoch, 0)
            self.resyncs += 1
            return self.epoch

    def at_least(self, seq: int) -> None:
        """Continue above ``seq`` (a number a device reported: never reuse it)."""
        with self._lock:
            if seq > self._last:
                self.epoch = max(self.epoch, split(seq)[0])
                self._last = seq
