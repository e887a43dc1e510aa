"""Who may talk to the broker, and how the controller makes sure it talks to the right broker (docs/failsafe.md F13).

The controller authenticates the broker with TLS — its certificate must chain to the configured
CA (or the system's) *and* name the host we dialled (``check_hostname``; paho's
``tls_insecure_set(False)``) — and authenticates itself with a username and password (or a
client certificate). Plain TCP is accepted only on the loopback interface unless the live
config says ``broker.allow_plaintext = true`` on purpose. The broker side (``allow_anonymous
false``, a password file, an ACL that lets only the controller's user write command topics) is
shipped as ``hardware/examples/mosquitto/``.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import ssl
import stat
from pathlib import Path

from hardware.config import BrokerConfig, TlsConfig
from twin.errors import ConfigError

log = logging.getLogger(__name__)

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """``True`` for ``127.0.0.0/8``, ``::1`` and ``localhost``: traffic that never leaves the machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def tls_context(tls: TlsConfig) -> ssl.SSLContext:
    """A client TLS context that verifies the broker: CA chain, hostname, TLS ≥ 1.2.

    Raises :class:`ConfigError` naming ``broker.tls`` when a certificate or key cannot be loaded.
    """
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=tls.ca_file or None)
        if tls.cert_file:
            context.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"broker.tls: cannot load certificates ({exc})", "broker.tls") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = tls.check_hostname
    if not tls.check_hostname:
        log.warning("broker.tls.check_hostname = false: any certificate from the CA is accepted for this broker")
    return context


def transport_problems(broker: BrokerConfig) -> list[str]:
    """Why this broker connection would not be safe beyond a lab (empty when it is)."""
    problems = []
    if broker.tls is None and not is_loopback(broker.host) and not broker.allow_plaintext:
        problems.append(f"broker.host = {broker.host!r} is not loopback and broker.tls is not set: commands and "
                        f"passwords would cross the network in clear text (set [broker.tls], or "
                        f"broker.allow_plaintext = true on a network you trust)")
    if broker.tls is not None and not broker.tls.check_hostname and not is_loopback(broker.host):
        problems.append("broker.tls.check_hostname = false beyond loopback: the broker is not authenticated")
    return problems


def check_transport(broker: BrokerConfig) -> None:
    """Raise :class:`ConfigError` for a connection that would leave the machine unprotected."""
    problems = transport_problems(broker)
    if problems:
        raise ConfigError(problems[0], "broker")
    if broker.password_file:
        _warn_if_readable_by_others(Path(broker.password_file))


def _warn_if_readable_by_others(path: Path) -> None:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # reported when the password is read
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        log.warning("%s is readable by other users; chmod 600 it", path)
