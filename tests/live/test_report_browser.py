"""``pems report`` opened in a real headless chromium: it renders its figures without console errors."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from builders import simple_scenario, small_house
from typer.testing import CliRunner

from controllers.rule_based import RuleBasedController
from twin.output import save_run
from twin.runner import RunSettings, simulate

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [pytest.mark.timeout(600),
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed")]

# After load, the page writes into the DOM how many images decoded (naturalWidth > 0) and failed.
PROBE = """<script>window.addEventListener('load', () => {
  const imgs = [...document.images];
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.setAttribute('data-images', ok + '/' + imgs.length);
});</script>"""


def _chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                           "--v=0", f"--user-data-dir={tmp / 'profile'}", "--allow-file-access-from-files",
                           "--virtual-time-budget=5000", *args], capture_output=True, text=True, timeout=120)


def test_report_renders_every_figure_in_headless_chromium(tmp_path):
    house = small_house(n_rooms=2)
    scenario = simple_scenario(days=2, seed=2)
    result = simulate(house, scenario, RuleBasedController(house), RunSettings())
    run_dir = save_run(result, tmp_path / "run", plots=False)
    (run_dir / "events.jsonl").write_text(
        '{"time": "2024-01-15T10:00:00+01:00", "kind": "alert", "message": "battery SOC stale"}\n'
        'not json\n')

    from benchmarks.run_report.page import write_report

    page = write_report(run_dir, house_path=None)  # reference house ≠ this log: the savings say why
    assert "not the house" in page.read_text()
    (tmp_path / "house.toml").write_text(_house_toml(house))
    from twin.cli import _register_plugins, app

    _register_plugins()
    outcome = CliRunner().invoke(app, ["report", str(run_dir), "--house", str(tmp_path / "house.toml")])
    assert outcome.exit_code == 0, outcome.output
    html = page.read_text()
    n_images = html.count("<img ")
    assert n_images == 4  # rooms, storage, savings, health (no forecast scorecard in a rule-based run)
    probe = page.with_name("probe.html")
    probe.write_text(html.replace("</body>", PROBE + "</body>"))

    dom = _chromium("--dump-dom", probe.as_uri(), tmp=tmp_path)
    assert f'data-images="{n_images}/{n_images}"' in dom.stdout, dom.stdout[-500:]
    shot = tmp_path / "report.png"
    run = _chromium(f"--screenshot={shot}", "--window-size=1100,2400", page.as_uri(), tmp=tmp_path)
    assert shot.exists() and shot.stat().st_size > 20_000
    console_errors = [line for line in (dom.stderr + run.stderr).splitlines()
                      if re.search(r"CONSOLE.*(error|Uncaught)|Failed to load resource|net::ERR_", line)]
    assert not console_errors, console_errors
    kept = Path("/tmp/pems-report-screenshot.png")
    shutil.copy(shot, kept)


def _house_toml(house) -> str:
    from controllers.estimation.house_toml import house_to_toml

    return house_to_toml(house)
