"""The retail price a house pays and gets, from the spot price and the tariff (and CNB's rate for CZK)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hardware.feeds.config import TariffConfig, in_spans
from hardware.feeds.http import FeedError

CNB_FEED = "exchange rate (CNB)"


def parse_cnb_eur_rate(text: str) -> float:
    """CZK per EUR from the CNB daily-rates JSON (``rates``: ``currencyCode``, ``amount``, ``rate``)."""
    try:
        data = json.loads(text)
        rows = [r for r in data["rates"] if isinstance(r, dict) and r.get("currencyCode") == "EUR"]
    except (ValueError, KeyError, TypeError) as exc:
        raise FeedError(CNB_FEED, f"malformed JSON ({type(exc).__name__}: {exc})") from None
    if len(rows) != 1:
        raise FeedError(CNB_FEED, f"{len(rows)} EUR rows in the answer (expected one)")
    try:
        rate = float(rows[0]["rate"]) / float(rows[0]["amount"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise FeedError(CNB_FEED, f"EUR row unusable ({exc})") from None
    if not (math.isfinite(rate) and 10.0 <= rate <= 100.0):
        raise FeedError(CNB_FEED, f"EUR rate {rate} CZK is implausible (wrong units?)")
    return rate


@dataclass(frozen=True, slots=True)
class RetailPrices:
    import_per_kwh: np.ndarray
    export_per_kwh: np.ndarray


def retail_prices(spot_per_mwh: np.ndarray, times: pd.DatetimeIndex, tariff: TariffConfig,
                  czk_per_eur: float | None = None) -> RetailPrices:
    """Import and export prices [currency/kWh] at ``times`` (slot starts, tz-aware local) from spot [EUR/MWh]."""
    rate = 1.0
    if tariff.currency == "CZK":
        if czk_per_eur is None:
            raise ValueError("a CZK tariff needs the CZK/EUR rate")
        rate = czk_per_eur
    spot_kwh = np.asarray(spot_per_mwh, dtype=float) / 1000.0 * rate
    spans = tariff.low_spans()
    minutes = times.hour * 60 + times.minute
    low = np.array([in_spans(int(m), spans) for m in minutes], dtype=bool)
    distribution = np.where(low, tariff.distribution_low_per_kwh, tariff.distribution_high_per_kwh)
    imported = (spot_kwh + tariff.supplier_margin_per_kwh + distribution + tariff.fees_per_kwh) \
        * (1.0 + tariff.vat_fraction)
    exported = spot_kwh - tariff.export_fee_per_kwh
    return RetailPrices(imported, exported)
