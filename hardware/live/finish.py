"""The end of a live run: parts and journals into ``log.parquet``, KPIs and plots — also after a crash.

:func:`consolidate` is what every run does at its end. :func:`finish_run` (``pems live finish
RUN_DIR``) does it for a run directory whose controller died (``kill -9``, power loss): its
``live.json`` still says "running"; afterwards it says "crashed" and the directory looks like
that of a run that ended (``log.parquet``, ``kpis.json``, ``plots/``), with every interval the
durable journal kept — all but the decision that was in flight.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from hardware.errors import LiveError
from hardware.live.log import META, PARTS, read_run_log, write_atomically, write_json_atomically
from twin.config import HouseConfig, load_house, reference_house
from twin.kpis import compute_kpis


def consolidate(out: Path, house: HouseConfig, plots: bool) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    """Parts and journals → ``log.parquet`` (then removed), ``kpis.json``, ``plots/``; the log and KPIs."""
    out = Path(out)
    folder = out / PARTS
    pieces = [*folder.glob("part-*.parquet"), *folder.glob("journal-*.jsonl")] if folder.is_dir() else []
    log_frame: pd.DataFrame | None = None
    if pieces or (out / "log.parquet").exists():
        try:
            log_frame = read_run_log(out, house.room_names)
        except Exception as exc:  # noqa: BLE001 - named in the error, nothing deleted
            raise LiveError(f"{out}: the run log cannot be consolidated ({exc}); its parts are left as they are") \
                from exc
        if pieces:
            frame = log_frame
            write_atomically(out / "log.parquet", lambda tmp: frame.to_parquet(tmp))
            for piece in pieces:
                piece.unlink()
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
    kpis = compute_kpis(log_frame, house) if log_frame is not None and len(log_frame) else {}
    if kpis:
        write_json_atomically(out / "kpis.json", kpis)
        if plots:
            from twin.plots import write_plots  # matplotlib only when plotting

            write_plots(log_frame, out / "plots")
    return log_frame, kpis


def house_of(meta: dict[str, Any]) -> HouseConfig:
    """The house a run directory was run on (its ``house_file``, else the reference house)."""
    house_file = meta.get("house_file")
    house = load_house(house_file) if house_file else reference_house()
    if house.name != meta.get("house"):
        raise LiveError(f"the run was on house {meta.get('house')!r}, but {house_file or 'the reference house'} "
                        f"is {house.name!r}")
    return house


def finish_run(run_dir: Path, plots: bool = True) -> dict[str, Any]:
    """Turn a crashed run directory into a finished one, marked as ended by a crash; its new ``live.json``."""
    run_dir = Path(run_dir)
    meta_path = run_dir / META
    if not meta_path.exists():
        raise LiveError(f"{run_dir}: not a live run directory (no {META})")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LiveError(f"{meta_path}: cannot be read ({exc})") from None
    if meta.get("status") != "running":
        raise LiveError(f"{run_dir}: the run already ended ({meta.get('status')!r}); nothing to finish")
    log_frame, kpis = consolidate(run_dir, house_of(meta), plots)
    meta.update(status="crashed", finished_by="pems live finish", finished_wall_s=time.time(),
                intervals=0 if log_frame is None else len(log_frame))
    write_json_atomically(meta_path, meta)
    return meta
