"""InfluxDB line protocol: one :class:`Point` → one line, escaped as the protocol documents.

``measurement,tag=v field=1.5,flag=true,text="a b" 1700000000000000000`` — measurement escapes
commas and spaces; tag keys/values and field keys escape commas, equals signs and spaces;
string field values escape double quotes and backslashes. Integers carry an ``i`` suffix.
Non-finite floats cannot be written (InfluxDB rejects them), so they are left out of the line;
a point left with no field at all encodes to ``""`` and is skipped by the writer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

FieldValue = float | int | bool | str


def _escape_key(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")


def _escape_measurement(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", r"\,").replace(" ", r"\ ")


def _encode_value(value: FieldValue) -> str | None:
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    raise TypeError(f"field value {value!r} is not a float, int, bool or str")


def time_ns(when: datetime) -> int:
    """Nanoseconds since the epoch of a tz-aware datetime."""
    if when.tzinfo is None:
        raise ValueError(f"point time must be timezone-aware, got {when!r}")
    return int(pd.Timestamp(when).value)


@dataclass(frozen=True, slots=True)
class Point:
    """One row of a measurement at ``time_ns`` (nanoseconds since the epoch, UTC)."""

    measurement: str
    time_ns: int
    fields: Mapping[str, FieldValue]
    tags: Mapping[str, str] = field(default_factory=dict)

    def encode(self) -> str:
        """The line (no trailing newline), or ``""`` when no field has a writable value."""
        encoded = []
        for key, value in self.fields.items():
            text = _encode_value(value)
            if text is not None:
                encoded.append(f"{_escape_key(key)}={text}")
        if not encoded:
            return ""
        head = _escape_measurement(self.measurement)
        for key in sorted(self.tags):  # sorted tags: InfluxDB's own recommendation for write speed
            value = self.tags[key]
            if value != "":  # an empty tag value is not allowed
                head += f",{_escape_key(key)}={_escape_key(value)}"
        return f"{head} {','.join(encoded)} {self.time_ns}"


def point(measurement: str, when: datetime, fields: Mapping[str, FieldValue],
          tags: Mapping[str, str] | None = None) -> Point:
    return Point(measurement, time_ns(when), dict(fields), dict(tags or {}))
