"""Writing a run directory atomically: all of it appears at once, or nothing does.

Everything is written into a hidden sibling directory which then replaces the target by
``rename``. An existing target is replaced only when it is empty or an earlier run directory
(it holds ``meta.json`` written by this module); anything else is refused.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from twin.errors import TwinError

RUN_MARKER = "meta.json"


def json_ready(value: Any) -> Any:
    """KPI values as JSON allows them: non-finite floats become ``null``, numpy scalars plain."""
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_atomically(path: Path, write: Callable[[Path], object], *, durable: bool = False) -> None:
    """``write(tmp_path)`` into a temporary sibling of ``path``, fsync it, then rename it over ``path``.

    Readers see the old file or the new one, never half of one. With ``durable`` the folder is
    fsynced too, so the rename itself survives a power cut (state a restart must find).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as indented JSON (numpy and pandas values made plain)."""
    path.write_text(json.dumps(json_ready(data), indent=2, sort_keys=False) + "\n", encoding="utf-8")


def check_replaceable(target: Path, marker: str = RUN_MARKER) -> None:
    """Raise :class:`TwinError` unless ``target`` is absent, empty or an earlier output (holds ``marker``).

    Lets a long job refuse a bad ``--out`` before it starts rather than after it has run.
    """
    _check_replaceable(Path(target), marker)


def _check_replaceable(target: Path, marker: str) -> None:
    if not target.exists():
        return
    if not target.is_dir():
        raise TwinError(f"{target} exists and is not a directory")
    if any(target.iterdir()) and not (target / marker).exists():
        raise TwinError(f"{target} exists and is not an earlier output directory (no {marker}); "
                        f"choose another --out")


@contextmanager
def atomic_directory(target: Path, marker: str = RUN_MARKER) -> Iterator[Path]:
    """Yield a temporary directory; on success it becomes ``target`` in one rename."""
    target = Path(target)
    _check_replaceable(target, marker)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        if not (tmp / marker).exists():
            raise TwinError(f"internal: {marker} was not written into {tmp}")
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.rename(target, old / "run")
        os.rename(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_run_directory(target: Path, write: Callable[[Path], None], meta: Mapping[str, Any]) -> Path:
    """Let ``write(tmp)`` fill a fresh directory, add ``meta.json``, and swap it into place."""
    with atomic_directory(target) as tmp:
        write(tmp)
        write_json(tmp / RUN_MARKER, meta)
    return Path(target)


def save_run(result: Any, target: Path, *, plots: bool = True, tables: Mapping[str, Any] | None = None,
             texts: Mapping[str, str] | None = None) -> Path:
    """Write ``log.parquet``, ``kpis.json``, ``plots/*.png`` and ``meta.json`` of a ``RunResult``.

    ``tables`` adds ``<name>.csv`` files (pandas DataFrames), e.g. a planning controller's plan log;
    ``texts`` adds text files by name, e.g. the solver's log (``twin.library_log``).
    """
    from twin.plots import write_plots  # matplotlib only when plotting

    def write(tmp: Path) -> None:
        result.log.to_parquet(tmp / "log.parquet")
        write_json(tmp / "kpis.json", result.kpis)
        for name, frame in (tables or {}).items():
            frame.to_csv(tmp / f"{name}.csv")
        for name, text in (texts or {}).items():
            (tmp / name).write_text(text, encoding="utf-8")
        if plots:
            write_plots(result.log, tmp / "plots")

    meta = {"scenario": result.scenario, "controller": result.controller, "house": result.house,
            "decision_interval_s": result.settings.decision_interval_s, "horizon_s": result.settings.horizon_s,
            "seed": result.settings.seed, **result.meta}
    return write_run_directory(target, write, meta)
