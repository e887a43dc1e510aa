"""Daily counterfactual savings in a live run: when a local day completes, its savings go to the outputs.

An observer of the runner loop (``twin.runner.DecisionObserver``): it keeps the last two days' intervals
in memory (the run log's own row format) and, at the first decision of a new local day, hands the
completed day to a background thread that replays the baseline on the twin
(:func:`controllers.savings.counterfactual.counterfactual_days`) and writes the result to every
savings sink (``InfluxObserver.savings``, ``HomeAssistantObserver.savings``). A decision never waits
for it. The house model is the identified one (``[outputs] savings_house_file``, from
``pems identify``) when given; otherwise the run's configured house, and the log says so.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from controllers.savings.counterfactual import DaySavings, SavingsSink, counterfactual_days
from twin.config import HouseConfig
from twin.contracts import Command, Observation
from twin.runlog import RunLogRecorder
from twin.runner import PlanInfo

log = logging.getLogger(__name__)


#: The recorded inputs the replay reads (with each room's temperature and heat, which the model check
#: reads); a live meter may leave an interval without one (a stale reading).
INPUTS = ("pv_kwh", "base_load_kwh", "outdoor_temp_c", "import_price_per_kwh",
          "export_price_per_kwh")


def fill_recorded_gaps(frame: pd.DataFrame) -> pd.DataFrame:
    """Intervals without a recorded input take their neighbour's (logged: the day's savings are approximate)."""
    frame = frame.copy()
    if "pv_curtailed_kwh" in frame:  # a live meter does not see curtailment: none known, none replayed
        frame["pv_curtailed_kwh"] = frame["pv_curtailed_kwh"].fillna(0.0)
    columns = [c for c in frame.columns if c in INPUTS or c.startswith(("temp_c.", "heating_kwh."))]
    missing = int(frame[columns].isna().any(axis=1).sum())
    if missing:
        log.warning("savings: %d interval(s) without a recorded input (PV, load, weather, price, room): "
                    "filled from their neighbours", missing)
        frame[columns] = frame[columns].ffill().bfill()
    return frame


class DailySavings:
    """``on_interval`` records; a new local day starts a background counterfactual of the one that ended."""

    def __init__(self, house: HouseConfig, model_house: HouseConfig, sinks: Sequence[SavingsSink],
                 decision_interval_s: float, model_note: str = "",
                 weather: Callable[[pd.DatetimeIndex], pd.DataFrame | None] | None = None) -> None:
        self.house = house
        self.weather = weather
        self.model_house = model_house
        self.sinks = list(sinks)
        self.decision_interval_s = decision_interval_s
        self.model_note = model_note
        self._recorder = RunLogRecorder(house.room_names)
        self._day: pd.Timestamp | None = None
        self._threads: list[threading.Thread] = []
        self.results: list[DaySavings] = []
        self.failures: list[str] = []

    def on_decision(self, time: datetime, obs: Observation, command: Command, info: PlanInfo) -> None:
        day = pd.Timestamp(obs.time).normalize()
        if self._day is not None and day != self._day:
            self._start(self._day)
        self._day = day

    def on_interval(self, time: datetime, obs: Observation, command: Command, interval: Any) -> None:
        self._recorder.record(time, obs, command, 0.0, interval)

    def _start(self, day: pd.Timestamp) -> None:
        """Hand the intervals so far to a thread (building the frame there); keep only the new day's start."""
        recorder, self._recorder = self._recorder, RunLogRecorder(self.house.room_names)
        last = recorder.last_row
        if last is not None:  # the state the next day starts from
            self._recorder.append_row(last, recorder.tz)
        thread = threading.Thread(target=self._compute, args=(recorder, day, self._weather_of(day)),
                                  name=f"savings-{day.date()}",
                                  daemon=True)
        self._threads.append(thread)
        thread.start()

    def _weather_of(self, day: pd.Timestamp) -> pd.DataFrame | None:
        """The day's irradiance from the forecast source (on this thread: the source is not shared)."""
        if self.weather is None:
            return None
        times = pd.date_range(day, day + pd.Timedelta(days=1), freq=pd.Timedelta(seconds=self.decision_interval_s),
                              inclusive="left")
        try:
            return self.weather(times)
        except Exception:  # noqa: BLE001 - an output never stops the house being controlled
            log.exception("savings: no weather for %s; the replay's rooms get no solar gains", day.date())
            return None

    def _compute(self, recorder: RunLogRecorder, day: pd.Timestamp, weather: pd.DataFrame | None = None) -> None:
        try:
            frame = fill_recorded_gaps(recorder.to_frame())
            if weather is None:
                log.warning("savings of %s: no irradiance recorded, the replay's rooms get no solar gains "
                            "(the baseline's heating is overstated)", day.date())
            days = [d for d in counterfactual_days(frame, self.house, self.model_house, weather=weather,
                                                   decision_interval_s=self.decision_interval_s) if d.day == day]
            if not days:
                log.info("savings: %s is not a complete day of this run (no counterfactual)", day.date())
                return
            for d in days:
                self.results.append(d)
                log.info("savings of %s: %.3f (band %.3f .. %.3f; actual %.3f, baseline %.3f)%s", d.day.date(),
                         d.savings, d.savings_low, d.savings_high, d.actual_cost, d.counterfactual_cost,
                         f" — {self.model_note}" if self.model_note else "")
                for sink in self.sinks:
                    sink.savings(d.day.to_pydatetime(), d.actual_cost, d.counterfactual_cost, d.savings_low,
                                 d.savings_high)
        except Exception as exc:  # noqa: BLE001 - an output never stops the house being controlled
            log.exception("savings of %s failed", day.date())
            self.failures.append(f"{day.date()}: {exc}")

    def join(self, timeout_s: float = 60.0) -> None:
        for thread in self._threads:
            thread.join(timeout_s)

    def on_end(self, status: str) -> None:
        """Waits (bounded) for a day still being computed: the sinks are closed after this."""
        self.join()
