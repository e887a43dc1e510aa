"""A ``Command`` as the device messages it becomes: one per commanded device, built on demand.

Shared by ``MqttHouse.apply`` and the in-process envelope property test, so that the property
is checked on exactly the payloads the live mode would publish.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from hardware.devices import LeaseTerms, SequenceCounter
from hardware.devices.ev_charger import EvChargerAdapter
from hardware.devices.growatt import GrowattAdapter
from hardware.devices.loxone import LoxoneAdapter
from hardware.wire.mqtt import Message
from twin.contracts import Command


@dataclass(frozen=True, slots=True)
class DeviceCommand:
    """One device's part of a command. ``build()`` draws its sequence number, so call it only to send."""

    kind: str  # heating, battery, ev (what the rollout mode gates)
    device: str  # heating.<room>, battery, ev
    key: str  # command topic key
    expected: dict[str, object]  # what the device's status shows once it obeys (read-back)
    build: Callable[[], Message]


class CommandEncoder:
    """Turns commands into device messages with the house's adapters."""

    def __init__(self, loxone: LoxoneAdapter, growatt: GrowattAdapter, ev: EvChargerAdapter, has_battery: bool,
                 has_charger: bool) -> None:
        self.loxone = loxone
        self.growatt = growatt
        self.ev = ev
        self.has_battery = has_battery
        self.has_charger = has_charger

    def device_commands(self, command: Command, lease: LeaseTerms, seq: SequenceCounter, allowed: Collection[str],
                        blind: Collection[int] = ()) -> list[DeviceCommand]:
        """The device commands of ``command`` for the device kinds in ``allowed``; rooms in ``blind`` get none."""
        out = []
        if command.relay_on is not None and "heating" in allowed:
            for j, on in enumerate(command.relay_on):
                if j not in blind:
                    out.append(DeviceCommand("heating", f"heating.{self.loxone.rooms[j]}", "heating_set",
                                             {"state": "on" if on else "off"},
                                             lambda j=j, on=bool(on): self.loxone.relay_message(j, on, lease, seq)))
        battery = command.battery
        if battery is not None and self.has_battery and "battery" in allowed:
            out.append(DeviceCommand("battery", "battery", "battery_set", {"mode": battery.mode.value},
                                     lambda: self.growatt.battery_message(battery, lease, seq)))
        ev_kw = command.ev_power_kw
        if ev_kw is not None and self.has_charger and "ev" in allowed:
            out.append(DeviceCommand("ev", "ev", "ev_set", {"enabled": ev_kw > 0.0},
                                     lambda: self.ev.command_message(ev_kw, lease, seq)))
        return out
