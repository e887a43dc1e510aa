"""`pems live` and `pems emulate` on bad input: one line, exit 2, nothing written."""

from __future__ import annotations

import subprocess

import pytest

from hardware.local_broker import free_port
from hardware.parity import pems_executable


def pems(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([pems_executable(), *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "live.toml"
    path.write_text(f'[broker]\nport = {free_port()}\nconnect_timeout_s = 1\n'
                    f'[forecasts]\nscenario = "winter-week-v1"\n')
    return path


def one_line_error(proc: subprocess.CompletedProcess, message: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if "error:" in line]
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--mode", "turbo"], "--mode 'turbo' is not one of simulation, advisory, partial, full"),
    (["--mode", "full", "--speed", "60"], "--speed 60 needs clock.source = 'emulator'"),
    (["--mode", "full", "--controller", "genius"], "unknown controller 'genius'"),
    (["--mode", "full"], "cannot connect to the broker at 127.0.0.1:"),
])
def test_live_bad_input(config, tmp_path, args, message):
    out = tmp_path / "run"
    base = ["live", "--config", str(config), "--controller", "rule-based", "--out", str(out)]
    if "--controller" in args:
        base = ["live", "--config", str(config), "--out", str(out)]
    proc = pems(*base, *args)
    one_line_error(proc, message)
    assert not out.exists(), "nothing written"


def test_live_bad_config_names_file_and_field(tmp_path):
    path = tmp_path / "live.toml"
    path.write_text('[forecasts]\nscenario = "winter-week-v1"\n[max_age]\nbattery_s = 0\n')
    proc = pems("live", "--config", str(path), "--controller", "rule-based", "--mode", "full", "--out",
                str(tmp_path / "run"))
    one_line_error(proc, "live.toml: max_age.battery_s = 0: Input should be greater than 0")


def test_live_refuses_a_directory_that_is_not_empty(config, tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "data.csv").write_text("1,2,3")
    proc = pems("live", "--config", str(config), "--controller", "rule-based", "--mode", "full", "--out", str(out))
    one_line_error(proc, "exists and is not empty")
    assert (out / "data.csv").read_text() == "1,2,3"


@pytest.mark.parametrize(("args", "message"), [
    (["--broker", "nohost"], "--broker 'nohost' must be HOST:PORT"),
    (["--broker", "127.0.0.1:99999"], "must be HOST:PORT with a port in 1..65535"),
    (["--start", "yesterday"], "--start 'yesterday' is not an ISO 8601 time"),
    (["--start", "2030-01-01T00:00"], "is outside the scenario"),
    (["--speed", "0"], "speed = 0.0 is outside"),
])
def test_emulate_bad_input(args, message):
    one_line_error(pems("emulate", "--scenario", "winter-week-v1", *args), message)


def test_emulate_without_a_broker_says_so():
    proc = pems("emulate", "--scenario", "winter-week-v1", "--broker", f"127.0.0.1:{free_port()}", "--config",
                "/dev/null/none.toml")
    one_line_error(proc, "cannot read live config")


def test_help_lists_the_verbs():
    proc = pems("--help")
    assert "live" in proc.stdout and "emulate" in proc.stdout
    for verb in ("live", "emulate"):
        assert pems(verb, "--help").returncode == 0
