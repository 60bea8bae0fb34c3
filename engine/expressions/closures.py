"""A checked expression tree compiled once into nested Python closures, each doing what the
evaluator's handler for its node does (engine.expressions.evaluator.FormworkEval._eval_*).

Walking the tree costs a handler lookup and a bound-method call per node and evaluation; a formula
or rule runs for every record of an import, so `FormworkEval.run` calls the closure of the tree
instead (built on first use and kept on the tree). Each closure takes the evaluator (record,
context, loader, functions) and gives the value the handler would give, after the same check of
its result. Dotted paths go to the evaluator's own handler (loading, limits); any node type not
compiled here does too, so a new handler needs no entry here to stay correct.

The equality of both ways over many generated expressions is tested in tests/test_import_fast_paths.py.
"""
from __future__ import annotations

import ast
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Callable

from . import values as v
from .values import UNKNOWN

Closure = Callable[[Any], Any]
# Values a record field holds that normalize() keeps as they are and that are safe results.
_AS_READ = frozenset({str, int, bool, type(None), Decimal, date, datetime})


def closure_of(tree: ast.AST) -> Closure:
    """The closure of a checked tree, compiled on first use and kept on the tree node."""
    fn = tree.__dict__.get("_formwork_closure")
    if fn is None:
        fn = compile_node(tree)
        tree._formwork_closure = fn
    return fn


def computes(tree: ast.AST) -> bool:
    """Whether evaluating the tree may do arithmetic: an operator or a function call. Comparisons,
    truth, names, paths and constants only compare and read values (exact for Decimals, whatever
    the context)."""
    return any(isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Call)) for node in ast.walk(tree))


def compile_node(node: ast.AST) -> Closure:
    make = _COMPILERS.get(type(node))
    return make(node) if make is not None else _walked(node)


def _walked(node: ast.AST) -> Closure:
    """The evaluator's own handler (dotted paths and anything not compiled)."""
    return lambda ev: ev._eval(node)


def _checked(ev, result):
    """FormworkEval._eval's check of a node's result."""
    if type(result) not in SAFE_RESULTS:
        ev._check_disallowed_items(result)
    return result


def _constant(node: ast.Constant) -> Closure:
    value = node.value
    if type(value) not in SAFE_RESULTS:
        return _walked(node)
    return lambda ev: value


def _name(node: ast.Name) -> Closure:
    name = node.id

    def run(ev):
        record = ev._record
        if type(record) is dict:  # what _field and _checked would give a value of these types
            value = record.get(name)
            if type(value) in _AS_READ:
                return value
        return _checked(ev, ev._field(name))

    return run


def _binop(node: ast.BinOp) -> Closure:
    operator = BINARY_OPERATORS.get(type(node.op))
    if operator is None:
        return _walked(node)
    left, right = compile_node(node.left), compile_node(node.right)

    def run(ev):
        return _checked(ev, operator(left(ev), right(ev), ev._ctx.tz))

    return run


def _unaryop(node: ast.UnaryOp) -> Closure:
    operand = compile_node(node.operand)
    if isinstance(node.op, ast.Not):
        return lambda ev: _checked(ev, negate(v.truth(operand(ev))))
    if isinstance(node.op, ast.USub):
        return lambda ev: _checked(ev, v.neg(operand(ev)))
    return lambda ev: _checked(ev, v.pos(operand(ev)))


def _boolop(node: ast.BoolOp) -> Closure:
    deciding = not isinstance(node.op, ast.And)   # and: False decides; or: True decides
    values = [compile_node(x) for x in node.values]
    rest = UNKNOWN, (not deciding)

    def run(ev):
        unknown = False
        for value in values:
            t = v.truth(value(ev))
            if t is UNKNOWN:
                unknown = True
            elif t is deciding:
                return deciding
        return rest[0] if unknown else rest[1]

    return run


def _compare(node: ast.Compare) -> Closure:
    first = compile_node(node.left)
    pairs = [(op, compile_node(c)) for op, c in zip(node.ops, node.comparators)]

    def run(ev):
        left = first(ev)
        result: Any = True
        for op, comparator in pairs:
            right = comparator(ev)
            r = ev._compare(op, left, right)
            if r is False:
                return False
            if r is UNKNOWN:
                result = UNKNOWN
            left = right
        return _checked(ev, result)

    return run


def _ifexp(node: ast.IfExp) -> Closure:
    test, body, orelse = compile_node(node.test), compile_node(node.body), compile_node(node.orelse)

    def run(ev):
        t = v.truth(test(ev))
        if t is UNKNOWN:
            return UNKNOWN
        return _checked(ev, body(ev) if t else orelse(ev))

    return run


def _list(node: ast.List | ast.Tuple) -> Closure:
    elements = [compile_node(e) for e in node.elts]
    return lambda ev: _checked(ev, [v.plain(e(ev)) for e in elements])


def _call(node: ast.Call) -> Closure:
    if not isinstance(node.func, ast.Name):
        return _walked(node)
    name = node.func.id
    args = [compile_node(a) for a in node.args]
    kwargs = [(k.arg, compile_node(k.value)) for k in node.keywords]

    def run(ev):
        fn = ev.functions[name]
        values = [v.plain(a(ev)) for a in args]
        named = {k: v.plain(a(ev)) for k, a in kwargs}
        if getattr(fn, "formwork_context", False):
            values.insert(0, ev._ctx)
        return _checked(ev, v.normalize(call_function(name, fn, values, named)))

    return run


_COMPILERS: dict[type, Callable[[Any], Closure]] = {
    ast.Constant: _constant,
    ast.Name: _name,
    ast.BinOp: _binop,
    ast.UnaryOp: _unaryop,
    ast.BoolOp: _boolop,
    ast.Compare: _compare,
    ast.IfExp: _ifexp,
    ast.List: _list,
    ast.Tuple: _list,
    ast.Call: _call,
}

# Bound last: the evaluator module imports this one at its end.
from .evaluator import _SAFE_RESULTS as SAFE_RESULTS, BINARY_OPERATORS, _negate as negate, call_function  # noqa: E402
