"""Translate a compiled expression into a SQL condition, for row filters that must live in the query.

Only the part of the language that SQL can express with the same meaning is accepted: this record's
fields and system fields, literals and lists of literals, comparisons, ``in`` / ``not in``,
``is None`` / ``is not None``, ``and`` / ``or`` / ``not``, a bare field as "is filled", and
``today()`` / ``now()``. SQL's NULL logic is Kleene logic, so a row matches exactly when the
expression's ``matches()`` is True. Anything else raises ExpressionError when the config loads.
"""
from __future__ import annotations

import ast
from datetime import datetime
from typing import Any, Callable

import sqlalchemy as sa

from ..clock import system_now
from ..fields.exact import ExactDecimal, comparable
from .errors import ExpressionError

_COMPARE = {ast.Eq: "__eq__", ast.NotEq: "__ne__", ast.Lt: "__lt__", ast.LtE: "__le__", ast.Gt: "__gt__",
            ast.GtE: "__ge__"}


class SqlCondition:
    """A compiled expression prepared for SQL: call `.clause(table, now, tz)` per query."""

    def __init__(self, expr, entity, field_types, system_types: dict[str, Any]):
        self.expr = expr
        self.entity = entity
        self.field_types = field_types
        self.system_types = system_types
        self._check(expr.tree)

    # -- checked once, when the config loads -----------------------------------------------------

    def _unsupported(self, node: ast.AST, why: str = "") -> ExpressionError:
        text = ast.get_source_segment(self.expr.source, node) or type(node).__name__
        return ExpressionError(f"'{text}' cannot be used in a row filter{': ' + why if why else ''} "
                               "(use this record's fields, literals, comparisons, in, and/or/not, today(), now())")

    def _field(self, name: str):
        if name in self.entity.fields:
            f = self.entity.fields[name]
            if self.field_types.for_field(f).stored:
                return f
            raise ExpressionError(f"'{name}' ({f.type}) cannot be used in a row filter")
        if name in self.system_types:
            return self.system_types[name]
        raise ExpressionError(f"unknown field '{name}' in a row filter")

    def _check(self, node: ast.AST) -> None:
        if isinstance(node, ast.BoolOp):
            for v in node.values:
                self._check(v)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            self._check(node.operand)
        elif isinstance(node, ast.Compare):
            for part in [node.left, *node.comparators]:
                self._check_value(part)
        elif isinstance(node, ast.Name):
            self._field(node.id)
        else:
            raise self._unsupported(node)

    def _check_value(self, node: ast.AST) -> None:
        if isinstance(node, ast.Name):
            self._field(node.id)
        elif isinstance(node, ast.Constant):
            return
        elif isinstance(node, (ast.List, ast.Tuple)):
            if not all(isinstance(e, ast.Constant) for e in node.elts):
                raise self._unsupported(node, "lists may hold literals only")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("today", "now") \
                and not node.args:
            return
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
            return
        else:
            raise self._unsupported(node)

    # -- per query ---------------------------------------------------------------------------------

    def clause(self, table: sa.Table, ctx, now: datetime | None = None) -> Any:
        now = now or system_now()
        return self._bool(self.expr.tree, table, ctx, now)

    def _bool(self, node, table, ctx, now):
        if isinstance(node, ast.BoolOp):
            parts = [self._bool(v, table, ctx, now) for v in node.values]
            return sa.and_(*parts) if isinstance(node.op, ast.And) else sa.or_(*parts)
        if isinstance(node, ast.UnaryOp):
            return sa.not_(self._bool(node.operand, table, ctx, now))
        if isinstance(node, ast.Name):  # a bare field: "is filled"
            col = table.c[node.id]
            filled = col.is_not(None)
            return sa.and_(filled, col != "") if isinstance(col.type, (sa.String, sa.Text)) else filled
        return self._compare(node, table, ctx, now)

    def _compare(self, node: ast.Compare, table, ctx, now):
        parts = []
        left = node.left
        for op, right in zip(node.ops, node.comparators):
            parts.append(self._one(left, op, right, table, ctx, now))
            left = right
        return sa.and_(*parts) if len(parts) > 1 else parts[0]

    def _one(self, left, op, right, table, ctx, now):
        if isinstance(op, (ast.Is, ast.IsNot)):
            col = self._operand(left, table, None, ctx, now)
            return col.is_(None) if isinstance(op, ast.Is) else col.is_not(None)
        field = self._field(left.id) if isinstance(left, ast.Name) else \
            self._field(right.id) if isinstance(right, ast.Name) else None
        lhs = self._operand(left, table, field, ctx, now)
        if isinstance(op, (ast.In, ast.NotIn)):
            if not isinstance(right, (ast.List, ast.Tuple)):
                raise self._unsupported(right, "'in' needs a list of literals here")
            values = [self._literal(e.value, field, ctx) for e in right.elts]
            clause = lhs.in_(values)
            # x not in [...] is unknown (not true) for an empty x, as in the evaluator
            return sa.and_(lhs.is_not(None), sa.not_(clause)) if isinstance(op, ast.NotIn) else clause
        rhs = self._operand(right, table, field, ctx, now)
        lhs, rhs = comparable(lhs, rhs)
        return getattr(lhs, _COMPARE[type(op)])(rhs)

    def _operand(self, node, table, field, ctx, now):
        if isinstance(node, ast.Name):
            return table.c[node.id]
        if isinstance(node, ast.Constant):
            return self._bound(self._literal(node.value, field, ctx), table, field) if node.value is not None \
                else sa.null()
        if isinstance(node, ast.UnaryOp):
            return self._bound(self._literal(-node.operand.value, field, ctx), table, field)
        if isinstance(node, ast.Call):
            if node.func.id == "now":
                return sa.literal(now)
            return sa.literal(now.astimezone(ctx.timezone).date())
        raise self._unsupported(node)

    @staticmethod
    def _bound(value, table, field):
        """A literal bound as the compared exact-decimal column's type: on SQLite that column holds
        integer minor units, and the literal must be scaled the same way."""
        col = table.c.get(field.column) if field is not None else None
        if col is not None and isinstance(col.type, ExactDecimal):
            return sa.literal(value, type_=col.type)
        return sa.literal(value)

    def _literal(self, value, field, ctx):
        """A literal compared with a field takes the field's type, as the evaluator would compare it."""
        if field is None or value is None:
            return value
        ftype = self.field_types.for_field(field)
        try:
            return ftype.to_db(field, ftype.coerce(field, value, ctx))
        except Exception:  # noqa: BLE001 - a literal the type cannot read compares as written
            return value


def row_condition(expr, entity, field_types, system_types) -> SqlCondition:
    """Check that `expr` can run as SQL for `entity` and prepare it (raises ExpressionError)."""
    return SqlCondition(expr, entity, field_types, system_types)


__all__: list[str | Callable] = ["SqlCondition", "row_condition"]
