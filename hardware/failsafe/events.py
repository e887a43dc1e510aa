"""What the fail-safe machinery noticed: an event log, and the alerts among its entries.

Every event is kept in memory (the last :data:`EVENTS_KEPT`), counted by kind, logged, and —
once the run directory exists — appended to ``events.jsonl``. An event marked ``alert`` is also
queued for ``pems/alerts``: the watchdog publishes the queue whenever the broker is reachable
(alerts raised while it is not — "broker lost" — go out after the reconnection; the queue is
bounded, the oldest alerts give way).
"""

from __future__ import annotations

import enum
import json
import logging
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

EVENTS_KEPT = 10_000
ALERTS_QUEUED = 100


class EventKind(enum.StrEnum):
    LINK_STATE = "link_state"  # CONNECTING / RECONCILING / RUNNING / SAFE
    BROKER_REFUSED = "broker_refused"  # CONNACK refused: credentials or authorisation
    RECONCILED = "reconciled"  # devices re-read after a (re)connection
    RECONCILE_INCOMPLETE = "reconcile_incomplete"
    READBACK_MISSING = "readback_missing"  # a command not confirmed by its device
    READBACK_RETRY = "readback_retry"
    OVERRIDE = "override"  # a status change nobody commanded
    RETAINED_COMMAND = "retained_command"  # a retained …/set found (and cleared)
    FOREIGN_COMMAND = "foreign_command"  # a command published by someone else
    FOREIGN_HEARTBEAT = "foreign_heartbeat"  # another controller publishes heartbeats
    FOREIGN_STATUS = "foreign_status"  # someone else published our pems/status (answered with our birth)
    CLOCK_SKEW = "clock_skew"
    UNKNOWN_SEQ = "unknown_seq"  # a device runs a command this controller did not send
    ENVELOPE = "envelope"  # a payload refused by the last envelope check
    OPTIM_STATUS = "optim_status"  # the planner failed or recovered
    PLAN_RESTORED = "plan_restored"  # a persisted plan found at start
    NO_READINGS = "no_readings"  # connected, but no reading accepted for failsafe.no_readings_alert_s
    FORECAST_DRIFT = "forecast_drift"  # a learned forecaster's rolling error exceeds its training error
    FEED = "feed"  # a price/weather feed fell back (alert) or is fresh again
    MODE_CHANGE = "mode_change"  # the rollout mode switched at a decision (CLI gate or Home Assistant)


@dataclass(frozen=True, slots=True)
class Event:
    wall_s: float  # Unix time
    mono_s: float  # time.monotonic() of this process
    kind: EventKind
    message: str
    device: str | None = None
    alert: bool = False


class EventLog:
    """Thread-safe: events come from paho's network thread, the watchdog and the control loop."""

    def __init__(self, logger: logging.Logger = log) -> None:
        self._lock = threading.Lock()
        self.events: deque[Event] = deque(maxlen=EVENTS_KEPT)
        self.counts: Counter[str] = Counter()
        self._alerts: deque[Event] = deque(maxlen=ALERTS_QUEUED)
        self._file: IO[str] | None = None
        self._log = logger

    def attach(self, path: Path) -> None:
        """Append events to ``path`` from now on (and the ones recorded so far)."""
        with self._lock:
            self._file = Path(path).open("a", encoding="utf-8")
            for event in self.events:
                self._write(event)
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def record(self, kind: EventKind, message: str, device: str | None = None, alert: bool = False) -> Event:
        event = Event(time.time(), time.monotonic(), kind, message, device, alert)
        with self._lock:
            self.events.append(event)
            self.counts[kind.value] += 1
            if alert:
                self._alerts.append(event)
            if self._file is not None:
                self._write(event)
                self._file.flush()
        (self._log.warning if alert else self._log.info)("%s%s: %s", kind.value,
                                                        f" ({device})" if device else "", message)
        return event

    def count(self, kind: EventKind) -> int:
        """Count one more event of ``kind`` without recording it (for the ones only counted)."""
        with self._lock:
            self.counts[kind.value] += 1
            return self.counts[kind.value]

    def _write(self, event: Event) -> None:
        entry = asdict(event)
        entry["kind"] = event.kind.value
        self._file.write(json.dumps(entry) + "\n")

    def take_alerts(self) -> list[Event]:
        """The queued alerts, oldest first (the queue is emptied)."""
        with self._lock:
            alerts = list(self._alerts)
            self._alerts.clear()
            return alerts

    def requeue(self, alerts: list[Event]) -> None:
        """Put back alerts that could not be published (ahead of newer ones)."""
        with self._lock:
            pending = list(self._alerts)
            self._alerts.clear()
            self._alerts.extend(alerts + pending)

    def of_kind(self, kind: EventKind) -> list[Event]:
        with self._lock:
            return [e for e in self.events if e.kind is kind]
