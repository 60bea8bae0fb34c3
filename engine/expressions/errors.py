"""Errors of the expression language: compile-time (config) and run-time (evaluation)."""
from __future__ import annotations

from ..errors import FormworkError


class ExpressionError(FormworkError):
    """An expression is invalid or unsafe; raised by ``compile_expression`` (a config problem).

    ``column`` is the 1-based column in the expression source when known; ``field`` names the
    formula field when raised by ``compile_formulas`` or ``formula_order``.
    """

    def __init__(self, message: str, *, column: int | None = None, source: str | None = None,
                 field: str | None = None):
        self.message = message
        self.column = column
        self.source = source
        self.field = field
        super().__init__(message)


class ExpressionEvalError(ExpressionError):
    """Evaluation failed at run time (e.g. comparing text with a number, a value of the wrong type
    given to a function, a loader that is needed but missing)."""


class ExpressionLimitError(ExpressionEvalError):
    """Evaluation would exceed a cost limit (a huge power, text or list, too many record loads)."""
