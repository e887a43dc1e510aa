"""House configuration: the reference house and every kind of bad input."""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest

from twin.config import house_from_dict, load_house, reference_house
from twin.errors import ConfigError


def reference_dict() -> dict:
    return tomllib.loads(resources.files("twin").joinpath("data/reference_house.toml").read_text())


def test_reference_house_mirrors_the_real_one():
    h = reference_house()
    assert (h.location.latitude_deg, h.location.longitude_deg, h.location.timezone) == (50.08, 14.42, "Europe/Prague")
    assert len(h.rooms) == 16
    assert all(0.5 <= r.heater_power_kw <= 3.0 for r in h.rooms)
    coupled = {name for c in h.couplings for name in c.rooms}
    assert coupled == set(h.room_names), "every room has a neighbour"
    (pv,) = h.pv_arrays
    assert (pv.peak_power_kw, pv.tilt_deg, pv.azimuth_deg) == (10.0, 35.0, 180.0)
    b = h.battery
    assert (b.capacity_kwh, b.max_charge_kw, b.max_discharge_kw, b.soc_min, b.soc_max) == (10, 5, 5, 0.1, 0.9)
    ev = h.ev_charger
    assert ev.phases == 3 and (ev.min_current_a, ev.max_current_a) == (6, 16)
    assert ev.min_power_kw == pytest.approx(3 * 230 * 6 / 1000)
    assert ev.max_power_kw == pytest.approx(3 * 230 * 16 / 1000)
    assert h.grid.import_limit_kw > 0 and h.grid.export_limit_kw > 0


def test_one_and_two_node_rooms_are_both_possible():
    data = reference_dict()
    room = data["rooms"][0]
    for key in ("mass_capacitance_j_per_k", "air_mass_conductance_w_per_k", "mass_outdoor_conductance_w_per_k"):
        room.pop(key)
    h = house_from_dict(data)
    assert not h.rooms[0].has_mass and h.rooms[1].has_mass


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d["rooms"][1].update(heater_power_kw=55.0),
         r"rooms\[1\]\.heater_power_kw = 55\.0 is outside the allowed range \[0\.1, 10\.0\] kW"),
        (lambda d: d["battery"].update(soc_min=0.95),
         r"battery\.soc_min = 0\.95 must be below soc_max = 0\.9"),
        (lambda d: d["battery"].update(capacity_kwh="big"), r"battery\.capacity_kwh must be a number, got 'big'"),
        (lambda d: d["battery"].update(capacity_kwh=-1.0), r"battery\.capacity_kwh = -1\.0 is outside"),
        (lambda d: d["battery"].update(charge_efficiency=0.0), r"battery\.charge_efficiency = 0\.0 .*\(0\.5, 1\.0\]"),
        (lambda d: d["location"].update(timezone="Mars/Olympus"), r"location\.timezone = 'Mars/Olympus'"),
        (lambda d: d["location"].update(latitude_deg=123.0), r"location\.latitude_deg = 123\.0"),
        (lambda d: d["ev_charger"].update(min_current_a=20.0), r"ev_charger\.min_current_a = 20\.0 exceeds"),
        (lambda d: d["ev_charger"].update(phases=2), r"ev_charger\.phases = 2 must be 1 or 3"),
        (lambda d: d["rooms"][2].update(name="Living Room"), r"rooms\[2\]\.name = 'Living Room' must match"),
        (lambda d: d["rooms"][3].update(name="living"), r"rooms\[3\]\.name = 'living' is used by another room"),
        (lambda d: d["rooms"][0].update(colour="red"), r"rooms\[0\]: unknown key\(s\) \['colour'\]"),
        (lambda d: d.pop("grid"), r"^grid is required"),
        (lambda d: d["couplings"][0].update(rooms=["living", "garage"]),
         r"couplings\[0\]\.rooms names unknown room 'garage'"),
        (lambda d: d["couplings"][0].update(rooms=["living", "living"]), r"couplings\[0\]\.rooms .*with itself"),
        (lambda d: d["rooms"][0]["comfort"].update(day=[24.0, 20.0])
         if "comfort" in d["rooms"][0] else d["rooms"][0].update(comfort={"day": [24.0, 20.0]}),
         r"rooms\[0\]\.comfort\.day\.lower_c = 24\.0 must be below upper_c = 20\.0"),
        (lambda d: d["rooms"][0].pop("mass_capacitance_j_per_k"),
         r"rooms\[0\]\.mass_capacitance_j_per_k is required when air_mass_conductance_w_per_k is given"),
    ],
)
def test_bad_values_name_field_value_and_range(edit, match):
    data = reference_dict()
    edit(data)
    with pytest.raises(ConfigError, match=match):
        house_from_dict(data)


def test_room_without_heat_path_to_outdoors_is_rejected():
    data = reference_dict()
    data["rooms"] = data["rooms"][:1]
    data["couplings"] = []
    data["rooms"][0].update(outdoor_conductance_w_per_k=0.0, mass_outdoor_conductance_w_per_k=0.0)
    with pytest.raises(ConfigError, match=r"rooms\[0\] \('living'\) has no heat path to outdoors"):
        house_from_dict(data)


def test_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "house.toml"
    bad.write_text("name = 'x'\n[location\n")
    with pytest.raises(ConfigError, match=r"house\.toml: malformed TOML"):
        load_house(bad)
    with pytest.raises(ConfigError, match=r"missing\.toml: cannot read house file"):
        load_house(tmp_path / "missing.toml")
    bad.write_text(resources.files("twin").joinpath("data/reference_house.toml").read_text().replace(
        "capacity_kwh = 10.0", "capacity_kwh = 1e9"))
    with pytest.raises(ConfigError, match=r"house\.toml: battery\.capacity_kwh = 1000000000\.0 is outside"):
        load_house(bad)


def test_config_is_frozen():
    h = reference_house()
    with pytest.raises(AttributeError):
        h.battery.capacity_kwh = 20.0  # type: ignore[misc]
