"""The public services a live house reads, answered on 127.0.0.1 in their real wire formats.

A small threaded ``http.server``: OTE's SOAP ``GetDamPricePeriodE`` (POST
``/services/PublicDataService``), Open-Meteo's forecast (GET ``/v1/forecast``) and the CNB daily
rates (GET ``/cnbapi/exrates/daily``). What each answers comes from a provider function, so the
same server plays recorded responses in tests and a scenario's prices and *issued* forecasts in
``pems emulate`` (:func:`scenario_providers`). ``failing`` makes a route answer 503 (outages).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

OTE_PATH = "/services/PublicDataService"
WEATHER_PATH = "/v1/forecast"
CNB_PATH = "/cnbapi/exrates/daily"
PriceProvider = Callable[[date, date, str], str]  # (start, end, resolution) → SOAP answer
QueryProvider = Callable[[dict[str, str]], str]  # query parameters → JSON answer


def _tag(body: str, name: str) -> str | None:
    match = re.search(rf"<(?:\w+:)?{name}>\s*([^<]*?)\s*</(?:\w+:)?{name}>", body)
    return match.group(1) if match else None


class FeedServer:
    def __init__(self, prices: PriceProvider | None = None, weather: QueryProvider | None = None,
                 rates: QueryProvider | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.prices, self.weather, self.rates = prices, weather, rates
        self.failing: set[str] = set()  # route paths answering 503
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, for tests
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
                log.debug("feed server: " + format, *args)

            def _answer(self, status: int, body: str, content_type: str) -> None:
                data = body.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                path = urlsplit(self.path).path
                server.requests.append(("POST", path))
                length = min(int(self.headers.get("Content-Length") or 0), 1_000_000)
                body = self.rfile.read(length).decode("utf-8", "replace")
                if path != OTE_PATH or server.prices is None:
                    return self._answer(404, "not found", "text/plain")
                if path in server.failing:
                    return self._answer(503, "unavailable", "text/plain")
                try:
                    start = date.fromisoformat(_tag(body, "StartDate") or "")
                    end = date.fromisoformat(_tag(body, "EndDate") or "")
                except ValueError:
                    return self._answer(500, "<Fault>bad request</Fault>", "text/xml")
                resolution = _tag(body, "PeriodResolution") or "PT60M"
                self._answer(200, server.prices(start, end, resolution), "text/xml; charset=utf-8")

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                parts = urlsplit(self.path)
                server.requests.append(("GET", parts.path))
                provider = {WEATHER_PATH: server.weather, CNB_PATH: server.rates}.get(parts.path)
                if provider is None:
                    return self._answer(404, "not found", "text/plain")
                if parts.path in server.failing:
                    return self._answer(503, "unavailable", "text/plain")
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                self._answer(200, provider(query), "application/json; charset=utf-8")

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def ote_url(self) -> str:
        return self.base_url + OTE_PATH

    @property
    def weather_url(self) -> str:
        return self.base_url + WEATHER_PATH

    @property
    def cnb_url(self) -> str:
        return self.base_url + CNB_PATH

    def start(self) -> FeedServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="feed-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def json_text(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


def scenario_providers(house: Any, scenario: Any, house_now: Callable[[], Any], horizon_s: float,
                       publication_hour_local: float = 13.0, full: Any = None) -> tuple[PriceProvider, QueryProvider]:
    """OTE and Open-Meteo answers from a scenario, as the market and the weather service would give them.

    Prices: the spot price behind the scenario's export price (``export + export_fee`` of the
    scenario's tariff), for whole local days up to today — and tomorrow from the publication hour on
    (``house_now()``: the emulator's house time). Weather: the scenario's *issued* forecast at
    ``house_now()`` (the one ``pems simulate`` shows a controller at that step), on the scenario's
    grid in ``timeformat=unixtime``; the scenario has no cloud cover, so it reads 50 %. ``full``: the
    scenario a window was cut from, for the rest of the window's first day (a day is published whole).
    """
    import numpy as np
    import pandas as pd

    from hardware.feeds.ote import build_response, day_slots
    from hardware.plant.forecasts import ScenarioForecasts

    replay = ScenarioForecasts(house, scenario, horizon_s)
    tz = house.location.timezone
    export_fee = _scenario_export_fee(scenario)
    steps = len(replay.exo.series["export_price_per_kwh"])
    index = pd.date_range(scenario.start, periods=steps, freq=pd.Timedelta(seconds=scenario.step_s))
    spot_per_mwh = pd.Series((np.asarray(replay.exo.series["export_price_per_kwh"], dtype=float) + export_fee)
                             * 1000.0, index=index)
    if full is not None:  # the window's own (padded) data wins where it has any
        around = (full.data["export_price_per_kwh"].astype(float) + export_fee) * 1000.0
        spot_per_mwh = spot_per_mwh.combine_first(around)

    def prices(start: date, end: date, resolution: str) -> str:
        now = pd.Timestamp(house_now()).tz_convert(tz)
        last = now.date() + pd.Timedelta(days=1 if now.hour + now.minute / 60 >= publication_hour_local else 0)
        minutes = 15 if resolution == "PT15M" else 60
        days = []
        for day in pd.date_range(start, min(end, last), freq="D"):
            slots = day_slots(day.date(), minutes, tz)
            quarters = spot_per_mwh.reindex(day_slots(day.date(), 15, tz))
            # Hourly products (before 2025-10-01): the hour's mean, as the market's hourly price.
            values = quarters if minutes == 15 else pd.Series(
                quarters.groupby(quarters.index.tz_convert("UTC").floor("h")).mean().to_numpy(), index=slots)
            if values.notna().all():  # a day is published whole or not at all
                days.append(values)
        return build_response(pd.concat(days) if days else None, resolution, tz, decimals=None)

    def weather(query: dict[str, str]) -> str:
        now = pd.Timestamp(house_now())
        now = min(max(now, scenario.start), scenario.end - pd.Timedelta(seconds=1))
        forecast = replay.outlook(now.to_pydatetime()).forecast
        names = {"temperature_2m": forecast.outdoor_temp_c, "shortwave_radiation_instant": forecast.ghi_w_m2,
                 "direct_normal_irradiance_instant": forecast.dni_w_m2, "diffuse_radiation_instant": forecast.dhi_w_m2,
                 "cloud_cover": np.full(forecast.horizon_steps, 50.0)}
        units = {"time": "unixtime", "temperature_2m": "°C", "shortwave_radiation_instant": "W/m²",
                 "direct_normal_irradiance_instant": "W/m²", "diffuse_radiation_instant": "W/m²", "cloud_cover": "%"}
        block: dict[str, Any] = {"time": [int(t.timestamp()) for t in forecast.times]}
        block.update({k: [float(v) for v in values] for k, values in names.items()})
        return json_text({"latitude": house.location.latitude_deg, "longitude": house.location.longitude_deg,
                          "utc_offset_seconds": 0, "timezone": "GMT", "elevation": house.location.altitude_m,
                          "minutely_15_units": units, "minutely_15": block})

    return prices, weather


def emulator_feed_server(emulator: Any, full_scenario: Any, port: int, horizon_s: float = 3 * 86400.0) -> FeedServer:
    """The feed server of ``pems emulate``: answers on the emulator's house clock."""
    import pandas as pd

    def house_now() -> Any:
        clock = emulator.clock
        if clock is None:
            return emulator.scenario.start
        return pd.Timestamp(clock.timestamp(max(0.0, clock.now_s())))

    horizon_s = min(horizon_s, 3 * 86400.0)  # Open-Meteo's default three days
    prices, weather = scenario_providers(emulator.house, emulator.scenario, house_now, horizon_s, full=full_scenario)
    return FeedServer(prices, weather, port=port)


def _scenario_export_fee(scenario: Any) -> float:
    """The export fee of a synthetic scenario's tariff (0 when the scenario does not say)."""
    try:
        spec = json.loads(scenario.metadata.get("spec", "{}"))
        return float(spec.get("tariff", {}).get("export_fee_per_kwh", 0.0))
    except (ValueError, TypeError, AttributeError):
        return 0.0


def scenario_tariff(scenario: Any) -> dict[str, float]:
    """The ``[feeds.tariff]`` keys that rebuild a synthetic scenario's retail prices from its spot price."""
    try:
        tariff = json.loads(scenario.metadata.get("spec", "{}")).get("tariff", {})
    except (ValueError, TypeError, AttributeError):
        tariff = {}
    return {"supplier_margin_per_kwh": float(tariff.get("supplier_margin_per_kwh", 0.0)),
            "distribution_high_per_kwh": float(tariff.get("network_fee_per_kwh", 0.0)),
            "distribution_low_per_kwh": float(tariff.get("network_fee_per_kwh", 0.0)),
            "vat_fraction": float(tariff.get("vat_rate", 0.0)),
            "export_fee_per_kwh": float(tariff.get("export_fee_per_kwh", 0.0))}


def serve_files(ote: str | None, weather: str | None, cnb: str | None, port: int) -> FeedServer:
    """A server answering every request with the given recorded files (for trying ``pems feeds`` offline)."""
    from pathlib import Path

    def fixed(path: str | None) -> Any:
        return None if path is None else (lambda *args: Path(path).read_text(encoding="utf-8"))

    return FeedServer(fixed(ote), fixed(weather), fixed(cnb), port=port)


if __name__ == "__main__":  # python -m hardware.emulator.feeds_server --ote FILE --weather FILE --cnb FILE
    import argparse
    import time

    parser = argparse.ArgumentParser(description="Serve recorded OTE / Open-Meteo / CNB answers on 127.0.0.1")
    parser.add_argument("--ote")
    parser.add_argument("--weather")
    parser.add_argument("--cnb")
    parser.add_argument("--port", type=int, default=8099)
    args = parser.parse_args()
    server = serve_files(args.ote, args.weather, args.cnb, args.port).start()
    print(f"serving on {server.base_url} ({OTE_PATH}, {WEATHER_PATH}, {CNB_PATH}); Ctrl-C to stop", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
