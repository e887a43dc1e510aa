"""The one gate every rollout-mode change passes: ``pems live --mode`` and Home Assistant's ``select``.

A request is parsed (case-insensitive name, clear error otherwise), logged with who asked, and
handed to ``apply`` — the live layer's way to switch. Who may ask is the broker's business: the
ACL (``hardware/examples/mosquitto/pems.acl``) lets only the ``homeassistant`` user write
``pems/mode/set``; anyone else's publish is dropped by the broker before it reaches us.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from twin.errors import ConfigError
from twin.safety import RolloutMode

logger = logging.getLogger(__name__)

MODE_NAMES = tuple(m.name for m in RolloutMode)  # SIMULATION, ADVISORY, PARTIAL, FULL
_RANK = {mode: rank for rank, mode in enumerate(RolloutMode)}  # how much each mode commands, in order


def parse_rollout_mode(text: str, what: str = "rollout mode") -> RolloutMode:
    """``"full"`` / ``"FULL"`` → :attr:`RolloutMode.FULL`; anything else is a :class:`ConfigError`."""
    cleaned = text.strip().lower() if isinstance(text, str) else ""
    for mode in RolloutMode:
        if cleaned == mode.value:
            return mode
    names = ", ".join(m.value for m in RolloutMode)
    raise ConfigError(f"{what} {text!r} is not one of {names}", "mode")


@dataclass(frozen=True, slots=True)
class ModeChange:
    time: datetime
    old: RolloutMode
    new: RolloutMode
    source: str  # "cli", "home-assistant", ...


class ModeGate:
    """Holds the current mode; :meth:`request` validates, logs and applies a change."""

    def __init__(self, mode: RolloutMode, apply: Callable[[ModeChange], None] | None = None,
                 ceiling: RolloutMode | None = None) -> None:
        self._mode = mode
        self.ceiling = ceiling  # a live run never goes above the mode it started in (devices reconciled for it)
        self._apply = apply
        self._lock = threading.Lock()
        self.history: list[ModeChange] = []
        self.refused: list[tuple[str, str]] = []  # (text, why)

    @property
    def mode(self) -> RolloutMode:
        return self._mode

    def request(self, text: str, source: str) -> ModeChange | None:
        """Switch to the mode named by ``text``; ``None`` (logged) when it is not a mode or no change."""
        try:
            new = parse_rollout_mode(text)
        except ConfigError as exc:
            logger.warning("mode change from %s refused: %s", source, exc)
            self.refused.append((text, str(exc)))
            return None
        if self.ceiling is not None and _RANK[new] > _RANK[self.ceiling]:
            why = f"above {self.ceiling.name}, the mode this run started in (restart pems live --mode {new.value})"
            logger.warning("mode change to %s from %s refused: %s", new.name, source, why)
            self.refused.append((text, why))
            return None
        with self._lock:
            old = self._mode
            if new is old:
                return None
            change = ModeChange(datetime.now(UTC), old, new, source)
            self._mode = new
            self.history.append(change)
        logger.warning("rollout mode %s → %s (requested by %s)", old.name, new.name, source)
        if self._apply is not None:
            self._apply(change)
        return change
