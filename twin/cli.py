"""The ``pems`` command line. Verbs from other packages plug in through the ``pems.cli`` entry point.

Bad input (unknown names, malformed files, impossible values) ends with a one-line
``error: …`` on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from twin.config import HouseConfig, load_house, reference_house
from twin.errors import TwinError
from twin.registry import (
    ControllerContext,
    controller_entries,
    make_controller,
    scenario_entries,
)

app = typer.Typer(help="PEMS twin: simulate, benchmark and run a house's energy controllers.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
scenarios_app = typer.Typer(help="Named scenarios.", no_args_is_help=True)
controllers_app = typer.Typer(help="Registered controllers.", no_args_is_help=True)
app.add_typer(scenarios_app, name="scenarios")
app.add_typer(controllers_app, name="controllers")

console = Console()
err_console = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    """Print a one-line error and return the exit to raise (code 2: bad input)."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def load_house_option(path: Path | None) -> HouseConfig:
    """The house file given by ``--house``, or the bundled reference house."""
    return reference_house() if path is None else load_house(path)


def kpi_table(title: str, kpis: Mapping[str, Any]) -> Table:
    """The KPIs of one run as a two-column rich table."""
    # Text, not markup: a name with brackets prints as written. Fold, never cut: a value is read in full.
    table = Table(title=Text(title), show_header=True, header_style="bold")
    table.add_column("KPI", overflow="fold")
    table.add_column("value", justify="right", overflow="fold")
    for key, value in kpis.items():
        if value is None:
            text = "–"
        elif isinstance(value, float):
            text = f"{value:.6g}" if abs(value) < 1e-3 and value != 0 else f"{value:,.3f}"
        else:
            text = f"{value:,}"
        table.add_row(key, text)
    return table


@app.command()
def simulate(
    scenario: Annotated[str, typer.Option(help="Scenario name (see `pems scenarios list`) or file")],
    controller: Annotated[str, typer.Option(help="Controller name (see `pems controllers list`)")],
    out: Annotated[Path, typer.Option(help="Run directory to write (replaced atomically)")],
    house: Annotated[Path | None, typer.Option(help="House TOML (default: the bundled reference house)")] = None,
    decision_interval_s: Annotated[float, typer.Option(help="Seconds between decisions")] = 300.0,
    seed: Annotated[int, typer.Option(help="Seed handed to the controller")] = 0,
    plots: Annotated[bool, typer.Option(help="Write plots/*.png")] = True,
    start: Annotated[str | None, typer.Option(help="Run window start, local time of the scenario (e.g. 2024-10-14); "
                                              "the data before it is the controller's history, never run")] = None,
    days: Annotated[float | None, typer.Option(help="Run window length in days (default: to the scenario's end)")
                    ] = None,
    influxdb_url: Annotated[str | None, typer.Option(help="Also write the results to this InfluxDB 1.x "
                                                     "(e.g. http://127.0.0.1:8086; see docs/outputs.md)")] = None,
    influxdb_database: Annotated[str, typer.Option(help="InfluxDB database for --influxdb-url")] = "pems",
) -> None:
    """Run one controller through one scenario on the twin; write log, KPIs and plots."""
    from twin.library_log import LOG_FILE_NAME, library_log
    from twin.output import save_run
    from twin.progress import DelayedProgress
    from twin.runner import DecisionObserver, RunSettings
    from twin.runner import simulate as run_simulation
    from twin.window import window_and_history

    try:
        house_config = load_house_option(house)
        settings = RunSettings(decision_interval_s=decision_interval_s, seed=seed)
        world, history = window_and_history(scenario, start, days)
        policy = make_controller(controller, ControllerContext(house_config, world, decision_interval_s, seed,
                                                               history=history))
        observers: tuple[DecisionObserver, ...] = ()
        writer = None
        if influxdb_url:
            # The only place twin/ reaches into hardware/, lazily and on request: the writer is an output.
            from hardware.outputs.export import cli_config, simulation_observer

            observer, writer = simulation_observer(
                cli_config(influxdb_url, influxdb_database), out.with_name(out.name + ".influx-spool"),
                house_config.room_names, [r.heater_power_kw for r in house_config.rooms],
                f"sim:{world.name}:{controller}", controller=policy)
            observers = (observer,)
        with tempfile.TemporaryDirectory(prefix="pems-log-") as tmp:
            log_path = Path(tmp) / LOG_FILE_NAME
            with library_log(log_path) as library, DelayedProgress(f"{world.name} × {controller}") as progress:
                result = run_simulation(house_config, world, policy, settings, controller_name=controller,
                                        progress=progress, observers=observers)
            if writer is not None:
                writer.close()
                if writer.spool.pending_bytes:
                    err_console.print(f"InfluxDB at {influxdb_url} unreachable: points kept in {writer.spool.folder}")
            save_run(result, out, plots=plots, texts={LOG_FILE_NAME: log_path.read_text(encoding="utf-8")})
        warnings_line = library.line(str(out / LOG_FILE_NAME))
    except TwinError as exc:
        raise fail(str(exc)) from None
    console.print(kpi_table(f"{result.scenario} × {result.controller}", result.kpis))
    if warnings_line:
        console.print(warnings_line, highlight=False)
    console.print(f"simulated in {result.meta['wall_time_s']:.2f} s; wrote {out}/ (log.parquet, kpis.json, "
                  f"{LOG_FILE_NAME}, plots/)")


@scenarios_app.command("list")
def scenarios_list() -> None:
    """List the registered scenarios."""
    table = Table(show_header=True, header_style="bold")
    table.add_column("name")
    table.add_column("description")
    for name, entry in sorted(scenario_entries().items()):
        table.add_row(name, entry.description)
    console.print(table)


@controllers_app.command("list")
def controllers_list() -> None:
    """List the registered controllers."""
    table = Table(show_header=True, header_style="bold")
    table.add_column("name")
    table.add_column("description")
    for name, entry in sorted(controller_entries().items()):
        table.add_row(name, entry.description)
    console.print(table)


def _register_plugins() -> None:
    for ep in sorted(entry_points(group="pems.cli"), key=lambda e: e.name):
        ep.load()(app)


def main() -> None:
    """The ``pems`` command line."""
    _register_plugins()
    try:
        app()
    except TwinError as exc:  # a plugin verb that did not translate its own error
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
