"""``pems data check``: read recorded data through a mapping and print its data-quality summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from twin.errors import TwinError

console = Console()
err_console = Console(stderr=True)


def check(
    mapping: Annotated[Path, typer.Option(help="Mapping TOML file")],
    data: Annotated[Path | None, typer.Option(help="The file the mapping reads as @data")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Read the data as the mapping says; print coverage, gaps and what was filled, per column."""
    from scenarios.historical.mapping import load_mapping
    from scenarios.historical.reader import read_historical

    try:
        frame, quality = read_historical(load_mapping(mapping), data)
    except TwinError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    if as_json:
        console.print_json(json.dumps(quality.to_dict()))
        return
    for line in quality.lines():
        console.print(escape(line), highlight=False, soft_wrap=True)
    console.print(f"{len(frame)} rows × {len(frame.columns)} columns: {', '.join(frame.columns)}", highlight=False)


def register(app: typer.Typer) -> None:
    """The ``pems.cli`` entry point: adds ``pems data check`` and ``pems history import``."""
    data_app = typer.Typer(help="Recorded data read through a mapping (scenarios.historical).", no_args_is_help=True)
    data_app.command("check")(check)
    app.add_typer(data_app, name="data")
    from scenarios.history.cli import register as register_history

    register_history(app)  # ``pems history import`` (until it has its own entry point)
