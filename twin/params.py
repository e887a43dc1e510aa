"""The one parameter-validation engine: ranged dataclass fields and TOML tables → dataclasses.

A numeric field declares its allowed range and unit once, in its metadata
(``bounded(lo, hi, unit)``, like PyPSA's attribute tables); :func:`check_bounds`, called from
``__post_init__``, enforces it, so a config object that exists is a valid one.
:func:`check_number` is the same check for a lone value. :func:`build` turns a TOML table into
such a dataclass (nested tables into nested dataclasses), naming the dotted field of the first
problem; :func:`build_table` is the house configuration's front-end (optional fields,
fixed-length tuples, a class's ``_from_toml`` hook). Errors are
:class:`twin.errors.ConfigError` (a ``ValueError``) carrying ``field`` so that a caller can
prefix the file it read.

Used by the house configuration (``twin.config``), the scenario specs (``scenarios``), the MPC
settings (``controllers.mpc.settings``) and the historical mappings
(``scenarios.historical.mapping``). The MQTT boundary (``hardware.config``) uses pydantic.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Union

from twin.errors import ConfigError


def bounded(lo: float, hi: float, unit: str = "", *, default: Any = dataclasses.MISSING, lo_open: bool = False,
            length: int | None = None) -> Any:
    """A dataclass field whose value lies in ``[lo, hi]`` (``(lo, hi]`` when ``lo_open``).

    With ``length`` the value is a tuple of that many numbers, each in the range. A field whose
    default is ``None`` may be ``None`` (an optional parameter).
    """
    return dataclasses.field(default=default,
                             metadata={"range": (lo, hi), "unit": unit, "lo_open": lo_open, "length": length})


def check_number(label: str, value: Any, lo: float, hi: float, unit: str = "", *, lo_open: bool = False,
                 field_name: str | None = None) -> None:
    """Raise ConfigError unless ``value`` is a finite number in ``[lo, hi]`` (``(lo, hi]`` when ``lo_open``)."""
    name = label if field_name is None else field_name
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{label} must be a number, got {value!r}", name)
    below = value <= lo if lo_open else value < lo
    if not math.isfinite(value) or below or value > hi:
        bracket = "(" if lo_open else "["
        suffix = f" {unit}" if unit else ""
        raise ConfigError(f"{label} = {value!r} is outside the allowed range {bracket}{lo}, {hi}]{suffix}", name)


def check_bounds(obj: Any) -> None:
    """Raise ConfigError naming the first field of ``obj`` outside its declared :func:`bounded` range."""
    for f in dataclasses.fields(obj):
        spec = f.metadata.get("range")
        if spec is None:
            continue
        value = getattr(obj, f.name)
        if value is None and f.default is None:
            continue
        lo, hi = spec
        unit = f.metadata.get("unit", "")
        lo_open = f.metadata.get("lo_open", False)
        length = f.metadata.get("length")
        if length is None:
            check_number(f.name, value, lo, hi, unit, lo_open=lo_open)
            continue
        if not isinstance(value, tuple) or len(value) != length:
            suffix = f" {unit}" if unit else ""
            raise ConfigError(f"{f.name} = {value!r} must be a list of {length} numbers in [{lo}, {hi}]{suffix}",
                              f.name)
        for i, item in enumerate(value):
            check_number(f"{f.name}[{i}]", item, lo, hi, unit, lo_open=lo_open, field_name=f.name)


def fail(field_name: str, message: str) -> typing.NoReturn:
    """Raise ConfigError ``"<field_name> <message>"`` carrying ``field_name``."""
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
        return build(typing.cast(type, hint), value, path, base)
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


def build_table(cls: type, data: Any, path: str) -> Any:
    """Construct dataclass ``cls`` from a TOML mapping, naming ``path`` (``""`` at the root) in every error.

    The house configuration's front-end: optional fields (``X | None``), fixed-length tuples and
    a class's own ``_from_toml(value, path)`` hook; every key not in the table keeps its default.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path or 'config'} must be a table, got {data!r}", path)
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        where = f"{path}: " if path else ""
        raise ConfigError(f"{where}unknown key(s) {unknown}; allowed: {sorted(known)}", path)
    kwargs = {}
    for name, f in known.items():
        sub = f"{path}.{name}" if path else name
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{sub} is required", sub)
            continue
        kwargs[name] = _convert_table(hints[name], data[name], sub)
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        full = f"{path}.{exc.field}" if path and exc.field else (exc.field or path)
        message = str(exc)
        if exc.field and message.startswith(exc.field):
            message = full + message[len(exc.field):]
        elif path:
            message = f"{path}: {message}"
        raise ConfigError(message, full) from None


def _convert_table(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if value is None:
            return None
        return _convert_table(non_none[0], value, path)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{path} must be a list, got {value!r}", path)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert_table(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{path} = {value!r} must have {len(args)} items", path)
        return tuple(_convert_table(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if isinstance(tp, type) and hasattr(tp, "_from_toml"):
        return tp._from_toml(value, path)
    if isinstance(tp, type) and hasattr(tp, "__dataclass_fields__"):
        return build_table(tp, value, path)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path} must be a number, got {value!r}", path)
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path} must be an integer, got {value!r}", path)
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path} must be a string, got {value!r}", path)
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path} must be true or false, got {value!r}", path)
        return value
    raise ConfigError(f"{path}: unsupported type {tp!r}", path)  # a bug in a config class
