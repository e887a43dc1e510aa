"""``pems feeds`` against recorded answers served on 127.0.0.1, and the [feeds]/[comfort] config checks."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from hardware.config import live_config_from_dict
from hardware.emulator.feeds_server import FeedServer
from hardware.feeds.cli import register
from tests.hardware.feeds_helpers import CNB, OTE_FULL, PRAGUE, weather_unixtime
from twin.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "live.toml"


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # a second command keeps typer's sub-command layout
    return app


def _config(tmp_path: Path, server: FeedServer) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    text = (text.replace("https://www.ote-cr.cz/services/PublicDataService", server.ote_url)
            .replace("https://api.open-meteo.com/v1/forecast", server.weather_url)
            .replace("https://api.cnb.cz/cnbapi/exrates/daily", server.cnb_url)
            .replace("/var/lib/pems/feeds", str(tmp_path / "cache")))
    path = tmp_path / "live.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_pems_feeds_json_against_recorded_answers(tmp_path: Path) -> None:
    weather = weather_unixtime(pd.Timestamp("2025-10-22 00:00", tz=PRAGUE))
    with FeedServer(lambda a, b, r: OTE_FULL, lambda q: weather, lambda q: CNB) as server:
        result = CliRunner().invoke(_app(), ["feeds", "--config", str(_config(tmp_path, server)),
                                             "--at", "2025-10-22T14:00", "--json"])
        human = CliRunner().invoke(_app(), ["feeds", "--config", str(_config(tmp_path, server)),
                                            "--at", "2025-10-22T14:00"], terminal_width=80)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == {"prices", "weather", "pv_kw", "base_load_kw"}
    assert len(data["prices"]) == 192
    first = data["prices"][0]
    assert set(first) == {"start", "end", "spot_per_mwh", "import_price_per_kwh", "export_price_per_kwh", "source"}
    assert first["start"] == "2025-10-22T14:00:00+02:00" and first["end"] == "2025-10-22T14:15:00+02:00"
    assert [p["source"] for p in data["prices"]].count("published") == 136
    assert {p["source"] for p in data["prices"][136:]} == {"forecast"}
    assert {"time", "temp_c", "ghi_w_m2", "dni_w_m2", "dhi_w_m2", "cloud_cover_pct"} <= set(data["weather"][0])
    assert all(r["p10"] <= r["p50"] <= r["p90"] for r in data["pv_kw"] + data["base_load_kw"])
    # The two-rate tariff: 13:00-14:00 is low-rate, 14:00 high; 14:00's import is dearer at the same spot.
    assert human.exit_code == 0, human.output
    assert max(len(line) for line in human.output.splitlines()) <= 80
    assert "136 published, 56 forecast" in human.output


def test_pems_feeds_refuses_a_config_without_feeds(tmp_path: Path) -> None:
    path = tmp_path / "live.toml"
    path.write_text('[forecasts]\nscenario = "winter-week-v1"\n', encoding="utf-8")
    result = CliRunner().invoke(_app(), ["feeds", "--config", str(path)])
    assert result.exit_code != 0 and "[feeds]" in result.output


@pytest.mark.parametrize(("table", "field"), [
    ({"feeds": {"prices": {"provider": "entsoe"}}}, "feeds.prices.provider"),
    ({"feeds": {"prices": {"url": "ftp://x"}}}, "feeds.prices.url"),
    ({"feeds": {"tariff": {"low_rate_hours": ["25:00-06:00"]}}}, "low_rate_hours"),
    ({"feeds": {"tariff": {"vat_fraction": 21}}}, "feeds.tariff.vat_fraction"),
    ({"feeds": {"weather": {"colour": 1}}}, "feeds.weather.colour"),
    ({"comfort": {"mon": {"day": ["6-22"]}}}, "comfort.mon"),
])
def test_bad_feed_config_names_the_field(table: dict, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        live_config_from_dict({"forecasts": {"scenario": "winter-week-v1"}, **table})
    assert field in str(err.value)


def test_example_live_toml_is_valid() -> None:
    from hardware.config import load_live_config

    config = load_live_config(EXAMPLE)
    assert config.feeds is not None and config.feeds.tariff.currency == "CZK"
    assert len(config.feeds.tariff.low_spans()) == 5
