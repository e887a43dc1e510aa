"""One way to fetch a feed: ``requests`` with timeouts, bounded retries with backoff, a size cap,
and an on-disk cache that survives a restart.

The cache keeps the *raw* answer (text) with the wall time it was fetched, written atomically
(temp file + fsync + rename), so a restarted controller parses it again with the same checks
as a fresh answer. Whether a cached answer is still usable is each feed's own freshness rule
(published prices stay true for their slots; a weather forecast ages), not this module's.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from hardware.failsafe.persistence import write_json_durably
from twin.errors import TwinError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 8 * 1024 * 1024  # a day-ahead answer is ~80 kB, a 3-day weather answer ~20 kB


class FeedError(TwinError):
    """A feed could not be fetched or its answer is unusable; the message names the feed and the defect."""

    def __init__(self, feed: str, defect: str) -> None:
        super().__init__(f"feed {feed}: {defect}")
        self.feed = feed
        self.defect = defect


@dataclass(frozen=True, slots=True)
class Fetched:
    text: str
    fetched_wall_s: float  # Unix time of the answer
    from_cache: bool = False


@dataclass(frozen=True, slots=True)
class HttpSettings:
    timeout_s: float = 10.0
    retries: int = 2  # attempts after the first
    backoff_s: float = 0.5  # doubles after each failed attempt
    max_backoff_s: float = 8.0


def _safe_key(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", key)[:120]


class FeedCache:
    """Raw answers by key in ``folder`` (nothing is kept when ``folder`` is ``None``)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = Path(folder) if folder is not None else None

    def path(self, key: str) -> Path | None:
        return None if self.folder is None else self.folder / f"{_safe_key(key)}.json"

    def save(self, key: str, fetched: Fetched) -> None:
        path = self.path(key)
        if path is None:
            return
        try:
            write_json_durably(path, {"fetched_wall_s": fetched.fetched_wall_s, "text": fetched.text})
        except OSError as exc:  # a full disk must not stop the house being controlled
            log.warning("feed cache: cannot write %s (%s)", path, exc)

    def load(self, key: str) -> Fetched | None:
        path = self.path(key)
        if path is None or not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return Fetched(str(data["text"]), float(data["fetched_wall_s"]), from_cache=True)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("feed cache: %s is unreadable (%s); ignored", path, exc)
            return None


class FeedHttp:
    """GET/POST with retries; every failure ends as one :class:`FeedError` naming the feed."""

    def __init__(self, feed: str, settings: HttpSettings = HttpSettings(),
                 session: requests.Session | None = None, sleep: Any = time.sleep) -> None:
        self.feed = feed
        self.settings = settings
        self.session = session or requests.Session()
        self._sleep = sleep

    def request(self, method: str, url: str, *, params: dict[str, Any] | None = None,
                data: bytes | None = None, headers: dict[str, str] | None = None) -> Fetched:
        s = self.settings
        delay = s.backoff_s
        last = "no attempt"
        for attempt in range(s.retries + 1):
            if attempt:
                self._sleep(delay)
                delay = min(2 * delay, s.max_backoff_s)
            try:
                return self._once(method, url, params, data, headers)
            except FeedError as exc:
                last = exc.defect
                if not exc.defect.startswith(("HTTP 5", "HTTP 429", "connection", "timeout")):
                    break  # a 4xx or an oversized answer will not get better by asking again
        raise FeedError(self.feed, f"{last} (after {attempt + 1} attempt(s) to {url})")

    def _once(self, method: str, url: str, params: dict[str, Any] | None, data: bytes | None,
              headers: dict[str, str] | None) -> Fetched:
        try:
            with self.session.request(method, url, params=params, data=data, headers=headers,
                                      timeout=self.settings.timeout_s, stream=True) as response:
                if response.status_code != 200:
                    raise FeedError(self.feed, f"HTTP {response.status_code}")
                body = bytearray()
                for chunk in response.iter_content(65536):
                    body.extend(chunk)
                    if len(body) > MAX_BODY_BYTES:
                        raise FeedError(self.feed, f"answer larger than {MAX_BODY_BYTES} bytes")
                encoding = response.encoding or "utf-8"
        except requests.Timeout:
            raise FeedError(self.feed, f"timeout after {self.settings.timeout_s:g} s") from None
        except requests.RequestException as exc:
            raise FeedError(self.feed, f"connection failed ({type(exc).__name__})") from None
        try:
            text = bytes(body).decode(encoding if encoding.lower() != "iso-8859-1" else "utf-8")
        except (UnicodeDecodeError, LookupError):
            raise FeedError(self.feed, "answer is not valid text") from None
        return Fetched(text, time.time())
