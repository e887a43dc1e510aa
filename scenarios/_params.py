"""Validated parameter fields for the frozen dataclasses of ``scenarios`` and their TOML parsing.

A numeric field declares its allowed range once, in its metadata (``param(lo, hi, unit)``);
:func:`check_params` enforces it in ``__post_init__``. :func:`build` turns a TOML table into
such a dataclass (nested tables into nested dataclasses), naming the dotted field of the
first problem. Errors are :class:`twin.errors.ConfigError` (a ``ValueError``) carrying
``field`` so that a caller can prefix the file it read.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
import typing
from collections.abc import Mapping
from typing import Any

from twin.errors import ConfigError


def param(lo: float, hi: float, unit: str = "", *, default: Any, length: int | None = None) -> Any:
    """A dataclass field whose value (or each item, for a tuple of ``length``) lies in [lo, hi]."""
    return dataclasses.field(default=default, metadata={"range": (lo, hi), "unit": unit, "length": length})


def check_params(obj: Any) -> None:
    """Raise ConfigError naming the first field whose value is outside its declared range."""
    for f in dataclasses.fields(obj):
        spec = f.metadata.get("range")
        if spec is None:
            continue
        lo, hi = spec
        unit = f" {f.metadata['unit']}" if f.metadata.get("unit") else ""
        value = getattr(obj, f.name)
        length = f.metadata.get("length")
        if length is not None:
            if not isinstance(value, tuple) or len(value) != length:
                raise ConfigError(
                    f"{f.name} = {value!r} must be a list of {length} numbers in [{lo}, {hi}]{unit}", f.name)
            items = enumerate(value)
        else:
            items = [(None, value)]
        for i, item in items:
            label = f.name if i is None else f"{f.name}[{i}]"
            if isinstance(item, bool) or not isinstance(item, int | float):
                raise ConfigError(f"{label} must be a number, got {item!r}", f.name)
            if not math.isfinite(item) or not lo <= item <= hi:
                raise ConfigError(
                    f"{label} = {item!r} is outside the allowed range [{lo}, {hi}]{unit}", f.name)


def fail(field_name: str, message: str) -> typing.NoReturn:
    raise ConfigError(f"{field_name} {message}", field_name)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def build(cls: type, table: Any, path: str, base: Any = None) -> Any:
    """Build dataclass ``cls`` from a TOML table; unknown keys and wrong types name ``path.key``.

    Fields missing from the table take their value from ``base`` (an instance of ``cls``)
    when given, else the field's default; a nested table overrides only the keys it names.
    """
    if not isinstance(table, Mapping):
        raise ConfigError(f"{path} must be a table, got {table!r}", path)
    hints = _hints(cls)
    init_fields = [f for f in dataclasses.fields(cls) if f.init]
    names = [f.name for f in init_fields]
    unknown = sorted(set(table) - set(names))
    if unknown:
        raise ConfigError(f"{path}.{unknown[0]} is not a known field; known: {', '.join(names)}",
                          f"{path}.{unknown[0]}")
    kwargs = {}
    for f in init_fields:
        inherited = getattr(base, f.name) if base is not None else f.default
        if f.name in table:
            nested_base = inherited if dataclasses.is_dataclass(inherited) else None
            kwargs[f.name] = _convert(hints[f.name], table[f.name], f"{path}.{f.name}", nested_base)
        elif inherited is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{path}.{f.name} is required", f"{path}.{f.name}")
        elif base is not None:
            kwargs[f.name] = inherited
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        if exc.field:
            raise ConfigError(f"{path}.{exc}", f"{path}.{exc.field}") from None
        raise ConfigError(f"{path}: {exc}", path) from None
    except (TypeError, ValueError) as exc:  # e.g. a nested class validating with ValueError
        raise ConfigError(f"{path}: {exc}", path) from None


def _convert(hint: Any, value: Any, path: str, base: Any = None) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, path, base)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{path} = {value!r} must be a list", path)
        item_hint = typing.get_args(hint)[0]
        return tuple(_convert(item_hint, v, f"{path}[{i}]") for i, v in enumerate(value))
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path} = {value!r} must be a number", path)
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path} = {value!r} must be an integer", path)
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path} = {value!r} must be true or false", path)
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path} = {value!r} must be a string", path)
        return value
    if hint is dt.date:
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            raise ConfigError(f"{path} = {value!r} must be a date (YYYY-MM-DD, unquoted)", path)
        return value
    raise ConfigError(f"{path}: cannot parse a value of type {hint!r}", path)
