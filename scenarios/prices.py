"""Czech day-ahead electricity prices (OTE, a.s.) and the retail tariff built on them.

All reading of price files happens here, in one place (pvlib ``iotools`` style): the
reader converts the source's EUR/MWh on its own day/hour labels into a gapless hourly
EUR/kWh series on a tz-aware Europe/Prague index. Everything downstream works on that.

The OTE CSV format (as collected by ``stranma/algo-energy-web``) has the columns
``date, hour, interval_start, price_eur_mwh, volume_mwh``. ``hour`` is the position of
the trading hour within the local day (OTE's hour number − 1), i.e. the number of hours
elapsed since local midnight, and ``interval_start`` is simply ``date`` + ``hour`` written
as a naive timestamp. On normal days that is the local wall-clock hour; on the DST days
it is not:

* spring-forward day (23 trading hours): rows 0..22; the row labelled ``02:00`` (a time
  that does not exist in Europe/Prague) is really 03:00 CEST, and so on up to 23:00 CEST;
* fall-back day (25 trading hours): the collector kept only the first 24, so the rows are
  00:00, 01:00, 02:00 CEST, 02:00 CET, 03:00 … 22:00 CET, and the day's last hour
  (23:00 CET) is missing. The reader fills it from its neighbour and reports it.

Reading the rows as wall-clock times would shift every DST-day price after 02:00 by an
hour; the OTE price profiles of the following days (same UTC offset) match the
positional reading much better, and so does the collector's code.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from twin.errors import ScenarioError
from twin.params import bounded, check_bounds

OTE_TIMEZONE = "Europe/Prague"
OTE_REQUIRED_COLUMNS = ("date", "hour", "price_eur_mwh")
#: Name of the bundled excerpt (2024, hourly) in ``scenarios/data``.
BUNDLED_OTE_FILE = "ote_cz_dayahead_2024.csv"
BUNDLED_OTE_SOURCE = ("OTE, a.s. public day-ahead market results (CZ), 2024, via the public repository "
                      "stranma/algo-energy-web, data/cz/da-hourly/2024.csv")

_HOUR_NS = 3_600_000_000_000
_DAY_NS = 24 * _HOUR_NS


def read_ote_dayahead(path: str | Path) -> tuple[pd.Series, dict]:
    """Read an OTE day-ahead CSV (hourly, or 15-min with a ``minute`` column) into a price series.

    Parameters
    ----------
    path : str or Path
        CSV with at least the columns ``date`` (``YYYY-MM-DD``, local day), ``hour``
        (elapsed hours since local midnight, 0..22/23/24), ``price_eur_mwh``; an
        ``interval_start`` column, when present, must equal ``date`` + ``hour``. Other
        columns (``volume_mwh``) are ignored. Rows may come in any order.

    Returns
    -------
    prices : pd.Series
        Spot price [EUR/kWh], hourly, indexed by the start of each hour (tz-aware
        Europe/Prague, ``freq='h'``), named ``spot_price_per_kwh``. Negative prices are kept.
    metadata : dict
        ``source`` (the path), ``rows`` (data rows read), ``start``/``end`` (first hour and
        end of the last hour), ``filled`` (list of the timestamps that were missing and filled
        from the previous hour: the last hour of a fall-back day), ``empty`` (timestamps of rows
        whose price cell was empty: NaN in ``prices``), ``interval_minutes`` (60 or 15).

    Raises
    ------
    ScenarioError
        Naming the file, the column and the row (1-based line number in the file) of the
        first problem: a missing column, an unparsable or non-finite value, an hour outside
        its day, a duplicated hour, a missing hour or day.
    """
    path = Path(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise ScenarioError(f"{path}: OTE price file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: not a readable CSV file ({exc})") from None
    missing = [c for c in OTE_REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise ScenarioError(f"{path}: missing column(s) {missing}; found {list(raw.columns)}")
    if raw.empty:
        raise ScenarioError(f"{path}: no data rows")

    def fail(column: str, i: int, message: str) -> ScenarioError:
        # i is the 0-based data row; +2 turns it into the file's line number (header is line 1)
        return ScenarioError(f"{path}: column {column!r} row {i + 2}: {message}")

    dates = pd.to_datetime(raw["date"], format="%Y-%m-%d", errors="coerce")
    if dates.isna().any():
        i = int(np.argmax(dates.isna().to_numpy()))
        raise fail("date", i, f"{raw['date'].iloc[i]!r} is not a date YYYY-MM-DD")
    hours = pd.to_numeric(raw["hour"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(hours) | (hours != np.round(hours)) | (hours < 0) | (hours > 24)
    if bad.any():
        i = int(np.argmax(bad))
        raise fail("hour", i, f"{raw['hour'].iloc[i]!r} is not a whole hour in 0..24")
    hours = hours.astype(np.int64)
    # A 15-min file (OTE since 2025-10-01) adds a ``minute`` column (0, 15, 30, 45) within the hour.
    quarter = "minute" in raw.columns
    per_hour = 4 if quarter else 1
    step_ns = _HOUR_NS // per_hour
    minutes = np.zeros(len(raw), dtype=np.int64)
    if quarter:
        parsed_minutes = pd.to_numeric(raw["minute"], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isin(parsed_minutes, (0.0, 15.0, 30.0, 45.0))
        if bad.any():
            i = int(np.argmax(bad))
            raise fail("minute", i, f"{raw['minute'].iloc[i]!r} is not 0, 15, 30 or 45")
        minutes = parsed_minutes.astype(np.int64)
    # An empty price cell is a gap (reported; the caller's gap policy fills it), not a broken file.
    empty_price = (raw["price_eur_mwh"].str.strip() == "").to_numpy()
    price_eur_mwh = pd.to_numeric(raw["price_eur_mwh"], errors="coerce").to_numpy(dtype=float)
    bad = (~np.isfinite(price_eur_mwh) & ~empty_price) | (np.abs(price_eur_mwh) > 10_000.0)
    if bad.any():
        i = int(np.argmax(bad))
        raise fail("price_eur_mwh", i, f"{raw['price_eur_mwh'].iloc[i]!r} is not a price in [-10000, 10000]")
    day_ns = dates.to_numpy().astype("datetime64[ns]").astype(np.int64)
    if "interval_start" in raw.columns:
        expected = (dates + pd.to_timedelta(hours, unit="h") + pd.to_timedelta(minutes, unit="min")).dt.strftime(
            "%Y-%m-%dT%H:%M:%S")
        # Hour 24 of a 25-hour day may also be written literally (``T24:00:00``).
        literal = raw["date"] + "T" + pd.Series(hours, index=raw.index).map("{:02d}:".format) + pd.Series(
            minutes, index=raw.index).map("{:02d}:00".format)
        bad = ((raw["interval_start"] != expected) & (raw["interval_start"] != literal)).to_numpy()
        if bad.any():
            i = int(np.argmax(bad))
            raise fail("interval_start", i, f"{raw['interval_start'].iloc[i]!r} does not match date "
                       f"{raw['date'].iloc[i]} + hour {hours[i]} (expected {expected.iloc[i]})")

    # Absolute start of each local day; a day's length is 23, 24 or 25 h across DST changes.
    day_codes = np.unique(day_ns)
    first_day, last_day = day_codes[0], day_codes[-1]
    all_days = np.arange(first_day, last_day + 2 * _DAY_NS, _DAY_NS)  # one extra: end of the last day
    local_midnights = pd.DatetimeIndex(all_days.astype("datetime64[ns]")).tz_localize(OTE_TIMEZONE)
    midnight_utc = local_midnights.as_unit("ns").asi8
    day_len_h = np.diff(midnight_utc) // _HOUR_NS
    day_pos = (day_ns - first_day) // _DAY_NS
    missing_days = np.setdiff1d(np.arange(len(day_len_h)), day_pos)
    if missing_days.size:
        day = pd.Timestamp(all_days[missing_days[0]]).date()
        raise ScenarioError(f"{path}: column 'date': day {day} is missing (no rows between "
                            f"{pd.Timestamp(first_day).date()} and {pd.Timestamp(last_day).date()})")
    outside = hours >= day_len_h[day_pos]
    if outside.any():
        i = int(np.argmax(outside))
        raise fail("hour", i, f"hour {hours[i]} does not exist on {raw['date'].iloc[i]}, a "
                   f"{day_len_h[day_pos[i]]}-hour local day (hour counts elapsed hours since local midnight)")

    start_ns = midnight_utc[day_pos] + hours * _HOUR_NS + minutes * (_HOUR_NS // 60)
    order = np.argsort(start_ns, kind="stable")
    sorted_ns = start_ns[order]
    dup = np.diff(sorted_ns) == 0
    if dup.any():
        i = int(order[int(np.argmax(dup)) + 1])
        raise fail("hour", i, f"hour {hours[i]}" + (f" minute {minutes[i]}" if quarter else "")
                   + f" of {raw['date'].iloc[i]} appears twice")

    n_hours = int((midnight_utc[-1] - midnight_utc[0]) // step_ns)
    slot = (sorted_ns - midnight_utc[0]) // step_ns
    values = np.full(n_hours, np.nan)
    values[slot] = price_eur_mwh[order] / 1000.0  # EUR/MWh -> EUR/kWh
    present = np.zeros(n_hours, bool)
    present[slot] = True
    index = pd.date_range(pd.Timestamp(midnight_utc[0], tz="UTC"), periods=n_hours,
                          freq=pd.Timedelta(step_ns, unit="ns")).tz_convert(OTE_TIMEZONE)
    empty = [index[k] for k in slot[empty_price[order]]]
    gaps = np.flatnonzero(~present)
    filled: list[pd.Timestamp] = []
    if gaps.size:
        # Only the known DST quirk is repaired: hours missing from a 25-hour day.
        gap_day = np.searchsorted(midnight_utc, midnight_utc[0] + gaps * step_ns, side="right") - 1
        not_fallback = day_len_h[gap_day] != 25
        if not_fallback.any():
            k = int(np.argmax(not_fallback))
            raise ScenarioError(
                f"{path}: column 'hour': hour {index[gaps[k]]} is missing on "
                f"{pd.Timestamp(all_days[gap_day[k]]).date()} "
                "(only the 25th hour of a fall-back day may be missing)")
        for g in gaps:  # a handful per year at most
            values[g] = values[g - 1] if g > 0 and not math.isnan(values[g - 1]) else values[g + 1]
            filled.append(index[g])
    prices = pd.Series(values, index=index, name="spot_price_per_kwh")
    metadata = {
        "source": str(path),
        "rows": int(len(raw)),
        "start": index[0],
        "end": index[-1] + pd.Timedelta(step_ns, unit="ns"),
        "filled": filled,
        "empty": empty,  # rows with an empty price: NaN in ``prices`` (the caller's gap policy fills them)
        "interval_minutes": 60 // per_hour,
        "unit": "EUR/kWh",
    }
    return prices, metadata


@functools.cache
def _bundled_ote() -> tuple[pd.Series, dict]:
    path = resources.files("scenarios").joinpath("data", BUNDLED_OTE_FILE)
    with resources.as_file(path) as file:
        return read_ote_dayahead(file)


def bundled_ote_prices() -> tuple[pd.Series, dict]:
    """The bundled OTE 2024 excerpt, read once per process (copies are returned)."""
    prices, metadata = _bundled_ote()
    meta = dict(metadata, filled=list(metadata["filled"]), source_description=BUNDLED_OTE_SOURCE)
    return prices.copy(), meta


@dataclass(frozen=True, slots=True)
class Tariff:
    """Retail tariff on top of the spot price, all amounts in EUR/kWh (VAT as a fraction).

    ``network_fee_per_kwh`` covers distribution, system services and taxes per kWh;
    ``supplier_margin_per_kwh`` is the retailer's mark-up; ``export_fee_per_kwh`` is what the
    buyer of exported energy keeps. See :func:`apply_tariff`. A value outside its range raises
    ``ValueError`` (:class:`twin.errors.ConfigError`) naming the field, value and range.
    """

    network_fee_per_kwh: float = bounded(0.0, 1.0, "EUR/kWh", default=0.08)
    supplier_margin_per_kwh: float = bounded(-0.5, 1.0, "EUR/kWh", default=0.01)
    vat_rate: float = bounded(0.0, 1.0, default=0.21)
    export_fee_per_kwh: float = bounded(-0.5, 1.0, "EUR/kWh", default=0.01)

    def __post_init__(self) -> None:
        check_bounds(self)


def apply_tariff(spot_per_kwh, tariff: Tariff):  # noqa: ANN001, ANN201 - numeric in, numeric out
    """Retail import and export prices from the spot price.

    Parameters
    ----------
    spot_per_kwh : numeric
        Day-ahead spot price [EUR/kWh]; scalar, ndarray or Series. May be negative.
    tariff : Tariff

    Returns
    -------
    import_price_per_kwh, export_price_per_kwh : numeric
        ``import = (spot + supplier_margin + network_fee) * (1 + vat_rate)``;
        ``export = spot - export_fee`` [EUR/kWh]. Both keep the input's type and may be
        negative (a negative spot price reaches the household: it is paid to import and
        pays to export).
    """
    import_price = (spot_per_kwh + tariff.supplier_margin_per_kwh + tariff.network_fee_per_kwh) * (
        1.0 + tariff.vat_rate)
    export_price = spot_per_kwh - tariff.export_fee_per_kwh
    return import_price, export_price
