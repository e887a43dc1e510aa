"""The one way a command leaves the controller: now, checked, and accounted for — or not at all.

Failure modes F1, F6 and F15 of docs/failsafe.md.

There is no queue to purge because nothing waits: a command is published at once if the
watchdog says a command would arrive now (RUNNING, echo fresh), it passes the envelope check on
the wire (``hardware.failsafe.envelope``) and fewer than ``max_in_flight`` earlier commands still wait
for their PUBACK; otherwise it is dropped and counted (the next decision sends a fresh one,
with a fresh lease). paho's own queue for unacknowledged QoS 1 messages is thrown away on every
disconnect (``MqttLink``), so under SAFE nothing is queued anywhere. Every command published is
registered for read-back *before* it goes out and appended to ``published.jsonl``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from hardware.failsafe.envelope import payload_problems
from hardware.failsafe.events import EventKind, EventLog
from hardware.failsafe.readback import Expected, Pending, ReadbackTracker
from hardware.failsafe.watchdog import Watchdog
from hardware.wire.mqtt import Message
from hardware.wire.schemas import COMMAND_SCHEMAS, dump, parse_payload
from twin.config import HouseConfig
from twin.safety import RolloutMode

#: Published commands kept in memory (the file keeps them all).
PUBLISHED_KEPT = 100_000


@dataclass(frozen=True, slots=True)
class Published:
    mono_s: float
    wall_s: float
    device: str
    topic: str
    seq: int
    retry: bool = False


class Outbox:
    """``send()`` a device's command; ``resend()`` one whose read-back is overdue."""

    def __init__(self, watchdog: Watchdog, house: HouseConfig, mode: RolloutMode, readback: ReadbackTracker,
                 events: EventLog, next_seq: Callable[[], int], now: Callable[[], datetime], speed: float = 1.0,
                 max_in_flight: int = 64) -> None:
        self.watchdog = watchdog
        self.house = house
        self.mode = mode
        self.readback = readback
        self.events = events
        self._next_seq = next_seq
        self._now = now
        self.speed = speed
        self.max_in_flight = max_in_flight
        self.published: deque[Published] = deque(maxlen=PUBLISHED_KEPT)
        self.counts: Counter[str] = Counter()  # sent, withheld, refused, throttled, failed, retried
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        self._stale: Collection[str] = frozenset()  # inputs stale at the last decision (for its re-sends)

    def attach(self, path: Path) -> None:
        self._file = Path(path).open("a", encoding="utf-8")

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def send(self, device: str, key: str, message: Message, expected: Expected, lease_house_s: float,
             expiry_s: float, retry: bool = False, stale: Collection[str] | None = None) -> bool:
        """Publish now or drop; ``True`` if it went out.

        ``stale`` are the inputs stale at the command's decision (the envelope is stricter without
        them); a re-send (``None``) is checked against those of the latest decision.
        """
        if stale is not None:
            self._stale = stale
        if not self.watchdog.may_command():
            self.counts["withheld"] += 1
            return False
        problems = payload_problems(key, message.payload, self.house, self.mode, self._stale, self._now())
        if problems:
            self.counts["refused"] += 1
            self.events.record(EventKind.ENVELOPE, f"not sent: {'; '.join(problems)}", device, alert=True)
            return False
        link = self.watchdog.link
        if link is None or link.in_flight >= self.max_in_flight:
            self.counts["throttled"] += 1
            return False
        seq = int(json.loads(message.payload)["seq"])
        if retry:
            self.readback.note_seq(device, seq)
        else:
            self.readback.sent(device, key, message.topic, seq, expected, message.payload, lease_house_s)
        if not link.publish(message, expiry_s=expiry_s):
            self.counts["failed"] += 1
            self.readback.withdraw(device, seq)
            return False
        self.counts["retried" if retry else "sent"] += 1
        record = Published(time.monotonic(), time.time(), device, message.topic, seq, retry)
        with self._lock:
            self.published.append(record)
            if self._file is not None:
                self._file.write(json.dumps({"wall_s": record.wall_s, "device": device, "topic": message.topic,
                                             "seq": seq, "retry": retry}) + "\n")
                self._file.flush()
        return True

    def resend(self, pending: Pending) -> int | None:
        """The same command again with a new sequence number and what is left of its lease."""
        remaining_house_s = (pending.lease_end_mono - time.monotonic()) * self.speed
        if remaining_house_s < 1.0 or not self.watchdog.may_command():
            return None
        schema = COMMAND_SCHEMAS[pending.key]
        original = parse_payload(schema, pending.payload)
        seq = self._next_seq()
        again = original.model_copy(update={"seq": seq, "ts": self._now(), "ttl_s": remaining_house_s})
        message = Message(pending.topic, dump(schema.model_validate(again.model_dump())))
        sent = self.send(pending.device, pending.key, message, pending.expected, remaining_house_s,
                         remaining_house_s / self.speed, retry=True)
        return seq if sent else None
