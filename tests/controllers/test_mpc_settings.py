"""MpcSettings: validation names the field, value and range; options parse from text."""

from __future__ import annotations

import pytest

from controllers.mpc.blocking import BlockGrid
from controllers.mpc.settings import MpcSettings
from twin.errors import ConfigError


def test_defaults_are_the_issue_s_move_blocking():
    settings = MpcSettings()
    grid = BlockGrid.from_segments(settings.blocks)
    assert settings.horizon_s == 48 * 3600
    assert grid.n_blocks == 24 + 18 + 8
    assert grid.durations_s[:24].tolist() == [900.0] * 24
    assert grid.durations_s[24:42].tolist() == [3600.0] * 18
    assert grid.durations_s[42:].tolist() == [10800.0] * 8


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"solver": "gurobi"}, "solver = 'gurobi' is not one of highs, glpk, cbc"),
    ({"strategy": "guess"}, "strategy = 'guess' is not one of"),
    ({"mip_gap": 0.9}, r"mip_gap = 0.9 is outside the allowed range \[0.0, 0.5\]"),
    ({"time_limit_s": float("nan")}, "time_limit_s = nan is outside"),
    ({"replan_interval_s": 10.0}, r"replan_interval_s = 10.0 is outside the allowed range \[60.0, 86400.0\] s"),
    ({"blocks": ((900.0, 1000.0),)}, "is not a whole number of 900.0 s blocks"),
    ({"blocks": ((900.0, 3600.0), (3600.0, 3600.0))}, "not after the previous segment's end"),
    ({"blocks": ()}, "must be a non-empty tuple"),
    ({"blocks": ((30.0, 3600.0),)}, r"block length 30.0 s is outside \[60, 86400\] s"),
])
def test_bad_settings_name_the_field(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        MpcSettings(**kwargs)


def test_options_from_text():
    settings = MpcSettings().with_options({"solver": "glpk", "time_limit_s": "5", "warm_start": "false",
                                           "threads": "2", "blocks": "900:7200,3600:43200"})
    assert settings.solver == "glpk"
    assert settings.time_limit_s == 5.0
    assert settings.warm_start is False
    assert settings.threads == 2
    assert settings.blocks == ((900.0, 7200.0), (3600.0, 43200.0))


@pytest.mark.parametrize(("options", "message"), [
    ({"colour": "red"}, "unknown MPC option 'colour'"),
    ({"time_limit_s": "soon"}, "time_limit_s = 'soon' is not a float"),
    ({"blocks": "900-7200"}, "blocks = '900-7200' is not a list of block_length_s:until_s"),
    ({"warm_start": "maybe"}, "warm_start = 'maybe' is not a bool"),
    ({"solver": "cplex"}, "solver = 'cplex' is not one of"),
])
def test_bad_options_are_named(options, message):
    with pytest.raises(ConfigError, match=message):
        MpcSettings().with_options(options)
