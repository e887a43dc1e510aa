"""The KPI table of ``pems simulate`` reads in full in 80 columns (a small terminal, a log file)."""

from __future__ import annotations

import io

from rich.console import Console

from twin.cli import kpi_table
from twin.kpis import KPI_KEYS


def render(kpis: dict, width: int) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(kpi_table("citylearn-fontana-b1-v1 × rl-ppo-year-2m-seed-17", kpis))
    return console.export_text()


def test_every_kpi_name_and_value_in_full_in_80_columns():
    kpis = {key: 1_234_567.891 + index for index, key in enumerate(KPI_KEYS)}
    kpis["relay_switches"] = 4704
    kpis["cycles_without_plan"] = None
    kpis["decide_time_p95_s"] = 0.000123
    text = render(kpis, 80)
    assert "…" not in text
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in text.splitlines() if "│" in line}
    expected = {key: f"{1_234_567.891 + index:,.3f}" for index, key in enumerate(KPI_KEYS)}
    expected |= {"relay_switches": "4,704", "cycles_without_plan": "–", "decide_time_p95_s": "0.000123"}
    assert rows == expected
    assert "citylearn-fontana-b1-v1 ×" in text and "rl-ppo-year-2m-seed-17" in text


def test_a_narrow_console_folds_instead_of_cutting():
    text = render(dict.fromkeys(KPI_KEYS, 1_234_567.891), 30)
    assert "…" not in text
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 30
