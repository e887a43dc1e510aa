"""Which devices a command may reach at all: the rollout mode and the rooms the controller cannot see.

The one place, behind the safety layer, where a command is cut down to what this plant may
send. Two rules, both stated here and nowhere else in the plant:

* **Rollout mode** (:data:`ALLOWED_DEVICES`): SIMULATION and ADVISORY command nothing, PARTIAL
  only the battery, FULL everything. The safety layer has already removed what the mode forbids;
  this is the last line before the encoder (defence in depth), and a part it stops is counted
  and logged as an error, because it means a layer above let it through.
* **Blind rooms**: a room whose temperature is stale at the decision is not commanded. Its lease
  lapses and its own thermostat takes over, rather than a blind controller holding it off
  (failure mode F4 in ``docs/failsafe.md``).
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from hardware.devices import LeaseTerms, SequenceCounter
from hardware.devices.encoder import CommandEncoder, DeviceCommand
from twin.contracts import Command
from twin.safety import ALLOWED_DEVICES, RolloutMode

log = logging.getLogger(__name__)

__all__ = ["ALLOWED_DEVICES", "Dispatch"]  # the rollout table is twin.safety's, re-exported for the plant

class Dispatch:
    """Cuts commands down to the device commands this plant may send (see the module docstring)."""

    def __init__(self, encoder: CommandEncoder, mode: RolloutMode, room_names: tuple[str, ...]) -> None:
        self.encoder = encoder
        self.set_mode(mode)
        self.room_names = room_names
        self.blocked = 0  # device parts refused by the rollout mode
        self._blind: frozenset[int] = frozenset()  # rooms without a fresh temperature at the last decision

    def set_mode(self, mode: RolloutMode) -> None:
        """The devices the next decision may command."""
        self.mode = mode
        self.allowed = ALLOWED_DEVICES[mode]

    def blind_rooms(self, stale: Collection[str]) -> frozenset[int]:
        """Rooms whose temperature is among the ``stale`` inputs of the observation."""
        return frozenset(j for j, room in enumerate(self.room_names) if f"room_temp_c.{room}" in stale)

    def device_commands(self, command: Command, lease: LeaseTerms, seq: SequenceCounter,
                        stale: Collection[str]) -> list[DeviceCommand]:
        """The device commands of ``command`` that the mode allows, none for a blind room."""
        parts = {"heating": command.relay_on, "battery": command.battery, "ev": command.ev_power_kw}
        for kind, part in parts.items():
            if part is not None and kind not in self.allowed:
                self.blocked += 1
                log.error("rollout mode %s: not commanding the %s", self.mode.name, kind)
        blind = self.blind_rooms(stale)
        if blind != self._blind and command.relay_on is not None and "heating" in self.allowed:
            (log.warning if blind else log.info)("not commanding the heating of %s: no fresh temperature",
                                                 ", ".join(self.room_names[j] for j in sorted(blind)) or "no room")
        self._blind = blind
        return self.encoder.device_commands(command, lease, seq, self.allowed, blind)
