"""docs/failsafe.md §3 scenario 12: only the controller commands the house, and it talks to the right broker.

The broker runs with ``allow_anonymous false``, a password file and the ACL shipped in
``hardware/examples/mosquitto/pems.acl`` (verbatim, plus a test user for the device
simulators). What an intruder achieves is read from the devices' own logs — over MQTT 3.1.1 a
denied publish is still acknowledged, so the acknowledgement proves nothing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from hardware.config import BrokerConfig, TlsConfig
from hardware.errors import LiveError
from hardware.failsafe.watchdog import LinkState
from hardware.faultlab.devices import DeviceSims
from hardware.faultlab.harness import LabController, lab_config
from hardware.wire.local_broker import LocalBroker
from hardware.wire.mqtt import MqttLink
from twin.config import reference_house

if shutil.which("mosquitto_passwd") is None or shutil.which("openssl") is None:
    pytest.skip("mosquitto_passwd and openssl are needed for the security tests", allow_module_level=True)

ACL = Path(__file__).parents[2] / "hardware" / "examples" / "mosquitto" / "pems.acl"
HOUSE = reference_house()
#: The device simulators play all three bridges from one client.
SIMS_ACL = """
user sims
topic read loxone/heating/+/set
topic read growatt/battery/set_mode
topic read ev/charger/set
topic write loxone/#
topic write growatt/#
topic write ev/#
topic read pems/status
topic read pems/heartbeat

user intruder
topic read loxone/heating/+/status
topic read growatt/battery/status
"""
PASSWORDS = {"pems": "controller secret", "sims": "device secret", "intruder": "curious", "viewer": "look only"}


@pytest.fixture
def secured(tmp_path_factory):
    """A broker with passwords and the shipped ACL; its folder is readable after mosquitto drops root."""
    folder = Path(tempfile.mkdtemp(prefix="pems-secure-"))
    folder.chmod(0o755)
    passwd = folder / "passwd"
    for k, (user, password) in enumerate(PASSWORDS.items()):
        subprocess.run(["mosquitto_passwd", *(["-c"] if k == 0 else []), "-b", str(passwd), user, password],
                       check=True, capture_output=True)
    acl = folder / "acl"
    acl.write_text(ACL.read_text() + SIMS_ACL)
    for path in (passwd, acl):
        path.chmod(0o644)
    broker = LocalBroker(extra_config=f"password_file {passwd}\nacl_file {acl}", anonymous=False, folder=folder)
    broker.start()
    yield broker
    broker.stop()
    shutil.rmtree(folder, ignore_errors=True)


def client(broker: LocalBroker, user: str | None, protocol: int = paho.MQTTv5, client_id: str = "") -> paho.Client:
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id or f"{user}-{protocol}", protocol=protocol)
    if user is not None:
        c.username_pw_set(user, PASSWORDS[user])
    c.connect(broker.host, broker.port, keepalive=5)
    c.loop_start()
    return c


def connack(broker: LocalBroker, user: str | None, password: str | None = None) -> str:
    result: list[str] = []
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    if user is not None:
        c.username_pw_set(user, password if password is not None else PASSWORDS[user])
    c.on_connect = lambda cl, u, f, rc, p: result.append(str(rc))
    c.connect(broker.host, broker.port)
    c.loop_start()
    deadline = time.monotonic() + 3
    while not result and time.monotonic() < deadline:
        time.sleep(0.01)
    c.loop_stop()
    c.disconnect()
    return result[0] if result else "no answer"


def test_anonymous_and_wrong_passwords_are_refused(secured):
    assert connack(secured, None) == "Not authorized"
    assert connack(secured, "pems", "guess") in ("Not authorized", "Bad user name or password")
    assert connack(secured, "pems") == "Success"


def test_an_intruder_reaches_no_device_over_either_protocol(secured):
    sims = DeviceSims(HOUSE, _topics(), secured.host, secured.port, username="sims",
                      password=PASSWORDS["sims"]).start()
    watcher = client(secured, "viewer", client_id="viewer")
    seen: list[tuple[str, bytes]] = []
    watcher.on_message = lambda c, u, m: seen.append((m.topic, m.payload))
    watcher.subscribe("#", qos=1)
    denied_v5 = []
    try:
        time.sleep(0.3)
        command_topics = _topics().command_topics()
        for protocol in (paho.MQTTv311, paho.MQTTv5):
            intruder = client(secured, "intruder", protocol)
            intruder.on_publish = lambda c, u, mid, rc, p: denied_v5.append(str(rc))
            time.sleep(0.2)
            for topic in command_topics:
                body = json.dumps({"state": "on", "mode": "discharge_to_grid", "power_kw": 5.0, "enabled": True,
                                   "current_a": 32, "until": "2099-01-01T00:00:00+00:00", "ttl_s": 3600,
                                   "seq": 2**62, "intruder": True})
                intruder.publish(topic, body, qos=1).wait_for_publish(3)
                intruder.publish(topic, body, qos=1, retain=True).wait_for_publish(3)
            intruder.loop_stop()
            intruder.disconnect()
        time.sleep(0.5)
    finally:
        sims.stop()
        watcher.loop_stop()
        watcher.disconnect()
    assert [d for d in sims.deliveries if b"intruder" in d.payload] == [], "0 messages reached the devices"
    assert [t for t, p in seen if b"intruder" in p] == [], "nor anyone else on the broker"
    assert "Not authorized" in denied_v5, "over MQTT 5 the broker says so (3.1.1 acknowledges silently)"


def test_the_controller_with_a_wrong_password_stays_safe_alerts_and_retries_slowly(secured, tmp_path, monkeypatch):
    monkeypatch.setenv("PEMS_TEST_MQTT_PASSWORD", PASSWORDS["pems"])
    config = lab_config(secured.host, secured.port, state_file=tmp_path / "state.json",
                        extra={"broker": {"username": "pems", "password_env": "PEMS_TEST_MQTT_PASSWORD"}})
    sims = DeviceSims(HOUSE, _topics(), secured.host, secured.port, username="sims",
                      password=PASSWORDS["sims"]).start()
    lab = LabController(config, tmp_path / "run").start()
    try:
        assert sims.accepted() or _wait(lambda: sims.accepted(), 3)
        monkeypatch.setenv("PEMS_TEST_MQTT_PASSWORD", "changed on the broker's side")
        secured.stop()
        secured.start()
        refused_at = time.monotonic()
        safe = lab.wait_state(LinkState.SAFE, 5, after=refused_at - 1.0)
        assert _wait(lambda: lab.plant.events.of_kind(_kind("broker_refused")), 5), "an alert, not silence"
        time.sleep(4.0)
        watchdog = lab.plant.failsafe.watchdog
        assert lab.running and watchdog.state is LinkState.SAFE
        assert 1 <= watchdog.refusals <= 3, f"{watchdog.refusals} attempts in 4 s: backing off, not a crash loop"
        assert len(lab.plant.events.of_kind(_kind("broker_refused"))) == 1, "alerted once, not at every attempt"
        monkeypatch.setenv("PEMS_TEST_MQTT_PASSWORD", PASSWORDS["pems"])
        running = lab.wait_state(LinkState.RUNNING, 15, after=safe.mono_s)
        assert _wait(lambda: any(d.recv_mono > running.mono_s for d in sims.accepted()), 5)
    finally:
        lab.stop()
        sims.stop()
    alerts = [e for e in lab.plant.events.events if e.alert and e.kind.value == "broker_refused"]
    assert "refused" in alerts[0].message


def test_a_wrong_password_at_start_is_one_clear_error(secured, tmp_path, monkeypatch):
    monkeypatch.setenv("PEMS_TEST_MQTT_PASSWORD", "wrong")
    config = lab_config(secured.host, secured.port,
                        extra={"broker": {"username": "pems", "password_env": "PEMS_TEST_MQTT_PASSWORD"}})
    with pytest.raises(LiveError, match="refused the connection"):
        LabController(config, tmp_path / "run").start()
    assert not (tmp_path / "run").exists(), "no run directory for a run that never started"


def test_every_test_broker_listens_on_loopback_only(secured):
    lines = secured.config_path.read_text().splitlines()
    listeners = [line.split() for line in lines if line.startswith("listener")]
    assert listeners and all(parts[2] == "127.0.0.1" and parts[1] != "1883" for parts in listeners)
    with LocalBroker() as plain:
        listeners = [line.split() for line in plain.config_path.read_text().splitlines() if line.startswith("listener")]
        assert all(parts[2] == "127.0.0.1" and parts[1] != "1883" for parts in listeners)


# --- TLS ---------------------------------------------------------------------------------------------

def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(folder: Path, name: str) -> None:
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-keyout", f"{name}.key", "-out", f"{name}.crt", "-subj", f"/CN={name}", cwd=folder)


def make_server_cert(folder: Path, name: str, san: str) -> None:
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=folder)
    (folder / f"{name}.ext").write_text(f"subjectAltName={san}\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext", cwd=folder)


@pytest.fixture
def certificates():
    folder = Path(tempfile.mkdtemp(prefix="pems-tls-"))
    folder.chmod(0o755)
    make_ca(folder, "ca")
    make_ca(folder, "other-ca")
    make_server_cert(folder, "broker", "IP:127.0.0.1,DNS:localhost")
    make_server_cert(folder, "elsewhere", "DNS:mqtt.elsewhere.example")
    for path in folder.iterdir():
        path.chmod(0o644)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def connect(config: BrokerConfig) -> MqttLink:
    link = MqttLink(config, [], lambda *a: None, client_id="tls-test")
    link.start(timeout_s=3)
    link.stop()
    return link


def tls_broker(folder: Path, server: str) -> LocalBroker:
    extra = f"cafile {folder / 'ca.crt'}\ncertfile {folder / f'{server}.crt'}\nkeyfile {folder / f'{server}.key'}"
    return LocalBroker(extra_config=extra)


def test_tls_verifies_the_ca_and_the_hostname(certificates):
    ca = str(certificates / "ca.crt")
    with tls_broker(certificates, "broker") as broker:
        link = connect(BrokerConfig(host=broker.host, port=broker.port, tls=TlsConfig(ca_file=ca)))
        context = link.tls_context
        assert context.check_hostname and context.verify_mode.name == "CERT_REQUIRED", "tls_insecure_set(False)"
        with pytest.raises(LiveError, match="CERTIFICATE_VERIFY_FAILED"):
            connect(BrokerConfig(host=broker.host, port=broker.port,
                                 tls=TlsConfig(ca_file=str(certificates / "other-ca.crt"))))
        with pytest.raises(LiveError):  # plain TCP against the TLS listener gets nowhere
            connect(BrokerConfig(host=broker.host, port=broker.port, connect_timeout_s=2))
    with tls_broker(certificates, "elsewhere") as broker:  # the right CA, but a certificate for another host
        with pytest.raises(LiveError, match="(?i)hostname|match"):
            connect(BrokerConfig(host=broker.host, port=broker.port, tls=TlsConfig(ca_file=ca)))


# --- helpers -----------------------------------------------------------------------------------------

def _topics():
    from hardware.config import TopicsConfig

    return TopicsConfig().topic_map(HOUSE.room_names)


def _wait(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _kind(name: str):
    from hardware.failsafe.events import EventKind

    return EventKind(name)
