"""Username/password and TLS towards a real broker: what works connects, what does not says why.

(The full security suite — ACLs, intruders, v3.1.1 silent denials — belongs to the fail-safe issue.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from hardware.config import BrokerConfig, TlsConfig
from hardware.errors import LiveError
from hardware.wire.local_broker import LocalBroker
from hardware.wire.mqtt import MqttLink
from twin.errors import ConfigError


def connect(config: BrokerConfig) -> None:
    link = MqttLink(config, [], lambda *a: None, client_id="login-test")
    link.start(timeout_s=3)
    link.stop()


@pytest.fixture
def shared_dir():
    """A folder mosquitto can read after dropping root (docs/failsafe.md, Gotchas)."""
    folder = Path(tempfile.mkdtemp(prefix="pems-login-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def readable(*paths: Path) -> None:
    for path in paths:
        path.chmod(0o644)


def test_username_and_password(shared_dir, monkeypatch):
    if shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto_passwd is not installed")
    passwords = shared_dir / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwords), "pems", "right horse"], check=True)
    readable(passwords)
    with LocalBroker(extra_config=f"password_file {passwords}", anonymous=False) as broker:
        monkeypatch.setenv("PEMS_TEST_PASSWORD", "right horse")
        base = BrokerConfig(host=broker.host, port=broker.port, username="pems", password_env="PEMS_TEST_PASSWORD")
        connect(base)
        monkeypatch.setenv("PEMS_TEST_PASSWORD", "wrong")
        with pytest.raises(LiveError, match="refused the connection: (Not authorized|Bad user name or password)"):
            connect(base)
        with pytest.raises(LiveError, match="refused the connection"):
            connect(BrokerConfig(host=broker.host, port=broker.port))


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(folder: Path, name: str) -> None:
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-keyout", f"{name}.key", "-out", f"{name}.crt", "-subj", f"/CN={name}", cwd=folder)


@pytest.fixture
def tls_files(shared_dir):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    make_ca(shared_dir, "ca")
    make_ca(shared_dir, "other-ca")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "server.key",
            "-out", "server.csr", "-subj", "/CN=localhost", cwd=shared_dir)
    (shared_dir / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.crt", "-days", "2", "-extfile", "san.ext", cwd=shared_dir)
    readable(*shared_dir.iterdir())
    return shared_dir


def test_tls_with_hostname_check(tls_files):
    d = tls_files
    extra = f"cafile {d / 'ca.crt'}\ncertfile {d / 'server.crt'}\nkeyfile {d / 'server.key'}"
    with LocalBroker(extra_config=extra) as broker:
        connect(BrokerConfig(host=broker.host, port=broker.port, tls=TlsConfig(ca_file=str(d / "ca.crt"))))
        with pytest.raises(LiveError, match="CERTIFICATE_VERIFY_FAILED"):
            connect(BrokerConfig(host=broker.host, port=broker.port, tls=TlsConfig(ca_file=str(d / "other-ca.crt"))))
        with pytest.raises(LiveError):  # plaintext against a TLS listener gets nowhere
            connect(BrokerConfig(host=broker.host, port=broker.port, connect_timeout_s=2))


def test_tls_refuses_unreadable_certificates(tmp_path):
    config = BrokerConfig(tls=TlsConfig(ca_file=str(tmp_path / "missing.pem")))
    with pytest.raises(ConfigError, match="broker.tls: cannot load certificates"):
        MqttLink(config, [], lambda *a: None)
    assert not os.path.exists(tmp_path / "missing.pem")
