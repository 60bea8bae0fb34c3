"""Exact decimal columns: NUMERIC where the database has it, integer minor units on SQLite.

SQLite has no decimal type: a NUMERIC column keeps REAL (a binary double, ~15.9 significant digits), so
99999999999999.99 came back as …99.98. Every value a decimal field accepts (18 digits) fits a signed
64-bit integer once scaled by 10**scale, and integers keep ordering, comparisons and SUM exact.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement


def to_units(value: Any, places: int) -> Any:
    """`value` as an integer count of 10**-places; a literal with more places than the column (only
    ever a comparison operand, stored values are rounded on coerce) as the nearest float."""
    try:
        d = value if isinstance(value, Decimal) else Decimal(repr(value) if isinstance(value, float) else value)
        scaled = d.scaleb(places)
        if scaled == scaled.to_integral_value():
            return int(scaled)
        return float(scaled)
    except (InvalidOperation, TypeError, ValueError):
        return value  # not a number: compared as written, as on a NUMERIC column


def from_units(value: Any, places: int) -> Any:
    if value is None:
        return None
    if isinstance(value, float):  # an aggregate such as AVG gives a REAL
        return Decimal(repr(value)).scaleb(-places)
    return Decimal(int(value)).scaleb(-places)


class ExactDecimal(sa.types.TypeDecorator):
    """Numeric(precision, places) as Decimal on every database; stored as BIGINT minor units on SQLite."""

    impl = sa.Numeric
    cache_ok = True

    def __init__(self, precision: int, places: int):
        super().__init__(precision, places, asdecimal=True)
        self.places = places

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.BigInteger())
        return dialect.type_descriptor(sa.Numeric(self.impl.precision, self.places, asdecimal=True))

    def process_bind_param(self, value, dialect):
        if value is None or dialect.name != "sqlite":
            return value
        return to_units(value, self.places)

    def process_result_value(self, value, dialect):
        if dialect.name != "sqlite":
            return value
        return from_units(value, self.places)

    def process_literal_param(self, value, dialect):
        return self.process_bind_param(value, dialect)


def places_of(type_) -> int | None:
    """Decimal places of a column's stored integers: its scale for ExactDecimal, 0 for integers."""
    if isinstance(type_, ExactDecimal):
        return type_.places
    if isinstance(type_, sa.Integer):
        return 0
    return None


class Rescaled(ColumnElement):
    """A column's value in units of 10**-places: the column itself where decimals are NUMERIC, the
    column times 10**(places - its own) on SQLite, so two columns of different scales compare right."""

    inherit_cache = False  # its column and scales are not cache-key attributes: never cache a statement holding one

    def __init__(self, column, own: int, places: int):
        self.column = column
        self.own = own
        self.places = places
        self.type = column.type


@compiles(Rescaled)
def _rescaled_default(element, compiler, **kw):
    return compiler.process(element.column, **kw)


@compiles(Rescaled, "sqlite")
def _rescaled_sqlite(element, compiler, **kw):
    factor = 10 ** (element.places - element.own)
    inner = compiler.process(element.column, **kw)
    return inner if factor == 1 else f"({inner} * {factor})"


def comparable(left, right):
    """The two operands of a comparison, column against column rescaled to a common scale when at least
    one is an exact decimal (on SQLite their stored integers count different units)."""
    lp, rp = places_of(getattr(left, "type", None)), places_of(getattr(right, "type", None))
    if lp is None or rp is None or lp == rp or not (isinstance(left, sa.Column) and isinstance(right, sa.Column)):
        return left, right
    if not (isinstance(left.type, ExactDecimal) or isinstance(right.type, ExactDecimal)):
        return left, right
    places = max(lp, rp)
    return Rescaled(left, lp, places), Rescaled(right, rp, places)
