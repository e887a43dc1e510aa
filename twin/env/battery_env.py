"""``pems/Battery-v0``: the house reduced to battery, PV and base load (no rooms, no car)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from twin.config import HouseConfig
from twin.env.config import EnvConfig
from twin.env.house_env import HouseEnv, _house
from twin.errors import ConfigError
from twin.scenario import Scenario


def battery_only(house: HouseConfig) -> HouseConfig:
    """``house`` without its rooms and charger: battery, PV and base load behind one grid meter."""
    if house.battery is None:
        raise ConfigError(f"house {house.name!r} has no battery", "battery")
    return replace(house, name=f"{house.name}-battery-only", rooms=(), couplings=(), ev_charger=None)


class BatteryEnv(HouseEnv):
    """Battery arbitrage and self-consumption: one battery, PV and base load, on the same twin.

    ## Description

    :class:`HouseEnv` on :func:`battery_only` of the house: the same ``SimHouse``, safety layer,
    scenarios and metering, without heating and car. A small problem to start with (one action,
    ``10 + 3·forecast_hours`` observations), hard to solve well: prices go negative in spring
    and summer, PV and load forecasts are uncertain, and the inverter's efficiencies make
    every cycle cost.

    ## Action Space

    ``Box(-1, 1, (1,), float32)``:

    | Index | Name      | Min | Max | Meaning [unit]                                              |
    |-------|-----------|-----|-----|-------------------------------------------------------------|
    | 0     | `battery` | -1  | 1   | abs(a) ≤ 0.1: the inverter's self-consumption; else setpoint [kW] |

    Setpoint (+ charging): ``(a − 0.1)/0.9 · max_charge_kw`` for a > 0.1,
    ``(a + 0.1)/0.9 · max_discharge_kw`` for a < −0.1.
    The reference battery: 10 kWh, ±5 kW, SOC window 10–90 %, 95 % efficiency each way.

    ## Observation Space

    ``Box(float32)``: `outdoor_temp_c`, `battery_soc`, `pv_power_kw`, `base_load_kw`,
    `import_price_per_kwh`, `export_price_per_kwh`, hourly forecasts
    `forecast.{import_price_per_kwh,pv_power_kw,base_load_kw}+{h}h`, and
    `time_of_day_{sin,cos}`, `day_of_week_{sin,cos}` — units and normalisation as in
    :class:`HouseEnv` (``env.unwrapped.encoder.table()``).

    ## Rewards

    ``reward = −cost`` per step (Σ import·import price − export·export price [currency]); the
    comfort and EV terms of :class:`HouseEnv` are always zero here. ``info`` holds the step's
    KPI increments.

    ## Starting State

    Battery at its initial SOC; start at a random data step (``random_start=True``) such that the
    episode fits, at the scenario's start, or at ``reset(options={"start": <timestamp>})``.

    ## Episode End

    ``truncated`` after ``episode_days`` (default 1 day = 96 steps of 15 min) or at the scenario's
    end; never ``terminated``.

    ## Arguments

    As :class:`HouseEnv`; ``house`` is reduced with :func:`battery_only`. Defaults:
    ``scenario="year-v1"``, ``episode_days=1``.

    ## Version History

    * v0: Initial version.
    """

    def __init__(self, scenario: str | Path | Scenario = "year-v1", house: HouseConfig | str | Path | None = None,
                 config: EnvConfig | None = None, render_mode: str | None = None, **settings: Any) -> None:
        super().__init__(scenario, battery_only(_house(house)), config or EnvConfig(episode_days=1.0),
                         render_mode, **settings)
