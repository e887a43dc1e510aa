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
