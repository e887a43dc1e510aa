"""``pems history import``: the owner's InfluxDB history into the house's history folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape

from twin.errors import TwinError

console = Console()
err_console = Console(stderr=True)


def _when(text: str, timezone: str, option: str) -> pd.Timestamp:
    try:
        when = pd.Timestamp(text)
    except ValueError:
        raise TwinError(f"{option} {text!r} is not a date (YYYY-MM-DD) or an ISO date-time") from None
    return when.tz_localize(timezone) if when.tzinfo is None else when.tz_convert(timezone)


def import_command(
    config: Annotated[Path, typer.Option(help="history.toml: the InfluxDB and the column mapping")],
    from_: Annotated[str, typer.Option("--from", help="First local date (or ISO time) to import")],
    to: Annotated[str, typer.Option(help="Local date (or ISO time) to stop at (exclusive)")],
    out: Annotated[Path, typer.Option(help="History folder to create (date=YYYY-MM-DD/part-*.parquet)")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """Import the house's history from InfluxDB 1.x (InfluxQL) or 2.x (Flux) through a TOML mapping."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from scenarios.history.import_config import load_import_config
    from scenarios.history.importer import import_history

    try:
        cfg = load_import_config(config)
        start, end = _when(from_, cfg.timezone, "--from"), _when(to, cfg.timezone, "--to")
        with Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=err_console, transient=True) as bar:
            task = bar.add_task("import", total=None)
            result = import_history(cfg, start, end, out,
                                    progress=lambda done, total: bar.update(task, completed=done, total=total))
    except TwinError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    summary = {"out": str(result.out), "rows": result.rows, "days": result.days, "readings": result.readings}
    if as_json:
        console.print_json(json.dumps(summary))
        return
    console.print(f"wrote {result.rows} rows over {result.days} days to {escape(str(result.out))}", highlight=False)
    for name, n in result.readings.items():
        console.print(f"  {escape(name)}: {n} steps with data", highlight=False)


def register(app: typer.Typer) -> None:
    """Adds ``pems history import``."""
    history_app = typer.Typer(help="The house's own history (day partitions; import from InfluxDB).",
                              no_args_is_help=True)
    history_app.command("import")(import_command)
    app.add_typer(history_app, name="history")
