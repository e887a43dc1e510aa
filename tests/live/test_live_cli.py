"""`pems live` and `pems emulate` on bad input: one line, exit 2, nothing written."""

from __future__ import annotations

import subprocess

import pytest
from typer.testing import CliRunner

from hardware.cli import register
from hardware.live.parity import pems_executable
from hardware.wire.local_broker import free_port
from twin.cli import app

register(app)


def pems(*args: str) -> tuple[int, str]:
    """In this process (fast); ``error: …`` lines go to stderr, mixed into the output here."""
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "live.toml"
    path.write_text(f'[broker]\nport = {free_port()}\nconnect_timeout_s = 1\n'
                    f'[forecasts]\nscenario = "winter-week-v1"\n')
    return path


def one_line_error(code: int, output: str, message: str) -> None:
    assert code == 2, output
    lines = [line for line in output.strip().splitlines() if "error:" in line]
    assert len(lines) == 1 and message in lines[0], output
    assert "Traceback" not in output


@pytest.mark.parametrize(("args", "message"), [
    (["--controller", "rule-based", "--mode", "turbo"], "--mode 'turbo' is not one of simulation, advisory"),
    (["--controller", "rule-based", "--mode", "full", "--speed", "60"], "--speed 60 needs clock.source = 'emulator'"),
    (["--controller", "genius", "--mode", "full"], "unknown controller 'genius'"),
    (["--controller", "rule-based", "--mode", "full", "--duration-h", "-1"], "--duration-h -1.0 is outside"),
])
def test_live_bad_input(config, tmp_path, args, message):
    out = tmp_path / "run"
    one_line_error(*pems("live", "--config", str(config), "--out", str(out), *args), message)
    assert not out.exists(), "nothing written"


def test_live_bad_config_names_file_and_field(tmp_path):
    path = tmp_path / "live.toml"
    path.write_text('[forecasts]\nscenario = "winter-week-v1"\n[max_age]\nbattery_s = 0\n')
    one_line_error(*pems("live", "--config", str(path), "--controller", "rule-based", "--mode", "full", "--out",
                         str(tmp_path / "run")), "live.toml: max_age.battery_s = 0: Input should be greater than 0")


def test_live_refuses_a_directory_that_is_not_empty(config, tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "data.csv").write_text("1,2,3")
    one_line_error(*pems("live", "--config", str(config), "--controller", "rule-based", "--mode", "full", "--out",
                         str(out)), "exists and is not empty")
    assert (out / "data.csv").read_text() == "1,2,3"


@pytest.mark.parametrize(("args", "message"), [
    (["--broker", "127.0.0.1:99999"], "must be HOST:PORT with a port in 1..65535"),
    (["--start", "yesterday"], "--start 'yesterday' is not an ISO 8601 time"),
    (["--start", "2030-01-01T00:00"], "is outside the scenario"),
    (["--speed", "0"], "speed = 0.0 is outside"),
    (["--hours", "0.1"], "--hours 0.1 is too short"),
    (["--config", "/nonexistent/live.toml"], "cannot read live config"),
])
def test_emulate_bad_input(args, message):
    one_line_error(*pems("emulate", "--scenario", "winter-week-v1", *args), message)


def test_as_a_user_runs_it_an_unreachable_broker_is_one_line(config, tmp_path):
    """In a subprocess, as a user runs it: no traceback, exit 2, no run directory."""
    out = tmp_path / "run"
    for args, message in (
        (["live", "--config", str(config), "--controller", "rule-based", "--mode", "full", "--out", str(out)],
         "cannot connect to the broker at 127.0.0.1:"),
        (["emulate", "--scenario", "winter-week-v1", "--broker", f"127.0.0.1:{free_port()}"],
         "cannot connect to the broker at 127.0.0.1:"),
    ):
        proc = subprocess.run([pems_executable(), *args], capture_output=True, text=True, timeout=120)
        one_line_error(proc.returncode, proc.stderr, message)
    assert not out.exists()


def test_help_lists_the_verbs():
    code, output = pems("--help")
    assert code == 0 and "live" in output and "emulate" in output
    for verb in ("live", "emulate"):
        assert pems(verb, "--help")[0] == 0
