"""pems identify: fit on one file, test on another (--test-data); a warning when the fit stops at its cap."""

from __future__ import annotations

import json
import textwrap

import pandas as pd
import typer
from test_cli_data import IDENTIFY_MAPPING
from thermal_data import synthetic_measurements
from typer.testing import CliRunner

from controllers.estimation.cli import register


def _csv(path, seed: int) -> None:  # noqa: ANN001
    data, _ = synthetic_measurements(days=7, seed=seed)
    pd.DataFrame({"time": data.times.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "t_south": data.air_c[:, 0], "t_north": data.air_c[:, 1],
                  "p_south": data.heater_w[:, 0], "p_north": data.heater_w[:, 1], "t_out": data.outdoor_c,
                  "ghi": 0.0, "dni": 0.0, "dhi": 0.0}).to_csv(path, index=False)


def test_fit_on_one_file_test_on_another_and_the_cap_is_reported(tmp_path):
    _csv(tmp_path / "fit.csv", seed=2)
    _csv(tmp_path / "other.csv", seed=5)  # another period of the same rooms
    (tmp_path / "map.toml").write_text(textwrap.dedent(IDENTIFY_MAPPING), encoding="utf-8")  # max_evaluations = 8
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # a second command keeps typer's sub-command dispatch
    answer = CliRunner().invoke(app, [
        "identify", "--data", str(tmp_path / "fit.csv"), "--mapping", str(tmp_path / "map.toml"),
        "--out", str(tmp_path / "house.toml"), "--train", "2024-02-01:2024-02-08", "--test", "2024-02-01:2024-02-08",
        "--test-data", str(tmp_path / "other.csv"), "--report", str(tmp_path / "report.json")])
    assert answer.exit_code == 0, answer.output
    assert "stopped at its evaluation cap (8)" in answer.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["hit_evaluation_cap"] is True and report["test_data"].endswith("other.csv")
