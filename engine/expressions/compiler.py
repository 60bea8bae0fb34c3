"""Compile time: parse once, check every node, name, path and function, infer the result type."""
from __future__ import annotations

import ast
import difflib
import keyword
import re
import inspect
from dataclasses import dataclass, field as dc_field
from datetime import datetime, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Callable, Mapping
from zoneinfo import ZoneInfo

from simpleeval import DISALLOW_FUNCTIONS

from ..clock import system_now
from ..metadata.model import SYSTEM_FIELDS
from . import values as v
from .errors import ExpressionError
from .closures import closure_of, computes
from .evaluator import FormworkEval, PathStep
from .functions import NUMERIC_TYPES, builtin_functions, common_type, element_type
from .values import EvalContext

# ---- compile-time limits ----------------------------------------------------------------------
MAX_SOURCE_LENGTH = 2000   # characters
MAX_NODES = 200            # expression nodes (names, constants, operators applications, calls …)
MAX_DEPTH = 100            # nesting depth of the syntax tree

RESULT_TYPES = ("integer", "decimal", "money", "percent", "text", "boolean", "date", "datetime")

# Field type → expression type. Unknown field types infer as None (no type).
FIELD_RESULT_TYPES: Mapping[str, str] = MappingProxyType({
    "integer": "integer", "int": "integer", "autoincrement": "integer",
    "decimal": "decimal", "number": "decimal", "float": "decimal",
    "money": "money", "currency": "money",
    "percent": "percent", "percentage": "percent",
    "text": "text", "string": "text", "textarea": "text", "longtext": "text", "richtext": "text",
    "markdown": "text", "email": "text", "phone": "text", "mobile": "text", "landline": "text",
    "wechat": "text", "url": "text", "select": "text", "stage": "text", "radio": "text", "autonumber": "text",
    "address": "text", "department": "text",
    "boolean": "boolean", "bool": "boolean", "checkbox": "boolean",
    "date": "date",
    "datetime": "datetime", "timestamp": "datetime",
    "multiselect": "list:text", "tags": "list:text",
})
SYSTEM_FIELD_TYPES: Mapping[str, str] = MappingProxyType({
    "id": "integer", "created_at": "datetime", "updated_at": "datetime", "version": "integer",
    "department": "text", "parent_id": "integer", "position": "integer",
})

# What `stage.<attribute>` reads from the current stage's definition, and its expression type.
STAGE_ATTRIBUTES: Mapping[str, str] = MappingProxyType({
    "probability": "percent", "label": "text", "outcome": "text", "position": "integer",
})


def last_but_one(i: int, path: tuple) -> bool:
    return i == len(path) - 2


_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
           ast.Pow: "**"}
_UNARYOPS = {ast.Not: "not", ast.USub: "-", ast.UAdd: "+"}
_CMPOPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
           ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"}
ALLOWED_NODES = frozenset({
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.BinOp, ast.UnaryOp, ast.Compare, ast.IfExp,
    ast.Call, ast.keyword, ast.Name, ast.Load, ast.Attribute, ast.Constant, ast.List, ast.Tuple,
    *_BINOPS, *_UNARYOPS, *_CMPOPS,
})
_DESCRIBE = {
    ast.Lambda: "lambda", ast.ListComp: "a comprehension", ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension", ast.GeneratorExp: "a generator expression",
    ast.NamedExpr: "assignment (:=)", ast.Subscript: "indexing with [...]", ast.Slice: "slicing",
    ast.Starred: "unpacking with *", ast.Dict: "a dict literal", ast.Set: "a set literal",
    ast.JoinedStr: "an f-string", ast.FormattedValue: "an f-string", ast.Await: "await",
    ast.Yield: "yield", ast.YieldFrom: "yield", ast.BitAnd: "operator &", ast.BitOr: "operator |",
    ast.BitXor: "operator ^", ast.LShift: "operator <<", ast.RShift: "operator >>",
    ast.Invert: "operator ~", ast.MatMult: "operator @", ast.Store: "assignment", ast.Del: "del",
}


def _describe(node: ast.AST) -> str:
    return _DESCRIBE.get(type(node), type(node).__name__)


# ---- the compiled expression ------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class CompiledExpression:
    """A parsed, checked expression; evaluate it as often as needed (thread-safe, immutable)."""

    source: str
    names: frozenset          # fields of the entity read directly or as the head of a path
    paths: frozenset          # dotted paths as tuples, e.g. ("customer", "created_at")
    functions_used: frozenset
    result_type: str | None   # one of RESULT_TYPES, or None when unknown
    entity_name: str | None = None
    tree: ast.expr = dc_field(default=None, repr=False)
    plans: Mapping = dc_field(default_factory=dict, repr=False)       # path → tuple[PathStep]
    functions: Mapping = dc_field(default_factory=dict, repr=False)   # only the functions used

    def __str__(self) -> str:
        return self.source

    def __repr__(self) -> str:
        return f"<CompiledExpression {self.source!r} → {self.result_type}>"

    def _run(self, record: Mapping | None, loader: Callable | None, now: datetime | None,
             tz: tzinfo | str | None, cache: dict | None) -> Any:
        evaluator = FormworkEval(self.source, self.plans, self.functions, record, loader,
                                 make_context(now, tz), cache)
        return evaluator.run(self.tree)

    def _runner(self, loader: Callable | None, now: datetime | None, tz: tzinfo | str | None) -> Callable:
        """``run(record)``: what ``_run(record, loader, now, tz, None)`` gives, with one evaluator and
        one context made here for every call (each call still gets its own cache and load count)."""
        evaluator = FormworkEval(self.source, self.plans, self.functions, None, loader,
                                 make_context(now, tz), None)
        closure, exact = closure_of(self.tree), computes(self.tree)
        run_closure = evaluator.run_closure
        empty: Mapping = MappingProxyType({})

        if not self.paths:  # nothing to load: no cache or load count to renew per call
            def run(record: Mapping | None) -> Any:
                evaluator._record = evaluator.names = empty if record is None else record
                return run_closure(closure, exact)

            return run

        def run(record: Mapping | None) -> Any:
            evaluator._record = evaluator.names = empty if record is None else record
            evaluator._cache = {}
            evaluator._loads = 0
            return run_closure(closure, exact)

        return run

    def bind(self, *, loader: Callable | None = None, now: datetime | None = None,
             tz: tzinfo | str | None = None) -> Callable[[Mapping | None], Any]:
        """``fn(record)`` = ``evaluate(record, loader=loader, now=now, tz=tz)``, for many records with
        the same loader, clock and timezone (an import's formulas and defaults); ``now`` defaults to
        the time of binding. One evaluator serves every call: bind once per batch and thread."""
        run = self._runner(loader, now, tz)
        plain = v.plain
        return lambda record: plain(run(record))

    def bind_holds(self, *, loader: Callable | None = None, now: datetime | None = None,
                   tz: tzinfo | str | None = None) -> Callable[[Mapping | None], bool]:
        """``fn(record)`` = ``holds(record, loader=loader, now=now, tz=tz)`` (see `bind`): for rules."""
        run = self._runner(loader, now, tz)
        truth = v.truth
        return lambda record: truth(run(record)) is not False

    def evaluate(self, record: Mapping | None = None, *, loader: Callable | None = None,
                 now: datetime | None = None, tz: tzinfo | str | None = None,
                 cache: dict | None = None) -> Any:
        """The value of the expression for `record` (None when empty or unknown).

        ``loader(entity_name, id) -> dict | None`` fetches referenced records for dotted paths;
        ``now`` freezes the clock (default: the current time); ``tz`` is the tenant timezone
        (a ZoneInfo or a name; default UTC) used by today() and date/datetime mixing; ``cache``
        (a dict) lets several evaluations share loaded records — by default each evaluation has
        its own.
        """
        return v.plain(self._run(record, loader, now, tz, cache))

    def truth(self, record: Mapping | None = None, *, loader: Callable | None = None,
              now: datetime | None = None, tz: tzinfo | str | None = None,
              cache: dict | None = None) -> bool | None:
        """The expression in a boolean context: True, False, or None for unknown."""
        return v.plain(v.truth(self._run(record, loader, now, tz, cache)))

    def holds(self, record: Mapping | None = None, **kwargs: Any) -> bool:
        """For rules: False only when the expression is definitely false; unknown passes."""
        return self.truth(record, **kwargs) is not False

    def matches(self, record: Mapping | None = None, **kwargs: Any) -> bool:
        """For criteria and conditions: True only when the expression is definitely true."""
        return self.truth(record, **kwargs) is True


def make_context(now: datetime | None = None, tz: tzinfo | str | None = None) -> EvalContext:
    """The EvalContext for an evaluation: `now` as UTC (naive counts as UTC), `tz` resolved."""
    return _make_context(now, tz)


def _make_context(now: datetime | None, tz: tzinfo | str | None) -> EvalContext:
    if tz is None:
        zone: tzinfo = timezone.utc
    elif isinstance(tz, str):
        zone = ZoneInfo(tz)
    else:
        zone = tz
    if now is None:
        now = system_now()
    return EvalContext(now=v.aware(now).astimezone(timezone.utc), tz=zone)


# ---- compiling --------------------------------------------------------------------------------
def compile_expression(source: Any, entity: Any = None, model: Any = None,
                       functions: Mapping[str, Callable] | None = None) -> CompiledExpression:
    """Parse and check `source` once; raise ExpressionError on anything invalid or unsafe.

    ``entity`` (an Entity, a subtable's row entity included) makes every name and path checked
    against its fields and system fields; ``model`` (a TenantModel) resolves references' ``to:``.
    ``functions`` extends the built-in set and overrides it by name (pass the merged result of
    the plugin hook, ``functions_from_plugins(pm)``).
    """
    if isinstance(source, bool):
        source = "True" if source else "False"
    elif isinstance(source, int):
        source = str(source)
    if not isinstance(source, str):
        raise ExpressionError(f"an expression must be text, not {type(source).__name__}")
    text = source.strip()
    if not text:
        raise ExpressionError("the expression is empty", source=source)
    if len(text) > MAX_SOURCE_LENGTH:
        raise ExpressionError(f"the expression is too long ({len(text)} characters, at most "
                              f"{MAX_SOURCE_LENGTH})", source=source)
    # Multi-line YAML scalars: one line, so columns are character positions in the whole text.
    text = text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("\t", " ")
    if "\x00" in text:
        raise ExpressionError("the expression contains a NUL character", source=source)
    parsable, quoted = _unquote_names(text)
    try:
        module = ast.parse(parsable, mode="eval")
    except SyntaxError as exc:
        raise _syntax_error(exc, text) from None
    except (RecursionError, MemoryError):
        raise ExpressionError("the expression is nested too deeply", source=text) from None
    if quoted:
        _restore_quoted(module, quoted)
    fns = builtin_functions()
    fns.update(functions or {})
    checker = _Checker(text, entity, model, fns)
    checker.scan(module)
    rtype = checker.check(module.body)
    return CompiledExpression(
        source=text,
        names=frozenset(checker.names),
        paths=frozenset(checker.paths),
        functions_used=frozenset(checker.functions_used),
        result_type=rtype if rtype in RESULT_TYPES else None,
        entity_name=getattr(entity, "name", None),
        tree=module.body,
        plans=dict(checker.plans),
        functions={n: fns[n] for n in checker.functions_used},
    )


# A field may be named after a Python keyword (an entity `order` with fields `from`, `to`, `in`):
# written in backticks, `from`, it becomes the same-length identifier _from_ for the parser (so
# columns stay right) and gets its real name back on the parsed node. Strings are skipped.
_QUOTED_OR_STRING = re.compile(r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`([^`]*)`""")
_QUOTABLE = re.compile(r"[a-z][a-z0-9_]*")
# Keywords that are never operators in expressions, so seeing one means a field name was meant.
_NAMED_KEYWORDS = tuple(k for k in keyword.kwlist if k.islower() and k not in ("and", "or", "not", "in", "is",
                                                                                "if", "else"))


def _unquote_names(text: str) -> tuple[str, set[int]]:
    """(text with each `name` as _name_, the UTF-8 offsets where they start, as ast reports them)."""
    if "`" not in text:
        return text, set()
    out: list[str] = []
    starts: set[int] = set()
    pos = 0
    for m in _QUOTED_OR_STRING.finditer(text):
        if not m.group(0).startswith("`"):
            continue
        name = m.group(1)
        if not _QUOTABLE.fullmatch(name):
            col = m.start() + 1
            raise ExpressionError(f"`{name}`: backticks hold one field name, as in `from` or "
                                  f"customer.`order` (column {col})", column=col, source=text)
        starts.add(len(text[:m.start()].encode("utf-8")))
        out.append(text[pos:m.start()] + "_" + name + "_")
        pos = m.end()
    return "".join(out) + text[pos:], starts


def _restore_quoted(module: ast.AST, starts: set[int]) -> None:
    """Give the _name_ identifiers made by _unquote_names their field names back."""
    for node in ast.walk(module):
        if isinstance(node, ast.Name) and node.col_offset in starts:
            node.id = node.id[1:-1]
        elif (isinstance(node, ast.Attribute) and node.end_col_offset is not None
              and node.end_col_offset - len(node.attr) in starts):
            node.attr = node.attr[1:-1]


def _syntax_error(exc: SyntaxError, text: str) -> ExpressionError:
    msg, col = exc.msg, exc.offset
    if not col or col > len(text):
        col = len(text) + 1
        if msg == "invalid syntax":
            msg = "the expression ends too early"
    hint = ""
    if re.search(r"(?<![=!<>])=(?!=)", text):
        hint = "; use == to compare"
    elif re.search(r"\b(?:" + "|".join(_NAMED_KEYWORDS) + r")\b", re.sub(r"`[^`]*`", "", text)):
        hint = "; write a field named after a keyword in backticks, as in `from`"
    return ExpressionError(f"syntax error: {msg}{hint} (column {col})", column=col, source=text)


def field_result_type(field: Any, name: str | None = None) -> str | None:
    """The expression type of a field's value (formula: `returns`, else its compiled type)."""
    if field is None:
        return SYSTEM_FIELD_TYPES.get(name or "")
    if getattr(field, "child", None) is not None:
        return "list:record"
    returns = getattr(field, "returns", None)
    if returns:
        return returns
    if field.type == "formula":
        expr = getattr(field, "expr", None)
        return expr.result_type if isinstance(expr, CompiledExpression) else None
    return FIELD_RESULT_TYPES.get(field.type)


class _Checker:
    """Walks the AST once for safety (scan) and once for meaning and types (check)."""

    def __init__(self, text: str, entity: Any, model: Any, functions: dict[str, Callable]):
        self.text = text
        self.entity = entity
        self.model = model
        self.functions = functions
        self.names: set[str] = set()
        self.paths: set[tuple] = set()
        self.functions_used: set[str] = set()
        self.plans: dict[tuple, tuple] = {}

    # ---- errors ----
    def column(self, node: ast.AST | None) -> int | None:
        offset = getattr(node, "col_offset", None)
        if offset is None:
            return None
        return len(self.text.encode("utf-8")[:offset].decode("utf-8", "replace")) + 1

    def name_column(self, node: ast.AST) -> int | None:
        """Where an attribute's name starts (the node itself starts at its object)."""
        if isinstance(node, ast.Attribute) and getattr(node, "end_col_offset", None) is not None:
            end = len(self.text.encode("utf-8")[:node.end_col_offset].decode("utf-8", "replace"))
            return end - len(node.attr) + 1
        return None

    def error(self, message: str, node: ast.AST | None = None, col: int | None = None) -> ExpressionError:
        col = col or self.column(node)
        where = f" (column {col})" if col else ""
        return ExpressionError(f"{message}{where}", column=col, source=self.text)

    # ---- pass 1: size, depth, node whitelist, reserved names (iterative: no recursion) ----
    def scan(self, module: ast.Expression) -> None:
        count = 0
        too_deep = False
        stack: list[tuple[ast.AST, int]] = [(module, 0)]
        while stack:
            node, depth = stack.pop()
            if isinstance(node, (ast.expr, ast.keyword)):
                count += 1
                if count > MAX_NODES:
                    raise self.error(f"the expression is too complex (more than {MAX_NODES} parts)")
            too_deep = too_deep or depth > MAX_DEPTH
            if type(node) not in ALLOWED_NODES:
                raise self.error(f"{_describe(node)} is not allowed in expressions", node)
            for name in _names_of(node):
                if name.startswith("_"):
                    raise self.error(f"the name '{name}' is not allowed: names starting with '_' "
                                     f"are reserved", node, self.name_column(node))
            stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
        if too_deep:
            raise self.error(f"the expression is nested too deeply (more than {MAX_DEPTH} levels)")

    # ---- pass 2: meaning and types (depth is bounded by scan) ----
    def check(self, node: ast.expr) -> str | None:
        handler = getattr(self, f"_check_{type(node).__name__}")
        return handler(node)

    def _check_Constant(self, node: ast.Constant) -> str | None:
        value = node.value
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "boolean"
        if isinstance(value, int):
            return "integer"
        if isinstance(value, float):
            node.value = self._decimal_literal(node)
            return "decimal"
        if isinstance(value, str):
            return "text"
        raise self.error(f"the literal {value!r} is not allowed (use numbers, text, True, False or "
                         f"None)", node)

    def _decimal_literal(self, node: ast.Constant) -> Decimal:
        segment = ast.get_source_segment(self.text, node) or repr(node.value)
        try:
            d = Decimal(segment)
        except InvalidOperation:
            d = Decimal(repr(node.value))
        if not d.is_finite():
            raise self.error(f"the number {segment} is out of range", node)
        if d.as_tuple().exponent > 0 and d.adjusted() < 28:
            d = d.quantize(Decimal(1))  # 1e3 → 1000
        return d

    def _check_List(self, node: ast.List | ast.Tuple) -> str | None:
        types = [self.check(e) for e in node.elts]
        inner = common_type(types)
        return f"list:{inner or ''}"

    _check_Tuple = _check_List

    def _check_BoolOp(self, node: ast.BoolOp) -> str:
        for value in node.values:
            self.check(value)
        return "boolean"

    def _check_UnaryOp(self, node: ast.UnaryOp) -> str | None:
        t = self.check(node.operand)
        if isinstance(node.op, ast.Not):
            return "boolean"
        return t if t in NUMERIC_TYPES else None

    def _check_IfExp(self, node: ast.IfExp) -> str | None:
        self.check(node.test)
        body, orelse = self.check(node.body), self.check(node.orelse)
        if body == orelse:
            return body
        if body == "null":
            return orelse
        if orelse == "null":
            return body
        return common_type([body, orelse])

    def _check_Compare(self, node: ast.Compare) -> str:
        for op, comparator in zip(node.ops, node.comparators):
            if isinstance(op, (ast.Is, ast.IsNot)):
                if len(node.ops) != 1 or not _is_none(comparator) or _is_none(node.left):
                    raise self.error("'is' is only allowed as 'x is None' or 'x is not None'", node)
        self.check(node.left)
        for comparator in node.comparators:
            self.check(comparator)
        return "boolean"

    def _check_BinOp(self, node: ast.BinOp) -> str | None:
        left, right = self.check(node.left), self.check(node.right)
        return binop_type(type(node.op), left, right)

    def _check_Call(self, node: ast.Call) -> str | None:
        if not isinstance(node.func, ast.Name):
            raise self.error("only functions can be called, like lower(name); methods such as "
                             "name.lower() are not available", node)
        name = node.func.id
        fn = self.functions.get(name)
        if fn is None:
            known = ", ".join(sorted(self.functions)) or "none"
            raise self.error(f"unknown function '{name}' (known functions: {known})", node)
        if not callable(fn) or _is_disallowed(fn):
            raise self.error(f"the function '{name}' is not allowed", node)
        for kw in node.keywords:
            if kw.arg is None:
                raise self.error("'**' arguments are not allowed", kw)
        self._check_arity(name, fn, node)
        types = [self.check(a) for a in node.args]
        for kw in node.keywords:
            self.check(kw.value)
        self.functions_used.add(name)
        declared = getattr(fn, "formwork_result_type", None)
        if callable(declared):
            try:
                return declared(types)
            except Exception:  # noqa: BLE001 - inference is best-effort
                return None
        return declared if isinstance(declared, str) else None

    def _check_arity(self, name: str, fn: Callable, node: ast.Call) -> None:
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            return
        params = list(sig.parameters.values())
        if getattr(fn, "formwork_context", False):
            params = params[1:]
        sig = sig.replace(parameters=params, return_annotation=inspect.Signature.empty)
        try:
            sig.bind(*([None] * len(node.args)), **{kw.arg: None for kw in node.keywords})
        except TypeError as exc:
            raise self.error(f"wrong arguments for {name}{_signature_text(params)}: {exc}",
                             node) from None

    def _check_Name(self, node: ast.Name) -> str | None:
        return self._path((node.id,), node)

    def _check_Attribute(self, node: ast.Attribute) -> str | None:
        parts: list[str] = []
        cur: ast.expr = node
        while isinstance(cur, ast.Attribute):
            parts.append(cur.attr)
            cur = cur.value
        if not isinstance(cur, ast.Name):
            raise self.error("'.' may only follow a field name, as in customer.name", node)
        parts.append(cur.id)
        return self._path(tuple(reversed(parts)), node)

    # ---- names and paths ----
    def _lookup(self, entity: Any, name: str) -> tuple[bool, Any]:
        """(found, field); field is None for a system field."""
        fields = getattr(entity, "fields", {}) or {}
        if name in fields:
            return True, fields[name]
        system = getattr(entity, "system_fields", SYSTEM_FIELDS)
        if name in system:
            return True, None
        return False, None

    def _unknown(self, entity: Any, name: str, node: ast.AST) -> ExpressionError:
        ent_name = getattr(entity, "name", "?")
        known = list(getattr(entity, "fields", {}) or {}) + list(getattr(entity, "system_fields",
                                                                         SYSTEM_FIELDS))
        hint = ""
        if name in self.functions:
            hint = f" (did you mean the function {name}()?)"
        else:
            close = difflib.get_close_matches(name, known, n=1)
            if close:
                hint = f" (did you mean '{close[0]}'?)"
        return self.error(f"unknown field '{name}' on {ent_name}{hint}", node)

    def _path(self, path: tuple, node: ast.AST) -> str | None:
        self.names.add(path[0])
        if len(path) > 1:
            self.paths.add(path)
        if self.entity is None:
            if len(path) > 1:
                self.plans[path] = tuple(PathStep(p, "dyn") for p in path)
            return None
        entity: Any = self.entity
        steps: list[PathStep] = []
        listy = False
        rtype: str | None = None
        for i, seg in enumerate(path):
            last = i == len(path) - 1
            if entity is None:   # past a reference whose entity we cannot see: unchecked
                steps.append(PathStep(seg, "dyn"))
                rtype = None
                continue
            found, fld = self._lookup(entity, seg)
            if not found:
                raise self._unknown(entity, seg, node)
            if last:
                steps.append(PathStep(seg, "value"))
                rtype = field_result_type(fld, seg)
                break
            nxt = path[i + 1]
            if fld is not None and fld.type == "reference" and getattr(fld, "to", None):
                steps.append(PathStep(seg, "ref", fld.to))
                if self.model is None:
                    entity = None
                else:
                    target = self.model.entities.get(fld.to)
                    if target is None:
                        raise self.error(f"'{seg}' on {entity.name} refers to unknown entity "
                                         f"'{fld.to}'", node)
                    entity = target
            elif fld is not None and fld.type == "stage" and last_but_one(i, path):
                stages = (getattr(fld, "settings", None) or {}).get("stages") or {}
                if nxt not in STAGE_ATTRIBUTES:
                    raise self.error(f"a stage has {', '.join(STAGE_ATTRIBUTES)}, not '{nxt}'", node)
                self.plans[path] = (PathStep(seg, "lookup", stages), PathStep(nxt, "value"))
                return STAGE_ATTRIBUTES[nxt]
            elif fld is not None and getattr(fld, "child", None) is not None:
                steps.append(PathStep(seg, "sub"))
                listy = True
                entity = fld.child
            else:
                kind = fld.type if fld is not None else "system"
                raise self.error(f"'{seg}' on {entity.name} is a {kind} field, not a reference or "
                                 f"subtable, so '{seg}.{nxt}' is not allowed", node)
        if len(path) > 1:
            self.plans[path] = tuple(steps)
        if listy:
            return f"list:{element_type(rtype) or ''}"
        return rtype


def _is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _is_disallowed(fn: Any) -> bool:
    try:
        return fn in DISALLOW_FUNCTIONS
    except TypeError:
        return True


def _names_of(node: ast.AST) -> tuple[str, ...]:
    if isinstance(node, ast.Name):
        return (node.id,)
    if isinstance(node, ast.Attribute):
        return (node.attr,)
    if isinstance(node, ast.keyword) and node.arg is not None:
        return (node.arg,)
    return ()


def _signature_text(params: list[inspect.Parameter]) -> str:
    parts = []
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            parts.append(f"*{p.name}")
        elif p.kind is p.VAR_KEYWORD:
            parts.append(f"**{p.name}")
        elif p.default is not p.empty:
            parts.append(f"{p.name}={p.default!r}")
        else:
            parts.append(p.name)
    return f"({', '.join(parts)})"


def binop_type(op: type, left: str | None, right: str | None) -> str | None:
    """Best-effort type of `left op right`."""
    num_l, num_r = left in NUMERIC_TYPES, right in NUMERIC_TYPES
    temporal = ("date", "datetime")
    if op in (ast.Add, ast.Sub):
        if num_l and num_r:
            return common_type([left, right])
        if left in temporal and right == "integer":
            return left
        if op is ast.Add:
            if left == "integer" and right in temporal:
                return right
            if left == right == "text":
                return "text"
        if op is ast.Sub and left in temporal and right in temporal:
            return "integer"
        return None
    if op is ast.Mult:
        if num_l and num_r:
            return common_type([left, right])
        if {left, right} == {"text", "integer"}:
            return "text"
        return None
    if not (num_l and num_r):
        return None
    if op is ast.Div:
        return "money" if left == "money" and right != "money" else "decimal"
    if op is ast.FloorDiv:
        return "integer"
    if op is ast.Mod:
        return common_type([left, right])
    if op is ast.Pow:
        return "integer" if left == right == "integer" else "decimal"
    return None


# ---- formulas ---------------------------------------------------------------------------------
def _formula_fields(entity: Any) -> dict[str, Any]:
    return {name: f for name, f in entity.fields.items()
            if f.type == "formula" or isinstance(getattr(f, "expr", None), CompiledExpression)}


def _order(deps: dict[str, list[str]], entity_name: str) -> list[str]:
    """Topological order keeping declaration order; ExpressionError naming a cycle."""
    done: list[str] = []
    state: dict[str, int] = {}   # 1 visiting, 2 done

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = trail[trail.index(name):] + [name]
            raise ExpressionError(f"formula cycle on {entity_name}: {' → '.join(cycle)}",
                                  field=cycle[0])
        state[name] = 1
        for dep in deps[name]:
            visit(dep, trail + [name])
        state[name] = 2
        done.append(name)

    for name in deps:
        visit(name, [])
    return done


def formula_order(entity: Any) -> list[str]:
    """The entity's formula fields in evaluation order: a formula comes after those it uses.

    Works on each formula's compiled ``expr.names`` (uncompiled formulas have no dependencies);
    raises ExpressionError naming the cycle, e.g. ``formula cycle on order: a → b → a``.
    Subtable row formulas are ordered separately with ``formula_order(field.child)`` and must be
    computed before the parent's formulas (which may aggregate them).
    """
    formulas = _formula_fields(entity)
    deps = {}
    for name, f in formulas.items():
        expr = getattr(f, "expr", None)
        used = expr.names if isinstance(expr, CompiledExpression) else ()
        deps[name] = [n for n in formulas if n in used]   # declaration order: deterministic
    return _order(deps, getattr(entity, "name", "?"))


def compile_formulas(entity: Any, sources: Mapping[str, str], model: Any = None,
                     functions: Mapping[str, Callable] | None = None) -> dict[str, CompiledExpression]:
    """Compile an entity's formulas {field: source} in dependency order and set each ``field.expr``.

    A formula without ``returns`` then infers its type from the formulas it uses. Raises
    ExpressionError (with ``.field`` set) on the first invalid formula or on a cycle. Returns the
    compiled expressions in evaluation order.
    """
    first: dict[str, CompiledExpression] = {}
    for name, source in sources.items():
        try:
            first[name] = compile_expression(source, entity, model, functions)
        except ExpressionError as exc:
            exc.field = name
            raise
    deps = {name: [n for n in sources if n in expr.names] for name, expr in first.items()}
    result: dict[str, CompiledExpression] = {}
    for name in _order(deps, getattr(entity, "name", "?")):
        compiled = compile_expression(sources[name], entity, model, functions)
        entity.fields[name].expr = compiled
        result[name] = compiled
    return result


def functions_from_plugins(pm: Any) -> dict[str, Callable]:
    """The expression functions of every plugin's ``formwork_expressions_functions``.

    Later-registered plugins win on a name clash (pluggy calls them first, so results are merged
    in reverse).
    """
    merged: dict[str, Callable] = {}
    for batch in reversed(pm.hook.formwork_expressions_functions()):
        merged.update(batch or {})
    return merged


__all__ = ["CompiledExpression", "compile_expression", "compile_formulas", "formula_order",
           "field_result_type", "functions_from_plugins", "make_context"]
