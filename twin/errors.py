"""Exception hierarchy of the twin: catch these, never a bare ``Exception``."""

from __future__ import annotations


class TwinError(Exception):
    """Base class of every error the project raises on purpose."""


class ConfigError(TwinError, ValueError):
    """A house or run configuration is invalid.

    ``field`` is the dotted path of the offending value (``rooms[2].heater_power_kw``)
    so that callers can prefix it with the file it came from.
    """

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class ScenarioError(TwinError, ValueError):
    """A scenario (data, sessions, forecasts) is invalid or cannot be found."""


class RegistryError(TwinError, KeyError):
    """An unknown controller or scenario name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
