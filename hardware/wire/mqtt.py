"""One paho-mqtt client (MQTT v5, callback API 2) that assumes the network is flaky.

Subscriptions are made in ``on_connect`` (so a reconnect restores them), after checking the
CONNACK's reason code; a refusal (bad credentials, not authorised) is remembered and reported,
not retried in a loop. A birth message is published on every connect and a last will is left
with the broker. Publishing while disconnected sends nothing and says so, and whatever paho
still holds unacknowledged when the connection drops is thrown away (``drop_out_messages``, on
disconnect and again on connect): paho would otherwise deliver a QoS 1 command late, when the
broker returns (docs/failsafe.md F1). With ``auto_reconnect=False`` paho does not reconnect by itself:
the controller's watchdog (``hardware.failsafe.watchdog``) decides when, with a fresh link each time.
"""

from __future__ import annotations

import logging
import math
import socket
import ssl
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from hardware.config import BrokerConfig
from hardware.errors import LiveError
from hardware.wire.security import tls_context

log = logging.getLogger(__name__)

#: ``handler(topic, payload, retained)``, called on paho's network thread.
MessageHandler = Callable[[str, bytes, bool], None]


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    retain: bool = False
    qos: int = 1


def expiry_properties(expiry_s: float) -> Properties:
    """PUBLISH properties with an MQTT v5 message expiry of ``expiry_s`` wall seconds (≥ 1)."""
    props = Properties(PacketTypes.PUBLISH)
    props.MessageExpiryInterval = max(1, math.ceil(expiry_s))
    return props


#: DISCONNECT reason 0x04: "disconnect with will message" — the broker tells the devices we are gone.
WITH_WILL = ReasonCode(PacketTypes.DISCONNECT, identifier=4)

#: Message ids remembered from ``on_publish`` calls that came before ``publish()`` returned.
EARLY_ACKS_KEPT = 1024

#: ``callback()`` on paho's network thread.
LinkCallback = Callable[[], None]


class MqttLink:
    """A connected client: ``start()``, ``publish()``, ``stop()`` (or ``abandon()``).

    ``birth`` is published (retained) on every connect, ``will`` left with the broker, and
    ``farewell`` published on a clean ``stop()``. ``on_message`` is called for every message on
    the ``subscriptions``; ``no_local`` topics are subscribed without our own publications
    (MQTT v5 *No Local*), so what arrives there was published by someone else.
    ``on_connected``/``on_disconnected`` are called on paho's network thread.
    """

    def __init__(self, broker: BrokerConfig, subscriptions: Sequence[str], on_message: MessageHandler,
                 client_id: str | None = None, will: Message | None = None, birth: Message | None = None, *,
                 no_local: Sequence[str] = (), auto_reconnect: bool = True,
                 on_connected: LinkCallback | None = None, on_disconnected: LinkCallback | None = None) -> None:
        self.broker = broker
        self.subscriptions = tuple(subscriptions)
        self.no_local = tuple(no_local)
        self._handler = on_message
        self.birth = birth
        self._on_connected_cb = on_connected
        self._on_disconnected_cb = on_disconnected
        self.connected = threading.Event()
        self.refused: str | None = None
        self._settled = threading.Event()  # connected, or refused
        self.unsent = 0  # publishes skipped while disconnected
        self.purged = 0  # unacknowledged QoS 1 messages thrown away on disconnect (never replayed)
        self.handler_errors = 0
        self._count_lock = threading.Lock()
        self._pending_mids: set[int] = set()  # QoS 1 messages waiting for their PUBACK
        self._early_acks: OrderedDict[int, None] = OrderedDict()  # acknowledged before publish() returned
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id or broker.client_id,
                             protocol=paho.MQTTv5, reconnect_on_failure=auto_reconnect)
        client.max_queued_messages_set(broker.max_queued_messages)
        client.reconnect_delay_set(min_delay=1, max_delay=min(30, 2 * broker.keepalive_s))
        if broker.username:
            client.username_pw_set(broker.username, broker.password())
        if broker.tls is not None:
            self.tls_context = tls_context(broker.tls)
            client.tls_set_context(self.tls_context)
            client.tls_insecure_set(not broker.tls.check_hostname)
        else:
            self.tls_context = None
        if will is not None:
            client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        self.client = client

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self, timeout_s: float | None = None) -> None:
        """Connect and wait for the CONNACK; afterwards paho reconnects by itself when the link drops.

        The first connection is made here, not in the background, so that a wrong address, a
        refused port or a certificate that does not verify is reported as what it is.
        """
        timeout_s = self.broker.connect_timeout_s if timeout_s is None else timeout_s
        where = f"{self.broker.host}:{self.broker.port}"
        self.client.connect_timeout = timeout_s
        try:
            self.client.connect(self.broker.host, self.broker.port, keepalive=self.broker.keepalive_s,
                                clean_start=True)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise LiveError(f"cannot connect to the broker at {where}: {exc}") from None
        self.client.loop_start()
        if not self._settled.wait(timeout_s):
            self.abandon(with_will=False)  # a half-open attempt must not connect later, behind our back
            raise LiveError(f"no answer from the broker at {where} within {timeout_s:g} s")
        if self.refused is not None:
            self.client.loop_stop()
            raise LiveError(f"the broker at {where} refused the connection: {self.refused}")

    def stop(self, farewell: Message | None = None) -> None:
        """Publish ``farewell`` (if connected), disconnect cleanly (the will is not sent), stop."""
        if farewell is not None and self.connected.is_set():
            info = self.client.publish(farewell.topic, farewell.payload, qos=farewell.qos, retain=farewell.retain)
            if info.rc == paho.MQTT_ERR_SUCCESS:
                try:
                    info.wait_for_publish(timeout=2.0)
                except RuntimeError:  # lost the connection meanwhile: the will covers it
                    log.warning("farewell on %s not confirmed", farewell.topic)
        self.client.disconnect()
        self.client.loop_stop()

    def abandon(self, with_will: bool = True) -> None:
        """Leave a link that may be half-open (a frozen broker, a partition) for good.

        Nothing queued is kept. ``with_will``: the disconnect asks the broker to publish our last
        will, so that when it reads this connection again the devices hear we are gone (an
        attempt that never connected leaves without one). Then the socket is closed and paho's
        thread ends; the link is not used again (the watchdog makes a new one).
        """
        self.drop_queue()
        self.client.disconnect(reasoncode=WITH_WILL if with_will else None)
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:  # paho closes it once the DISCONNECT is written; make sure
            try:
                sock.close()
            except OSError:
                pass
        self.connected.clear()

    def drop_queue(self) -> int:
        """Throw away every message paho has not had acknowledged; how many there were."""
        dropped = self.client.drop_out_messages()
        with self._count_lock:
            self.purged += len(dropped)
            self._pending_mids.difference_update(m.mid for m in dropped)
        return len(dropped)

    @property
    def in_flight(self) -> int:
        """QoS ≥ 1 messages published and not yet acknowledged (nor thrown away)."""
        with self._count_lock:
            return len(self._pending_mids)

    # --- publishing ----------------------------------------------------------------------------------

    def publish(self, message: Message, expiry_s: float | None = None) -> bool:
        """Publish now, or not at all: ``False`` (nothing queued) while disconnected."""
        if not self.connected.is_set():
            self.unsent += 1
            return False
        props = expiry_properties(expiry_s) if expiry_s is not None else None
        info = self.client.publish(message.topic, message.payload, qos=message.qos, retain=message.retain,
                                   properties=props)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            self.unsent += 1
            log.warning("publish to %s failed: %s", message.topic, paho.error_string(info.rc))
            return False
        if message.qos > 0:
            with self._count_lock:
                if self._early_acks.pop(info.mid, False) is False:
                    self._pending_mids.add(info.mid)
        return True

    # --- paho callbacks (network thread) ------------------------------------------------------------

    def _on_connect(self, client: paho.Client, userdata: object, flags: paho.ConnectFlags,
                    reason_code: paho.ReasonCode, properties: Properties | None) -> None:
        # paho re-sends unacknowledged QoS 1 messages right after this callback: never (docs/failsafe.md F1).
        self.drop_queue()
        if reason_code.is_failure:
            self.refused = str(reason_code)
            log.error("broker refused the connection: %s", reason_code)
            client.disconnect()  # no retry loop against a broker that said no
            self._settled.set()
            return
        sock = client.socket()
        if sock is not None:  # small messages out at once: no Nagle delay on a command (paho leaves it on)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        subscriptions = [(topic, SubscribeOptions(qos=1)) for topic in self.subscriptions]
        subscriptions += [(topic, SubscribeOptions(qos=1, noLocal=True)) for topic in self.no_local]
        if subscriptions:
            client.subscribe(subscriptions)
        if self.birth is not None:
            client.publish(self.birth.topic, self.birth.payload, qos=self.birth.qos, retain=self.birth.retain)
        self.connected.set()
        self._settled.set()
        log.info("connected to %s:%d", self.broker.host, self.broker.port)
        if self._on_connected_cb is not None:
            self._on_connected_cb()

    def _on_disconnect(self, client: paho.Client, userdata: object, flags: paho.DisconnectFlags,
                       reason_code: paho.ReasonCode, properties: Properties | None) -> None:
        was_connected = self.connected.is_set()
        self.connected.clear()
        self.drop_queue()
        if was_connected:
            (log.warning if reason_code.is_failure else log.info)("disconnected from the broker: %s", reason_code)
            if self._on_disconnected_cb is not None:
                self._on_disconnected_cb()

    def _on_publish(self, client: paho.Client, userdata: object, mid: int, reason_code: paho.ReasonCode,
                    properties: Properties | None) -> None:
        with self._count_lock:
            if mid in self._pending_mids:
                self._pending_mids.discard(mid)
            else:  # QoS 0 (written), or a PUBACK faster than publish() returned
                self._early_acks[mid] = None
                if len(self._early_acks) > EARLY_ACKS_KEPT:
                    self._early_acks.popitem(last=False)

    def _on_subscribe(self, client: paho.Client, userdata: object, mid: int, reason_codes: list[paho.ReasonCode],
                      properties: Properties | None) -> None:
        refused = [topic for topic, code in zip(self.subscriptions, reason_codes, strict=False) if code.is_failure]
        if refused:
            log.error("the broker refused subscriptions to %s", ", ".join(refused))

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        try:
            self._handler(msg.topic, msg.payload, bool(msg.retain))
        except Exception:  # noqa: BLE001 - the network thread must survive a bug in one handler; logged
            self.handler_errors += 1
            log.exception("handler failed on a message from %s", msg.topic)
