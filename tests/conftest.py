"""Shared fixtures. Hand-made houses and scenarios live in ``builders.py``."""

from __future__ import annotations

import pytest
from builders import simple_scenario, small_house

from twin.config import HouseConfig, reference_house


@pytest.fixture(scope="session")
def reference() -> HouseConfig:
    return reference_house()


@pytest.fixture
def house() -> HouseConfig:
    return small_house()


@pytest.fixture
def scenario():
    return simple_scenario()


@pytest.fixture
def influxdb(tmp_path_factory):
    """A real InfluxDB 1.x (Debian's ``influxd``) on a free loopback port, stopped at the end."""
    from influxdb_server import INFLUXD, InfluxServer

    if INFLUXD is None:
        pytest.skip("influxd is not installed (scripts/bootstrap.sh installs Debian's 'influxdb')")
    server = InfluxServer(tmp_path_factory.mktemp("influxdb")).start()
    yield server
    server.stop()
