"""The live configuration (``live.toml``): broker, topics, reading ages, clock, control, forecasts.

Frozen dataclasses, validated by pydantic at load time: every bad value is reported with its
dotted field, the value and what is allowed. Relative paths in the file (password file,
certificates, house file, scenario file) are taken relative to the file's own folder. Ages and
intervals are in *house* seconds (the house's clock, which runs ``speed`` times faster than the
wall clock against the emulator); waits are in wall seconds.

See ``hardware/examples/live.toml`` for a commented example.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, with_config

from hardware.feeds.config import ComfortScheduleConfig, FeedsConfig
from hardware.outputs.config import OutputsConfig
from hardware.wire.topics import DEFAULT_TEMPLATES, TopicMap
from twin.config import read_toml
from twin.errors import ConfigError

_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)

Seconds = Annotated[float, Field(gt=0.0, le=86400.0)]
Name = Annotated[str, Field(max_length=256)]


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS towards the broker. Give ``ca_file`` for a private CA; leave it empty for the system CAs."""

    ca_file: Name = ""
    cert_file: Name = ""  # client certificate (mutual TLS), together with key_file
    key_file: Name = ""
    check_hostname: bool = True  # never switch off beyond a lab: it is what makes TLS authenticate the broker

    def __post_init__(self) -> None:
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("cert_file and key_file go together (mutual TLS needs both)")


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """Where the broker is and how to log in. The password never sits in this file."""

    host: Annotated[str, Field(min_length=1, max_length=253)] = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    client_id: Annotated[str, Field(min_length=1, max_length=64)] = "pems-controller"
    username: Name = ""
    password_env: Name = ""  # name of an environment variable holding the password
    password_file: Name = ""  # a file whose first line is the password
    keepalive_s: Annotated[int, Field(ge=2, le=600)] = 5  # docs/failsafe.md F3: ≤ 5 s on the LAN
    connect_timeout_s: Annotated[float, Field(ge=0.5, le=3600.0)] = 30.0  # wall seconds
    max_queued_messages: Annotated[int, Field(ge=1, le=10_000)] = 100  # paho's outgoing queue (F15)
    tls: TlsConfig | None = None
    allow_plaintext: bool = False  # plain TCP to a host beyond loopback (hardware.wire.security refuses it otherwise)

    def __post_init__(self) -> None:
        if self.password_env and self.password_file:
            raise ValueError("give password_env or password_file, not both")
        if (self.password_env or self.password_file) and not self.username:
            raise ValueError("a password needs a username")

    def password(self) -> str | None:
        """The password from the environment or the password file (``None`` without login)."""
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ConfigError(f"broker.password_env: environment variable {self.password_env} is not set",
                                  "broker.password_env")
            return value
        if self.password_file:
            try:
                lines = Path(self.password_file).read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"broker.password_file: cannot read {self.password_file} ({exc})",
                                  "broker.password_file") from None
            if not lines or not lines[0]:
                raise ConfigError(f"broker.password_file: {self.password_file} is empty", "broker.password_file")
            return lines[0]
        return None


def _template_field(key: str) -> Any:
    return field(default=DEFAULT_TEMPLATES[key])


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class TopicsConfig:
    """The topic layout (docs/design.md) and how to remap it to a real installation.

    Every template may be replaced; ``{room}`` stands for the room's id in the device topics,
    which is the house's room name unless ``room_ids`` maps it (``living = "obyvak"``).
    ``prefix`` is put in front of every topic.
    """

    prefix: Name = ""
    room_ids: dict[str, Name] = field(default_factory=dict)
    room_temperature: Name = _template_field("room_temperature")
    heating_set: Name = _template_field("heating_set")
    heating_status: Name = _template_field("heating_status")
    outdoor_temperature: Name = _template_field("outdoor_temperature")
    battery_set: Name = _template_field("battery_set")
    battery_status: Name = _template_field("battery_status")
    pv_status: Name = _template_field("pv_status")
    grid_status: Name = _template_field("grid_status")
    ev_set: Name = _template_field("ev_set")
    ev_status: Name = _template_field("ev_status")
    ev_car_status: Name = _template_field("ev_car_status")
    controller_status: Name = _template_field("controller_status")
    plan: Name = _template_field("plan")
    alerts: Name = _template_field("alerts")
    emulator_clock: Name = _template_field("emulator_clock")
    emulator_time: Name = _template_field("emulator_time")
    emulator_ack: Name = _template_field("emulator_ack")
    heartbeat: Name = _template_field("heartbeat")
    optim_status: Name = _template_field("optim_status")

    def templates(self) -> dict[str, str]:
        return {key: getattr(self, key) for key in DEFAULT_TEMPLATES}

    def topic_map(self, room_names: tuple[str, ...]) -> TopicMap:
        """The concrete topics for a house with these rooms (checks the layout)."""
        unknown = sorted(set(self.room_ids) - set(room_names))
        if unknown:
            raise ConfigError(f"topics.room_ids names unknown room(s) {unknown}; rooms are {list(room_names)}",
                              "topics.room_ids")
        ids = tuple(self.room_ids.get(name, name) for name in room_names)
        return TopicMap(self.templates(), room_names, ids, self.prefix)


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class MaxAgeConfig:
    """How old each reading may be before it is stale [house s] (docs/failsafe.md F4: about 3× its period).

    ``max_clock_skew_s``: a reading stamped further than this in the future is rejected.
    ``max_implausible_stamp_s``: a live reading stamped further than this from its receipt (either
    way) is dropped at the boundary and counted, and not taken as a measure of the device's clock.
    """

    room_temperature_s: Seconds = 300.0
    heating_status_s: Seconds = 300.0
    outdoor_temperature_s: Seconds = 900.0
    battery_s: Seconds = 60.0
    pv_s: Seconds = 60.0
    grid_s: Seconds = 60.0
    ev_charger_s: Seconds = 60.0
    ev_car_s: Seconds = 900.0
    max_clock_skew_s: Seconds = 30.0
    max_implausible_stamp_s: Seconds = 3600.0

    def __post_init__(self) -> None:
        if self.max_implausible_stamp_s <= self.max_clock_skew_s:
            raise ValueError(f"max_implausible_stamp_s = {self.max_implausible_stamp_s:g} must be above "
                             f"max_clock_skew_s = {self.max_clock_skew_s:g} (a skew must be measurable to be reported)")


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class ClockConfig:
    """Whose clock the house lives on.

    ``wall``: the real house, real time (``speed`` must be 1). ``emulator``: the clock
    ``pems emulate`` announces (retained) on the ``emulator_clock`` topic — its scenario window,
    start and speed; ``speed`` must then match the emulator's.

    ``lockstep``: require an emulator started with ``--lockstep`` (a co-simulation clock: the
    emulator announces house time on ``emulator_time`` and advances past a decision instant only
    when the controller has acknowledged it on ``emulator_ack``). A run follows a lockstep
    emulator whether or not this is set; set it to refuse one that plays in real time.
    """

    source: Literal["wall", "emulator"] = "wall"
    speed: Annotated[float, Field(ge=0.01, le=100_000.0)] = 1.0
    wait_s: Annotated[float, Field(gt=0.0, le=3600.0)] = 60.0  # wall seconds to wait for the emulator's clock
    lockstep: bool = False

    def __post_init__(self) -> None:
        if self.source == "wall" and self.lockstep:
            raise ValueError("lockstep = true needs source = 'emulator' (a real house does not wait)")
        if self.source == "wall" and self.speed != 1.0:
            raise ValueError(f"speed = {self.speed} needs source = 'emulator' (a real house runs in real time)")


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class ControlConfig:
    """How the live loop runs.

    ``sample_wait_s`` [wall s]: at each decision, wait this long at most for readings stamped
    at or after the decision time (0 against a real house, whose devices publish on their own
    cadence; a second or two against the emulator, which publishes at every decision instant).
    ``startup_wait_s`` [wall s]: how long to wait for a first reading of every device.
    ``log_flush_intervals``: the run log is written to disk every that many intervals.
    """

    decision_interval_s: Annotated[float, Field(ge=1.0, le=86400.0)] = 300.0
    horizon_s: Annotated[float, Field(ge=3600.0, le=14 * 86400.0)] = 48 * 3600.0
    sample_wait_s: Annotated[float, Field(ge=0.0, le=60.0)] = 0.0
    startup_wait_s: Annotated[float, Field(ge=0.0, le=3600.0)] = 30.0
    log_flush_intervals: Annotated[int, Field(ge=1, le=10_000)] = 12
    lease_s: Annotated[float, Field(ge=1.0, le=86400.0)] | None = None  # cut every command's lease to this
    decide_deadline_s: Annotated[float, Field(gt=0.0, le=3600.0)] = 60.0  # wall s for a decision (F9)


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class ForecastsConfig:
    """Where forecasts, prices and the comfort schedule come from.

    ``scenario``: a registered scenario name or a scenario file whose issued forecasts are
    replayed on the house clock (against the emulator, or to replay a recorded period).
    """

    scenario: Annotated[str, Field(min_length=1, max_length=1024)]


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class FailsafeConfig:
    """How the live controller notices trouble and what it does then (docs/failsafe.md F1–F3, F10, F11).

    Wall seconds unless named otherwise. The controller publishes a heartbeat every
    ``heartbeat_s`` on ``pems/heartbeat`` and listens for its echo: no echo for
    ``link_timeout_s`` (or a lost connection) puts it in SAFE; a command goes out only while the
    last echo is younger than ``fresh_link_s``. Reconnection backs off from ``reconnect_min_s`` to
    ``reconnect_max_s``; after the broker *refused* the controller (credentials, ACL) it waits
    ``refused_retry_s``, doubling up to ten times that. Every command must be confirmed by its
    device's status within ``readback_timeout_s``, with ``readback_retries`` re-sends; a status
    change nobody commanded holds that device off for ``override_hold_s`` house seconds.
    ``state_file`` keeps sequence numbers, the last plan and the safety layer's history across
    restarts (empty: nothing is kept; sequence numbers then rely on the wall clock).
    ``no_readings_alert_s``: connected this long without a single accepted reading raises an
    alert (an ACL that silently drops the devices' publishes looks exactly like this).
    """

    heartbeat_s: Annotated[float, Field(ge=0.05, le=60.0)] = 1.0
    link_timeout_s: Annotated[float, Field(ge=0.2, le=1200.0)] = 5.0
    fresh_link_s: Annotated[float, Field(ge=0.1, le=1200.0)] = 2.5
    reconnect_min_s: Annotated[float, Field(ge=0.05, le=600.0)] = 1.0
    reconnect_max_s: Annotated[float, Field(ge=0.05, le=3600.0)] = 30.0
    reconnect_timeout_s: Annotated[float, Field(ge=0.5, le=600.0)] = 5.0
    refused_retry_s: Annotated[float, Field(ge=0.5, le=3600.0)] = 60.0
    reconcile_timeout_s: Annotated[float, Field(ge=0.0, le=3600.0)] = 120.0
    readback_timeout_s: Annotated[float, Field(ge=0.05, le=3600.0)] = 5.0
    readback_retries: Annotated[int, Field(ge=0, le=10)] = 2
    override_hold_s: Annotated[float, Field(ge=0.0, le=7 * 86400.0)] = 3600.0
    no_readings_alert_s: Annotated[float, Field(ge=0.5, le=86400.0)] = 60.0
    state_file: Name = ""

    def __post_init__(self) -> None:
        if self.fresh_link_s < self.heartbeat_s:
            raise ValueError(f"fresh_link_s ({self.fresh_link_s}) must be at least heartbeat_s ({self.heartbeat_s})")
        if self.link_timeout_s < self.fresh_link_s:
            raise ValueError(f"link_timeout_s ({self.link_timeout_s}) must be at least fresh_link_s "
                             f"({self.fresh_link_s})")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be at least reconnect_min_s")


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class HistoryConfig:
    """The house's history and the learned forecasters of a live run (``[history]``; docs/history.md).

    ``directory``: where the run's readings are kept as day partitions (empty: not kept). With it,
    ``mpc-learned`` (or any controller when ``learned_forecasts``) is trained on that history at
    start-up and retrained every ``retrain_every_days`` on the last ``window_days`` in a background
    process; a new model replaces the current one only if it scores better on the last
    ``test_days``. ``drift_factor``: rolling error / training error that raises an alert.
    ``model_dir`` (default ``<directory>/../models``) keeps the accepted models across restarts.
    """

    directory: Name = ""
    model_dir: Name = ""
    learned_forecasts: bool = False
    step_minutes: Annotated[float, Field(ge=1.0, le=60.0)] = 15.0
    min_history_days: Annotated[float, Field(ge=8.0, le=366.0)] = 14.0
    retrain_every_days: Annotated[float, Field(ge=1.0, le=366.0)] = 7.0
    window_days: Annotated[float, Field(ge=14.0, le=3660.0)] = 91.0
    test_days: Annotated[float, Field(ge=1.0, le=7.0)] = 7.0
    drift_factor: Annotated[float, Field(ge=1.0, le=100.0)] = 1.5


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class LiveConfig:
    """Everything ``pems live`` and ``pems emulate`` need besides the controller and the mode."""

    forecasts: ForecastsConfig
    broker: BrokerConfig = BrokerConfig()
    topics: TopicsConfig = TopicsConfig()
    max_age: MaxAgeConfig = MaxAgeConfig()
    clock: ClockConfig = ClockConfig()
    control: ControlConfig = ControlConfig()
    failsafe: FailsafeConfig = FailsafeConfig()
    history: HistoryConfig = HistoryConfig()
    feeds: FeedsConfig | None = None  # live prices/weather instead of the scenario's (docs/feeds.md)
    comfort: ComfortScheduleConfig = ComfortScheduleConfig()  # the weekly schedule used with [feeds]
    outputs: OutputsConfig = OutputsConfig()  # [outputs.influxdb]: results into InfluxDB (docs/outputs.md)
    house_file: Name = ""  # house TOML; empty: the bundled reference house

    def __post_init__(self) -> None:
        limit = 2 * self.broker.keepalive_s + 1
        if self.failsafe.link_timeout_s > limit:
            raise ValueError(f"failsafe.link_timeout_s = {self.failsafe.link_timeout_s} must be at most "
                             f"2 × broker.keepalive_s + 1 = {limit} s (docs/failsafe.md F1)")


_ADAPTER = TypeAdapter(LiveConfig)


def _nested_dataclass(cls: Any, name: str) -> Any:
    hint = typing.get_type_hints(cls).get(name)
    for candidate in (hint, *typing.get_args(hint)):
        if dataclasses.is_dataclass(candidate):
            return candidate
    return None


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """Field names of the table at ``loc`` (for "unknown key" messages)."""
    cls: Any = LiveConfig
    for part in loc[:-1]:
        cls = _nested_dataclass(cls, str(part))
        if cls is None:
            return []
    return [f.name for f in dataclasses.fields(cls)]


def _describe(exc: ValidationError) -> tuple[str, str]:
    """The first problem as ``(dotted field, message)``."""
    error = exc.errors()[0]
    loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    where = ".".join(str(p) for p in loc)
    if error["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
        allowed = _allowed_keys(loc)
        return where, f"{where} is not a known key" + (f"; allowed: {', '.join(allowed)}" if allowed else "")
    if error["type"] == "missing" or error["type"] == "missing_argument":
        return where, f"{where} is required"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "value_error":
        return where, f"{where}: {message}" if where else message
    return where, f"{where} = {error['input']!r}: {message}"


def _resolve(path: str, base: Path) -> str:
    return str(base / path) if path and not Path(path).is_absolute() else path


def live_config_from_dict(data: Mapping[str, Any], base_dir: Path | None = None) -> LiveConfig:
    """A validated :class:`LiveConfig` from parsed TOML; relative paths resolved against ``base_dir``."""
    try:
        # Through JSON: TOML's types are JSON's (dates become ISO text), and JSON-mode validation
        # accepts 5 for a float but never "5" or true.
        config = _ADAPTER.validate_json(json.dumps(data, default=str))
    except ValidationError as exc:
        where, message = _describe(exc)
        raise ConfigError(message, where) from None
    if base_dir is None:
        return config
    broker = config.broker
    tls = broker.tls
    if tls is not None:
        tls = dataclasses.replace(tls, ca_file=_resolve(tls.ca_file, base_dir),
                                  cert_file=_resolve(tls.cert_file, base_dir),
                                  key_file=_resolve(tls.key_file, base_dir))
    broker = dataclasses.replace(broker, password_file=_resolve(broker.password_file, base_dir), tls=tls)
    scenario = config.forecasts.scenario
    if (base_dir / scenario).suffix and (base_dir / scenario).exists():
        scenario = str(base_dir / scenario)
    failsafe = dataclasses.replace(config.failsafe, state_file=_resolve(config.failsafe.state_file, base_dir))
    feeds = config.feeds
    if feeds is not None:
        feeds = dataclasses.replace(feeds, cache_dir=_resolve(feeds.cache_dir, base_dir))
    return dataclasses.replace(config, broker=broker, house_file=_resolve(config.house_file, base_dir),
                               forecasts=ForecastsConfig(scenario), failsafe=failsafe, feeds=feeds)


def load_live_config(path: str | Path) -> LiveConfig:
    """Read ``live.toml``; every problem is a :class:`ConfigError` naming the file and the field."""
    path = Path(path)
    data = read_toml(path, "live config")
    try:
        return live_config_from_dict(data, path.parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}", exc.field) from None
