"""One paho-mqtt client (MQTT v5, callback API 2) that assumes the network is flaky.

Subscriptions are made in ``on_connect`` (so a reconnect restores them), after checking the
CONNACK's reason code; a refusal (bad credentials, not authorised) is remembered and reported,
not retried in a loop. A birth message is published on every connect and a last will is left
with the broker. Publishing while disconnected sends nothing and says so: paho would otherwise
queue a command and deliver it late, when the broker returns (LIVE.md F1).
"""

from __future__ import annotations

import logging
import math
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from hardware.config import BrokerConfig
from hardware.errors import LiveError
from twin.errors import ConfigError

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


class MqttLink:
    """A connected client: ``start()``, ``publish()``, ``stop()``.

    ``birth`` is published (retained) on every connect, ``will`` left with the broker, and
    ``farewell`` published on a clean ``stop()``. ``on_message`` is called for every message on
    the ``subscriptions``.
    """

    def __init__(self, broker: BrokerConfig, subscriptions: Sequence[str], on_message: MessageHandler,
                 client_id: str | None = None, will: Message | None = None, birth: Message | None = None) -> None:
        self.broker = broker
        self.subscriptions = tuple(subscriptions)
        self._handler = on_message
        self.birth = birth
        self.connected = threading.Event()
        self.refused: str | None = None
        self._settled = threading.Event()  # connected, or refused
        self.unsent = 0  # publishes skipped while disconnected
        self.handler_errors = 0
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id or broker.client_id,
                             protocol=paho.MQTTv5)
        client.max_queued_messages_set(broker.max_queued_messages)
        client.reconnect_delay_set(min_delay=1, max_delay=min(30, 2 * broker.keepalive_s))
        if broker.username:
            client.username_pw_set(broker.username, broker.password())
        if broker.tls is not None:
            tls = broker.tls
            try:
                client.tls_set(ca_certs=tls.ca_file or None, certfile=tls.cert_file or None,
                               keyfile=tls.key_file or None, cert_reqs=ssl.CERT_REQUIRED,
                               tls_version=ssl.PROTOCOL_TLS_CLIENT)
            except (OSError, ssl.SSLError, ValueError) as exc:
                raise ConfigError(f"broker.tls: cannot load certificates ({exc})", "broker.tls") from None
            client.tls_insecure_set(not tls.check_hostname)
        if will is not None:
            client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
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
            self.client.connect(self.broker.host, self.broker.port, keepalive=self.broker.keepalive_s)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise LiveError(f"cannot connect to the broker at {where}: {exc}") from None
        self.client.loop_start()
        if not self._settled.wait(timeout_s):
            self.client.loop_stop()
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
        return True

    # --- paho callbacks (network thread) ------------------------------------------------------------

    def _on_connect(self, client: paho.Client, userdata: object, flags: paho.ConnectFlags,
                    reason_code: paho.ReasonCode, properties: Properties | None) -> None:
        if reason_code.is_failure:
            self.refused = str(reason_code)
            log.error("broker refused the connection: %s", reason_code)
            client.disconnect()  # no retry loop against a broker that said no
            self._settled.set()
            return
        sock = client.socket()
        if sock is not None:  # small messages out at once: no Nagle delay on a command (paho leaves it on)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.subscriptions:
            client.subscribe([(topic, SubscribeOptions(qos=1)) for topic in self.subscriptions])
        if self.birth is not None:
            client.publish(self.birth.topic, self.birth.payload, qos=self.birth.qos, retain=self.birth.retain)
        self.connected.set()
        self._settled.set()
        log.info("connected to %s:%d", self.broker.host, self.broker.port)

    def _on_disconnect(self, client: paho.Client, userdata: object, flags: paho.DisconnectFlags,
                       reason_code: paho.ReasonCode, properties: Properties | None) -> None:
        if self.connected.is_set():
            (log.warning if reason_code.is_failure else log.info)("disconnected from the broker: %s", reason_code)
        self.connected.clear()

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
