"""The controller's view of its link to the broker, and what it may do in each state (docs/failsafe.md F1–F3, F15).

States::

    CONNECTING ──► RECONCILING ──► RUNNING
                       ▲   │          │
                       │   └──► SAFE ◄┘   (connection lost, or no echo of our heartbeat)
                       └─────────┘        (reconnected: re-read the devices first)

Only RUNNING may command devices, and only while the last echo of our own heartbeat is
younger than ``fresh_link_s`` — a frozen broker (a partition without a TCP reset) stops our
commands within that, and is declared lost after ``link_timeout_s`` (≤ 2 × keepalive + 1 s),
or sooner when paho's keepalive or a reset notices. Entering SAFE abandons the link and
everything it still holds (paho would replay unacknowledged QoS 1 commands on reconnect); the
devices then run on their own rules as their leases, our heartbeats and (on a reset) our last
will tell them. Reconnection happens on a *fresh* link with backoff; a broker that refuses us
(wrong password, ACL) is an alert and a long backoff, not a crash loop. After reconnecting the
controller stays in RECONCILING — heartbeats and birth out, commands not — until every device
has reported its status anew (or ``reconcile_timeout_s`` passed; devices not re-read stay
uncommanded). All times here are ``time.monotonic()`` wall seconds.
"""

from __future__ import annotations

import enum
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from hardware.config import FailsafeConfig
from hardware.errors import LiveError
from hardware.failsafe.events import EventKind, EventLog
from hardware.wire.mqtt import Message, MqttLink
from hardware.wire.schemas import Alert, Heartbeat, PayloadError, dump, parse_payload
from twin.errors import TwinError

log = logging.getLogger(__name__)

#: Heartbeats remembered to recognise their echo.
ECHO_WINDOW = 64
#: Backoff growth after a failed reconnection attempt.
BACKOFF_FACTOR = 1.5
#: A refused connection's retry interval grows to at most this many times ``refused_retry_s``.
REFUSED_BACKOFF_CAP = 10.0


class LinkState(enum.Enum):
    CONNECTING = "connecting"
    RECONCILING = "reconciling"
    RUNNING = "running"
    SAFE = "safe"


@dataclass(frozen=True, slots=True)
class Transition:
    mono_s: float
    wall_s: float
    state: LinkState
    reason: str


#: ``factory(attempt) -> MqttLink``: a fresh, unstarted link (``auto_reconnect=False``).
LinkFactory = Callable[[int], MqttLink]


class Watchdog:
    """Owns the controller's connection: ``start()``, then ask :meth:`may_command`; ``stop()`` at the end.

    ``reconciled(since_mono)`` says whether every device reported after ``since_mono``;
    ``heartbeats``: publish (and watch the echo of) heartbeats — only a controller that commands
    devices does, or the devices would take an advisory instance's heartbeats for the
    commanding one's; ``alerts``: publish alerts (not in SIMULATION, which publishes nothing).
    ``now`` gives the house time for stamps.
    """

    def __init__(self, failsafe: FailsafeConfig, factory: LinkFactory, heartbeat_topic: str, alerts_topic: str,
                 events: EventLog, reconciled: Callable[[float], bool], now: Callable[[], datetime],
                 heartbeats: bool = True, birth: Message | None = None, alerts: bool = True) -> None:
        self.config = failsafe
        self._factory = factory
        self.heartbeat_topic = heartbeat_topic
        self.alerts_topic = alerts_topic
        self.events = events
        self._reconciled = reconciled
        self._now = now
        self.heartbeats = heartbeats
        self.alerts = alerts
        self.birth = birth
        self.session = secrets.token_hex(6)
        self.link: MqttLink | None = None
        self.state = LinkState.CONNECTING
        self.transitions: list[Transition] = []
        self.connected_since: float = -1.0
        self.attempts = 0
        self.refusals = 0
        self.purged = 0  # unacknowledged messages thrown away with abandoned links
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lost_at: float | None = None  # set on paho's thread when the connection drops
        self._sent: dict[int, bytes] = {}
        self._n = 0
        self._last_echo = -1.0
        self._next_beat = 0.0
        self._next_attempt = 0.0
        self._backoff = failsafe.reconnect_min_s
        self._refused_backoff = failsafe.refused_retry_s
        self._last_refusal_alert = -float("inf")
        self.on_tick: list[Callable[[], None]] = []  # called every tick while connected
        self.on_safe: list[Callable[[], None]] = []  # called on entering SAFE
        self._set_state(LinkState.CONNECTING, "starting")

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self, timeout_s: float | None = None) -> None:
        """Make the first connection here (errors are the caller's), then watch in the background."""
        link = self._factory(0)
        link.start(timeout_s)
        self._connected(link)
        self._thread = threading.Thread(target=self._run, name="pems-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> MqttLink | None:
        """Stop watching; the current link (to say goodbye on) stays as it is."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.config.reconnect_timeout_s + 5.0)
        return self.link

    # --- what the controller may do ------------------------------------------------------------------

    @property
    def outages(self) -> int:
        """How often the link was lost (transitions to SAFE)."""
        return sum(1 for t in self.transitions if t.state is LinkState.SAFE)

    def echo_age_s(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        return now - self._last_echo

    def may_command(self) -> bool:
        """RUNNING, connected, and (with heartbeats) echoed recently: a command would arrive now."""
        link = self.link
        if (self.state is not LinkState.RUNNING or link is None or not link.connected.is_set()
                or self._lost_at is not None):
            return False
        return not self.heartbeats or self.echo_age_s() <= self.config.fresh_link_s

    def publish(self, message: Message, expiry_s: float | None = None) -> bool:
        """Publish a non-command message (plan, status) if connected; ``False`` otherwise."""
        link = self.link
        return link is not None and link.publish(message, expiry_s)

    # --- paho's network thread --------------------------------------------------------------------------

    def link_lost(self) -> None:
        """The connection dropped (paho's ``on_disconnect``): commands stop at once; SAFE follows."""
        if self._lost_at is None:
            self._lost_at = time.monotonic()
        self._wake.set()

    def echo(self, payload: bytes) -> bool:
        """A message on the heartbeat topic: ours coming back (``True``), or someone else's (``False``)."""
        now = time.monotonic()
        try:
            beat = parse_payload(Heartbeat, payload)
        except PayloadError:
            return True  # a malformed heartbeat proves nothing
        if beat.session != self.session:
            n = self.events.counts[EventKind.FOREIGN_HEARTBEAT.value]
            if n < 3 or n % 100 == 0:  # another controller beats every second: do not flood the log
                self.events.record(EventKind.FOREIGN_HEARTBEAT, f"heartbeat from session {beat.session}: another "
                                   f"controller on this broker?", alert=n == 0)
            else:
                self.events.count(EventKind.FOREIGN_HEARTBEAT)
            return False
        if self._sent.get(beat.n) == payload:
            self._last_echo = now
        return True

    # --- the watchdog thread --------------------------------------------------------------------------

    def _set_state(self, state: LinkState, reason: str, at: float | None = None) -> None:
        with self._lock:
            if state is self.state and self.transitions:
                return
            self.state = state
            at = time.monotonic() if at is None else at
            self.transitions.append(Transition(at, time.time() - (time.monotonic() - at), state, reason))
        self.events.record(EventKind.LINK_STATE, f"{state.value}: {reason}", alert=state is LinkState.SAFE)

    def _connected(self, link: MqttLink) -> None:
        now = time.monotonic()
        with self._lock:
            self.link = link
            self.connected_since = now
            self._last_echo = now  # grace: the first echo has link_timeout_s to come back
            self._next_beat = now
            self._lost_at = None
            self._backoff = self.config.reconnect_min_s
            self._refused_backoff = self.config.refused_retry_s
        self._set_state(LinkState.RECONCILING, "connected; re-reading every device before commanding")

    def _run(self) -> None:
        tick = min(0.1, self.config.heartbeat_s / 4)
        while not self._stopping.is_set():
            try:
                self._step(time.monotonic())
            except Exception:  # noqa: BLE001 - the watchdog must outlive a bug in one step; logged
                log.exception("watchdog step failed")
            self._wake.wait(tick)
            self._wake.clear()

    def _step(self, now: float) -> None:
        if self.state is LinkState.SAFE:
            if now >= self._next_attempt:
                self._attempt()
            return
        link = self.link
        lost_at = self._lost_at
        if link is None or not link.connected.is_set() or lost_at is not None:
            self._enter_safe("connection lost", lost_at if lost_at is not None else now)
            return
        if self.heartbeats and now - self._last_echo > self.config.link_timeout_s:
            self._enter_safe(f"no echo of our heartbeat for {now - self._last_echo:.1f} s (frozen broker or "
                             f"partition)", now)
            return
        if self.heartbeats and now >= self._next_beat:
            self._beat(link, now)
        self.check_reconciled(now)
        for hook in self.on_tick:
            hook()
        if self.alerts:
            self._flush_alerts(link)

    def check_reconciled(self, now: float | None = None) -> None:
        """RECONCILING → RUNNING once every device was re-read (or the wait is over); any thread may ask."""
        now = time.monotonic() if now is None else now
        with self._lock:
            link = self.link
            if self.state is not LinkState.RECONCILING or link is None or self._lost_at is not None:
                return
            if self._reconciled(self.connected_since):
                self._set_state(LinkState.RUNNING, "every device re-read")
            elif now - self.connected_since > self.config.reconcile_timeout_s:
                self.events.record(EventKind.RECONCILE_INCOMPLETE, f"not every device reported within "
                                   f"{self.config.reconcile_timeout_s:g} s; those stay uncommanded", alert=True)
                self._set_state(LinkState.RUNNING, "reconcile timeout")
            else:
                return
            if self.heartbeats:  # a device takes commands only from a controller it hears: a heartbeat first
                self._beat(link, now)
        self._announce(link)

    def wait_until_reconciled(self) -> None:
        """Block until the link leaves CONNECTING/RECONCILING (bounded by ``reconcile_timeout_s``).

        For lockstep runs, where house time waits for the controller: there the first decision can
        wait for every device to be re-read instead of leaving them on their own rule meanwhile.
        """
        deadline = time.monotonic() + self.config.reconcile_timeout_s + 5.0
        while self.state in (LinkState.CONNECTING, LinkState.RECONCILING) and time.monotonic() < deadline:
            self.check_reconciled()
            time.sleep(0.01)

    def _beat(self, link: MqttLink, now: float) -> None:
        with self._lock:
            self._n += 1
            payload = dump(Heartbeat(ts=self._now(), n=self._n, session=self.session, state=self.state.value))
            self._sent[self._n] = payload
            self._sent.pop(self._n - ECHO_WINDOW, None)
            self._next_beat = now + self.config.heartbeat_s
        link.publish(Message(self.heartbeat_topic, payload, qos=0), expiry_s=2 * self.config.heartbeat_s)

    def _announce(self, link: MqttLink) -> None:
        """Birth again once running after a reconnection: it outranks the will of the abandoned link."""
        if self.birth is not None and any(t.state is LinkState.SAFE for t in self.transitions):
            link.publish(self.birth)

    def _flush_alerts(self, link: MqttLink) -> None:
        alerts = self.events.take_alerts()
        unsent = []
        for event in alerts:
            payload = dump(Alert(ts=datetime.fromtimestamp(event.wall_s, self._now().tzinfo), kind=event.kind.value,
                                 message=event.message[:1000], device=event.device))
            if not link.publish(Message(self.alerts_topic, payload)):
                unsent.append(event)
        if unsent:
            self.events.requeue(unsent)

    def _enter_safe(self, reason: str, at: float) -> None:
        link = self.link
        self._set_state(LinkState.SAFE, reason, at)
        self._next_attempt = time.monotonic() + self.config.reconnect_min_s
        if link is not None:
            link.abandon(with_will=True)  # whatever paho still holds dies with it
            self.purged += link.purged
        for hook in self.on_safe:
            hook()

    def _attempt(self) -> None:
        self.attempts += 1
        link = None
        try:
            link = self._factory(self.attempts)
            link.start(self.config.reconnect_timeout_s)
        except TwinError as exc:  # LiveError (no answer, refused) or ConfigError (password, certificates)
            now = time.monotonic()
            if not isinstance(exc, LiveError) or (link is not None and link.refused is not None):
                self.refusals += 1
                if now - self._last_refusal_alert >= self.config.refused_retry_s * REFUSED_BACKOFF_CAP:
                    self._last_refusal_alert = now
                    self.events.record(EventKind.BROKER_REFUSED, f"{exc}; staying SAFE, next try in "
                                       f"{self._refused_backoff:g} s", alert=True)
                self._next_attempt = now + self._refused_backoff
                self._refused_backoff = min(self._refused_backoff * 2,
                                            self.config.refused_retry_s * REFUSED_BACKOFF_CAP)
            else:
                log.info("reconnection attempt %d failed: %s", self.attempts, exc)
                self._next_attempt = now + self._backoff
                self._backoff = min(self._backoff * BACKOFF_FACTOR, self.config.reconnect_max_s)
            return
        self._connected(link)
