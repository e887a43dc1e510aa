"""A real InfluxDB 1.x server for tests: Debian's ``influxd`` on free loopback ports in a temporary folder.

Used by the history import and the results-store tests. ``stop()`` / ``start()`` keep the data folder, so a
test can take the database away mid-run and bring it back.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import requests

INFLUXD = shutil.which("influxd")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class InfluxServer:
    """``influxd`` with its meta, data and WAL under ``folder``, HTTP on ``127.0.0.1:<port>``."""

    def __init__(self, folder: Path) -> None:
        if INFLUXD is None:
            raise RuntimeError("influxd is not installed (Debian package 'influxdb'; scripts/bootstrap.sh installs it)")
        self.folder = folder
        self.port = free_port()
        self.rpc_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "influxdb.conf"
        self.config.write_text(
            f'reporting-disabled = true\nbind-address = "127.0.0.1:{self.rpc_port}"\n'
            f'[meta]\n  dir = "{folder / "meta"}"\n  logging-enabled = false\n'
            f'[data]\n  dir = "{folder / "data"}"\n  wal-dir = "{folder / "wal"}"\n  query-log-enabled = false\n'
            f'  wal-fsync-delay = "0s"\n'
            f'[monitor]\n  store-enabled = false\n'
            f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
            f'[logging]\n  level = "error"\n'
        )

    def start(self, timeout_s: float = 30.0) -> InfluxServer:
        log = open(self.folder / "influxd.log", "ab")  # noqa: SIM115 - handed to the process
        self.process = subprocess.Popen([INFLUXD, "-config", str(self.config)], stdout=log, stderr=log)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"influxd exited with {self.process.returncode}; see {self.folder / 'influxd.log'}")
            try:
                if requests.get(f"{self.url}/ping", timeout=1).status_code == 204:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"influxd did not answer /ping within {timeout_s} s; see {self.folder / 'influxd.log'}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def query(self, q: str, database: str | None = None) -> dict:
        """An InfluxQL query through the HTTP API; raises on an error answer."""
        params = {"q": q, "epoch": "ns"}
        if database:
            params["db"] = database
        answer = requests.post(f"{self.url}/query", params=params, timeout=30)
        answer.raise_for_status()
        body = answer.json()
        for result in body.get("results", []):
            if "error" in result:
                raise RuntimeError(f"InfluxQL error for {q!r}: {result['error']}")
        return body

    def create_database(self, name: str) -> None:
        self.query(f'CREATE DATABASE "{name}"')

    def write(self, database: str, lines: str, precision: str = "ns") -> None:
        answer = requests.post(f"{self.url}/write", params={"db": database, "precision": precision},
                               data=lines.encode(), timeout=30)
        if answer.status_code != 204:
            raise RuntimeError(f"write to {database} failed: {answer.status_code} {answer.text}")
