"""``pems bench``: the scenario benchmark verb, plugged into the CLI through the ``pems.cli`` entry point."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from benchmarks.defaults import DEFAULT_CONTROLLERS, DEFAULT_OUT, DEFAULT_SCENARIOS
from twin.errors import ConfigError, TwinError

if TYPE_CHECKING:
    import pandas as pd


def _names(text: str, what: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise ConfigError(f"--{what} = {text!r} names nothing", what)
    return names


def _options(pairs: list[str], solver: str | None) -> dict[str, str]:
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--option {pair!r} is not key=value", "option")
        options[key.strip()] = value.strip()
    if solver is not None:
        options["solver"] = solver
    return options


def bench(
    scenarios: Annotated[str, typer.Option(help="Comma-separated scenario names or files")] = ",".join(
        DEFAULT_SCENARIOS),
    controllers: Annotated[str, typer.Option(help="Comma-separated controller names")] = ",".join(
        DEFAULT_CONTROLLERS),
    out: Annotated[Path, typer.Option(help="Output directory (replaced atomically)")] = Path(DEFAULT_OUT),
    workers: Annotated[int | None, typer.Option(help="Local Dask workers (default: one per run, at most the CPUs)")
                       ] = None,
    scheduler: Annotated[str | None, typer.Option(help="Address of an existing Dask scheduler, tcp://host:port")
                         ] = None,
    house: Annotated[Path | None, typer.Option(help="House TOML (default: the bundled reference house)")] = None,
    solver: Annotated[str | None, typer.Option(help="MPC solver: highs (default), glpk or cbc")] = None,
    option: Annotated[list[str] | None, typer.Option(help="Controller option key=value (repeatable), e.g. "
                                                     "time_limit_s=5")] = None,
    decision_interval_s: Annotated[float, typer.Option(help="Seconds between decisions")] = 300.0,
    seed: Annotated[int, typer.Option(help="Seed handed to every controller")] = 0,
    plots: Annotated[bool, typer.Option(help="Write each run's plots/*.png")] = True,
    start: Annotated[str | None, typer.Option(help="Run window start, local time of each scenario (e.g. 2024-10-14); "
                                              "the data before it is the controllers' history, never run")] = None,
    days: Annotated[float | None, typer.Option(help="Run window length in days, whole days as local calendar "
                                               "days (default: to the scenario's end)")
                    ] = None,
    policy: Annotated[list[Path] | None, typer.Option(help="RL policy file (.npz, see examples/train_ppo.py) to run "
                                                      "as controller rl-<file stem>, after --controllers "
                                                      "(repeatable)")] = None,
    wide: Annotated[bool, typer.Option("--wide", help="Print the summary as one wide table (a row per run) "
                                       "instead of a block per run")] = False,
    influxdb_url: Annotated[str | None, typer.Option(help="Also write every run's log to this InfluxDB 1.x "
                                                     "(see docs/outputs.md)")] = None,
    influxdb_database: Annotated[str, typer.Option(help="InfluxDB database for --influxdb-url")] = "pems",
) -> None:
    """Run every (scenario, controller) pair on the twin (on Dask) and write KPIs and a report."""
    from benchmarks.bench import BenchSpec, check_spec, kpi_frame, run_on_dask, write_bench  # the twin, lazily
    from twin.cli import console, fail

    try:
        spec = BenchSpec(scenarios=_names(scenarios, "scenarios"), controllers=_names(controllers, "controllers"),
                         out=out, house=house, decision_interval_s=decision_interval_s, seed=seed,
                         options=_options(option or [], solver), workers=workers, scheduler=scheduler, plots=plots,
                         start=start, days=days, policies=tuple(policy or ()))
        check_spec(spec)
        t0 = time.perf_counter()
        # 40 + a 20-cell bar + percentage + time: one line of an 80-column terminal or log file.
        with Progress(TextColumn("{task.description:<40}"), BarColumn(bar_width=20),
                      TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(), console=Console(stderr=True),
                      transient=False) as progress:
            overall = progress.add_task("all runs", total=len(spec.pairs))
            tasks = {f"{s}|{c}": progress.add_task(f"  {s} × {c}", total=1.0) for s, c in spec.pairs}

            def show(fractions: dict[str, float]) -> None:
                for key, fraction in fractions.items():
                    progress.update(tasks[key], completed=fraction)
                progress.update(overall, completed=sum(fractions.values()))

            results = run_on_dask(spec, show)
        write_bench(spec, results, command=shlex.join(["pems", *sys.argv[1:]]))
        if influxdb_url:
            from hardware.outputs.export import cli_config, export_run_log

            config = cli_config(influxdb_url, influxdb_database)
            for pair in results:
                export_run_log(pair.result.log, config, spec.out / "influx-spool",
                               f"bench:{pair.result.scenario}:{pair.result.controller}")
    except TwinError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:  # e.g. a scheduler that cannot be reached
        raise fail(f"cannot run the benchmark: {exc}") from None
    print_summary(console, kpi_frame(results, spec.baseline, spec.oracle), wide=wide)
    warned = [r for r in results if r.solver_warnings]
    if warned:
        console.print(f"{sum(r.solver_warnings for r in warned)} solver/library warning(s) in {len(warned)} run(s); "
                      f"details in {spec.out}/runs/<scenario>/<controller>/solver.log", highlight=False)
    console.print(f"benchmark done in {time.perf_counter() - t0:.0f} s; wrote {spec.out}/ "
                  f"(kpis.csv, report.md, report.html, runs/)")


#: The headline KPIs of the console summary: key → (heading of the wide table, label of the vertical one).
HEADLINE = {"cost": ("cost", "cost"), "discomfort_kh": ("discomfort K·h", "discomfort [K·h]"),
            "oracle_capture": ("oracle capture", "oracle capture"),
            "cycles_without_plan": ("cycles w/o plan", "cycles without plan"),
            "decide_time_p95_s": ("decision p95 s", "decision p95 [s]")}


def _cell(key: str, value: Any) -> str:
    """One headline KPI as display text: a dash when missing, a percentage, a count or a figure."""
    import pandas as pd

    if value is None or pd.isna(value):
        return "–"
    if key == "oracle_capture":
        return f"{100 * value:.1f} %"
    if key == "cycles_without_plan":
        return f"{int(value):,}"  # a count, stored as float beside the baseline's missing value
    if isinstance(value, float):
        return f"{value:,.3f}"
    return f"{value:,}"


def summary(kpis: "pd.DataFrame") -> Table:  # noqa: UP037 - pandas is imported lazily
    """The headline KPIs of every run as one wide table (``--wide``): one row per run, one column per KPI."""
    table = Table(show_header=True, header_style="bold")
    table.add_column("scenario")
    table.add_column("controller")
    for title, _label in HEADLINE.values():
        table.add_column(title, justify="right")
    for row in kpis.itertuples():
        table.add_row(row.scenario, row.controller, *(_cell(key, getattr(row, key)) for key in HEADLINE))
    return table


def summary_vertical(kpis: "pd.DataFrame") -> Group:  # noqa: UP037 - pandas is imported lazily
    """The headline KPIs of every run, one short block per run, one KPI per line.

    Fits an 80-column terminal or a log file whatever the names: a block is as wide as its longest
    label and value, and a name too long for the screen folds onto the next line instead of being cut.
    """
    blocks: list[RenderableType] = []
    for row in kpis.itertuples():
        table = Table(show_header=False, box=None, padding=(0, 1, 0, 2))
        table.add_column("KPI", overflow="fold")
        table.add_column("value", justify="right", overflow="fold")
        for key, (_title, label) in HEADLINE.items():
            table.add_row(Text(label), Text(_cell(key, getattr(row, key))))  # Text: "[s]" is no markup
        blocks += [Text(f"{row.scenario} × {row.controller}", style="bold", overflow="fold"), table, Text("")]
    return Group(*blocks[:-1])


def print_summary(console: Console, kpis: "pd.DataFrame", *, wide: bool) -> None:  # noqa: UP037
    """The console summary: a block per run, or with ``wide`` one table at its natural width.

    The wide table is printed whole even where the console is narrower (a log file is 80 columns):
    whoever asks for it wants every cell in full, not cut to ``controll…``.
    """
    if not wide:
        console.print(summary_vertical(kpis))
        return
    table = summary(kpis)
    natural = Measurement.get(console, console.options.update_width(10_000), table).maximum
    width = console.width  # print(width=…) can only narrow the console, so widen it for this table alone
    console.width = max(width, natural)
    try:
        console.print(table)
    finally:
        console.width = width
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (pems simulate --out, pems live --out, "
                                                 "a bench's runs/<scenario>/<controller>)")],
    house: Annotated[Path | None, typer.Option(help="House TOML of the run (default: the bundled reference "
                                                     "house); for a real house, the identified one")] = None,
    scenario: Annotated[str | None, typer.Option(help="The run's scenario name or file, for the recorded weather "
                                                      "and starting state (default: the one in meta.json)")] = None,
) -> None:
    """Write RUN_DIR/report/index.html: plan vs actual, forecast error, savings, alerts, controller health."""
    from benchmarks.run_report.page import write_report
    from twin.cli import console, fail

    try:
        page = write_report(run_dir, house, scenario)
    except TwinError as exc:
        raise fail(str(exc)) from None
    console.print(f"wrote {page}")


def register(app: typer.Typer) -> None:
    """The ``pems.cli`` entry point: add ``pems bench`` and ``pems report`` to the app."""
    app.command("bench")(bench)
    app.command("report")(report)
