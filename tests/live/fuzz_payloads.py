"""Hypothesis strategies for hostile MQTT payloads (docs/failsafe.md §3 scenario 6).

Binary noise, text, invalid UTF-8, JSON of every shape (``st.recursive``) with the schemas' own
keys and wrong types, NaN/±Inf/1e308, missing keys, timestamps from −1e12 to 1e12 s, and
1 MiB blobs.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

from hypothesis import strategies as st

KEYS = ["ts", "temp_c", "state", "source", "seq", "energy_kwh", "switches", "soc", "power_kw", "mode", "charge_kwh",
        "discharge_kwh", "import_kwh", "export_kwh", "connected", "enabled", "current_a", "energy_needed_kwh",
        "departure", "until", "ttl_s", "n", "session", "reserve_soc"]
WORDS = ["on", "off", "pems", "local", "manual", "self_consumption", "discharge_to_grid", "charge_from_grid",
         "backup_reserve", "power_setpoint", "running", "online", "offline", "turbo", ""]


def _stamp(seconds: float) -> str | float:
    try:
        return datetime.fromtimestamp(seconds, UTC).isoformat()
    except (OverflowError, ValueError, OSError):
        return seconds  # beyond what a datetime holds: the number itself


numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 0.0, -0.0, 2**63, -(2**63)]),
    st.integers(-(2**70), 2**70),
    st.floats(-2.0, 2.0),  # plausible SOCs and powers, to get past the first checks
)
timestamps = st.floats(-1e12, 1e12).map(_stamp)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.sampled_from(WORDS), st.text(max_size=20), timestamps)
json_values = st.recursive(scalars, lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=12)
objects = st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)),
                          st.one_of(scalars, json_values), max_size=8)


def _dumps(value: object) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


payloads = st.one_of(
    objects.map(_dumps),
    objects.map(_dumps),  # twice as likely: the shape closest to a real message
    json_values.map(_dumps),
    st.binary(max_size=600),
    st.text(max_size=300).map(str.encode),
    st.binary(min_size=1, max_size=64).map(lambda b: b"\xff\xfe\xc3" + b),  # never valid UTF-8
    st.just(b"x" * (1 << 20)),  # 1 MiB
    st.just(b""),
)
