"""Controllers this package registers (entry point ``pems.controllers``)."""

from __future__ import annotations

from controllers.rule_based import RuleBasedController
from twin.registry import ControllerEntry


def catalog() -> list[ControllerEntry]:
    return [
        ControllerEntry(
            name="rule-based",
            description="Today's house: room thermostats with hysteresis, battery self-consumption, EV at full power",
            make=lambda ctx: RuleBasedController(ctx.house),
        ),
    ]


