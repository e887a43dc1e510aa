"""Line protocol, the outputs config and the 2.x write request (a local 127.0.0.1 endpoint checks its format)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest

from hardware.outputs.config import InfluxOutputConfig, influx_config_from_dict
from hardware.outputs.influx import InfluxWriter
from hardware.outputs.line_protocol import Point, point
from twin.errors import ConfigError


def test_line_protocol_escapes_and_types():
    p = Point("my meas,x", 5, {"a b": 1.5, "n": 3, "ok": True, "text": 'say "hi"\\', "bad": float("nan")},
              {"room": "living room", "k=v": "a,b", "empty": ""})
    assert p.encode() == ('my\\ meas\\,x,k\\=v=a\\,b,room=living\\ room '
                          'a\\ b=1.5,n=3i,ok=true,text="say \\"hi\\"\\\\" 5')


def test_point_without_writable_fields_is_skipped_and_naive_time_refused():
    assert Point("m", 1, {"x": float("inf")}).encode() == ""
    with pytest.raises(ValueError, match="timezone-aware"):
        point("m", pd.Timestamp("2024-01-01").to_pydatetime(), {"x": 1.0})
    assert point("m", pd.Timestamp("2024-01-01T00:00:00.000001", tz="UTC"), {"x": 1.0}).time_ns == \
        1704067200000001000


@pytest.mark.parametrize(("data", "message"), [
    ({"url": "ftp://x", "database": "d"}, "not an http"),
    ({"url": "http://127.0.0.1:8086"}, "version 1 needs database"),
    ({"url": "http://127.0.0.1:8086", "version": 2, "bucket": "b"}, "needs org, token_env"),
    ({"url": "http://127.0.0.1:8086", "database": "d", "measurement_prefix": "a b"}, "measurement_prefix"),
    ({"url": "http://127.0.0.1:8086", "database": "d", "colour": 1}, "colour"),
])
def test_bad_config_names_the_field(data, message):
    with pytest.raises(ConfigError, match=message):
        influx_config_from_dict(data)


def test_missing_token_variable_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("PEMS_TEST_NO_TOKEN", raising=False)
    config = InfluxOutputConfig(url="http://127.0.0.1:9", version=2, bucket="b", org="o",
                                token_env="PEMS_TEST_NO_TOKEN")
    with pytest.raises(ConfigError, match="PEMS_TEST_NO_TOKEN is not set"):
        InfluxWriter(config, tmp_path)


class _V2Endpoint(BaseHTTPRequestHandler):
    """Answers like InfluxDB 2.x's POST /api/v2/write: 204 when the documented request format is met."""

    received: list[str] = []
    refusals: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        url = urlparse(self.path)
        query = parse_qs(url.query)
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        problems = []
        if url.path != "/api/v2/write":
            problems.append(f"path {url.path}")
        if query.get("org") != ["home"] or query.get("bucket") != ["pems"]:
            problems.append(f"org/bucket {query}")
        if query.get("precision", ["ns"]) != ["ns"]:
            problems.append("precision")
        if self.headers.get("Authorization") != "Token s3cret":
            problems.append("authorization")
        if not self.headers.get("Content-Type", "").startswith("text/plain"):
            problems.append("content type")
        if problems:
            self.refusals.append(", ".join(problems))
            self.send_response(401 if "authorization" in problems else 400)
            self.end_headers()
            self.wfile.write(b'{"code":"invalid","message":"bad request"}')
            return
        self.received.extend(body.splitlines())
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_v2_write_request_follows_the_documented_format(tmp_path, monkeypatch):
    monkeypatch.setenv("PEMS_TEST_TOKEN", "s3cret")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _V2Endpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        config = InfluxOutputConfig(url=f"http://127.0.0.1:{server.server_port}", version=2, bucket="pems",
                                    org="home", token_env="PEMS_TEST_TOKEN", flush_interval_s=0.05)
        writer = InfluxWriter(config, tmp_path)
        writer.submit([Point("m", i, {"x": float(i)}) for i in range(100)])
        assert writer.flush(10)
        writer.close()
    finally:
        server.shutdown()
    assert _V2Endpoint.refusals == []
    assert _V2Endpoint.received == [f"m x={float(i)!r} {i}" for i in range(100)]


def test_live_config_reads_outputs_influxdb_and_names_bad_fields():
    from hardware.config import live_config_from_dict

    config = live_config_from_dict({"forecasts": {"scenario": "x"}, "outputs": {"influxdb": {
        "url": "http://127.0.0.1:8086", "database": "pems", "measurement_prefix": "house_"}}})
    assert config.outputs.influxdb is not None and config.outputs.influxdb.measurement_prefix == "house_"
    assert live_config_from_dict({"forecasts": {"scenario": "x"}}).outputs.influxdb is None
    with pytest.raises(ConfigError, match="outputs.influxdb.batch_size"):
        live_config_from_dict({"forecasts": {"scenario": "x"}, "outputs": {"influxdb": {
            "url": "http://127.0.0.1:8086", "database": "pems", "batch_size": 0}}})
