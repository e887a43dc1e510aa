"""The fail-safe layer's alerts and manual overrides into InfluxDB's ``event`` measurement.

An observer beside the InfluxDB one: at each decision it forwards the events recorded since the
last decision (alerts as ``kind=alert``, uncommanded status changes as ``kind=override``). Event
times are wall-clock (the fail-safe layer stamps them so); against a sped-up emulator they do not
line up with the house clock, against a real house they do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hardware.failsafe.events import EventKind, EventLog
from hardware.outputs.observer import InfluxObserver


class EventForwarder:
    """A runner-loop observer: at each decision, the events recorded since the last one go to InfluxDB."""

    def __init__(self, events: EventLog, observer: InfluxObserver) -> None:
        self.events = events
        self.observer = observer
        self._last_mono_s = float("-inf")

    def on_decision(self, *_args: Any) -> None:
        """Forward the alerts and overrides recorded since the last call."""
        fresh = [e for e in list(self.events.events) if e.mono_s > self._last_mono_s]
        for event in fresh:
            self._last_mono_s = max(self._last_mono_s, event.mono_s)
            if event.kind is EventKind.OVERRIDE:
                kind = "override"
            elif event.alert:
                kind = "alert"
            else:
                continue
            self.observer.event(datetime.fromtimestamp(event.wall_s, UTC), kind, event.message,
                                level="warning" if event.alert else "info", device=event.device or "",
                                code=event.kind.value)

    def on_end(self, status: str) -> None:
        """Forward what the end of the run recorded."""
        self.on_decision()
