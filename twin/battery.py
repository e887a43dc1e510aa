"""Battery behind a hybrid inverter: what power each inverter mode sets, and SOC dynamics.

Pure functions. Power is AC-side [kW], + charging / − discharging. SOC is a fraction of
``capacity_kwh``; charging stores ``η_c · p``, discharging draws ``p / η_d`` from the cells.
"""

from __future__ import annotations

import math

from twin.config import BatteryConfig
from twin.contracts import BatteryCommand, BatteryMode

SOC_EPS = 1e-9


def clamp(value: float, lo: float, hi: float) -> float:
    """``value`` limited to [lo, hi]."""
    return lo if value < lo else hi if value > hi else value


def commanded_power_kw(cmd: BatteryCommand) -> float:
    """The fixed AC power a command asks for, + charging / − discharging [kW].

    0 for the modes whose power follows the house (SELF_CONSUMPTION, BACKUP_RESERVE).
    """
    if cmd.mode is BatteryMode.DISCHARGE_TO_GRID:
        return -cmd.power_kw
    if cmd.mode in (BatteryMode.CHARGE_FROM_GRID, BatteryMode.POWER_SETPOINT):
        return cmd.power_kw
    return 0.0


def inverter_power(cmd: BatteryCommand, soc: float, net_load_kw: float, p: BatteryConfig) -> tuple[float, float]:
    """Power the inverter sets in mode ``cmd``, and the SOC at which that power would change.

    ``net_load_kw`` is the house's load minus PV before the battery (+ deficit, − surplus):
    SELF_CONSUMPTION covers a deficit and stores a surplus, within power and SOC limits;
    CHARGE_FROM_GRID / DISCHARGE_TO_GRID run at ``cmd.power_kw`` regardless of load;
    BACKUP_RESERVE charges at full power up to ``reserve_soc``, then self-consumes without
    going below it; POWER_SETPOINT follows the signed ``cmd.power_kw``.
    Returns ``(power_kw, limit_soc)``; ``limit_soc`` is NaN when the power is zero.
    """
    floor, ceiling = p.soc_min, p.soc_max
    mode = cmd.mode
    if mode is BatteryMode.SELF_CONSUMPTION:
        power = -net_load_kw
    elif mode is BatteryMode.CHARGE_FROM_GRID:
        power = cmd.power_kw
    elif mode is BatteryMode.DISCHARGE_TO_GRID:
        power = -cmd.power_kw
    elif mode is BatteryMode.POWER_SETPOINT:
        power = cmd.power_kw
    else:  # BACKUP_RESERVE
        reserve = clamp(cmd.reserve_soc if cmd.reserve_soc is not None else floor, floor, ceiling)
        if soc < reserve - SOC_EPS:
            power, ceiling = p.max_charge_kw, reserve
        else:
            power, floor = -net_load_kw, reserve
    power = clamp(power, -p.max_discharge_kw, p.max_charge_kw)
    if power > 0.0:
        if soc >= ceiling - SOC_EPS:
            return 0.0, math.nan
        return power, ceiling
    if power < 0.0:
        if soc <= floor + SOC_EPS:
            return 0.0, math.nan
        return power, floor
    return 0.0, math.nan


def soc_rate_per_s(power_kw: float, p: BatteryConfig) -> float:
    """d(SOC)/dt [1/s] at constant AC ``power_kw``."""
    if power_kw >= 0.0:
        return power_kw * p.charge_efficiency / (p.capacity_kwh * 3600.0)
    return power_kw / (p.discharge_efficiency * p.capacity_kwh * 3600.0)


def time_to_soc_s(soc: float, target_soc: float, power_kw: float, p: BatteryConfig) -> float:
    """Seconds until SOC reaches ``target_soc`` at constant power; ``inf`` if it never does."""
    rate = soc_rate_per_s(power_kw, p)
    if rate == 0.0 or math.isnan(target_soc):
        return math.inf
    dt = (target_soc - soc) / rate
    return dt if dt >= 0.0 else math.inf
