"""The ``[feeds]`` and ``[comfort]`` tables of ``live.toml``: where prices and weather come from,
the retail tariff on top of the spot price, and the comfort schedule per room.

Frozen dataclasses validated by pydantic when ``live.toml`` is loaded (every bad value is reported
with its dotted field). Money is in ``tariff.currency`` per kWh; spot prices arrive in EUR/MWh
and are converted with the Czech National Bank's daily rate when the currency is CZK.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, with_config

_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)
Url = Annotated[str, Field(min_length=8, max_length=2048, pattern=r"^https?://")]
PerKwh = Annotated[float, Field(ge=-10.0, le=100.0)]
_SPAN = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_span(text: str, where: str) -> tuple[int, int]:
    """``"HH:MM-HH:MM"`` → (start, end) in minutes of the local day; ``end < start`` wraps midnight."""
    match = _SPAN.match(text)
    if match is None:
        raise ValueError(f"{where}: {text!r} is not HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start > 1440 or end > 1440 or start == end:
        raise ValueError(f"{where}: {text!r} is empty or beyond 24:00")
    return start, end


def in_spans(minute: int, spans: tuple[tuple[int, int], ...]) -> bool:
    return any((a <= minute < b) if a < b else (minute >= a or minute < b) for a, b in spans)


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class HttpConfig:
    timeout_s: Annotated[float, Field(gt=0.0, le=300.0)] = 10.0
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    backoff_s: Annotated[float, Field(ge=0.0, le=60.0)] = 0.5


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class PricesFeedConfig:
    """Day-ahead prices. ``refresh_s``: how often to ask again [house s] while tomorrow is missing."""

    provider: Literal["ote"] = "ote"
    url: Url = "https://www.ote-cr.cz/services/PublicDataService"
    publication_hour_local: Annotated[float, Field(ge=0.0, lt=24.0)] = 13.0
    refresh_s: Annotated[float, Field(ge=10.0, le=86400.0)] = 900.0
    fallback_spot_per_mwh: Annotated[float, Field(ge=-500.0, le=4000.0)] = 100.0  # when nothing was ever seen


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class WeatherFeedConfig:
    """Weather forecast for the house's coordinates (from the house file unless given here).

    ``max_age_s`` [house s]: a cached forecast older than this is no longer used (climatology then).
    """

    provider: Literal["open-meteo"] = "open-meteo"
    url: Url = "https://api.open-meteo.com/v1/forecast"
    resolution: Literal["minutely_15", "hourly"] = "minutely_15"
    forecast_days: Annotated[int, Field(ge=1, le=16)] = 3
    refresh_s: Annotated[float, Field(ge=10.0, le=86400.0)] = 3600.0
    max_age_s: Annotated[float, Field(ge=60.0, le=7 * 86400.0)] = 12 * 3600.0


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class TariffConfig:
    """The retail price around the spot price, per kWh in ``currency``.

    import = (spot + supplier_margin + distribution(hour) + fees) × (1 + vat_fraction);
    export = spot − export_fee (never VAT: a small producer is not a VAT payer by default).
    The distribution rate is ``distribution_low_per_kwh`` during ``low_rate_hours`` (local
    "HH:MM-HH:MM" spans, e.g. the Czech D45d/D56d heating tariffs' low-rate hours), else
    ``distribution_high_per_kwh``.
    """

    currency: Literal["EUR", "CZK"] = "EUR"
    supplier_margin_per_kwh: PerKwh = 0.0
    distribution_high_per_kwh: PerKwh = 0.0
    distribution_low_per_kwh: PerKwh = 0.0
    low_rate_hours: tuple[Annotated[str, Field(max_length=11)], ...] = ()
    fees_per_kwh: PerKwh = 0.0  # system services, POZE …
    vat_fraction: Annotated[float, Field(ge=0.0, le=0.5)] = 0.0
    export_fee_per_kwh: PerKwh = 0.0
    cnb_url: Url = "https://api.cnb.cz/cnbapi/exrates/daily"
    fallback_eur_rate: Annotated[float, Field(gt=0.0, le=1000.0)] = 25.0  # CZK per EUR when CNB never answered

    def __post_init__(self) -> None:
        for i, span in enumerate(self.low_rate_hours):
            parse_span(span, f"low_rate_hours[{i}]")
        if self.low_rate_hours and self.distribution_low_per_kwh > self.distribution_high_per_kwh:
            raise ValueError("distribution_low_per_kwh is above distribution_high_per_kwh")

    def low_spans(self) -> tuple[tuple[int, int], ...]:
        return tuple(parse_span(s, "low_rate_hours") for s in self.low_rate_hours)


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class FeedsConfig:
    """``[feeds]``: the live feeds instead of a scenario replay (``cache_dir`` relative to live.toml)."""

    prices: PricesFeedConfig = PricesFeedConfig()
    weather: WeatherFeedConfig = WeatherFeedConfig()
    tariff: TariffConfig = TariffConfig()
    http: HttpConfig = HttpConfig()
    cache_dir: Annotated[str, Field(max_length=1024)] = "feeds-cache"
    step_s: Literal[900.0, 3600.0] = 900.0  # the forecast grid handed to the controller
    base_load_kwh_per_day: Annotated[float, Field(gt=0.0, le=500.0)] = 8.0  # climatology when no load forecaster
    # "physics": PV from pvlib on the forecast weather, load from a trained forecaster or the daily shape.
    # "scenario": PV and household-load forecasts replayed from [forecasts] scenario — only against the
    # emulator (the parity run through the feed path), never for a real house.
    pv_load: Literal["physics", "scenario"] = "physics"


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class DaySchedule:
    """One weekday: when rooms are in *day* mode (``day``) and when the house is empty (``away``).

    Outside ``day`` spans the mode is *night*; ``away`` overrides both. Local "HH:MM-HH:MM" spans.
    """

    day: tuple[Annotated[str, Field(max_length=11)], ...] = ("06:00-22:00",)
    away: tuple[Annotated[str, Field(max_length=11)], ...] = ()

    def __post_init__(self) -> None:
        for i, span in enumerate(self.day):
            parse_span(span, f"day[{i}]")
        for i, span in enumerate(self.away):
            parse_span(span, f"away[{i}]")


_WORKDAY = DaySchedule(day=("06:00-22:00",), away=())


@with_config(_STRICT)
@dataclass(frozen=True, slots=True)
class ComfortScheduleConfig:
    """``[comfort]``: day/night/away per weekday, for the whole house or per room (``rooms.<name>.<weekday>``).

    The temperature bands of each mode are the house file's (``rooms.*.comfort``).
    """

    mon: DaySchedule = _WORKDAY
    tue: DaySchedule = _WORKDAY
    wed: DaySchedule = _WORKDAY
    thu: DaySchedule = _WORKDAY
    fri: DaySchedule = _WORKDAY
    sat: DaySchedule = _WORKDAY
    sun: DaySchedule = _WORKDAY
    rooms: dict[Annotated[str, Field(max_length=256)], dict[Literal["mon", "tue", "wed", "thu", "fri", "sat",
                                                                    "sun"], DaySchedule]] = field(
        default_factory=dict)

    def day_schedule(self, room: str, weekday: int) -> DaySchedule:
        key = WEEKDAYS[weekday]
        own = self.rooms.get(room, {})
        return own.get(key, getattr(self, key))  # type: ignore[call-overload]
