"""The MPC's mixed-integer linear program, built once in Pyomo and updated between solves.

Everything that changes from one solve to the next (forecasts, prices, comfort bands, the
initial state, the car) is a mutable ``Param``; structure and coefficients of the house are
fixed. Every ``Var`` and ``Param`` carries its unit (``pyomo.util.check_units``): power kW,
energy kWh, time h, temperature Δ°C (temperatures are °C; Pyomo cannot use offset units, and
the model is affine, so °C values are differences from 0 °C), money ``EUR`` (the prices'
currency, whatever it is).

Per block ``k`` (move blocking, see :mod:`controllers.mpc.blocking`):

- heating: a continuous duty cycle per room, ``0 ≤ duty ≤ 1`` of its heater's power;
- temperatures of every node at each block's end from the RC model,
  ``T⁺ = Φ T + Γ·duty + drive`` (``drive``: outdoor temperature, solar and internal gains, and
  for block 0 the initial state). A room's air temperature is written
  ``held − below_margin − below_band + above_band``: ``held`` is bounded to the comfort band
  narrowed by the margin at both ends, the slacks say how far the room is outside it — comfort
  costs bounds and columns, not rows;
- battery: charge and discharge power with efficiencies; a binary forbids doing both at once
  (which would burn energy in losses, worth it only when energy has a negative price);
- EV: 0 or between the charger's minimum and maximum power (a binary) while the car is there,
  energy up to what it needs (plus at most the shortest block at minimum power, so that a small
  top-up is possible); a shortfall at departure is paid per kWh;
- grid: import (within the connection limit, plus a heavily paid excess) and export (capped;
  PV is curtailed above the cap, as the inverter does) from the power balance.

Objective: energy at the import and export prices + a peak-import charge + comfort slacks (a
cheap margin above the lower bound, an expensive one outside the band) per K·h + EV shortfall +
import above the limit + curtailment − the value of the energy stored at the horizon's end
(battery and heat in the thermal masses, relative to now). Every soft constraint has a slack,
so the program is never infeasible.

``relaxed`` builds the LP relaxation (binaries in [0, 1]); ``fixed_heating`` builds the
*dispatch* program without rooms, where heating is a given load per block (see
:mod:`controllers.mpc.solve`).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pyomo.environ as pyo
from pyomo.environ import units as u

from controllers.mpc.blocking import BlockGrid
from controllers.mpc.inputs import PlanInputs
from controllers.mpc.rc_model import RcModel
from controllers.mpc.settings import MpcSettings
from twin.config import HouseConfig

if not hasattr(u, "EUR"):
    u.load_definitions_from_strings(["EUR = [currency]"])

TEMP = u.delta_degC
MONEY = u.EUR


class MpcModel:
    """The MILP of ``house`` on ``grid``; :meth:`update` loads the inputs of a solve."""

    def __init__(self, house: HouseConfig, grid: BlockGrid, rc: RcModel, settings: MpcSettings, *,
                 relaxed: bool = False, fixed_heating: bool = False, unit_check: bool = False) -> None:
        self.house = house
        self.grid = grid
        self.rc = rc
        self.settings = settings
        self.relaxed = relaxed
        self.fixed_heating = fixed_heating
        self.unit_check = unit_check
        self.c = SimpleNamespace()  # the fixed coefficients (see _fixed)
        self.has_battery = house.battery is not None
        self.has_ev = house.ev_charger is not None
        self.has_rooms = rc.n_rooms > 0 and not fixed_heating
        self.n_rooms = rc.n_rooms
        self._binary = pyo.UnitInterval if relaxed else pyo.Binary
        self._length_of_block = grid.durations_s.tolist()
        self.steps = {length: rc.sparse_step(length, settings.model_coefficient_tol) for length in grid.lengths()}
        self.m = self._build()

    # --- construction ------------------------------------------------------------------------------

    def _fixed(self, m: pyo.ConcreteModel, name: str, index: Any, values: Any, unit: Any = None) -> Any:
        """A fixed coefficient, kept in ``self.c.<name>``.

        With ``unit_check`` it is a ``Param`` with its unit (for ``assert_units_consistent``);
        otherwise a plain number (or dict): APPSI treats every ``Param`` in a coefficient as
        mutable and would re-evaluate tens of thousands of them at every solve. The structure
        of the model is the same either way.
        """
        if self.unit_check:
            args = (index,) if index is not None else ()
            value: Any = pyo.Param(*args, initialize=values, units=unit)
            m.add_component(name, value)
        else:
            value = values
        setattr(self.c, name, value)
        return value

    def _build(self) -> pyo.ConcreteModel:
        grid = self.grid
        n_blocks = grid.n_blocks
        m = pyo.ConcreteModel(name="pems_mpc")
        m.K = pyo.RangeSet(0, n_blocks - 1)  # blocks
        m.B = pyo.RangeSet(1, n_blocks)  # block ends
        self._fixed(m, "dt", m.K, dict(enumerate(grid.durations_h.tolist())), u.h)
        zeros = dict.fromkeys(range(n_blocks), 0.0)
        m.pv = pyo.Param(m.K, mutable=True, initialize=zeros, units=u.kW)
        m.base_load = pyo.Param(m.K, mutable=True, initialize=zeros, units=u.kW)
        # Prices and the stored-energy values start at a placeholder of 1, not 0: where they are a
        # matrix coefficient (a cost written in a constraint, as the stochastic MPC's scenario costs
        # are) a 0 at the hand-over leaves no entry in HiGHS's matrix, and setting it later inserts
        # one, shifting the whole matrix (0.7 ms each, 4 s for the first solve at 27 scenarios).
        # Every update sets them before a solve.
        ones = dict.fromkeys(range(n_blocks), 1.0)
        m.price_import = pyo.Param(m.K, mutable=True, initialize=ones, units=MONEY / u.kWh)
        m.price_export = pyo.Param(m.K, mutable=True, initialize=ones, units=MONEY / u.kWh)

        if self.has_rooms:
            self._add_rooms(m)
        elif self.fixed_heating:
            m.heating = pyo.Param(m.K, mutable=True, initialize=zeros, units=u.kW)
        self._add_grid(m)
        if self.has_battery:
            self._add_battery(m)
        if self.has_ev:
            self._add_ev(m)

        def balance(m: Any, k: int) -> Any:
            demand = m.base_load[k] - m.pv[k] + m.curtailed[k]
            if self.has_rooms:
                demand = demand + sum(self.c.heater_kw[r] * m.duty[k, r] for r in m.R)
            elif self.fixed_heating:
                demand = demand + m.heating[k]
            if self.has_battery:
                demand = demand + m.charge[k] - m.discharge[k]
            if self.has_ev:
                demand = demand + m.ev_fraction[k] * m.ev_power[k]
            return m.grid_import[k] - m.grid_export[k] == demand

        m.balance = pyo.Constraint(m.K, rule=balance)
        self._add_objective(m)
        return m

    def _add_rooms(self, m: pyo.ConcreteModel) -> None:
        rc = self.rc
        s = self.settings
        m.R = pyo.RangeSet(0, rc.n_rooms - 1)
        m.N = pyo.RangeSet(0, rc.n_nodes - 1)
        m.mass_nodes = pyo.Set(initialize=range(rc.n_rooms, rc.n_nodes))
        self._fixed(m, "heater_kw", m.R, dict(enumerate(rc.heater_kw.tolist())), u.kW)
        self._fixed(m, "capacity", m.N, dict(enumerate(rc.capacitance_kwh_per_k.tolist())), u.kWh / TEMP)
        m.drive = pyo.Param(m.K, m.N, mutable=True, initialize=0.0, units=TEMP)
        m.initial_temp = pyo.Param(m.N, mutable=True, initialize=0.0, units=TEMP)
        m.held_low = pyo.Param(m.B, m.R, mutable=True, initialize=0.0, units=TEMP)
        m.held_high = pyo.Param(m.B, m.R, mutable=True, initialize=100.0, units=TEMP)
        m.heat_value = pyo.Param(mutable=True, initialize=1.0, units=MONEY / u.kWh)  # 1: see m.price_import

        m.duty = pyo.Var(m.K, m.R, bounds=(0.0, 1.0), initialize=0.0)
        m.held = pyo.Var(m.B, m.R, units=TEMP, initialize=20.0,
                         bounds=lambda m, b, r: (m.held_low[b, r], m.held_high[b, r]))
        m.below_margin = pyo.Var(m.B, m.R, bounds=(0.0, s.comfort_margin_c), units=TEMP, initialize=0.0)
        m.below_band = pyo.Var(m.B, m.R, within=pyo.NonNegativeReals, units=TEMP, initialize=0.0)
        m.above_band = pyo.Var(m.B, m.R, within=pyo.NonNegativeReals, units=TEMP, initialize=0.0)
        m.temp_mass = pyo.Var(m.B, m.mass_nodes, units=TEMP, initialize=20.0)
        n_rooms = rc.n_rooms

        def temp(m: Any, b: int, i: int) -> Any:
            if i < n_rooms:
                return m.held[b, i] - m.below_margin[b, i] - m.below_band[b, i] + m.above_band[b, i]
            return m.temp_mass[b, i]

        m.temp = pyo.Expression(m.B, m.N, rule=temp)
        self._add_dynamics(m)

    def _add_dynamics(self, m: pyo.ConcreteModel) -> None:
        """``temp[b] = Φ temp[b-1] + duty response + drive``, with the matrices of the block's length."""
        lengths = sorted(self.steps)
        index_of = {length: c for c, length in enumerate(lengths)}
        classes = [index_of[length] for length in self._length_of_block]
        phi_values, duty_values = {}, {}
        for c, length in enumerate(lengths):
            st = self.steps[length]
            for i, j in zip(*np.nonzero(st.phi), strict=True):
                phi_values[c, int(i), int(j)] = float(st.phi[i, j])
            for i, r in zip(*np.nonzero(st.duty), strict=True):
                duty_values[c, int(i), int(r)] = float(st.duty[i, r])
        if self.unit_check:
            m.phi_index = pyo.Set(initialize=sorted(phi_values), dimen=3)
            m.duty_index = pyo.Set(initialize=sorted(duty_values), dimen=3)
        phi = self._fixed(m, "phi", m.phi_index if self.unit_check else None, phi_values)
        duty_gain = self._fixed(m, "duty_gain", m.duty_index if self.unit_check else None, duty_values, TEMP)
        phi_rows: dict[tuple[int, int], list[int]] = {}
        for c, i, j in phi_values:
            phi_rows.setdefault((c, i), []).append(j)
        duty_rows: dict[tuple[int, int], list[int]] = {}
        for c, i, r in duty_values:
            duty_rows.setdefault((c, i), []).append(r)

        def dynamics(m: Any, b: int, i: int) -> Any:
            k = b - 1
            c = classes[k]
            rhs = m.drive[k, i] + sum(duty_gain[c, i, r] * m.duty[k, r] for r in duty_rows.get((c, i), ()))
            if b > 1:
                rhs = rhs + sum(phi[c, i, j] * m.temp[b - 1, j] for j in phi_rows.get((c, i), ()))
            return m.temp[b, i] == rhs

        m.dynamics = pyo.Constraint(m.B, m.N, rule=dynamics)

    def _add_grid(self, m: pyo.ConcreteModel) -> None:
        g = self.house.grid
        m.import_within_limit = pyo.Var(m.K, bounds=(0.0, g.import_limit_kw), units=u.kW, initialize=0.0)
        m.import_over_limit = pyo.Var(m.K, within=pyo.NonNegativeReals, units=u.kW, initialize=0.0)
        m.grid_import = pyo.Expression(m.K, rule=lambda m, k: m.import_within_limit[k] + m.import_over_limit[k])
        m.grid_export = pyo.Var(m.K, bounds=(0.0, g.export_limit_kw), units=u.kW, initialize=0.0)
        m.curtailed = pyo.Var(m.K, units=u.kW, initialize=0.0, bounds=lambda m, k: (0.0, m.pv[k]))
        if self.settings.peak_import_price_per_kw > 0:
            m.peak_import = pyo.Var(within=pyo.NonNegativeReals, units=u.kW, initialize=0.0)
            m.peak = pyo.Constraint(m.K, rule=lambda m, k: m.peak_import >= m.grid_import[k])

    def _add_battery(self, m: pyo.ConcreteModel) -> None:
        b = self.house.battery
        assert b is not None, "only built for a house with a battery"
        m.initial_energy = pyo.Param(mutable=True, initialize=b.initial_soc * b.capacity_kwh, units=u.kWh)
        m.battery_value = pyo.Param(mutable=True, initialize=1.0, units=MONEY / u.kWh)  # 1: see m.price_import
        c = self.c
        self._fixed(m, "max_charge", None, b.max_charge_kw, u.kW)
        self._fixed(m, "max_discharge", None, b.max_discharge_kw, u.kW)
        self._fixed(m, "charge_efficiency", None, b.charge_efficiency)
        self._fixed(m, "discharge_efficiency", None, b.discharge_efficiency)
        m.charge = pyo.Var(m.K, bounds=(0.0, b.max_charge_kw), units=u.kW, initialize=0.0)
        m.discharge = pyo.Var(m.K, bounds=(0.0, b.max_discharge_kw), units=u.kW, initialize=0.0)
        m.charging = pyo.Var(m.K, within=self._binary, initialize=0)
        m.energy = pyo.Var(m.B, bounds=(b.soc_min * b.capacity_kwh, b.soc_max * b.capacity_kwh), units=u.kWh,
                           initialize=b.initial_soc * b.capacity_kwh)
        m.only_charge = pyo.Constraint(m.K, rule=lambda m, k: m.charge[k] <= c.max_charge * m.charging[k])
        m.only_discharge = pyo.Constraint(m.K, rule=lambda m, k: (
            m.discharge[k] <= c.max_discharge * (1 - m.charging[k])))

        def stored(m: Any, bb: int) -> Any:
            k = bb - 1
            before = m.initial_energy if bb == 1 else m.energy[bb - 1]
            return m.energy[bb] == before + (c.charge_efficiency * m.charge[k]
                                             - m.discharge[k] / c.discharge_efficiency) * c.dt[k]

        m.battery_energy = pyo.Constraint(m.B, rule=stored)

    def _add_ev(self, m: pyo.ConcreteModel) -> None:
        charger = self.house.ev_charger
        assert charger is not None, "only built for a house with a charger"
        c = self.c
        # A placeholder of 1 where the car is away (see ``update``): the coefficient is then never 0.
        m.ev_fraction = pyo.Param(m.K, mutable=True, initialize=1.0)
        m.ev_available = pyo.Param(m.K, mutable=True, initialize=0.0)
        m.ev_need = pyo.Param(mutable=True, initialize=0.0, units=u.kWh)
        self._fixed(m, "ev_min", None, charger.min_power_kw, u.kW)
        self._fixed(m, "ev_max", None, charger.max_power_kw, u.kW)
        self._fixed(m, "ev_efficiency", None, charger.efficiency)
        m.ev_power = pyo.Var(m.K, bounds=(0.0, charger.max_power_kw), units=u.kW, initialize=0.0)
        m.ev_on = pyo.Var(m.K, within=self._binary, bounds=lambda m, k: (0, m.ev_available[k]), initialize=0)
        m.ev_shortfall = pyo.Var(within=pyo.NonNegativeReals, units=u.kWh, initialize=0.0)
        m.ev_upper = pyo.Constraint(m.K, rule=lambda m, k: m.ev_power[k] <= c.ev_max * m.ev_on[k])
        m.ev_lower = pyo.Constraint(m.K, rule=lambda m, k: m.ev_power[k] >= c.ev_min * m.ev_on[k])
        m.ev_delivered = pyo.Expression(expr=sum(c.ev_efficiency * m.ev_fraction[k] * m.ev_power[k] * c.dt[k]
                                                 for k in m.K))
        m.ev_target = pyo.Constraint(expr=m.ev_delivered + m.ev_shortfall >= m.ev_need)
        # A top-up smaller than the charger's minimum power over the shortest block would be impossible
        # if the car could take no more than it needs: allow that much above the need (cars have room
        # above their target; a full one simply stops charging).
        top_up_kwh = charger.min_power_kw * float(self.grid.durations_h.min()) * charger.efficiency
        self._fixed(m, "ev_top_up", None, top_up_kwh, u.kWh)
        m.ev_no_more_than_needed = pyo.Constraint(expr=m.ev_delivered <= m.ev_need + c.ev_top_up)

    def _add_objective(self, m: pyo.ConcreteModel) -> None:
        s = self.settings
        c = self.c
        self._fixed(m, "import_limit_penalty", None, s.import_limit_penalty_per_kwh, MONEY / u.kWh)
        self._fixed(m, "curtailment_penalty", None, s.curtailment_penalty_per_kwh, MONEY / u.kWh)
        last = self.grid.n_blocks
        m.energy_cost = pyo.Expression(expr=sum(
            (m.price_import[k] * m.grid_import[k] - m.price_export[k] * m.grid_export[k]) * c.dt[k] for k in m.K))
        penalties = sum((c.import_limit_penalty * m.import_over_limit[k] + c.curtailment_penalty * m.curtailed[k])
                        * c.dt[k] for k in m.K)
        m.heat_stored_value = pyo.Expression(expr=0.0 * MONEY)
        m.battery_stored_value = pyo.Expression(expr=0.0 * MONEY)
        if self.has_rooms:
            self._fixed(m, "comfort_margin_penalty", None, s.comfort_margin_penalty_per_kh, MONEY / (TEMP * u.h))
            self._fixed(m, "comfort_penalty", None, s.comfort_penalty_per_kh, MONEY / (TEMP * u.h))
            m.comfort_cost = pyo.Expression(expr=sum(
                (c.comfort_margin_penalty * m.below_margin[b, r]
                 + c.comfort_penalty * (m.below_band[b, r] + m.above_band[b, r])) * c.dt[b - 1]
                for b in m.B for r in m.R))
            penalties = penalties + m.comfort_cost
            m.heat_stored_value.set_value(sum(c.capacity[n] * (m.temp[last, n] - m.initial_temp[n])
                                              for n in m.N) * m.heat_value)
        if self.has_battery:
            m.battery_stored_value.set_value((m.energy[last] - m.initial_energy) * m.battery_value)
        if self.has_ev:
            self._fixed(m, "ev_penalty", None, s.ev_shortfall_penalty_per_kwh, MONEY / u.kWh)
            penalties = penalties + c.ev_penalty * m.ev_shortfall
        if s.peak_import_price_per_kw > 0:
            self._fixed(m, "peak_price", None, s.peak_import_price_per_kw, MONEY / u.kW)
            penalties = penalties + c.peak_price * m.peak_import
        m.penalties = pyo.Expression(expr=penalties)
        m.objective = pyo.Objective(expr=m.energy_cost + m.penalties - m.heat_stored_value - m.battery_stored_value,
                                    sense=pyo.minimize)

    # --- between solves ----------------------------------------------------------------------------

    def update(self, inputs: PlanInputs, heating_kw: np.ndarray | None = None) -> None:
        """Load the inputs of one solve into the mutable parameters (``heating_kw`` for a dispatch model)."""
        m = self.m
        grid = self.grid
        s = self.settings
        if inputs.n_blocks != grid.n_blocks:
            raise ValueError(f"inputs have {inputs.n_blocks} blocks, the model {grid.n_blocks}")
        _set(m.pv, inputs.pv_kw)
        _set(m.base_load, inputs.base_load_kw)
        _set(m.price_import, inputs.import_price_per_kwh)
        _set(m.price_export, inputs.export_price_per_kwh)
        if self.has_rooms:
            drive = self.drive(inputs)
            _set2(m.drive, drive, 0)
            _set(m.initial_temp, inputs.initial_temps_c)
            # The plan keeps the margin from both bounds (heating at negative prices rides the upper one).
            high = np.maximum(inputs.comfort_upper_c - s.comfort_margin_c, inputs.comfort_lower_c)
            low = np.minimum(inputs.comfort_lower_c + s.comfort_margin_c, high)
            _set2(m.held_high, high, 1)
            _set2(m.held_low, low, 1)
            m.heat_value.set_value(inputs.terminal_price_per_kwh * s.thermal_terminal_weight)
        elif self.fixed_heating:
            if heating_kw is None:
                raise ValueError("a dispatch model needs the heating load per block")
            _set(m.heating, heating_kw)
        if self.has_battery:
            b = self.house.battery
            assert b is not None
            m.initial_energy.set_value(inputs.battery_kwh)
            m.battery_value.set_value(inputs.terminal_price_per_kwh * s.battery_terminal_weight
                                      * b.discharge_efficiency)
        if self.has_ev:
            available = inputs.ev_fraction > 1e-6
            # Where the car is away its power is bounded to 0 (``ev_on ≤ ev_available = 0``), so the
            # fraction's value there changes nothing: keep 1 rather than 0, so the coefficient of
            # ``ev_power`` stays in the solver's matrix (HiGHS warns at every ``changeCoeff`` to 0).
            _set(m.ev_fraction, np.where(available, inputs.ev_fraction, 1.0))
            _set(m.ev_available, available.astype(float))
            m.ev_need.set_value(inputs.ev_need_kwh)

    def drive(self, inputs: PlanInputs) -> np.ndarray:
        """Temperature response of every node to everything but heating, per block (blocks, nodes) [K]."""
        rc = self.rc
        drive = np.empty((self.grid.n_blocks, rc.n_nodes))
        for k, length in enumerate(self._length_of_block):
            exact = rc.step(length)
            drive[k] = exact.out * inputs.outdoor_c[k] + exact.heat @ inputs.node_gains_w[k]
        drive[0] += rc.step(self._length_of_block[0]).phi @ inputs.initial_temps_c
        return drive


def _set(param: pyo.Param, values: np.ndarray) -> None:
    """Values in index order (the param's data objects directly: indexing each one costs more)."""
    flat = np.asarray(values, dtype=float).ravel().tolist()
    if len(flat) != len(param):
        raise ValueError(f"{param.name}: {len(flat)} values for {len(param)} entries")
    # ``set_value`` validates each value against the param's domain and index set (a set lookup
    # per value: most of an update's time on the stochastic MPC's 9 scenario models); these are
    # plain floats of a unit-compatible, unrestricted param, so the value is stored directly.
    for data, v in zip(param.values(), flat, strict=True):
        data._value = v  # noqa: SLF001


def _set2(param: pyo.Param, values: np.ndarray, first: int) -> None:
    """A (rows, columns) array into a param indexed ``(first + row, column)``, rows outer."""
    del first  # the index sets are ranges in row-major order: the flat order is the index order
    _set(param, values)
