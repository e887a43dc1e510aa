"""Payload schemas at the MQTT boundary (pydantic v2), inbound and outbound.

Strict: JSON objects only, unknown keys forbidden, finite numbers within physical ranges, no
string-for-number or bool-for-number coercion, timestamps ISO 8601 *with* an offset, payloads at
most :data:`MAX_PAYLOAD_BYTES`. A payload that fails is dropped by the receiver (and counted):
it never reaches the loop. Units as everywhere: kW, kWh, °C, SOC as a fraction 0..1, current A.
``ts`` is the sender's clock at the moment the value was true; ``seq`` a command's sequence
number (devices ignore ``seq`` ≤ the last one they accepted); ``until``/``ttl_s`` a command's
lease (absolute, and relative to its receipt: the earlier end wins, so clock skew cannot
stretch a lease).
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from twin.contracts import BatteryMode

MAX_PAYLOAD_BYTES = 4096

PowerKw = Annotated[float, Field(ge=-1000.0, le=1000.0)]
EnergyCounterKwh = Annotated[float, Field(ge=0.0, le=1e9)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Seq = Annotated[int, Field(ge=0, le=2**63 - 1)]
#: Who rules a device now: a controller's lease, its own local rule, or a person (wall switch, app).
Source = Literal["pems", "local", "manual"]
BatteryModeName = Literal[tuple(m.value for m in BatteryMode)]  # type: ignore[valid-type]


class Payload(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)


class Status(Payload):
    """A device reading; ``ts`` is when it was true on the device's clock (optional)."""

    ts: AwareDatetime | None = None


# --- readings: devices → controller ---------------------------------------------------------------

class RoomTemperature(Status):
    temp_c: Annotated[float, Field(ge=-40.0, le=80.0)]


class OutdoorTemperature(Status):
    temp_c: Annotated[float, Field(ge=-60.0, le=60.0)]


class HeatingStatus(Status):
    """A heating relay: its state, who rules it, metered energy and switch count since install."""

    state: Literal["on", "off"]
    source: Source | None = None
    seq: Seq | None = None  # last command accepted
    energy_kwh: EnergyCounterKwh | None = None
    switches: Annotated[int, Field(ge=0, le=2**53)] | None = None


class BatteryStatus(Status):
    soc: Fraction
    power_kw: PowerKw  # + charging / − discharging
    mode: BatteryModeName | None = None
    seq: Seq | None = None
    source: Source | None = None
    charge_kwh: EnergyCounterKwh | None = None
    discharge_kwh: EnergyCounterKwh | None = None


class PvStatus(Status):
    power_kw: Annotated[float, Field(ge=0.0, le=10_000.0)]  # a PV meter never draws power
    energy_kwh: EnergyCounterKwh | None = None


class GridStatus(Status):
    power_kw: Annotated[float, Field(ge=-10_000.0, le=10_000.0)]  # + import / − export
    import_kwh: EnergyCounterKwh | None = None
    export_kwh: EnergyCounterKwh | None = None


class ChargerStatus(Status):
    connected: bool
    power_kw: Annotated[float, Field(ge=0.0, le=100.0)]
    enabled: bool | None = None
    current_a: Annotated[float, Field(ge=0.0, le=80.0)] | None = None
    seq: Seq | None = None
    source: Source | None = None
    energy_kwh: EnergyCounterKwh | None = None


class CarStatus(Status):
    """What the car (or its owner's plan) tells: SOC, energy still wanted, planned departure."""

    soc: Fraction | None = None
    energy_needed_kwh: Annotated[float, Field(ge=0.0, le=300.0)] | None = None
    departure: AwareDatetime | None = None


class ControllerStatus(Status):
    """Birth and last will of the controller (retained)."""

    state: Literal["online", "offline"]
    mode: Annotated[str, Field(max_length=32)] | None = None


LinkStateName = Literal["connecting", "reconciling", "running", "safe"]


class Heartbeat(Payload):
    """The controller is alive and connected: published every ``failsafe.heartbeat_s``, not retained.

    The controller reads its own heartbeats back (the echo proves the broker forwards traffic);
    devices fall back to their own rules when heartbeats stop, without waiting for a lease or
    the last will (a frozen controller leaves no will).
    """

    ts: AwareDatetime
    n: Annotated[int, Field(ge=0, le=2**63 - 1)]
    session: Annotated[str, Field(min_length=1, max_length=64)]
    state: LinkStateName


class Alert(Payload):
    """Something a person should know (``pems/alerts``, QoS 1, not retained)."""

    ts: AwareDatetime
    kind: Annotated[str, Field(min_length=1, max_length=64)]
    message: Annotated[str, Field(max_length=1000)]
    device: Annotated[str, Field(max_length=256)] | None = None


class OptimStatus(Payload):
    """How the last decision was made (``pems/optim_status``, retained), EMHASS's ``optim_status``.

    ``status``: the planner's own word when it planned (``optimal``, ``feasible``, ``ok``), or
    ``last_plan`` (its solve failed; the last valid plan runs while it lasts), ``fallback`` (a
    simple controller decided) or ``defaults`` (nothing decided; every device on its own rule).
    """

    ts: AwareDatetime
    status: Annotated[str, Field(min_length=1, max_length=64)]
    controller: Annotated[str, Field(max_length=128)]
    detail: Annotated[str, Field(max_length=1000)] = ""


class EmulatorTime(Payload):
    """Lockstep: the emulator's house time [s since its start]; every reading up to it follows."""

    house_s: Annotated[float, Field(ge=0.0, le=1e9)]


class EmulatorAck(Payload):
    """Lockstep: the controller has decided and sent its commands for house second ``house_s``."""

    house_s: Annotated[float, Field(ge=0.0, le=1e9)]


class EmulatorClock(Payload):
    """The emulator's house clock: house time = house_start + (wall − wall_start_s) × speed."""

    scenario: Annotated[str, Field(min_length=1, max_length=256)]
    house_start: AwareDatetime
    house_end: AwareDatetime
    wall_start_s: Annotated[float, Field(ge=0.0, le=1e11)]  # Unix time [s]
    speed: Annotated[float, Field(ge=0.01, le=100_000.0)]
    timezone: Annotated[str, Field(min_length=1, max_length=64)]
    #: A co-simulation clock: house time is what ``emulator_time`` says, not the wall clock's.
    lockstep: bool = False
    #: In lockstep, the decision instants the emulator waits at (multiples of this, house s).
    decision_interval_s: Annotated[float, Field(gt=0.0, le=86400.0)] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> EmulatorClock:
        if self.house_end <= self.house_start:
            raise ValueError("house_end must be after house_start")
        return self


# --- commands: controller → devices ---------------------------------------------------------------

class Lease(Payload):
    until: AwareDatetime
    ttl_s: Annotated[float, Field(gt=0.0, le=86400.0)]
    seq: Seq
    ts: AwareDatetime | None = None  # when the controller decided


class HeatingCommand(Lease):
    state: Literal["on", "off"]


class BatteryCommandPayload(Lease):
    mode: BatteryModeName
    power_kw: PowerKw = 0.0
    reserve_soc: Fraction | None = None


class ChargerCommand(Lease):
    """``enabled`` false (and ``current_a`` 0) stops charging; otherwise 6–32 A per phase."""

    enabled: bool
    current_a: Annotated[float, Field(ge=0.0, le=32.0)]

    @model_validator(mode="after")
    def _range(self) -> ChargerCommand:
        if self.enabled and not 6.0 <= self.current_a <= 32.0:
            raise ValueError(f"current_a = {self.current_a} must be in [6, 32] A while enabled")
        if not self.enabled and self.current_a != 0.0:
            raise ValueError("current_a must be 0 when the charger is not enabled")
        return self


#: The schema of each topic key a receiver validates.
READING_SCHEMAS: dict[str, type[Status]] = {
    "room_temperature": RoomTemperature,
    "heating_status": HeatingStatus,
    "outdoor_temperature": OutdoorTemperature,
    "battery_status": BatteryStatus,
    "pv_status": PvStatus,
    "grid_status": GridStatus,
    "ev_status": ChargerStatus,
    "ev_car_status": CarStatus,
}
COMMAND_SCHEMAS: dict[str, type[Lease]] = {
    "heating_set": HeatingCommand,
    "battery_set": BatteryCommandPayload,
    "ev_set": ChargerCommand,
}

P = TypeVar("P", bound=Payload)


class PayloadError(ValueError):
    """A payload that does not fit its schema; ``reason`` is short enough to count by."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def parse_payload(schema: type[P], payload: bytes) -> P:
    """Validate ``payload`` against ``schema``; raise :class:`PayloadError` saying why not."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError("too_large", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    try:
        return schema.model_validate_json(payload)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "payload"
        raise PayloadError(error["type"], f"{where}: {error['msg']}") from None


def dump(payload: Payload) -> bytes:
    """The JSON bytes of a payload (floats round-trip exactly)."""
    return payload.model_dump_json(exclude_none=True).encode()
