"""The console summary of ``pems bench`` reads in full in 80 columns (a small terminal, a log file)."""

from __future__ import annotations

import io

import pandas as pd
from rich.console import Console

from benchmarks.cli import HEADLINE, print_summary

#: Names as long as real ones get (a historical scenario, a policy file's controller).
RUNS = [("citylearn-fontana-b1-v1", "rule-based", 3.36, 26.14, None, float("nan"), 0.0012),
        ("citylearn-fontana-b1-v1", "rl-ppo-year-2m-seed-17", 187.48, 30.57, -0.234, float("nan"), 0.0031),
        ("winter-week-v1", "mpc-learned", 1234567.891, 5.9, 0.985, 3.0, 0.263),
        ("winter-week-v1", "oracle", 173.64, 5.47, 1.0, 0.0, 0.4)]
#: What each run's cells must read, in the order of ``HEADLINE``.
EXPECTED = [("3.360", "26.140", "–", "–", "0.001"),
            ("187.480", "30.570", "-23.4 %", "–", "0.003"),
            ("1,234,567.891", "5.900", "98.5 %", "3", "0.263"),
            ("173.640", "5.470", "100.0 %", "0", "0.400")]


def kpi_frame() -> pd.DataFrame:
    return pd.DataFrame(RUNS, columns=["scenario", "controller", "cost", "discomfort_kh", "oracle_capture",
                                       "cycles_without_plan", "decide_time_p95_s"])


def render(*, wide: bool, width: int = 80) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    print_summary(console, kpi_frame(), wide=wide)
    return console.export_text()


def test_the_default_summary_fits_80_columns_with_every_name_and_value():
    text = render(wide=False)
    assert "…" not in text
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80
    lines = [line.strip() for line in text.splitlines()]
    for (scenario, controller, *_), cells in zip(RUNS, EXPECTED, strict=True):
        block = lines.index(f"{scenario} × {controller}")  # the run's name, whole, on its own line
        for offset, ((_title, label), cell) in enumerate(zip(HEADLINE.values(), cells, strict=True), start=1):
            assert lines[block + offset].startswith(label), (label, lines[block + offset])
            assert lines[block + offset].endswith(cell), (label, cell, lines[block + offset])


def test_the_wide_summary_is_one_table_with_every_cell_in_full_even_in_80_columns():
    text = render(wide=True)
    assert "…" not in text
    rows = [line for line in text.splitlines() if "│" in line]
    assert len(rows) == len(RUNS)
    for row, (scenario, controller, *_), cells in zip(rows, RUNS, EXPECTED, strict=True):
        assert [cell.strip() for cell in row.strip("│ ").split("│")] == [scenario, controller, *cells]
    header = text.split("┡")[0]
    for title, _label in HEADLINE.values():
        assert all(word in header for word in title.split())


def test_a_narrow_console_folds_names_instead_of_cutting_them():
    text = render(wide=False, width=30)
    assert "…" not in text
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 30
    unfolded = "".join(text.split())  # every name and value is still there, only broken across lines
    for (scenario, controller, *_), cells in zip(RUNS, EXPECTED, strict=True):
        assert f"{scenario}×{controller}" in unfolded
        assert all(cell.replace(" ", "") in unfolded for cell in cells)
