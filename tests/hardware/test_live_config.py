"""The live configuration: the example loads; every bad value names its field, value and range."""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest

from hardware.config import live_config_from_dict, load_live_config
from twin.config import reference_house
from twin.errors import ConfigError

MINIMAL = {"forecasts": {"scenario": "winter-week-v1"}}


def test_the_shipped_example_loads():
    with resources.as_file(resources.files("hardware").joinpath("examples/live.toml")) as path:
        config = load_live_config(path)
    assert config.clock.source == "emulator" and config.broker.port != 1883
    topics = config.topics.topic_map(reference_house().room_names)
    assert topics.topic("heating_set", 0) == "loxone/heating/living/set"
    assert topics.topic("battery_set") == "growatt/battery/set_mode"


@pytest.mark.parametrize(("patch", "message"), [
    ({"broker": {"port": 70000}}, "broker.port = 70000: Input should be less than or equal to 65535"),
    ({"broker": {"prot": 1884}}, "broker.prot is not a known key; allowed: host, port"),
    ({"broker": {"keepalive_s": "5"}}, "broker.keepalive_s = '5': Input should be a valid integer"),
    ({"max_age": {"battery_s": float("nan")}}, "max_age.battery_s = nan: Input should be a finite number"),
    ({"max_age": {"battery_s": -1}}, "max_age.battery_s = -1: Input should be greater than 0"),
    ({"clock": {"speed": 60}}, "clock: speed = 60.0 needs source = 'emulator'"),
    ({"clock": {"source": "sundial"}}, "clock.source = 'sundial'"),
    ({"broker": {"tls": {"cert_file": "c.pem"}}}, "broker.tls: cert_file and key_file go together"),
    ({"broker": {"password_env": "X"}}, "broker: a password needs a username"),
    ({"control": {"sample_wait_s": True}}, "control.sample_wait_s = True: Input should be a valid number"),
])
def test_bad_values_name_the_field(patch, message):
    with pytest.raises(ConfigError) as info:
        live_config_from_dict({**MINIMAL, **patch})
    assert message in str(info.value)


def test_forecasts_are_required():
    with pytest.raises(ConfigError, match="forecasts is required"):
        live_config_from_dict({})


def test_file_errors_name_the_file(tmp_path):
    path = tmp_path / "live.toml"
    path.write_text("[broker\nport = 1")
    with pytest.raises(ConfigError, match="live.toml: malformed TOML"):
        load_live_config(path)
    path.write_text('[forecasts]\nscenario = "x"\n[broker]\nport = 0\n')
    with pytest.raises(ConfigError, match=r"live.toml: broker.port = 0"):
        load_live_config(path)
    with pytest.raises(ConfigError, match="cannot read live config"):
        load_live_config(tmp_path / "missing.toml")


def test_password_from_environment_or_file(tmp_path, monkeypatch):
    config = live_config_from_dict({**MINIMAL, "broker": {"username": "pems", "password_env": "PEMS_TEST_PW"}})
    with pytest.raises(ConfigError, match="PEMS_TEST_PW is not set"):
        config.broker.password()
    monkeypatch.setenv("PEMS_TEST_PW", "s3cret")
    assert config.broker.password() == "s3cret"
    (tmp_path / "pw").write_text("from-file\nignored\n")
    (tmp_path / "live.toml").write_text('[forecasts]\nscenario = "x"\n[broker]\nusername = "pems"\n'
                                        'password_file = "pw"\n[broker.tls]\nca_file = "ca.pem"\n')
    config = load_live_config(tmp_path / "live.toml")
    assert config.broker.password() == "from-file", "relative paths are taken from the config's folder"
    assert config.broker.tls.ca_file == str(tmp_path / "ca.pem") and config.broker.tls.check_hostname


def test_topics_remap_prefix_and_room_ids():
    config = live_config_from_dict(tomllib.loads('''
        [forecasts]
        scenario = "x"
        [topics]
        prefix = "house1/"
        room_ids = { living = "obyvak" }
        heating_set = "lox/{room}/heat/cmd"
    '''))
    topics = config.topics.topic_map(reference_house().room_names)
    assert topics.topic("heating_set", 0) == "house1/lox/obyvak/heat/cmd"
    assert topics.route("house1/lox/obyvak/heat/cmd").room == 0
    assert topics.topic("battery_status") == "house1/growatt/battery/status"
    assert topics.route("loxone/heating/living/set") is None


@pytest.mark.parametrize(("topics", "message"), [
    ({"heating_set": "lox/heat/cmd"}, "must contain {room} exactly once"),
    ({"battery_set": "bat/{room}"}, "must not contain {room}"),
    ({"battery_set": "bat/+/set"}, "not a valid topic to publish to"),
    ({"battery_set": "growatt/grid/status"}, "is used for both"),
    ({"room_ids": {"nowhere": "x"}}, "names unknown room"),
    ({"room_ids": {"living": "a/b"}}, "must be one topic level"),
])
def test_bad_topic_layouts_are_refused(topics, message):
    config = live_config_from_dict({**MINIMAL, "topics": topics})
    with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}").replace("+", r"\+")):
        config.topics.topic_map(reference_house().room_names)
