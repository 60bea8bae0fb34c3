"""Run time: a simpleeval evaluator over an already-checked AST, one instance per evaluation.

Only the node types the compiler lets through have handlers; names are read from the record
mapping and dotted paths are walked by our own code over mappings and lists (never getattr).
"""
from __future__ import annotations

import ast
import datetime
import decimal
from types import MappingProxyType
from typing import Any, Callable, Mapping

from simpleeval import DISALLOW_FUNCTIONS, FeatureNotAvailable, InvalidExpression, SimpleEval

from . import values as v
from .errors import ExpressionError, ExpressionEvalError, ExpressionLimitError
from .values import UNKNOWN, EvalContext

# Binary operators: ast operator type → value function (a, b, tz).
BINARY_OPERATORS: Mapping[type, Callable] = MappingProxyType({
    ast.Add: v.add,
    ast.Sub: v.sub,
    ast.Mult: v.mul,
    ast.Div: v.div,
    ast.FloorDiv: v.floordiv,
    ast.Mod: v.mod,
    ast.Pow: v.power,
})
_ORDER = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


def _negate(t: Any) -> Any:
    return t if t is UNKNOWN else not t


class PathStep:
    """One segment of a dotted path and how to go on from its value.

    kind: "value" (last segment or plain field), "ref" (a reference: load ``target`` by id),
    "sub" (a subtable: project over its rows), "lookup" (a stage: ``target`` maps each stored
    value to its definition's attributes), "dyn" (unchecked: follow mappings and lists only).
    """

    __slots__ = ("name", "kind", "target")

    def __init__(self, name: str, kind: str, target: str | None = None):
        self.name = name
        self.kind = kind
        self.target = target

    def __repr__(self) -> str:
        return f"PathStep({self.name!r}, {self.kind!r}, {self.target!r})"


def call_function(name: str, fn: Callable, args: list, kwargs: dict) -> Any:
    """Call an expression function; its failures become evaluation errors naming it."""
    try:
        return fn(*args, **kwargs)
    except ExpressionError:
        raise
    except decimal.Overflow as exc:
        raise ExpressionLimitError(f"{name}(): a number is too large") from exc
    except Exception as exc:  # noqa: BLE001 - a plugin function's failure is an evaluation error
        raise ExpressionEvalError(f"{name}() failed: {exc}") from exc


class FormworkEval(SimpleEval):
    """simpleeval with Formwork's empty-value and three-valued semantics."""

    def __init__(self, source: str, plans: Mapping[tuple, tuple], functions: Mapping[str, Callable],
                 record: Mapping | None, loader: Callable | None, ctx: EvalContext,
                 cache: dict | None):
        # SimpleEval.__init__ is not called: it builds handler tables, a warnings filter and a
        # forbidden-function scan per instance, and an evaluation is one instance (formulas and
        # rules run per row of an import). The handler table is the class's NODES; the scan is here.
        self._record = record if record is not None else {}
        self.operators = BINARY_OPERATORS
        self.functions = functions
        for fn in functions.values():
            if _is_forbidden(fn):
                raise FeatureNotAvailable(f"This function {fn} is a really bad idea.")
        self.names = self._record
        self.allowed_attrs = None
        self._source = source
        self._plans = plans
        self._loader = loader
        self._ctx = ctx
        self._cache = cache if cache is not None else {}
        self._loads = 0
        self.expr = source  # what SimpleEval.eval sets

    # ---- entry point ----
    def run(self, tree: ast.expr) -> Any:
        """The raw result: a value, None, or UNKNOWN."""
        return self.run_closure(closure_of(tree))  # the tree's handlers, compiled once (closures.py)

    def run_closure(self, closure: Callable, exact: bool = True) -> Any:
        """`run` with the tree's closure at hand. ``exact=False`` for a tree that does no arithmetic
        and calls no function (closures.computes): none of its steps does a Decimal operation that
        depends on a context, so the evaluation's own context is not set up."""
        if not exact:
            return self._call(closure)
        # localcontext() copies the context it is given, so one template serves every evaluation.
        with decimal.localcontext(_DECIMAL_CONTEXT):
            return self._call(closure)

    def _call(self, closure: Callable) -> Any:
        try:
            return closure(self)
        except ExpressionEvalError as exc:
            raise type(exc)(f"{exc.message} (in '{self._source}')", source=self._source) from exc
        except ExpressionError:
            raise
        except decimal.Overflow as exc:
            raise ExpressionLimitError(f"a number is too large (in '{self._source}')",
                                       source=self._source) from exc
        except (InvalidExpression, TypeError, ValueError, ArithmeticError, RecursionError,
                decimal.DecimalException) as exc:
            raise ExpressionEvalError(f"cannot evaluate '{self._source}': {exc}",
                                      source=self._source) from exc

    def _eval(self, node: ast.AST) -> Any:
        """SimpleEval._eval over the class-level handler table, with the same result check."""
        handler = NODES.get(type(node))
        if handler is None:
            raise FeatureNotAvailable(f"Sorry, {type(node).__name__} is not available in this evaluator")
        result = handler(self, node)
        if type(result) not in _SAFE_RESULTS:  # values never forbidden: skip SimpleEval's scan
            self._check_disallowed_items(result)
        return result

    # ---- leaves ----
    @staticmethod
    def _eval_constant(node: ast.Constant) -> Any:
        return node.value

    def _field(self, name: str) -> Any:
        record = self._record
        if type(record) is not dict and not isinstance(record, Mapping):  # (dict: no ABC check)
            raise ExpressionEvalError(f"the record must be a mapping, not {type(record).__name__}")
        return v.normalize(record.get(name))

    def _eval_name(self, node: ast.Name) -> Any:
        return self._field(node.id)

    def _eval_list(self, node: ast.List | ast.Tuple) -> list:
        return [v.plain(self._eval(e)) for e in node.elts]

    # ---- dotted paths ----
    def _eval_attribute(self, node: ast.Attribute) -> Any:
        parts: list[str] = []
        cur: ast.expr = node
        while isinstance(cur, ast.Attribute):
            parts.append(cur.attr)
            cur = cur.value
        parts.append(cur.id)  # the compiler guarantees a Name at the root
        path = tuple(reversed(parts))
        steps = self._plans.get(path) or tuple(PathStep(p, "dyn") for p in path)
        return self._walk(steps)

    def _walk(self, steps: tuple) -> Any:
        cur = self._field(steps[0].name)
        many = False
        prev = steps[0]
        for step in steps[1:]:
            if many:
                out: list = []
                for item in cur:
                    got, projected = self._follow(item, prev, step.name)
                    if projected:
                        out.extend(got)
                    else:
                        out.append(got)
                    if len(out) > v.MAX_LIST_LENGTH:
                        raise ExpressionLimitError(f"list longer than {v.MAX_LIST_LENGTH} items")
                cur = out
            else:
                cur, projected = self._follow(cur, prev, step.name)
                many = projected
            prev = step
        return cur

    def _follow(self, value: Any, step: PathStep, name: str) -> tuple[Any, bool]:
        """The `name` of `value` (the value of `step`); True when it projected over rows."""
        if step.kind == "sub" or (step.kind == "dyn" and isinstance(value, (list, tuple))):
            if v.is_null(value):
                return [], True
            if not isinstance(value, (list, tuple)):
                raise ExpressionEvalError(f"'{step.name}' should hold a list of rows, "
                                          f"not {v.type_name(value)}")
            out = []
            for row in value:
                if row is None:
                    continue
                if not isinstance(row, Mapping):
                    raise ExpressionEvalError(f"'{step.name}' rows must be records, "
                                              f"not {v.type_name(row)}")
                out.append(v.normalize(row.get(name)))
            return out, True
        if v.is_null(value):
            return None, False
        if step.kind == "lookup":   # a stage: its definition's attributes by the stored value
            info = step.target.get(value) if isinstance(step.target, Mapping) else None
            return (None if info is None else v.normalize(info.get(name))), False
        if step.kind == "ref":
            record = value if isinstance(value, Mapping) and name in value else None
            if record is None:
                ref_id = value.get("id") if isinstance(value, Mapping) else value
                if ref_id is None:
                    return None, False
                record = self._load(step.target, ref_id, step.name)
            return (None if record is None else v.normalize(record.get(name))), False
        if isinstance(value, Mapping):
            return v.normalize(value.get(name)), False
        raise ExpressionEvalError(f"cannot follow '{step.name}.{name}': '{step.name}' holds a "
                                  f"{v.type_name(value)}, not a record")

    def _load(self, entity: str, ref_id: Any, via: str) -> Mapping | None:
        try:
            key = (entity, ref_id)
            hash(key)
        except TypeError:
            raise ExpressionEvalError(f"'{via}' holds an invalid reference {ref_id!r}") from None
        if key in self._cache:
            return self._cache[key]
        if self._loader is None:
            raise ExpressionEvalError(f"following '{via}' needs a loader to fetch {entity} records")
        self._loads += 1
        if self._loads > v.MAX_LOADS:
            raise ExpressionLimitError(f"more than {v.MAX_LOADS} referenced records to load")
        record = self._loader(entity, ref_id)
        if record is not None and not isinstance(record, Mapping):
            raise ExpressionEvalError(f"the loader returned a {type(record).__name__} for {entity} "
                                      f"{ref_id!r}, not a mapping")
        self._cache[key] = record
        return record

    # ---- operators ---- (closures.py compiles these handlers' logic: change both together)
    def _eval_binop(self, node: ast.BinOp) -> Any:
        operator = self.operators[type(node.op)]
        return operator(self._eval(node.left), self._eval(node.right), self._ctx.tz)

    def _eval_unaryop(self, node: ast.UnaryOp) -> Any:
        operand = self._eval(node.operand)
        if isinstance(node.op, ast.Not):
            return _negate(v.truth(operand))
        if isinstance(node.op, ast.USub):
            return v.neg(operand)
        return v.pos(operand)

    def _eval_boolop(self, node: ast.BoolOp) -> Any:
        """Kleene logic; short-circuits on the deciding value."""
        deciding = not isinstance(node.op, ast.And)   # and: False decides; or: True decides
        unknown = False
        for value in node.values:
            t = v.truth(self._eval(value))
            if t is UNKNOWN:
                unknown = True
            elif t is deciding:
                return deciding
        return UNKNOWN if unknown else (not deciding)

    def _compare(self, op: ast.cmpop, a: Any, b: Any) -> Any:
        tz = self._ctx.tz
        t = type(op)
        if t is ast.Eq:
            return v.equals(a, b, tz)
        if t is ast.NotEq:
            return _negate(v.equals(a, b, tz))
        if t in _ORDER:
            return v.order(_ORDER[t], a, b, tz)
        if t is ast.In:
            return v.contains(b, a, tz)
        if t is ast.NotIn:
            return _negate(v.contains(b, a, tz))
        if t is ast.Is:        # the compiler allows only `x is None`
            return v.is_empty(a)
        if t is ast.IsNot:     # and `x is not None`
            return not v.is_empty(a)
        raise ExpressionEvalError(f"operator {t.__name__} is not available")

    def _eval_compare(self, node: ast.Compare) -> Any:
        """Chained comparisons are the Kleene 'and' of each pair; each operand is evaluated once."""
        left = self._eval(node.left)
        result: Any = True
        for op, comparator in zip(node.ops, node.comparators):
            right = self._eval(comparator)
            r = self._compare(op, left, right)
            if r is False:
                return False
            if r is UNKNOWN:
                result = UNKNOWN
            left = right
        return result

    def _eval_ifexp(self, node: ast.IfExp) -> Any:
        t = v.truth(self._eval(node.test))
        if t is UNKNOWN:
            return UNKNOWN
        return self._eval(node.body) if t else self._eval(node.orelse)

    # ---- functions ----
    def _eval_call(self, node: ast.Call) -> Any:
        name = node.func.id
        fn = self.functions[name]
        args = [v.plain(self._eval(a)) for a in node.args]
        kwargs = {k.arg: v.plain(self._eval(k.value)) for k in node.keywords}
        if getattr(fn, "formwork_context", False):
            args.insert(0, self._ctx)
        return v.normalize(call_function(name, fn, args, kwargs))


# Only the node types the compiler admits; anything else is FeatureNotAvailable.
NODES: Mapping[type, Callable] = MappingProxyType({
    ast.Constant: lambda _self, node: node.value,   # FormworkEval._eval_constant
    ast.Name: FormworkEval._eval_name,
    ast.Attribute: FormworkEval._eval_attribute,
    ast.BinOp: FormworkEval._eval_binop,
    ast.UnaryOp: FormworkEval._eval_unaryop,
    ast.BoolOp: FormworkEval._eval_boolop,
    ast.Compare: FormworkEval._eval_compare,
    ast.IfExp: FormworkEval._eval_ifexp,
    ast.Call: FormworkEval._eval_call,
    ast.List: FormworkEval._eval_list,
    ast.Tuple: FormworkEval._eval_list,
})
# Result types that can never be a module or a forbidden function (SimpleEval's scan passes them).
_SAFE_RESULTS = frozenset({type(None), bool, int, float, str, bytes, complex, decimal.Decimal, datetime.date,
                           datetime.datetime, datetime.time, datetime.timedelta, type(UNKNOWN)})
_DECIMAL_CONTEXT = v.decimal_context()


def _is_forbidden(fn: Any) -> bool:
    return fn in DISALLOW_FUNCTIONS  # SimpleEval.__init__'s own test


from .closures import closure_of  # noqa: E402  (closures.py uses the names above)
