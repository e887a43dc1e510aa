"""The plan's battery and EV decisions for the current block, as device commands.

The battery is told a *mode*, not only a power, so that it absorbs what the forecast got wrong
in the way the plan intends:

- the plan neither imports nor exports (the battery balances the house) → ``SELF_CONSUMPTION``,
  which follows the actual net load instantly;
- the plan keeps the battery idle while importing (it saves the energy for dearer hours) →
  ``BACKUP_RESERVE`` at the current SOC, which holds it (and still stores any surplus);
- otherwise (charging from or discharging to the grid, or on purpose only partly) →
  ``POWER_SETPOINT`` at the planned power; the grid takes the forecast error.
"""

from __future__ import annotations

import math

from twin.config import BatteryConfig, EvChargerConfig
from twin.contracts import SELF_CONSUMPTION, BatteryCommand, BatteryMode, Observation

#: Below this a planned power [kW] counts as zero.
POWER_TOL_KW = 0.1


def battery_command(battery_kw: float, grid_import_kw: float, grid_export_kw: float, obs: Observation,
                    battery: BatteryConfig) -> BatteryCommand:
    """The inverter mode that carries out the plan's battery power for the current block."""
    if "battery_soc" in obs.stale or not math.isfinite(obs.battery_soc):
        return SELF_CONSUMPTION
    balanced = grid_import_kw < POWER_TOL_KW and grid_export_kw < POWER_TOL_KW
    if balanced:
        return SELF_CONSUMPTION
    if abs(battery_kw) < POWER_TOL_KW:
        if grid_import_kw >= POWER_TOL_KW:
            reserve = min(max(obs.battery_soc, battery.soc_min), battery.soc_max)
            return BatteryCommand(BatteryMode.BACKUP_RESERVE, reserve_soc=reserve)
        return BatteryCommand(BatteryMode.POWER_SETPOINT, power_kw=0.0)
    power = min(max(battery_kw, -battery.max_discharge_kw), battery.max_charge_kw)
    return BatteryCommand(BatteryMode.POWER_SETPOINT, power_kw=power)


def ev_power_kw(planned_kw: float, obs: Observation, charger: EvChargerConfig) -> float:
    """The charger power for the current block: 0, or within the charger's range."""
    if not obs.ev_connected or planned_kw < 1e-3:
        return 0.0
    return min(max(planned_kw, charger.min_power_kw), charger.max_power_kw)
