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
