"""Nobody but this controller writes command topics, and nothing stays retained there (docs/failsafe.md F12, F13).

The controller subscribes to its own command topics without its own publications (MQTT v5
*No Local*). A retained command found there — left by an old bridge, a test, a mistake — would
switch a device whenever it (re)subscribes ("ghost switching"): it is cleared with a zero-length
retained publish where the rollout mode allows this controller to write that topic, and
alerted either way. A live (not retained) command from someone else means another publisher has
write access to a command topic, which the broker's ACL should forbid: alerted, and counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from hardware.failsafe.envelope import MODE_KEYS
from hardware.failsafe.events import EventKind, EventLog
from hardware.wire.mqtt import Message
from hardware.wire.topics import Route
from twin.safety import RolloutMode

#: Foreign commands alerted in full per topic; after that, every hundredth.
ALERT_FIRST = 3


class CommandTopicGuard:
    """Handles what arrives on the command topics; ``publish`` is how a retained command gets cleared."""

    def __init__(self, mode: RolloutMode, events: EventLog, publish: Callable[[Message], bool]) -> None:
        self.allowed = MODE_KEYS[mode]
        self.events = events
        self._publish = publish
        self.retained_found: Counter[str] = Counter()
        self.cleared: Counter[str] = Counter()
        self.foreign: Counter[str] = Counter()

    def on_message(self, route: Route, topic: str, payload: bytes, retained: bool) -> None:
        if not payload:
            return  # a retained message being cleared (by us or anyone)
        if retained:
            self.retained_found[topic] += 1
            if route.key in self.allowed and self._publish(Message(topic, b"", retain=True)):
                self.cleared[topic] += 1
                action = "cleared it"
            else:
                action = "could not clear it in this rollout mode: clear it by hand (mosquitto_pub -r -n -t ...)"
            self.events.record(EventKind.RETAINED_COMMAND, f"a retained command on {topic} ({len(payload)} bytes) "
                               f"would switch the device on every reconnect; {action}", topic, alert=True)
            return
        self.foreign[topic] += 1
        n = self.foreign[topic]
        if n <= ALERT_FIRST or n % 100 == 0:
            self.events.record(EventKind.FOREIGN_COMMAND, f"someone else published a command on {topic} ({n} so far): "
                               f"check the broker's ACL", topic, alert=True)
