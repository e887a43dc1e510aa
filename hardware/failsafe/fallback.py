"""A controller that may fail, wrapped so that the house never goes without a decision (docs/failsafe.md F9).

:class:`GuardedController` runs the real controller (an MPC, a policy) under a hard deadline in
a worker thread and checks what it returns. A decision that raises, overruns the deadline, or
comes back unusable — not a ``Command``, a lease already over, relay states that are not
booleans (a relaxed MILP's 0.37, a NaN), or ``PlanStatus.FAILED`` (the planner admits it has no
usable plan: infeasible, an error, a time limit without an incumbent, a relaxed solution) — is
replaced by, in order:

1. the **last valid command** while its lease lasts (``last_plan``; never extended),
2. the **fallback controller**'s decision (``fallback``; the rule-based baseline by default),
3. **device defaults**: a command that commands nothing, so every device stays on, or returns
   to, its own rule (``defaults``) — never "the last value".

The outcome of every decision is :attr:`GuardedController.verdict` — published by the live
runner as ``optim_status`` (EMHASS's sensor of that name). A controller still busy past its
deadline is not asked again until it returns; its late answer is discarded.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
from dataclasses import dataclass, replace

import numpy as np

from twin.config import HouseConfig
from twin.contracts import Command, Controller, Observation, PlanStatus

log = logging.getLogger(__name__)

#: Lease of a "defaults" command, which commands nothing [s].
DEFAULTS_LEASE_S = 60.0


@dataclass(frozen=True, slots=True)
class Verdict:
    status: str  # the planner's PlanStatus (optimal, feasible, ...), or "ok" (none), last_plan, fallback, defaults
    detail: str = ""  # why the primary's decision was not used
    source: str = "primary"  # primary, last_plan, fallback, defaults


def command_problems(command: object, obs: Observation, house: HouseConfig) -> list[str]:
    """Why ``command`` cannot be executed as it is (empty when it can)."""
    if not isinstance(command, Command):
        return [f"returned {type(command).__name__}, not a Command"]
    problems = []
    if command.until <= obs.time:
        problems.append(f"lease ends at {command.until.isoformat()}, not after {obs.time.isoformat()}")
    relays = command.relay_on
    if relays is not None:
        if not isinstance(relays, (tuple, list)) or len(relays) != len(house.rooms):
            problems.append(f"relay_on has {len(relays) if hasattr(relays, '__len__') else '?'} entries for "
                            f"{len(house.rooms)} rooms")
        elif not all(isinstance(x, (bool, np.bool_)) for x in relays):
            problems.append(f"relay_on holds non-boolean values {[x for x in relays if not isinstance(x, bool)][:3]}")
    if command.ev_power_kw is not None and not math.isfinite(command.ev_power_kw):
        problems.append(f"ev_power_kw = {command.ev_power_kw}")
    if command.plan_status is PlanStatus.FAILED:
        problems.append(f"plan_status {command.plan_label!r}")
    return problems


class GuardedController:
    """``decide`` never raises and always returns a usable command; see the module docstring."""

    def __init__(self, primary: Controller, house: HouseConfig, deadline_s: float, fallback: Controller | None = None,
                 name: str = "") -> None:
        if not (math.isfinite(deadline_s) and deadline_s > 0):
            raise ValueError(f"deadline_s must be positive, got {deadline_s!r}")
        self.primary = primary
        self.fallback = fallback
        self.house = house
        self.deadline_s = deadline_s
        self.name = name or type(primary).__name__
        self.verdict = Verdict("ok")
        self.counts: dict[str, int] = {}
        self._last_valid: Command | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="pems-decide")
        self._running: concurrent.futures.Future | None = None

    def reset(self) -> None:
        for controller in (self.primary, self.fallback):
            if controller is not None and hasattr(controller, "reset"):
                controller.reset()
        self._last_valid = None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def decide(self, obs: Observation) -> Command:
        command, detail = self._ask_primary(obs)
        if command is not None:
            self._last_valid = command
            return self._done(command, Verdict(command.plan_status or "ok"))
        last = self._last_valid
        if last is not None and last.until > obs.time:
            return self._done(replace(last, plan_status=PlanStatus.LAST_PLAN, plan_note=""),
                              Verdict(PlanStatus.LAST_PLAN, detail, "last_plan"))
        if self.fallback is not None:
            try:
                fallback = self.fallback.decide(obs)
            except Exception as exc:  # noqa: BLE001 - any failure of the fallback leaves the device defaults
                problems = [f"the fallback raised {type(exc).__name__}: {exc}"]
            else:
                problems = command_problems(fallback, obs, self.house)
            if not problems:
                return self._done(replace(fallback, plan_status=PlanStatus.FALLBACK, plan_note=""),
                                  Verdict(PlanStatus.FALLBACK, detail, "fallback"))
            detail += "; " + "; ".join(problems)
        defaults = Command(until=obs.after(min(DEFAULTS_LEASE_S, self.house.safety.max_lease_s)),
                           plan_status=PlanStatus.DEFAULTS)
        return self._done(defaults, Verdict(PlanStatus.DEFAULTS, detail, "defaults"))

    def _ask_primary(self, obs: Observation) -> tuple[Command | None, str]:
        if self._running is not None and not self._running.done():
            return None, f"still deciding after the {self.deadline_s:g} s deadline of an earlier decision"
        self._running = self._pool.submit(self.primary.decide, obs)
        try:
            command = self._running.result(timeout=self.deadline_s)
        except concurrent.futures.TimeoutError:
            return None, f"no decision within the {self.deadline_s:g} s deadline"
        except Exception as exc:  # noqa: BLE001 - a failing controller is exactly what this class is for
            if self.counts.get("raised", 0) < 3:
                log.exception("controller %s raised", self.name)
            self.counts["raised"] = self.counts.get("raised", 0) + 1
            return None, f"raised {type(exc).__name__}: {exc}"
        problems = command_problems(command, obs, self.house)
        if problems:
            return None, "; ".join(problems)
        return command, ""

    def _done(self, command: Command, verdict: Verdict) -> Command:
        if verdict.status != self.verdict.status and verdict.source != "primary":
            log.warning("decision by %s: %s", verdict.source, verdict.detail)
        self.verdict = verdict
        self.counts[verdict.status] = self.counts.get(verdict.status, 0) + 1
        return command
