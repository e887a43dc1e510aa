"""A throwaway Mosquitto broker on a free loopback port: for tests, benchmarks and trying things out.

Never port 1883 (the Debian package's own service). Mosquitto started as root drops its
privileges, so its folder and files are made world-readable (docs/failsafe.md, "Gotchas"); its log goes
to a file this process opens. With ``persistence`` it keeps retained messages and sessions in
its folder across a clean ``stop()`` (as the Debian service does; autosave every 1800 s, so a
``kill()`` loses what came since). ``kill()`` (SIGKILL, a crash), ``stop()`` (SIGTERM, clean),
``freeze()``/``thaw()`` (SIGSTOP/SIGCONT, a partition without a reset) and ``restart()`` (same
port) let tests break the network on purpose.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from hardware.errors import LiveError


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (bind to port 0 and ask)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def mosquitto_path() -> str | None:
    return shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
                                              if os.access(p, os.X_OK)), None)


class LocalBroker:
    """``with LocalBroker() as broker:`` — Mosquitto on ``127.0.0.1:broker.port`` for the block."""

    def __init__(self, extra_config: str = "", port: int | None = None, folder: Path | None = None,
                 anonymous: bool = True, persistence: bool = False) -> None:
        binary = mosquitto_path()
        if binary is None:
            raise LiveError("mosquitto is not installed (Debian: apt-get install mosquitto)")
        self.binary = binary
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        if self.port == 1883:
            raise LiveError("port 1883 belongs to the system's broker; choose another")
        self.folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="pems-mosquitto-"))
        self._own_folder = folder is None
        # Readable after mosquitto drops root; writable too when it keeps a database there.
        self.folder.chmod(0o777 if persistence else 0o755)
        self.config_path = self.folder / "mosquitto.conf"
        store = f"persistence_location {self.folder}/\nautosave_interval 1800\n" if persistence else ""
        self.config_path.write_text(
            f"listener {self.port} {self.host}\nallow_anonymous {str(anonymous).lower()}\n"
            f"persistence {str(persistence).lower()}\n{store}set_tcp_nodelay true\n"
            f"log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n{extra_config}\n",
            encoding="utf-8")
        self.config_path.chmod(0o644)
        self.log_path = self.folder / "mosquitto.log"
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout_s: float = 5.0) -> LocalBroker:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen([self.binary, "-c", str(self.config_path)], stdout=log, stderr=log,
                                            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LiveError(f"mosquitto exited with {self.process.returncode}: {self.log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise LiveError(f"mosquitto did not listen on {self.address} within {timeout_s} s: {self.log_tail()}")

    def log_tail(self, n: int = 10) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def _signal(self, sig: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if it does not go."""
        if self.process is None or self.process.poll() is not None:
            return
        self.thaw()
        self.process.terminate()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout_s)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5.0)

    def freeze(self) -> None:
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal(signal.SIGCONT)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
