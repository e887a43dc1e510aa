"""Home Assistant MQTT discovery: the rollout mode as a ``select``, plan and money as sensors.

Discovery configs go to ``<prefix>/<component>/pems/<object>/config`` (retained), and again
whenever Home Assistant announces ``online`` on ``<prefix>/status`` (it forgets non-retained
entities when it restarts). Every entity's availability is ``pems/status`` — the controller's
birth ``online`` and last will ``offline`` — so a dead controller shows as unavailable, and
every sensor carries ``expire_after`` so a silent one goes stale rather than lying.

The ``select`` writes ``pems/mode/set``; the request goes through :class:`ModeGate` (the CLI's
parser, logged) and the new mode is echoed on ``pems/mode`` (retained). The broker's ACL decides
who may write ``pems/mode/set`` at all.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hardware.config import BrokerConfig
from hardware.outputs.mode_gate import MODE_NAMES, ModeChange, ModeGate
from hardware.wire.mqtt import Message, MqttLink

logger = logging.getLogger(__name__)

STATUS_TOPIC = "pems/status"
MODE_STATE_TOPIC = "pems/mode"
MODE_SET_TOPIC = "pems/mode/set"
STATE_BASE = "pems/ha"


@dataclass(frozen=True, slots=True)
class DiscoverySettings:
    prefix: str = "homeassistant"
    node_id: str = "pems"
    expire_after_s: int = 900  # sensors go "unavailable" in HA when not refreshed for this long
    currency: str = "EUR"


def discovery_messages(settings: DiscoverySettings) -> list[Message]:
    """Every entity's retained config message."""
    device = {"identifiers": [settings.node_id], "name": "PEMS", "manufacturer": "PEMS twin",
              "model": "energy management controller"}
    common = {"availability_topic": STATUS_TOPIC, "payload_available": "online", "payload_not_available": "offline",
              "device": device}
    entities: list[tuple[str, str, dict[str, Any]]] = [
        ("select", "rollout_mode", {"name": "Rollout mode", "command_topic": MODE_SET_TOPIC,
                                    "state_topic": MODE_STATE_TOPIC, "options": list(MODE_NAMES),
                                    "icon": "mdi:shield-half-full"}),
        ("sensor", "plan_status", {"name": "Plan status", "state_topic": f"{STATE_BASE}/plan_status",
                                   "expire_after": settings.expire_after_s}),
        ("sensor", "plan_next_hours", {"name": "Plan, next hours", "state_topic": f"{STATE_BASE}/plan",
                                       "value_template": "{{ value_json.summary }}",
                                       "json_attributes_topic": f"{STATE_BASE}/plan",
                                       "json_attributes_template": "{{ value_json.hours | tojson }}",
                                       "expire_after": settings.expire_after_s}),
        ("sensor", "cost_today", {"name": "Cost today", "state_topic": f"{STATE_BASE}/cost_today",
                                  "device_class": "monetary", "unit_of_measurement": settings.currency,
                                  "expire_after": settings.expire_after_s}),
        ("sensor", "savings_today", {"name": "Savings (last complete day)", "state_topic": f"{STATE_BASE}/savings",
                                     "value_template": "{{ value_json.savings }}",
                                     "json_attributes_topic": f"{STATE_BASE}/savings",
                                     "device_class": "monetary", "unit_of_measurement": settings.currency,
                                     "expire_after": 2 * 86400}),
    ]
    out = []
    for component, object_id, config in entities:
        payload = {**config, **common, "unique_id": f"{settings.node_id}_{object_id}",
                   "object_id": f"{settings.node_id}_{object_id}"}
        out.append(Message(f"{settings.prefix}/{component}/{settings.node_id}/{object_id}/config",
                           json.dumps(payload).encode(), retain=True))
    return out


class HomeAssistantBridge:
    """Publishes discovery and states; takes mode changes from HA through the gate.

    ``own_status``: this bridge's connection carries the ``pems/status`` birth and last will
    (standalone use). Beside the live controller, whose connection already does, leave it False.
    """

    def __init__(self, broker: BrokerConfig, gate: ModeGate, settings: DiscoverySettings | None = None,
                 own_status: bool = True, client_id: str = "pems-home-assistant") -> None:
        self.settings = settings or DiscoverySettings()
        self.gate = gate
        self.announcements = 0  # discovery rounds published
        will = Message(STATUS_TOPIC, b"offline", retain=True) if own_status else None
        birth = Message(STATUS_TOPIC, b"online", retain=True) if own_status else None
        self.link = MqttLink(broker, [f"{self.settings.prefix}/status", MODE_SET_TOPIC], self._on_message,
                             client_id=client_id, will=will, birth=birth, on_connected=self._announce)

    def start(self) -> None:
        self.link.start()

    def stop(self) -> None:
        farewell = Message(STATUS_TOPIC, b"offline", retain=True) if self.link.birth is not None else None
        self.link.stop(farewell)

    # --- states --------------------------------------------------------------------------------------

    def publish_mode(self) -> None:
        self.link.publish(Message(MODE_STATE_TOPIC, self.gate.mode.name.encode(), retain=True))

    def publish_plan(self, status: str, hours: Sequence[Mapping[str, Any]]) -> None:
        """Plan status and the next hours (e.g. ``{"start": iso, "heating_kw": …, "battery_kw": …}`` each)."""
        self.link.publish(Message(f"{STATE_BASE}/plan_status", (status or "none").encode(), retain=True))
        summary = ", ".join(f"{h.get('start', '')[11:16]} bat {h.get('battery_kw', 0):+.1f} kW" for h in hours[:3])
        self.link.publish(Message(f"{STATE_BASE}/plan", json.dumps({"summary": summary[:250], "hours": list(hours)},
                                                                   default=str).encode(), retain=True))

    def publish_money(self, cost_today: float, savings: float | None = None, low: float | None = None,
                      high: float | None = None, day: str = "") -> None:
        if math.isfinite(cost_today):
            self.link.publish(Message(f"{STATE_BASE}/cost_today", f"{cost_today:.3f}".encode(), retain=True))
        if savings is not None and math.isfinite(savings):
            self.link.publish(Message(f"{STATE_BASE}/savings", json.dumps(
                {"savings": round(savings, 3), "low": low, "high": high, "day": day}).encode(), retain=True))

    # --- paho's thread -----------------------------------------------------------------------------

    def _announce(self) -> None:
        for message in discovery_messages(self.settings):
            self.link.publish(message)
        self.publish_mode()
        self.announcements += 1

    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        if topic == f"{self.settings.prefix}/status":
            if payload.strip() == b"online":
                self._announce()  # HA restarted: it needs the configs again
            return
        if topic == MODE_SET_TOPIC:
            if retained:
                return  # a stale request left on the broker is never a fresh decision
            text = payload.decode("utf-8", errors="replace")[:32]
            change: ModeChange | None = self.gate.request(text, source="home-assistant")
            if change is None:
                logger.info("mode request %r from Home Assistant changed nothing", text)
            self.publish_mode()  # echo the mode in force either way, so the select shows the truth


class HomeAssistantObserver:
    """The runner-loop observer that keeps the HA sensors fresh: plan status, next hours, today's cost.

    Also a savings sink (``controllers.savings.counterfactual.write_savings``).
    """

    def __init__(self, bridge: HomeAssistantBridge, hours_ahead: int = 6, controller: Any = None) -> None:
        self.bridge = bridge
        self.controller = controller
        self.hours_ahead = hours_ahead
        self._day: Any = None
        self._cost_today = 0.0

    def on_interval(self, time: Any, obs: Any, command: Any, interval: Any) -> None:
        """Today's cost so far (local days of the observation's time zone)."""
        import pandas as pd

        day = pd.Timestamp(obs.time).normalize()
        if day != self._day:
            self._day, self._cost_today = day, 0.0
        self._cost_today += float(interval.meter.cost)
        self.bridge.publish_money(self._cost_today)

    def on_decision(self, time: Any, obs: Any, command: Any, info: Any) -> None:
        """Plan status and the next hours of the plan."""
        import pandas as pd

        from hardware.outputs.observer import current_plan

        plan = current_plan(self.controller)
        hours: list[dict[str, Any]] = []
        if plan is not None:
            start = pd.Timestamp(plan.start)
            for k, edge_s in enumerate(plan.grid.edges_s[:-1]):
                if edge_s >= self.hours_ahead * 3600.0:
                    break
                hours.append({"start": (start + pd.Timedelta(seconds=float(edge_s))).isoformat(),
                              "heating_kw": round(float(plan.duty[k].sum()), 3),
                              "battery_kw": round(float(plan.battery_kw[k]), 3),
                              "ev_kw": round(float(plan.ev_kw[k]), 3),
                              "grid_import_kw": round(float(plan.grid_import_kw[k]), 3)})
        status = str(getattr(command, "plan_label", "") or "")
        self.bridge.publish_plan(status, hours)

    def on_end(self, status: str) -> None:
        """Nothing to flush: every sensor is published as it changes."""

    def savings(self, day_start: Any, actual_cost: float, counterfactual_cost: float, low: float,
                high: float) -> None:
        savings = counterfactual_cost - actual_cost
        bounds = [round(b, 3) if math.isfinite(b) else None for b in (low, high)]  # JSON has no NaN
        self.bridge.publish_money(self._cost_today, savings, bounds[0], bounds[1], str(day_start)[:10])
