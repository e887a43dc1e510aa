"""OTE (Czech market operator) day-ahead prices: SOAP ``GetDamPricePeriodE``.

A slot's start is the *local* (Europe/Prague) midnight of its ``Date`` plus
``(PeriodIndex − 1) × PeriodResolution`` counted in real time, so the day on which summer time
starts has 92 quarter hours (23 hours) and the day on which it ends 100 (25 hours); the
``PeriodInterval`` text ("02:00-02:15") is ambiguous on those days and is not used. 15-min
products since 2025-10-01, hourly (``PT60M``) before: both are read.

A day is taken whole or not at all: a day with missing, duplicated or extra periods, a NaN or an
implausible price (the harmonised limits are −500 … 4 000 EUR/MWh; wrong units look like
values far outside them) is reported as a defect of that answer.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections import defaultdict
from datetime import date, timedelta

import pandas as pd

from hardware.feeds.http import FeedError

FEED = "prices (OTE)"
NAMESPACE = "http://www.ote-cr.cz/schema/service/public"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
DEFAULT_URL = "https://www.ote-cr.cz/services/PublicDataService"
TIMEZONE = "Europe/Prague"
FIFTEEN_MIN_FROM = date(2025, 10, 1)  # OTE's day-ahead market went to 15-min products that day
PRICE_LIMITS_PER_MWH = (-1000.0, 10000.0)  # beyond the harmonised −500 … 4 000 with margin: units gone wrong
RESOLUTIONS = {"PT15M": 15, "PT60M": 60}


def resolution_for(day: date) -> str:
    return "PT15M" if day >= FIFTEEN_MIN_FROM else "PT60M"


def request_body(start: date, end: date, resolution: str) -> bytes:
    """The SOAP envelope asking for ``start`` … ``end`` (inclusive) at ``resolution``."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" xmlns:pub="{NAMESPACE}">'
            f"<soapenv:Header/><soapenv:Body><pub:GetDamPricePeriodE>"
            f"<pub:StartDate>{start.isoformat()}</pub:StartDate><pub:EndDate>{end.isoformat()}</pub:EndDate>"
            f"<pub:PeriodResolution>{resolution}</pub:PeriodResolution>"
            f"</pub:GetDamPricePeriodE></soapenv:Body></soapenv:Envelope>").encode()


def requests_for(start: date, end: date) -> list[tuple[date, date, str]]:
    """``(start, end, resolution)`` requests covering the days, split at the 15-min switch."""
    out = []
    if start < FIFTEEN_MIN_FROM:
        out.append((start, min(end, FIFTEEN_MIN_FROM - timedelta(days=1)), "PT60M"))
    if end >= FIFTEEN_MIN_FROM:
        out.append((max(start, FIFTEEN_MIN_FROM), end, "PT15M"))
    return out


def day_slots(day: date, minutes: int, tz: str = TIMEZONE) -> pd.DatetimeIndex:
    """Slot starts of one local day (92/96/100 quarter hours, 23/24/25 hours)."""
    midnight = pd.Timestamp(day).tz_localize(tz)
    next_midnight = pd.Timestamp(day + timedelta(days=1)).tz_localize(tz)
    return pd.date_range(midnight, next_midnight, freq=pd.Timedelta(minutes=minutes), inclusive="left")


def _text(item: ET.Element, name: str) -> str:
    node = item.find(f"{{{NAMESPACE}}}{name}")
    if node is None or node.text is None or not node.text.strip():
        raise ValueError(f"an Item without {name}")
    return node.text.strip()


def parse_dam_prices(text: str, tz: str = TIMEZONE) -> pd.Series:
    """Spot prices [EUR/MWh] by slot start (tz-aware, sorted) from a ``GetDamPricePeriodE`` answer.

    A day present in the answer must be complete; an answer without the next day (not yet
    published) is normal and simply ends earlier. Raises :class:`FeedError` naming the defect.
    """
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise FeedError(FEED, "answer declares a DTD/entities (refused: SOAP has none)")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise FeedError(FEED, f"malformed XML ({exc})") from None
    fault = root.find(f".//{{{SOAP_ENV}}}Fault")
    if fault is not None:
        raise FeedError(FEED, f"SOAP fault: {' '.join(fault.itertext()).strip()[:200]}")
    result = root.find(f".//{{{NAMESPACE}}}GetDamPricePeriodEResponse/{{{NAMESPACE}}}Result")
    if result is None:
        raise FeedError(FEED, "no GetDamPricePeriodEResponse/Result in the answer")
    by_day: dict[date, dict[int, float]] = defaultdict(dict)
    minutes_of: dict[date, int] = {}
    for n, item in enumerate(result.findall(f"{{{NAMESPACE}}}Item"), start=1):
        try:
            day = date.fromisoformat(_text(item, "Date"))
            resolution = _text(item, "PeriodResolution")
            index = int(_text(item, "PeriodIndex"))
            price = float(_text(item, "Price"))
        except ValueError as exc:
            raise FeedError(FEED, f"Item {n}: {exc}") from None
        if resolution not in RESOLUTIONS:
            raise FeedError(FEED, f"Item {n}: unknown PeriodResolution {resolution!r}")
        if minutes_of.setdefault(day, RESOLUTIONS[resolution]) != RESOLUTIONS[resolution]:
            raise FeedError(FEED, f"{day}: mixed period resolutions")
        if not math.isfinite(price):
            raise FeedError(FEED, f"{day} period {index}: price is {price}")
        lo, hi = PRICE_LIMITS_PER_MWH
        if not lo <= price <= hi:
            raise FeedError(FEED, f"{day} period {index}: price {price} outside {lo:g} … {hi:g} EUR/MWh "
                                  "(wrong units?)")
        if index in by_day[day]:
            raise FeedError(FEED, f"{day}: period {index} duplicated")
        by_day[day][index] = price
    if not by_day:
        raise FeedError(FEED, "the answer holds no prices")
    parts = []
    for day in sorted(by_day):
        slots = day_slots(day, minutes_of[day], tz)
        indices = by_day[day]
        expected = set(range(1, len(slots) + 1))
        missing, extra = sorted(expected - set(indices)), sorted(set(indices) - expected)
        if extra:
            raise FeedError(FEED, f"{day}: {len(extra)} period(s) beyond the day's {len(slots)} "
                                  f"(e.g. index {extra[0]})")
        if missing:
            raise FeedError(FEED, f"{day}: {len(missing)} of {len(slots)} periods missing (e.g. index {missing[0]})")
        parts.append(pd.Series([indices[i] for i in range(1, len(slots) + 1)], index=slots, dtype=float))
    return pd.concat(parts).sort_index()


def build_response(prices: pd.Series | None, resolution: str = "PT15M", tz: str = TIMEZONE,
                   decimals: int | None = 2) -> str:
    """A ``GetDamPricePeriodE`` answer in the recorded schema for whole local days of ``prices``.

    ``prices`` [EUR/MWh] is indexed by tz-aware slot starts on the resolution's grid. Used by the
    emulator's feed server and by tests (DST days with 92 and 100 quarter hours). ``decimals``:
    OTE's two, or ``None`` for every digit (the emulator, whose prices must come back exactly).
    """
    fmt = (lambda v: repr(float(v))) if decimals is None else (lambda v: f"{v:.{decimals}f}")
    minutes = RESOLUTIONS[resolution]
    local = prices.tz_convert(tz) if prices is not None and len(prices) else pd.Series(dtype=float)
    items = []
    for day, group in (local.groupby(local.index.date) if len(local) else ()):
        slots = day_slots(day, minutes, tz)
        values = group.reindex(slots)
        for i, (start, price) in enumerate(values.items(), start=1):
            end = start + pd.Timedelta(minutes=minutes)
            hour = start.tz_convert("UTC").floor("h")  # Prague's offsets are whole hours
            hourly = float(local[hour:hour + pd.Timedelta(minutes=59)].mean())
            items.append(
                f"<Item><Date>{day.isoformat()}</Date><PeriodResolution>{resolution}</PeriodResolution>"
                f"<PeriodIndex>{i}</PeriodIndex><PeriodInterval>{start:%H:%M}-{end:%H:%M}</PeriodInterval>"
                f"<Price>{fmt(price)}</Price><HourlyPrice>{fmt(hourly)}</HourlyPrice>"
                f"<VolumeTotal>0.000</VolumeTotal></Item>")
    return (f'<?xml version="1.0" ?><SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_ENV}"><SOAP-ENV:Body>'
            f'<GetDamPricePeriodEResponse xmlns="{NAMESPACE}"><Result>{"".join(items)}</Result>'
            f"</GetDamPricePeriodEResponse></SOAP-ENV:Body></SOAP-ENV:Envelope>")
