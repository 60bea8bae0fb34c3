"""The one expression language of Formwork (rules, defaults, formulas, criteria, conditions).

Public interface (other modules rely on exactly these names):

- ``compile_expression(source, entity=None, model=None, functions=None) -> CompiledExpression``
  parses once, checks every name/path against ``entity`` (an ``engine.metadata.Entity``) and
  ``model`` when given, and raises ``ExpressionError`` with a precise message on anything unsafe or
  invalid.
- ``CompiledExpression.evaluate(record, *, loader=None, now=None, tz=None) -> value``
  ``record`` maps field names to Python values (a subtable field to a list of row dicts);
  ``loader(entity_name, id) -> dict | None`` fetches a referenced record for dotted paths.
- ``CompiledExpression.holds(...)``: for rules/conditions: False only when the result is false;
  empty (unknown) passes.
- ``CompiledExpression.bind(*, loader=None, now=None, tz=None) -> fn(record)`` and ``.bind_holds(...)``:
  ``evaluate`` / ``holds`` for many records with the same loader, clock and timezone (an import's
  formulas, defaults and rules), one evaluator per batch; bind once per batch and thread.
- ``CompiledExpression.result_type`` best-effort inferred type name (or None).

Also: ``CompiledExpression.truth(...) -> True | False | None`` and ``.matches(...)`` (True only when
definitely true: stage criteria, approval conditions); ``.source``, ``.names``, ``.paths``,
``.functions_used``; ``formula_order(entity)``; ``compile_formulas(entity, sources, model,
functions)``; ``functions_from_plugins(pm)``; ``builtin_functions()``; ``expression_function``
(decorator for plugin functions); ``ExpressionError`` (compile time) and its subclasses
``ExpressionEvalError`` / ``ExpressionLimitError`` (run time).

Syntax
------
Python expression syntax, restricted to: ``and or not``; comparisons ``== != < <= > >=`` (chained
``a < b < c`` too), ``in`` / ``not in`` (list membership or substring), ``x is None`` /
``x is not None``; arithmetic ``+ - * / // % **`` and unary ``-``/``+``; literals: integers, decimals,
'text' / "text", True, False, None, lists ``[a, b]`` (tuples ``(a, b)`` are lists too); ``a if c else
b``; field names; dotted paths; calls of registered functions (keyword arguments allowed).
Not allowed (compile error): lambda, comprehensions, assignment/walrus, indexing and slicing,
dict/set literals, f-strings, ``*``/``**`` unpacking, bitwise operators, methods (``x.lower()``), any
name or attribute starting with ``_``. At most 2000 characters, 200 nodes, 100 levels of nesting.

Names and paths
---------------
With ``entity`` given, a name must be one of its fields or system fields (``id``, ``created_at`` …;
a subtable row entity has ``id``, ``parent_id``, ``position``). ``a.b`` is allowed only when ``a`` is a
``reference`` field (``to:`` another entity; ``b`` is checked on that entity when ``model`` is given)
or a subtable field (``lines.line_total`` is the list of that column over the rows; paths through
several subtables are flattened). System fields (``owner``, ``created_by`` …) cannot be followed.
Without ``entity`` names are not checked and paths follow only dicts and lists found in the record.

Empty-value semantics (contract)
--------------------------------
- An empty field is None; a missing key in the record is None. "" and [] also count as empty where
  emptiness is tested (truth, ``is None``, ``coalesce``, ``count``, ``is_empty``).
- Arithmetic with None gives None (``price * None`` → None); so do unary minus and text ``+``.
- A comparison (``== != < <= > >= in not in``) involving None gives UNKNOWN ("unknown", like SQL
  NULL). ``x is None`` / ``x is not None`` are never unknown: they test emptiness.
- Boolean context = the operands of ``and``/``or``/``not``, the test of ``if``, and the whole
  expression in ``truth``/``holds``/``matches``. There a bare value (name, path, call, arithmetic,
  literal) counts as filled/not-filled: None, "", [] → False, otherwise Python truthiness (so 0 and
  False are false). An UNKNOWN stays unknown.
- ``and``/``or``/``not`` use Kleene logic and return booleans (never an operand):
  ``UNKNOWN and False`` = False, ``UNKNOWN or True`` = True, otherwise unknown; ``not UNKNOWN`` =
  UNKNOWN. ``and``/``or`` short-circuit on the deciding value. Use ``coalesce(a, b)`` for "a, else b".
- ``a if c else b``: c true → a; c false (or a bare empty value) → b; c unknown → UNKNOWN.
- A path through an empty reference is None; through an empty subtable it is [].
- ``evaluate()`` returns the value with UNKNOWN reported as None. ``truth()`` returns True, False or
  None (unknown). ``holds()`` (rules) is False only when ``truth()`` is False: an unknown passes
  like a SQL CHECK, but a bare empty value in the boolean context fails (``check: phone`` means
  "phone must be filled"). ``matches()`` (criteria, conditions) is True only when ``truth()`` is True.
  Examples for ``level != 'A' or phone``: level 'A', phone None → fails; level 'B' → passes;
  level None, phone None → unknown, passes.
- Functions receive None for an empty or unknown argument; most return None for an empty input.

Numbers
-------
Integer literals are ``int``; decimal literals (``0.8``, ``1e3``) are ``decimal.Decimal`` taken from the
source text, never float (floats read from records become Decimals too). int/Decimal mix freely.
``/`` always gives a Decimal (``7 / 2`` → 3.5), 28 significant digits. ``//`` floors to an int; ``%``
has the sign of the divisor. Division or modulo by zero gives None (empty), not an error. ``round``
rounds half away from zero (money convention): ``round(x)`` / ``round(x, n<=0)`` → int, ``n > 0`` →
Decimal with n places.

Dates
-----
Comparing a date with a datetime compares the datetime's calendar date in the tenant timezone
(so ``followup_date >= customer.created_at`` holds on the creation day). Naive datetimes count as
UTC. ``date ± integer`` moves by days; ``date - date`` is whole calendar days (like days_between).
``now()`` is tz-aware UTC; ``today()`` is the date in the tenant timezone (``tz=`` of evaluate,
default UTC — callers should pass the tenant's ``ZoneInfo``). ``days_between(a, b)`` counts calendar
days b − a in the tenant timezone; ``year/month/day/weekday`` of a datetime use that date too.

Errors and limits
-----------------
``ExpressionError`` (compile time) messages say what is wrong and, when known, "(column N)";
``.column`` carries it. At run time a type mismatch (``'a' < 3``, ``len(5)``) or a path that needs a
missing loader raises ``ExpressionEvalError``; exceeding a cost limit (text or list over 100,000,
integers over 4096 bits, ``**`` that would exceed that, more than 1,000 record loads) raises
``ExpressionLimitError``. Both are ``ExpressionError`` subclasses, so ``FormworkError`` too.
Evaluation never calls getattr on values: records and rows are read as mappings only.
"""
from .compiler import (MAX_DEPTH, MAX_NODES, MAX_SOURCE_LENGTH, RESULT_TYPES, CompiledExpression,
                       compile_expression, compile_formulas, field_result_type, formula_order,
                       functions_from_plugins, make_context)
from .errors import ExpressionError, ExpressionEvalError, ExpressionLimitError
from .functions import builtin_functions, expression_function
from .values import UNKNOWN, EvalContext

__all__ = [
    "CompiledExpression", "EvalContext", "ExpressionError", "ExpressionEvalError",
    "ExpressionLimitError", "MAX_DEPTH", "MAX_NODES", "MAX_SOURCE_LENGTH", "RESULT_TYPES", "UNKNOWN",
    "builtin_functions", "compile_expression", "compile_formulas", "expression_function",
    "field_result_type", "formula_order", "functions_from_plugins", "make_context",
]
