"""Battery behind a hybrid inverter: what power each inverter mode sets, and SOC dynamics.

Pure functions. Power is AC-side [kW], + charging / − discharging. SOC is a fraction of
``capacity_kwh``; charging stores ``η_c · p``, discharging draws ``p / η_d`` from the cells.
"""

from __future__ import annotations

import math

import numpy as np

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


# --- vectorised siblings: the same rules over a leading axis of houses (numpy arrays) ---------------

#: ``BatteryMode`` ↔ integer code of the vectorised functions (enum order).
MODE_CODES: tuple[BatteryMode, ...] = tuple(BatteryMode)
MODE_CODE: dict[BatteryMode, int] = {mode: k for k, mode in enumerate(MODE_CODES)}
_SC, _BACKUP = MODE_CODE[BatteryMode.SELF_CONSUMPTION], MODE_CODE[BatteryMode.BACKUP_RESERVE]


def inverter_power_v(mode: np.ndarray, commanded_kw: np.ndarray, reserve_soc: np.ndarray, soc: np.ndarray,
                     net_load_kw: np.ndarray, p: BatteryConfig, may_backup: bool = True
                     ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`inverter_power` of many inverters at once.

    Parameters
    ----------
    mode
        :data:`MODE_CODE` of each inverter's command (int array).
    commanded_kw
        :func:`commanded_power_kw` of each command [kW, + charging].
    reserve_soc
        Each command's ``reserve_soc`` (NaN for ``None``); read in ``BACKUP_RESERVE`` only.
    soc, net_load_kw
        As :func:`inverter_power`, one per inverter.
    p
        The battery (shared by all).
    may_backup
        False when no command is ``BACKUP_RESERVE`` (skips that branch: the caller knows).

    Returns
    -------
    power_kw, limit_soc
        As :func:`inverter_power`, element-wise (``limit_soc`` NaN where the power is zero; a zero
        power may be ``-0.0``).
    """
    power = np.where(mode == _SC, np.negative(net_load_kw), commanded_kw)
    floor: np.ndarray | float = p.soc_min
    ceiling: np.ndarray | float = p.soc_max
    if may_backup:
        backup = mode == _BACKUP
        if np.count_nonzero(backup):
            reserve = np.where(np.isnan(reserve_soc), p.soc_min, reserve_soc)
            reserve = np.where(reserve < p.soc_min, p.soc_min, np.where(reserve > p.soc_max, p.soc_max, reserve))
            below = backup & (soc < reserve - SOC_EPS)
            power = np.where(below, p.max_charge_kw, np.where(backup, -net_load_kw, power))
            ceiling = np.where(below, reserve, p.soc_max)
            floor = np.where(backup & ~below, reserve, p.soc_min)
    power = np.minimum(np.maximum(power, -p.max_discharge_kw), p.max_charge_kw)  # clamp(): same for numbers
    charging = power > 0.0
    charging &= soc < ceiling - SOC_EPS
    discharging = power < 0.0
    discharging &= soc > floor + SOC_EPS
    limit = np.where(charging, ceiling, np.where(discharging, floor, np.nan))
    return power * (charging | discharging), limit


def soc_rate_per_s_v(power_kw: np.ndarray, p: BatteryConfig) -> np.ndarray:
    """:func:`soc_rate_per_s` element-wise [1/s]."""
    rate: np.ndarray = np.where(power_kw >= 0.0, power_kw * p.charge_efficiency / (p.capacity_kwh * 3600.0),
                                power_kw / (p.discharge_efficiency * p.capacity_kwh * 3600.0))
    return rate


def time_to_soc_s_v(soc: np.ndarray, target_soc: np.ndarray, power_kw: np.ndarray, p: BatteryConfig,
                    rate_per_s: np.ndarray | None = None, moving: np.ndarray | None = None) -> np.ndarray:
    """:func:`time_to_soc_s` element-wise [s]; ``inf`` where the SOC never gets there.

    ``rate_per_s`` is :func:`soc_rate_per_s_v` of ``power_kw`` when the caller has it already.
    ``moving`` (the mask where :func:`inverter_power_v` gave a nonzero power, towards its
    ``limit_soc``) lets the caller skip the checks that such a target holds: it is ahead of
    ``soc`` there and NaN elsewhere.
    """
    rate = soc_rate_per_s_v(power_kw, p) if rate_per_s is None else rate_per_s
    dt = np.full_like(soc, np.inf)
    if moving is not None:
        np.divide(target_soc - soc, rate, out=dt, where=moving)
        return dt
    np.divide(target_soc - soc, rate, out=dt, where=(rate != 0.0) & ~np.isnan(target_soc))
    np.copyto(dt, np.inf, where=dt < 0.0)
    return dt
