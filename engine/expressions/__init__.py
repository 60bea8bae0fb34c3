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
- ``CompiledExpression.result_type`` best-effort inferred type name (or None).
"""
