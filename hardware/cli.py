"""``pems live`` and ``pems emulate``, plugged into the ``pems`` command (entry point ``pems.cli``)."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from hardware.console_log import configure_logging
from twin.errors import ConfigError, TwinError


@contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """SIGTERM (systemd, docker stop) ends the run like Ctrl-C: cleanly, with the log written."""
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def parse_broker(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6addr]:PORT`` for IPv6) → ``(host, port)``."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(f"--broker {text!r} must be HOST:PORT with a port in 1..65535")
    return host, int(port)


def live(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option(help="Live configuration TOML (broker, topics, clock, forecasts)")]
    = None,
    controller: Annotated[str | None, typer.Option(help="Controller name (see `pems controllers list`)")] = None,
    mode: Annotated[str | None, typer.Option(help="Rollout mode: simulation (nothing published), advisory (plan "
                                                  "only), partial (battery only), full")] = None,
    out: Annotated[Path | None, typer.Option(help="New run directory: log, commands journal, KPIs, plots")] = None,
    speed: Annotated[float | None, typer.Option(help="House seconds per wall second (must match the emulator)")]
    = None,
    duration_h: Annotated[float | None, typer.Option(help="Stop after this many house hours (default: when the "
                                                          "forecasts run out, or Ctrl-C)")] = None,
    seed: Annotated[int, typer.Option(help="Seed handed to the controller")] = 0,
    plots: Annotated[bool, typer.Option(help="Write plots/*.png at the end")] = True,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
) -> None:
    """Run a controller against the house behind an MQTT broker (or `pems emulate`).

    `pems live finish RUN_DIR` turns the directory of a run whose controller crashed into a finished one.
    """
    from twin.cli import console, fail, kpi_table

    if ctx.invoked_subcommand is not None:
        return
    try:
        missing = [f"--{name}" for name, value in (("config", config), ("controller", controller), ("mode", mode),
                                                   ("out", out)) if value is None]
        if missing:
            raise ConfigError(f"pems live needs {', '.join(missing)} (or: pems live finish RUN_DIR)")
        configure_logging(log_level)
        from hardware.config import load_live_config
        from hardware.live.runner import LiveRun, LiveRunOptions
        from hardware.outputs.mode_gate import parse_rollout_mode  # the gate Home Assistant's select uses too
        from twin.progress import DelayedProgress

        rollout_mode = parse_rollout_mode(mode, "--mode")
        if duration_h is not None and not 0 < duration_h <= 24 * 366:
            raise ConfigError(f"--duration-h {duration_h} is outside (0, 8784]")
        if speed is not None and not 0.01 <= speed <= 100_000:
            raise ConfigError(f"--speed {speed} is outside [0.01, 100000]")
        live_config = load_live_config(config)
        with _stop_on_sigterm(), DelayedProgress(f"live {mode.lower()} × {controller}") as progress:
            options = LiveRunOptions(controller, rollout_mode, out, speed=speed, seed=seed, plots=plots,
                                     duration_s=None if duration_h is None else duration_h * 3600.0)
            result = LiveRun(live_config, options, progress=progress).run()
    except TwinError as exc:
        raise fail(str(exc)) from None
    if result.kpis:
        console.print(kpi_table(f"live {mode.lower()} × {controller}", result.kpis))
    warning = result.meta.get("coverage_warning")
    console.print(f"{result.meta['status']}: {result.meta['intervals']} intervals"
                  + (f" ({warning})" if warning else "") + f"; wrote {out}/")


def emulate(
    scenario: Annotated[str, typer.Option(help="Scenario name (see `pems scenarios list`) or file")],
    broker: Annotated[str, typer.Option(help="Broker as HOST:PORT")] = "127.0.0.1:1883",
    speed: Annotated[float, typer.Option(help="House seconds per wall second")] = 1.0,
    config: Annotated[Path | None, typer.Option(help="Live TOML to take topics, credentials and TLS from")] = None,
    house: Annotated[Path | None, typer.Option(help="House TOML (default: the live config's, else the reference "
                                                    "house)")] = None,
    start: Annotated[str | None, typer.Option(help="Play from this local time (ISO 8601) instead of the "
                                                   "scenario's start")] = None,
    hours: Annotated[float | None, typer.Option(help="Play this many hours (default: to the scenario's end)")]
    = None,
    publish_period_s: Annotated[float, typer.Option(help="House seconds between readings")] = 60.0,
    start_delay_s: Annotated[float, typer.Option(help="Wall seconds before the house clock starts")] = 2.0,
    journal: Annotated[Path | None, typer.Option(help="Append every command the devices received (JSON lines)")]
    = None,
    feeds_port: Annotated[int, typer.Option(help="Also answer OTE and Open-Meteo requests on 127.0.0.1:PORT with "
                                                 "the scenario's prices and issued forecasts (0: off)")] = 0,
    lockstep: Annotated[bool, typer.Option(help="Co-simulation clock: advance past each decision instant only when "
                                                "the controller (clock.source = 'emulator') has acknowledged it; "
                                                "as fast as it decides, whatever the load (--speed is nominal)")]
    = False,
    decision_interval_s: Annotated[float, typer.Option(help="With --lockstep: the controller's decision interval "
                                                            "[house s]")] = 300.0,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
) -> None:
    """Play a scenario on the twin behind the real devices' MQTT topics, N× faster than real time."""
    import dataclasses

    from twin.cli import console, fail

    try:
        configure_logging(log_level)
        from hardware.config import BrokerConfig, TopicsConfig, load_live_config
        from hardware.emulator.emulated_house import HouseEmulator, scenario_window
        from twin.config import load_house, reference_house
        from twin.registry import load_scenario

        host, port = parse_broker(broker)
        live_config = load_live_config(config) if config is not None else None
        broker_config = dataclasses.replace(live_config.broker if live_config else BrokerConfig(), host=host,
                                            port=port, client_id="pems-emulator")
        topics = live_config.topics if live_config else TopicsConfig()
        house_file = house or (Path(live_config.house_file) if live_config and live_config.house_file else None)
        house_config = load_house(house_file) if house_file else reference_house()
        full = load_scenario(scenario)
        world = scenario_window(full, start, hours)
        # The twin plays the scenario from --start on and stops after --hours: its data (an EV session
        # that ends later, tomorrow's weather) continue past the end, as the calendar does.
        played = full.window(world.start, full.end) if world.end < full.end else world
        emulator = HouseEmulator(house_config, played, broker_config, topics.topic_map(house_config.room_names),
                                 speed=speed, publish_period_s=publish_period_s, start_delay_s=start_delay_s,
                                 journal=journal, lockstep=lockstep, decision_interval_s=decision_interval_s,
                                 end_s=world.duration_s)
    except (TwinError, ValueError) as exc:
        raise fail(str(exc)) from None
    console.print(f"emulating {world.name} from {world.start} to {world.end} at {speed:g}× on {host}:{port}")
    feed_server = None
    if feeds_port:
        from hardware.emulator.feeds_server import emulator_feed_server

        try:
            feed_server = emulator_feed_server(emulator, load_scenario(scenario), feeds_port).start()
        except OSError as exc:
            raise fail(f"--feeds-port {feeds_port}: {exc}") from None
        console.print(f"feeds (OTE, Open-Meteo) on {feed_server.base_url}")
    try:
        with _stop_on_sigterm():
            emulator.run()
    except KeyboardInterrupt:
        console.print("stopped")
    except TwinError as exc:
        raise fail(str(exc)) from None
    finally:
        if feed_server is not None:
            feed_server.stop()
    console.print("done; summary:")
    typer.echo(json.dumps(emulator.summary()))  # last line: one JSON object


def finish(
    run_dir: Annotated[Path, typer.Argument(help="The run directory of a live run whose controller crashed")],
    plots: Annotated[bool, typer.Option(help="Write plots/*.png")] = True,
) -> None:
    """Consolidate a crashed live run (log.parquet, kpis.json, plots) and mark it as ended by a crash."""
    from twin.cli import console, fail

    try:
        from hardware.live.finish import finish_run

        meta = finish_run(run_dir, plots=plots)
    except TwinError as exc:
        raise fail(str(exc)) from None
    console.print(f"{meta['status']} (finished by `pems live finish`): {meta['intervals']} intervals; "
                  f"wrote {run_dir}/")


def register(app: typer.Typer) -> None:
    """The ``pems.cli`` entry point: add ``live`` (and ``live finish``) and ``emulate`` to ``pems`` (once)."""
    known = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    if "live" not in known:
        group = typer.Typer(add_completion=False)
        group.callback(invoke_without_command=True)(live)
        group.command("finish")(finish)
        app.add_typer(group, name="live")
    if "emulate" not in known:
        app.command("emulate")(emulate)
    from hardware.feeds.cli import register as register_feeds

    register_feeds(app)
