"""A column as an arithmetic expression of other columns, evaluated safely (no ``eval``).

``"grid_import_kw - grid_export_kw + pv_power_kw - battery_power_kw"`` is parsed with :mod:`ast`
and only numbers, column names (``room_temp_c.living`` included), ``+ - * /``, unary minus,
parentheses and the functions ``min``, ``max``, ``abs`` are accepted; anything else (calls,
attributes of objects, subscripts, comparisons …) is refused with a message naming it. Evaluation
is element-wise on arrays; a NaN in any operand gives NaN in that row (a gap, filled later by the
gap policy, never a silent zero).
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from twin.errors import ScenarioError

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {"min": np.fmin, "max": np.fmax, "abs": np.abs}


def _name(node: ast.expr) -> str | None:
    """``a`` or ``a.b`` as a column name, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return f"{node.value.id}.{node.attr}"
    return None


@dataclass(frozen=True)
class Expression:
    """A parsed expression: ``text`` and the columns it reads."""

    text: str
    tree: ast.expr
    columns: tuple[str, ...]

    def evaluate(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        missing = [c for c in self.columns if c not in columns]
        if missing:
            raise ScenarioError(f"expression {self.text!r} reads column {missing[0]!r}, which is not there; "
                                f"known: {', '.join(sorted(columns))}")
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(self._eval(self.tree, columns), dtype=float)

    def _eval(self, node: ast.expr, columns: Mapping[str, np.ndarray]) -> np.ndarray | float:
        name = _name(node)
        if name is not None:
            return np.asarray(columns[name], dtype=float)
        if isinstance(node, ast.Constant):
            assert isinstance(node.value, int | float)  # parse() accepted numbers only
            return float(node.value)
        if isinstance(node, ast.UnaryOp):
            value = self._eval(node.operand, columns)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](self._eval(node.left, columns), self._eval(node.right, columns))
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)  # parse() let nothing else through
        return _FUNCTIONS[node.func.id](*(self._eval(a, columns) for a in node.args))


def parse(text: str) -> Expression:
    """Parse and check ``text``; raises ScenarioError naming the first thing not allowed."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ScenarioError(f"expression {text!r} is not valid ({exc.msg})") from None
    names: list[str] = []

    def check(node: ast.expr) -> None:
        name = _name(node)
        if name is not None:
            if name in _FUNCTIONS:
                raise ScenarioError(f"expression {text!r}: {name} is a function; call it as {name}(…)")
            names.append(name)
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise ScenarioError(f"expression {text!r}: {node.value!r} is not a number")
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            check(node.operand)
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            check(node.left)
            check(node.right)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
              and not node.keywords and node.args and (node.func.id != "abs" or len(node.args) == 1)
              and (node.func.id == "abs" or len(node.args) == 2)):
            for arg in node.args:
                check(arg)
        else:
            raise ScenarioError(f"expression {text!r}: {ast.unparse(node)!r} is not allowed (only numbers, column "
                                f"names, + - * /, parentheses, min(a, b), max(a, b), abs(a))")

    check(tree)
    if not names:
        raise ScenarioError(f"expression {text!r} reads no column")
    return Expression(text, tree, tuple(dict.fromkeys(names)))
