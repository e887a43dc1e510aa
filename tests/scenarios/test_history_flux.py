"""The InfluxDB 2.x path (Flux through ``influxdb-client``) against a local HTTP endpoint on 127.0.0.1.

InfluxDB 2.x cannot run here, so the endpoint answers ``POST /api/v2/query`` with annotated CSV in the
documented response format (#group, #datatype, #default annotation rows, a header row, records, one
table per series; docs.influxdata.com "Annotated CSV"), built from the series the test holds, after
checking the Flux it was sent names the bucket, measurement, field, tags and window it should.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest

from scenarios.history.import_config import load_import_config
from scenarios.history.importer import import_history
from scenarios.history.influx import InfluxError
from scenarios.history.store import read_history

TZ = "Europe/Prague"
STEP = pd.Timedelta(minutes=15)
INDEX = pd.date_range("2026-10-24", "2026-10-27", freq=STEP, tz=TZ, inclusive="left")  # spans the fall-back day
RNG = np.random.default_rng(3)
SERIES = {("solar", "InputPower", ()): RNG.uniform(0, 5000, len(INDEX)).round(1),
          ("relay", "state", (("room", "living"), ("tag1", "heating"))): RNG.integers(0, 2, len(INDEX)).astype(float)}


def annotated_csv(times: pd.DatetimeIndex, values: np.ndarray, measurement: str, field: str,
                  start: pd.Timestamp, stop: pd.Timestamp) -> str:
    def rfc(t: pd.Timestamp) -> str:
        return t.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")

    lines = ["#group,false,false,true,true,false,false,true,true",
             "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string",
             "#default,_result,,,,,,,",
             ",result,table,_start,_stop,_time,_value,_field,_measurement"]
    lines += [f",,0,{rfc(start)},{rfc(stop)},{rfc(t)},{float(v)!r},{field},{measurement}"
              for t, v in zip(times, values, strict=True)]
    return "\r\n".join(lines) + "\r\n\r\n"


class FluxEndpoint(BaseHTTPRequestHandler):
    token = "secret-token"
    queries: list[str] = []

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Authorization") != f"Token {self.token}":
            self._answer(401, "application/json",
                         json.dumps({"code": "unauthorized", "message": "unauthorized access"}))
            return
        if not self.path.startswith("/api/v2/query") or "org=home" not in self.path:
            self._answer(404, "application/json", json.dumps({"code": "not found", "message": "org not found"}))
            return
        query = json.loads(body)["query"]
        FluxEndpoint.queries.append(query)
        start, stop = (pd.Timestamp(t) for t in re.search(r"range\(start: (\S+), stop: (\S+)\)", query).groups())
        measurement = re.search(r'r\._measurement == "([^"]+)"', query).group(1)
        field = re.search(r'r\._field == "([^"]+)"', query).group(1)
        tags = tuple(sorted(re.findall(r'r\["([^"]+)"\] == "([^"]+)"', query)))
        assert 'from(bucket: "home")' in query and "every: 900s" in query
        values = SERIES.get((measurement, field, tags))
        if values is None:
            self._answer(200, "text/csv", "\r\n")  # Flux answers an empty result for unknown names
            return
        keep = (INDEX >= start) & (INDEX < stop)
        self._answer(200, "text/csv", annotated_csv(INDEX[keep], values[keep], measurement, field, start, stop))

    def _answer(self, status: int, kind: str, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def endpoint():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FluxEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FluxEndpoint.queries = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _config(tmp_path, url: str, token_env: str = "PEMS_TEST_INFLUX_TOKEN", extra: str = ""):
    path = tmp_path / "history.toml"
    path.write_text(f'''
[source]
kind = "influxdb2"
url = "{url}"
org = "home"
bucket = "home"
token_env = "{token_env}"
chunk_days = 2
[history]
timezone = "{TZ}"
[columns]
pv_power_kw = {{ measurement = "solar", field = "InputPower", unit = "W" }}
"relay_on.living" = {{ measurement = "relay", field = "state", tags = {{ tag1 = "heating", room = "living" }} }}
{extra}
''', encoding="utf-8")
    return load_import_config(path)


def test_flux_import_gives_back_the_series(endpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("PEMS_TEST_INFLUX_TOKEN", FluxEndpoint.token)
    out = tmp_path / "history"
    result = import_history(_config(tmp_path, endpoint), INDEX[0], INDEX[-1] + STEP, out)
    assert len(FluxEndpoint.queries) == 2 * 2  # two 2-day chunks (3 days) × two columns
    back = read_history(out, TZ)
    assert back.index.equals(INDEX) and result.days == 3
    np.testing.assert_allclose(back["pv_power_kw"].to_numpy(), SERIES[("solar", "InputPower", ())] / 1e3)
    np.testing.assert_allclose(back["relay_on.living"].sum(), SERIES[("relay", "state", (("room", "living"),
                                                                                         ("tag1", "heating")))].sum())


def test_flux_bad_token_and_unknown_field_are_named(endpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("PEMS_TEST_INFLUX_TOKEN", "wrong")
    with pytest.raises(InfluxError, match="authentication failed"):
        import_history(_config(tmp_path, endpoint), INDEX[0], INDEX[-1], tmp_path / "h")
    monkeypatch.setenv("PEMS_TEST_INFLUX_TOKEN", FluxEndpoint.token)
    config = _config(tmp_path, endpoint, extra='x_kw = { measurement = "solar", field = "Nosuch", unit = "W" }')
    with pytest.raises(InfluxError, match="x_kw: no data for measurement 'solar' field 'Nosuch'"):
        import_history(config, INDEX[0], INDEX[-1], tmp_path / "h")
    assert not (tmp_path / "h").exists()
