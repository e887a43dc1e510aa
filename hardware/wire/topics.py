"""The MQTT topic layout (docs/design.md), in one place, remappable per installation.

A :class:`TopicMap` turns the templates into the concrete topics of one house and back: every
topic the live mode uses is enumerated up front, so routing an incoming message is one dict
lookup, and a topic that is not in the map is not ours.
"""

from __future__ import annotations

from dataclasses import dataclass

from twin.errors import ConfigError

#: Logical topic → default template; ``{room}`` is the room's id in the device topics.
DEFAULT_TEMPLATES = {
    "room_temperature": "loxone/room/{room}/temperature",
    "heating_set": "loxone/heating/{room}/set",
    "heating_status": "loxone/heating/{room}/status",
    "outdoor_temperature": "loxone/outdoor/temperature",
    "battery_set": "growatt/battery/set_mode",
    "battery_status": "growatt/battery/status",
    "pv_status": "growatt/pv/status",
    "grid_status": "growatt/grid/status",
    "ev_set": "ev/charger/set",
    "ev_status": "ev/charger/status",
    "ev_car_status": "ev/car/status",
    "controller_status": "pems/status",
    "plan": "pems/plan",
    "alerts": "pems/alerts",
    "emulator_clock": "pems/emulator/clock",
    "emulator_time": "pems/emulator/time",
    "emulator_ack": "pems/emulator/ack",
    "heartbeat": "pems/heartbeat",
    "optim_status": "pems/optim_status",
}
ROOM_KEYS = frozenset({"room_temperature", "heating_set", "heating_status"})
#: Topics that move a device. Never retained; what the rollout modes gate.
COMMAND_KEYS = ("heating_set", "battery_set", "ev_set")
#: What the controller reads from the devices.
READING_KEYS = ("room_temperature", "heating_status", "outdoor_temperature", "battery_status", "pv_status",
                "grid_status", "ev_status", "ev_car_status")

_FORBIDDEN = ("+", "#", "\0")


@dataclass(frozen=True, slots=True)
class Route:
    """Where an incoming topic belongs: its logical key and, for room topics, the room index."""

    key: str
    room: int | None = None


class TopicMap:
    """Concrete topics of one house: ``topic(key, room)`` and its inverse ``route(topic)``."""

    def __init__(self, templates: dict[str, str], room_names: tuple[str, ...], room_ids: tuple[str, ...],
                 prefix: str = "") -> None:
        missing = sorted(set(DEFAULT_TEMPLATES) - set(templates))
        if missing:
            raise ConfigError(f"topics: no template for {missing}", "topics")
        self.room_names = tuple(room_names)
        self.room_ids = tuple(room_ids)
        for name, room_id in zip(room_names, room_ids, strict=True):
            if not room_id or "/" in room_id or any(c in room_id for c in _FORBIDDEN):
                raise ConfigError(f"topics.room_ids.{name} = {room_id!r} must be one topic level "
                                  f"(no '/', '+', '#')", f"topics.room_ids.{name}")
        self._templates = {}
        for key in DEFAULT_TEMPLATES:
            template = templates[key]
            has_room = template.count("{room}")
            if key in ROOM_KEYS and has_room != 1:
                raise ConfigError(f"topics.{key} = {template!r} must contain {{room}} exactly once", f"topics.{key}")
            if key not in ROOM_KEYS and has_room:
                raise ConfigError(f"topics.{key} = {template!r} must not contain {{room}}", f"topics.{key}")
            full = prefix + template
            if not template or full.startswith("$") or any(c in full for c in _FORBIDDEN) or len(full) > 1024:
                raise ConfigError(f"topics.{key} = {full!r} is not a valid topic to publish to (no wildcards, "
                                  f"no leading '$', at most 1024 characters)", f"topics.{key}")
            self._templates[key] = full
        self._by_topic: dict[str, Route] = {}
        for key, template in self._templates.items():
            routes = ([(template.replace("{room}", rid), Route(key, j)) for j, rid in enumerate(self.room_ids)]
                      if key in ROOM_KEYS else [(template, Route(key))])
            for topic, route in routes:
                if topic in self._by_topic:
                    other = self._by_topic[topic]
                    raise ConfigError(f"topics: {topic!r} is used for both {other.key} and {key}", f"topics.{key}")
                self._by_topic[topic] = route

    def topic(self, key: str, room: int | None = None) -> str:
        """The topic of ``key`` (for room topics, of room index ``room``)."""
        template = self._templates[key]
        if key in ROOM_KEYS:
            if room is None:
                raise ValueError(f"{key} is a per-room topic: give the room index")
            return template.replace("{room}", self.room_ids[room])
        return template

    def topics(self, key: str) -> tuple[str, ...]:
        """Every concrete topic of ``key`` (one per room for room topics)."""
        if key in ROOM_KEYS:
            return tuple(self.topic(key, j) for j in range(len(self.room_ids)))
        return (self._templates[key],)

    def route(self, topic: str) -> Route | None:
        """What ``topic`` is, or ``None`` when it is not part of this layout."""
        return self._by_topic.get(topic)

    def command_topics(self) -> tuple[str, ...]:
        return tuple(t for key in COMMAND_KEYS for t in self.topics(key))
