"""Reading aggregated series from InfluxDB: 1.x over InfluxQL/HTTP (``requests``), 2.x over Flux (``influxdb-client``).

Both return, for one :class:`~scenarios.history.import_config.SeriesSpec` and one time chunk, the
series aggregated onto the grid (interval-start labels, UTC), in the source's unit. Every failure
raises :class:`InfluxError` naming the server, the measurement/field and what went wrong
(unreachable, authentication, unknown database, measurement or field, an error answer).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import requests

from scenarios.history.import_config import SeriesSpec, SourceConfig
from twin.errors import ScenarioError

log = logging.getLogger(__name__)


class InfluxError(ScenarioError):
    """InfluxDB could not give what the import asked for."""


def _ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _rfc3339(when: pd.Timestamp) -> str:
    return when.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def influxql(spec: SeriesSpec, start: pd.Timestamp, end: pd.Timestamp, step_minutes: float,
             retention_policy: str = "") -> str:
    """The InfluxQL query of one series over ``[start, end)``, aggregated per step."""
    source = (f"{_ident(retention_policy)}." if retention_policy else "") + _ident(spec.measurement)
    where = [f"time >= {_literal(_rfc3339(start))}", f"time < {_literal(_rfc3339(end))}"]
    where += [f"{_ident(k)} = {_literal(v)}" for k, v in sorted(spec.tags.items())]
    return (f"SELECT {spec.aggregation}({_ident(spec.field)}) FROM {source} WHERE {' AND '.join(where)} "
            f"GROUP BY time({int(step_minutes * 60)}s) fill(none)")


def flux(spec: SeriesSpec, bucket: str, start: pd.Timestamp, end: pd.Timestamp, step_minutes: float) -> str:
    """The Flux query of one series over ``[start, end)``, aggregated per step (window start labels)."""
    def string(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    conditions = [f"r._measurement == {string(spec.measurement)}", f"r._field == {string(spec.field)}"]
    conditions += [f"r[{string(k)}] == {string(v)}" for k, v in sorted(spec.tags.items())]
    return (f"from(bucket: {string(bucket)})\n"
            f"  |> range(start: {_rfc3339(start)}, stop: {_rfc3339(end)})\n"
            f"  |> filter(fn: (r) => {' and '.join(conditions)})\n"
            f"  |> aggregateWindow(every: {int(step_minutes * 60)}s, fn: {spec.aggregation}, createEmpty: false, "
            f"timeSrc: \"_start\")\n"
            f"  |> keep(columns: [\"_time\", \"_value\"])")


class Influx1:
    """InfluxDB 1.x through its HTTP ``/query`` endpoint."""

    def __init__(self, source: SourceConfig) -> None:
        self.source = source
        self.session = requests.Session()
        if source.username:
            self.session.auth = (source.username, source.password)

    def _get(self, q: str) -> list[dict]:
        where = f"InfluxDB {self.source.url} database {self.source.database!r}"
        try:
            answer = self.session.get(f"{self.source.url}/query", timeout=self.source.timeout_s,
                                      params={"db": self.source.database, "q": q, "epoch": "ns"})
        except requests.RequestException as exc:
            raise InfluxError(f"{where}: cannot reach the server ({type(exc).__name__}: {exc})") from None
        if answer.status_code in (401, 403):
            raise InfluxError(f"{where}: authentication failed ({answer.status_code}); check source.username and "
                              f"the password in source.password_env")
        try:
            body = answer.json()
        except ValueError:
            raise InfluxError(f"{where}: answered {answer.status_code} with no JSON ({answer.text[:200]!r})") from None
        if answer.status_code != 200 or "error" in body:
            raise InfluxError(f"{where}: {body.get('error', answer.status_code)} (query: {q})")
        results = body.get("results", [])
        for result in results:
            if "error" in result:
                raise InfluxError(f"{where}: {result['error']} (query: {q})")
        return [s for result in results for s in result.get("series", [])]

    def check(self, specs: tuple[SeriesSpec, ...]) -> None:
        """Every measurement and field the mapping names exists (InfluxDB answers an empty result otherwise)."""
        databases = {v[0] for s in self._get("SHOW DATABASES") for v in s.get("values", [])}
        if self.source.database not in databases:
            raise InfluxError(f"source.database: database not found: {self.source.database!r} on "
                              f"{self.source.url}; it has {sorted(databases)}")
        measurements = {v[0] for s in self._get("SHOW MEASUREMENTS") for v in s.get("values", [])}
        for spec in specs:
            if spec.measurement not in measurements:
                raise InfluxError(f"columns.{spec.name}: measurement {spec.measurement!r} is not in database "
                                  f"{self.source.database!r}; it has {sorted(measurements)}")
        for measurement in sorted({s.measurement for s in specs}):
            fields = {v[0] for s in self._get(f"SHOW FIELD KEYS FROM {_ident(measurement)}")
                      for v in s.get("values", [])}
            for spec in specs:
                if spec.measurement == measurement and spec.field not in fields:
                    raise InfluxError(f"columns.{spec.name}: field {spec.field!r} is not in measurement "
                                      f"{measurement!r}; it has {sorted(fields)}")

    def series(self, spec: SeriesSpec, start: pd.Timestamp, end: pd.Timestamp, step_minutes: float) -> pd.Series:
        series = self._get(influxql(spec, start, end, step_minutes, self.source.retention_policy))
        values = [row for s in series for row in s.get("values", [])]
        if not values:
            return pd.Series(dtype=float, index=pd.DatetimeIndex([], tz="UTC"))
        times = pd.to_datetime(np.array([v[0] for v in values], dtype=np.int64), utc=True)
        return pd.Series(np.array([np.nan if v[1] is None else v[1] for v in values], dtype=float), index=times)


class Influx2:
    """InfluxDB 2.x through ``influxdb-client``'s query API (Flux; the answer is annotated CSV)."""

    def __init__(self, source: SourceConfig) -> None:
        from influxdb_client import InfluxDBClient

        self.source = source
        self.client = InfluxDBClient(url=source.url, token=source.token, org=source.org,
                                     timeout=int(source.timeout_s * 1000), retries=0)

    def check(self, specs: tuple[SeriesSpec, ...]) -> None:
        """Flux answers an empty table for unknown names; the importer reports a series with no data instead."""

    def series(self, spec: SeriesSpec, start: pd.Timestamp, end: pd.Timestamp, step_minutes: float) -> pd.Series:
        from influxdb_client.rest import ApiException
        from urllib3.exceptions import HTTPError

        where = f"InfluxDB {self.source.url} bucket {self.source.bucket!r}"
        try:
            tables = self.client.query_api().query(flux(spec, self.source.bucket, start, end, step_minutes))
        except ApiException as exc:
            if exc.status in (401, 403):
                raise InfluxError(f"{where}: authentication failed ({exc.status}); check the token in "
                                  f"source.token_env and source.org") from None
            raise InfluxError(f"{where}: {exc.status} {exc.reason}: {(exc.body or '')[:300]}") from None
        except (HTTPError, OSError) as exc:
            raise InfluxError(f"{where}: cannot reach the server ({type(exc).__name__}: {exc})") from None
        except ValueError as exc:  # the annotated CSV did not parse
            raise InfluxError(f"{where}: malformed answer to the query of {spec.measurement}.{spec.field} "
                              f"({exc})") from None
        records = [r for table in tables for r in table.records]
        if not records:
            return pd.Series(dtype=float, index=pd.DatetimeIndex([], tz="UTC"))
        times = pd.DatetimeIndex([pd.Timestamp(r.get_time()) for r in records]).tz_convert("UTC")
        values = np.array([np.nan if r.get_value() is None else r.get_value() for r in records], dtype=float)
        return pd.Series(values, index=times)

    def close(self) -> None:
        self.client.close()


def connect(source: SourceConfig) -> Influx1 | Influx2:
    """A client for the configured InfluxDB version."""
    return Influx1(source) if source.kind == "influxdb1" else Influx2(source)
