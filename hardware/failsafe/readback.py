"""Every command confirmed by its device; a change nobody commanded is a person, not a fault (docs/failsafe.md F11).

After a command goes out, its device must report — within ``readback_timeout_s`` — a status
carrying the command's sequence number (or a later one) and the commanded state (Home
Assistant's non-optimistic mode, evcc's ``syncCharger``). If it does not, the command is sent
again with a new sequence number (at most ``readback_retries`` times, within its lease), then an
alert goes to ``pems/alerts``.

Once confirmed, the device should stay as commanded while the lease runs. A status that differs
*without a new sequence number* — the wall switch, the inverter's app — is a manual override
(also when the device says ``source: "manual"``): the controller backs off that device for
``override_hold_s`` instead of fighting it, and records the event. A device reporting a
sequence number this controller never sent is being commanded by someone else: alert, and
back off too. A device back on its own rule (``source: "local"``, or its lease over) is not an
override. Times are ``time.monotonic()`` wall seconds; leases and holds are converted from
house seconds with the clock's speed.

One message never holds a device off: an override (a contradiction, ``source: "manual"``, an
unknown sequence number) must be seen in :data:`CORROBORATION` consecutive live statuses of the
device; a status that shows nothing wrong in between starts the count again. And a hold is
capped: it ends after ``override_hold_s`` or as soon as the device reports, in a live status,
that it is back under its own rule or ours (``source`` "local" or "pems" with no unknown
sequence number) — so a spoofed pair of statuses costs at most one status period of control.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from hardware.config import FailsafeConfig
from hardware.failsafe.events import EventKind, EventLog
from hardware.wire.schemas import BatteryStatus, ChargerStatus, HeatingStatus, Status

#: Consecutive live statuses that must show an override before the controller backs off.
CORROBORATION = 2
#: How long a device whose last status looked like an override waits for the next one [house s].
SUSPECT_WAIT_S = 120.0

#: What a device's status must show for a command to count as done: field → value.
Expected = Mapping[str, object]
#: A confirmed command counts as in force until this long before its lease ends [fraction of the lease].
LEASE_MARGIN = 0.1


@dataclass(slots=True)
class Pending:
    """A command waiting for its read-back."""

    device: str
    key: str  # command topic key
    topic: str
    seq: int
    expected: Expected
    payload: bytes
    sent_mono: float
    lease_end_mono: float
    first_sent_mono: float
    retries: int = 0


@dataclass(slots=True)
class Confirmed:
    seq: int
    expected: Expected
    lease_end_mono: float
    lease_wall_s: float


@dataclass(slots=True)
class ReadbackStats:
    confirmed: int = 0
    retries: int = 0
    missing: int = 0
    overrides: int = 0
    uncorroborated: int = 0  # statuses that looked like an override, not (yet) seen twice in a row
    latencies_s: list[float] = field(default_factory=list)  # first send → confirmation [wall s]


def status_fields(status: Status) -> dict[str, object]:
    """The fields of a device status that a command sets."""
    if isinstance(status, HeatingStatus):
        return {"state": status.state}
    if isinstance(status, BatteryStatus):
        return {"mode": status.mode}
    if isinstance(status, ChargerStatus):
        return {"enabled": status.enabled}
    return {}


def confirms(status: Status, expected: Expected) -> bool:
    """The status reports every commanded field, as commanded."""
    actual = status_fields(status)
    return all(actual.get(k) == v for k, v in expected.items())


def contradicts(status: Status, expected: Expected) -> bool:
    """The status reports a commanded field with another value (a field it leaves out proves nothing)."""
    actual = status_fields(status)
    return any(actual.get(k) is not None and actual.get(k) != v for k, v in expected.items())


#: ``resend(pending) -> new seq`` (``None`` when it could not be sent: not connected, lease over).
Resend = Callable[[Pending], "int | None"]


class ReadbackTracker:
    """Thread-safe: commands are registered by the control loop, statuses arrive on paho's thread."""

    def __init__(self, failsafe: FailsafeConfig, events: EventLog, speed: float = 1.0,
                 resync: Callable[[str, int], None] | None = None) -> None:
        self.config = failsafe
        self.resync = resync  # ``resync(device, seen_seq)``: a newer epoch for our sequence numbers
        self.events = events
        self.speed = speed
        self.stats = ReadbackStats()
        self._lock = threading.Lock()
        self._pending: dict[str, Pending] = {}
        self._confirmed: dict[str, Confirmed] = {}
        self._hold_until: dict[str, float] = {}
        self._known_seqs: dict[str, int] = {}  # device → the last seq this controller sent it
        self._suspect: dict[str, tuple[int, float]] = {}  # device → (statuses that look like an override, since)

    # --- the control loop -----------------------------------------------------------------------------

    def sent(self, device: str, key: str, topic: str, seq: int, expected: Expected, payload: bytes,
             lease_house_s: float, now: float | None = None) -> None:
        """A command goes out now (register it *before* publishing; :meth:`withdraw` if that fails)."""
        now = time.monotonic() if now is None else now
        lease_wall_s = lease_house_s / self.speed
        with self._lock:
            previous = self._pending.get(device)
            first = previous.first_sent_mono if previous is not None and previous.expected == expected else now
            self._pending[device] = Pending(device, key, topic, seq, dict(expected), payload, now, now + lease_wall_s,
                                            first)
            self._known_seqs[device] = max(seq, self._known_seqs.get(device, -1))

    def note_seq(self, device: str, seq: int) -> None:
        """``seq`` is about to go out to ``device`` (before publishing: its read-back may come back first)."""
        with self._lock:
            self._known_seqs[device] = max(seq, self._known_seqs.get(device, -1))

    def withdraw(self, device: str, seq: int) -> None:
        """The command registered with :meth:`sent` could not be published after all."""
        with self._lock:
            pending = self._pending.get(device)
            if pending is not None and pending.seq == seq:
                del self._pending[device]

    def remember(self, device: str, seq: int, expected: Expected, lease_end_mono: float, lease_wall_s: float) -> None:
        """A command sent before a restart (from the persisted plan): the device may still run it."""
        with self._lock:
            self._known_seqs[device] = max(seq, self._known_seqs.get(device, -1))
            self._confirmed[device] = Confirmed(seq, dict(expected), lease_end_mono, lease_wall_s)

    def held_off(self, device: str, now: float | None = None) -> bool:
        """Not to be commanded now: held after an override, or its last status looked like one.

        A suspect device waits for its next status (at most one status period), so that a command
        does not cross the second status that would confirm the override.
        """
        now = time.monotonic() if now is None else now
        with self._lock:
            suspect = self._suspect.get(device)
            waiting = suspect is not None and now - suspect[1] < SUSPECT_WAIT_S / self.speed
            return self._hold_until.get(device, -1.0) > now or waiting

    def held_devices(self, now: float | None = None) -> list[str]:
        now = time.monotonic() if now is None else now
        with self._lock:
            return sorted(d for d, until in self._hold_until.items() if until > now)

    def forget(self) -> None:
        """The link is gone (SAFE): nothing in flight will be confirmed, devices fall back on their own."""
        with self._lock:
            self._pending.clear()
            self._confirmed.clear()

    # --- paho's network thread ------------------------------------------------------------------------

    def on_status(self, device: str, status: Status, retained: bool, now: float | None = None) -> None:
        if retained:
            return  # a retained status is history: it confirms nothing and overrides nothing
        now = time.monotonic() if now is None else now
        seq = getattr(status, "seq", None)
        source = getattr(status, "source", None)
        with self._lock:
            known = self._known_seqs.get(device)
            unknown_seq = seq is not None and known is not None and seq > known
            if self._hold_until.get(device, -1.0) > now:
                if source in ("local", "pems") and not unknown_seq:
                    del self._hold_until[device]  # back under its own rule or ours: the hold ends here
                    self.events.record(EventKind.OVERRIDE, f"reports source {source!r} again: commanding it "
                                       f"again", device)
                    self._suspect.pop(device, None)
                return
            suspicion = self._suspicion(device, status, seq, source, unknown_seq, known, now)
            if suspicion is None:
                self._suspect.pop(device, None)
                self._confirm(device, status, seq, now)
                return
            kind, message = suspicion
            count = self._suspect.get(device, (0, now))[0] + 1
            if count < CORROBORATION:
                self._suspect[device] = (count, now)  # one status proves nothing yet; the next one settles it
                self.stats.uncorroborated += 1
                return
            self._suspect.pop(device, None)
            if kind is EventKind.UNKNOWN_SEQ and self.resync is not None and seq is not None:
                # The device took a number we never sent: ours now look old to it. Holding off would
                # finish the attacker's work; a newer epoch outranks that number (hardware.wire.sequence).
                self._known_seqs[device] = seq
                self._pending.pop(device, None)
                self._confirmed.pop(device, None)
                self.events.record(kind, f"{message}; starting a new sequence epoch", device, alert=True)
                self.resync(device, seq)
                return
            self._override(device, now, kind, message)

    def _suspicion(self, device: str, status: Status, seq: int | None, source: str | None, unknown_seq: bool,
                   known: int | None, now: float) -> tuple[EventKind, str] | None:
        """What in this status looks like someone else ruling the device (``None``: nothing)."""
        if unknown_seq:
            return EventKind.UNKNOWN_SEQ, (f"reports sequence number {seq}, newer than any this controller sent "
                                           f"({known}): someone else commands it")
        if source == "manual":
            return EventKind.OVERRIDE, f"reports a manual override ({status_fields(status)})"
        pending = self._pending.get(device)
        if pending is not None and self._answers(status, seq, pending):
            if (not confirms(status, pending.expected) and seq is not None and seq == pending.seq
                    and contradicts(status, pending.expected)):
                return EventKind.OVERRIDE, (f"took command {seq} but shows {status_fields(status)}, "
                                            f"not {pending.expected}")
            return None
        confirmed = self._confirmed.get(device)
        if confirmed is None or source == "local" or (seq is not None and seq != confirmed.seq):
            return None
        in_force = now < confirmed.lease_end_mono - LEASE_MARGIN * confirmed.lease_wall_s
        if in_force and contradicts(status, confirmed.expected):
            return EventKind.OVERRIDE, (f"changed to {status_fields(status)} under our lease (command "
                                        f"{confirmed.seq} asked {confirmed.expected}) with no new command")
        return None

    def _confirm(self, device: str, status: Status, seq: int | None, now: float) -> None:
        """A status that answers the pending command with the commanded state confirms it."""
        pending = self._pending.get(device)
        if pending is not None and self._answers(status, seq, pending) and confirms(status, pending.expected):
            del self._pending[device]
            self._confirmed[device] = Confirmed(pending.seq, pending.expected, pending.lease_end_mono,
                                                pending.lease_end_mono - pending.sent_mono)
            self.stats.confirmed += 1
            self.stats.latencies_s.append(now - pending.first_sent_mono)

    @staticmethod
    def _answers(status: Status, seq: int | None, pending: Pending) -> bool:
        """Is this status the device's answer to ``pending`` (rather than a report from before it)?"""
        return seq >= pending.seq if seq is not None else confirms(status, pending.expected)

    def _override(self, device: str, now: float, kind: EventKind, message: str) -> None:
        hold_s = self.config.override_hold_s / self.speed
        self._hold_until[device] = now + hold_s
        self._pending.pop(device, None)
        self._confirmed.pop(device, None)
        self.stats.overrides += 1
        self.events.record(kind, f"{message}; not commanding it for {self.config.override_hold_s:g} s", device,
                           alert=True)

    # --- the watchdog's tick --------------------------------------------------------------------------

    def check(self, resend: Resend, now: float | None = None) -> None:
        """Re-send or give up on commands whose read-back is overdue."""
        now = time.monotonic() if now is None else now
        timeout = self.config.readback_timeout_s
        with self._lock:
            overdue = [p for p in self._pending.values() if now - p.sent_mono > timeout]
        for pending in overdue:
            if pending.retries < self.config.readback_retries and pending.lease_end_mono > now:
                seq = resend(pending)
                if seq is not None:
                    with self._lock:
                        if self._pending.get(pending.device) is pending:
                            pending.seq, pending.sent_mono = seq, now
                            pending.retries += 1
                    self.stats.retries += 1
                    self.events.record(EventKind.READBACK_RETRY, f"no read-back within {timeout:g} s; sent again "
                                       f"as {seq} (retry {pending.retries})", pending.device)
                    continue
            with self._lock:
                if self._pending.get(pending.device) is not pending:
                    continue
                del self._pending[pending.device]
            self.stats.missing += 1
            self.events.record(EventKind.READBACK_MISSING, f"command {pending.seq} ({pending.expected}) not confirmed "
                               f"after {pending.retries} retries", pending.device, alert=True)
