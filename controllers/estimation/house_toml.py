"""Write a ``HouseConfig`` as TOML that ``twin.config.load_house`` reads back unchanged."""

from __future__ import annotations

import math
from dataclasses import fields, is_dataclass
from typing import Any

import numpy as np

from twin.config import ComfortBand, HouseConfig


def _value(value: Any) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write a non-finite number {value!r} to TOML")
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, ComfortBand):
        return f"[{_value(value.lower_c)}, {_value(value.upper_c)}]"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _is_table(value: Any) -> bool:
    return is_dataclass(value) and not isinstance(value, ComfortBand)


def _emit(obj: Any, path: str, lines: list[str], array: bool = False) -> None:
    scalars, tables, arrays = [], [], []
    for f in fields(obj):
        value = getattr(obj, f.name)
        if value is None:
            continue
        if _is_table(value):
            tables.append((f.name, value))
        elif isinstance(value, tuple) and value and _is_table(value[0]):
            arrays.append((f.name, value))
        else:
            scalars.append((f.name, value))
    if path:
        lines.append("")
        lines.append(f"[[{path}]]" if array else f"[{path}]")
    for name, value in scalars:
        lines.append(f"{name} = {_value(value)}")
    for name, value in tables:
        _emit(value, f"{path}.{name}" if path else name, lines)
    for name, items in arrays:
        for item in items:
            _emit(item, f"{path}.{name}" if path else name, lines, array=True)


def house_to_toml(house: HouseConfig, header: str = "") -> str:
    """TOML text of ``house`` (every field written, defaults included), with ``header`` comment lines."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    _emit(house, "", lines)
    return "\n".join(lines).lstrip("\n") + "\n"
