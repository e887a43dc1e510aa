"""The InfluxDB writer: a thread, a bounded queue and a write-ahead spool; the control loop never waits.

``submit(points)`` only puts the points on a queue (never blocks; when the queue is full they are
counted as dropped and an error is logged once); they are encoded on the writer's thread, which
appends each batch to the :class:`~hardware.outputs.spool.Spool` (fsync'd), then sends the spool's unsent
lines in order to ``/write`` (1.x) or ``/api/v2/write`` (2.x). While the database is away the
lines wait on disk, and they are retried every ``retry_s``; a 4xx answer other than 429 means the
data itself is refused, so that batch is set aside in ``rejected.lp`` (never retried forever,
never silently lost).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import requests

from hardware.outputs.config import InfluxOutputConfig
from hardware.outputs.line_protocol import Point
from hardware.outputs.spool import Spool

logger = logging.getLogger(__name__)

_MAX_BODY_BYTES = 2_000_000
_STOP = object()


@dataclass
class WriterStats:
    """Counters, read by tests, benchmarks and the health measurement."""

    submitted: int = 0
    dropped: int = 0
    written_lines: int = 0
    write_requests: int = 0
    failed_requests: int = 0
    rejected_lines: int = 0


class InfluxWriter:
    """Sends points to InfluxDB from a background thread, spooling to ``spool_dir`` first."""

    def __init__(self, config: InfluxOutputConfig, spool_dir: str | Path) -> None:
        self.config = config
        self.spool = Spool(spool_dir)
        self.stats = WriterStats()
        self._queue: queue.Queue[object] = queue.Queue(maxsize=config.queue_size)
        self._session = requests.Session()
        self._url, self._params, headers = _endpoint(config)
        self._session.headers.update(headers)
        self._reachable = True
        self._warned_full = False
        self._lock = threading.Condition()
        self._in_flight = 0  # batches submitted and not yet through the spool and a send attempt
        self._thread = threading.Thread(target=self._run, name="influx-writer", daemon=True)
        self._thread.start()

    # --- the control loop's side: never blocks -----------------------------------------------------

    def submit(self, points: Iterable[Point]) -> None:
        """Queue ``points``; they are encoded on the writer's thread, not the caller's."""
        lines = list(points)
        if not lines:
            return
        with self._lock:
            self._in_flight += 1
        try:
            self._queue.put_nowait(lines)
        except queue.Full:
            with self._lock:
                self._in_flight -= 1
            self.stats.dropped += len(lines)
            if not self._warned_full:
                logger.error("InfluxDB writer queue full (%d batches): points dropped", self.config.queue_size)
                self._warned_full = True
            return
        self.stats.submitted += len(lines)

    @property
    def reachable(self) -> bool:
        return self._reachable

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until everything submitted has been written (``False`` if still pending at the timeout)."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._in_flight > 0 or self.spool.pending_bytes > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.1))
        return True

    def close(self, timeout_s: float = 10.0) -> None:
        """Try to write what is left for up to ``timeout_s``; anything unsent stays in the spool."""
        self.flush(timeout_s)
        self._queue.put(_STOP)
        self._thread.join(timeout_s + 5.0)
        self.spool.close()
        self._session.close()

    # --- the writer thread -------------------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            lines: list[str] = []
            batches = 0
            try:
                item = self._queue.get(timeout=self.config.flush_interval_s if self.spool.pending_bytes == 0
                                       else self.config.retry_s)
                while True:
                    if item is _STOP:
                        stopping = True
                        break
                    lines.extend(line for line in (p.encode() for p in item) if line)  # type: ignore[attr-defined]
                    batches += 1
                    if len(lines) >= self.config.batch_size:
                        break
                    item = self._queue.get_nowait()
            except queue.Empty:
                pass
            try:
                self.spool.append(lines)
                self._send_pending()
            except OSError:
                logger.exception("InfluxDB spool: cannot write to %s", self.spool.folder)
            with self._lock:
                self._in_flight -= batches
                self._lock.notify_all()

    def _send_pending(self) -> None:
        while self.spool.pending_bytes > 0:
            body, n_bytes = self.spool.pending(_MAX_BODY_BYTES)
            try:
                answer = self._session.post(self._url, params=self._params, data=body,
                                            timeout=self.config.timeout_s)
            except requests.RequestException as exc:
                self._mark_unreachable(str(exc))
                return
            self.stats.write_requests += 1
            n_lines = body.count(b"\n")
            if answer.status_code in (200, 204):
                self.spool.acknowledge(n_bytes)
                self.stats.written_lines += n_lines
                if not self._reachable:
                    logger.warning("InfluxDB at %s is back; spooled points sent", self.config.url)
                self._reachable = True
            elif 400 <= answer.status_code < 500 and answer.status_code not in (401, 403, 404, 408, 429):
                # the data itself is refused (bad line, type conflict): set it aside, keep going
                with open(self.spool.folder / "rejected.lp", "ab") as rejected:
                    rejected.write(body)
                logger.error("InfluxDB refused %d lines (%s): %s; kept in rejected.lp", n_lines,
                             answer.status_code, answer.text[:300])
                self.stats.rejected_lines += n_lines
                self.spool.acknowledge(n_bytes)
            else:
                self._mark_unreachable(f"HTTP {answer.status_code}: {answer.text[:200]}")
                return

    def _mark_unreachable(self, why: str) -> None:
        self.stats.failed_requests += 1
        if self._reachable:
            logger.warning("InfluxDB at %s unreachable (%s); spooling to %s", self.config.url, why,
                           self.spool.folder)
        self._reachable = False


def _endpoint(config: InfluxOutputConfig) -> tuple[str, dict[str, str], dict[str, str]]:
    """``(url, query parameters, headers)`` of the write API for the configured version."""
    base = config.url.rstrip("/")
    secret = config.secret()
    headers = {"Content-Type": "text/plain; charset=utf-8"}
    if config.version == 2:
        headers["Authorization"] = f"Token {secret}"
        return f"{base}/api/v2/write", {"org": config.org, "bucket": config.bucket, "precision": "ns"}, headers
    params = {"db": config.database, "precision": "ns"}
    if config.username:
        params["u"] = config.username
        params["p"] = secret or ""
    return f"{base}/write", params, headers
