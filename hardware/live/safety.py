"""The safety filter of a live run: the lease cut, the envelope in the run's rollout mode, the advice.

Only safety: nothing here publishes or writes a file. The advice (:attr:`LiveSafety.advisor_filter`) is
the command as the full-rollout envelope would send it; it goes to the loop's observers
(``pems/plan``, the journal) through ``twin.runner.PlanInfo``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

from hardware.failsafe.layer import FailSafe
from hardware.failsafe.watchdog import LinkState
from hardware.outputs.mode_gate import ModeGate
from twin.config import HouseConfig
from twin.contracts import Command, Observation
from twin.runner import SafetyFilter
from twin.safety import RolloutMode, SafetyLayer


class LiveSafety:
    """``(command, obs) -> command`` for the runner loop; :attr:`advisor_filter` for the advice.

    ``lease_s`` cuts every command's lease (``control.lease_s``). After a restart, or while the
    link is down, the devices fell back to their own rules: no device is switched again before
    its minimum time from now. The gate's history is staged in the controller's state file with
    each decision's plan (minimum on/off times hold across a restart).

    After a lost link or a restart the relays are left to their own rules for the longer of the
    relays' minimum on and off times: a relay bridge falls back when our heartbeats stop, and it
    may do so *after* the status the controller reconciled on (its heartbeat timeout runs on
    while the broker restarts). Re-asserting what that stale status showed would switch the
    relay straight back. Once the hold is over, the fall-back has been seen in a status, and the
    minimum times run from when it was seen.
    """

    def __init__(self, house: HouseConfig, mode: RolloutMode, failsafe: FailSafe,
                 lease_s: float | None = None, mode_gate: ModeGate | None = None,
                 on_mode: Callable[[RolloutMode, RolloutMode], None] | None = None) -> None:
        self.gate = SafetyLayer(house, mode=mode)
        self.mode = mode
        # The rollout mode may change during the run (Home Assistant, through the CLI's gate): read at every
        # decision, it switches here, and ``on_mode(old, new)`` switches the plant's dispatch and publishers.
        self.mode_gate = mode_gate
        self.on_mode = on_mode
        # The advice is the command as it would be sent in FULL mode (a layer of its own: it is stateful);
        # with a mode gate it exists from the start, as the mode may be lowered.
        self.advisor = (SafetyLayer(house, mode=RolloutMode.FULL)
                        if mode is not RolloutMode.FULL or mode_gate is not None else None)
        self.failsafe = failsafe
        self.lease_s = lease_s
        self.restarted = failsafe.previous is not None  # a persisted plan: a restart
        self._outages_seen = 0
        safety = house.safety
        self._relay_hold_s = max(safety.relay_min_on_s, safety.relay_min_off_s)
        self._relays_held_until_s = -math.inf  # house epoch seconds

    def _cut(self, command: Command, obs: Observation) -> Command:
        if command.relay_on is not None and obs.epoch_s < self._relays_held_until_s:
            command = replace(command, relay_on=None)  # the relays stay on their own rules (class notes)
        if self.lease_s is not None and command.until > obs.after(self.lease_s):
            return replace(command, until=obs.after(self.lease_s))
        return command

    def __call__(self, command: Command, obs: Observation) -> Command:
        if self.mode_gate is not None and self.mode_gate.mode is not self.mode:
            self._switch(self.mode_gate.mode)
        failsafe = self.failsafe
        outages = failsafe.watchdog.outages
        # Counted, not only looked at: a broker crash can be over (SAFE, reconnected, RUNNING) between two decisions.
        if self.restarted or outages != self._outages_seen or (outages and failsafe.state is not LinkState.RUNNING):
            for layer in (self.gate, self.advisor):
                if layer is not None:
                    layer.restart_timers(obs.time)
            self.restarted = False
            self._outages_seen = outages
            self._relays_held_until_s = obs.epoch_s + self._relay_hold_s
        command = self._cut(command, obs)
        sent = self.gate(command, obs)
        failsafe.state_store.stage_safety(self.gate.history())
        return sent

    def _switch(self, new: RolloutMode) -> None:
        """At a decision boundary: this decision and the next pass the new mode's envelope."""
        old, self.mode = self.mode, new
        self.gate.set_mode(new)
        if self.on_mode is not None:
            self.on_mode(old, new)

    @property
    def advisor_filter(self) -> SafetyFilter | None:
        """The FULL-mode envelope as a filter for the loop's advice; ``None`` in FULL (advice = sent)."""
        return None if self.advisor is None else self._advise

    def _advise(self, command: Command, obs: Observation) -> Command:
        assert self.advisor is not None
        return self.advisor(self._cut(command, obs), obs)
