"""The expression language: syntax, safety, empty-value semantics, numbers, dates, paths, formulas."""
from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pluggy
import pytest

from engine import hookspecs
from engine.expressions import (MAX_NODES, MAX_SOURCE_LENGTH, UNKNOWN, CompiledExpression,
                                ExpressionError, ExpressionEvalError, ExpressionLimitError,
                                builtin_functions, compile_expression, compile_formulas,
                                expression_function, formula_order, functions_from_plugins)
from engine.errors import FormworkError
from engine.metadata.model import Entity, Field, Label, TenantInfo, TenantModel
from engine.plugins import hookimpl

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2024, 5, 1, 20, 30, tzinfo=timezone.utc)  # 2024-05-02 04:30 in Shanghai


# ---- a small tenant model ---------------------------------------------------------------------
def F(name: str, type_: str, **kw) -> Field:
    return Field(name=name, type=type_, label=Label.of(name), **kw)


def E(name: str, *fields: Field, **kw) -> Entity:
    ent = Entity(name=name, label=Label.of(name), fields={f.name: f for f in fields}, **kw)
    for f in fields:
        f.entity = ent
    return ent


def build_model() -> TenantModel:
    customer = E("customer", F("name", "text"), F("level", "select"), F("phone", "phone"),
                 F("rating", "integer"), F("parent", "reference", to="customer"),
                 F("founded", "date"))
    product = E("product", F("name", "text"), F("price", "money"))
    lines = E("order__lines", F("product", "reference", to="product"), F("quantity", "integer"),
              F("unit_price", "money"), F("line_total", "formula", returns="money"),
              F("note", "text"))
    order = E("order", F("customer", "reference", to="customer"), F("amount", "money"),
              F("probability", "percent"), F("discount", "decimal"),
              F("lines", "subtable", child=lines), F("total", "formula", returns="money"),
              F("signed_on", "date"))
    lines.parent, lines.parent_field = order, "lines"
    followup = E("followup", F("customer", "reference", to="customer"), F("followup_date", "date"),
                 F("next_contact", "datetime"), F("notes", "textarea"))
    return TenantModel(tenant=TenantInfo(name="t", label=Label.of("t")), dictionaries={},
                       entities={e.name: e for e in (customer, product, order, followup)},
                       config={}, files=[], fingerprint="test")


@pytest.fixture
def model() -> TenantModel:
    return build_model()


def ev(source: str, record: dict | None = None, **kw):
    kw.setdefault("now", NOW)
    return compile_expression(source).evaluate(record or {}, **kw)


# ---- the seed rules ---------------------------------------------------------------------------
@pytest.mark.parametrize("record, passes", [
    ({"level": "A", "phone": None}, False),
    ({"level": "A", "phone": ""}, False),
    ({"level": "A", "phone": "+86-138-0000-0000"}, True),
    ({"level": "B", "phone": None}, True),
    ({"level": None, "phone": None}, True),      # unknown: rules pass like a SQL CHECK
    ({}, True),
])
def test_r12_rule_a_customer_needs_phone(model, record, passes):
    rule = compile_expression("level != 'A' or phone", model.entities["customer"], model)
    assert rule.holds(record) is passes
    assert rule.result_type == "boolean"
    assert rule.names == {"level", "phone"}


def test_r12_rule_unknown_reported_as_none(model):
    rule = compile_expression("level != 'A' or phone", model.entities["customer"], model)
    assert rule.evaluate({"level": None}) is None
    assert rule.truth({"level": None}) is None
    assert rule.evaluate({"level": "A"}) is False
    assert rule.matches({"level": None}) is False


def test_r19_followup_not_before_customer_created(model):
    rule = compile_expression("followup_date >= customer.created_at", model.entities["followup"], model)
    assert rule.paths == {("customer", "created_at")}
    assert rule.names == {"followup_date", "customer"}
    customers = {7: {"id": 7, "name": "Acme", "created_at": datetime(2024, 3, 1, 17, 0, tzinfo=timezone.utc)}}
    calls = []

    def loader(entity, id_):
        calls.append((entity, id_))
        return customers.get(id_)

    # created 2024-03-01 17:00 UTC = 2024-03-02 01:00 in Shanghai: the creation *day* is 03-02
    kw = {"loader": loader, "tz": SHANGHAI}
    assert rule.holds({"followup_date": date(2024, 3, 2), "customer": 7}, **kw) is True
    assert rule.holds({"followup_date": date(2024, 3, 1), "customer": 7}, **kw) is False
    assert rule.holds({"followup_date": date(2024, 3, 1), "customer": 7}, loader=loader, tz="UTC")
    # no customer, or a dangling reference: unknown, passes
    assert rule.holds({"followup_date": date(2024, 3, 1), "customer": None}, **kw) is True
    assert rule.holds({"followup_date": date(2024, 3, 1), "customer": 99}, **kw) is True
    assert all(c[0] == "customer" for c in calls)


def test_r19_loader_cached_within_one_evaluation(model):
    expr = compile_expression("concat(customer.name, '/', customer.level, '/', customer.parent.name)",
                              model.entities["followup"], model)
    calls = []
    data = {1: {"name": "Acme", "level": "A", "parent": 2}, 2: {"name": "Holding", "parent": None}}

    def loader(entity, id_):
        calls.append(id_)
        return data.get(id_)

    assert expr.evaluate({"customer": 1}, loader=loader) == "Acme/A/Holding"
    assert calls == [1, 2]
    cache: dict = {}
    expr.evaluate({"customer": 1}, loader=loader, cache=cache)
    expr.evaluate({"customer": 1}, loader=loader, cache=cache)
    assert calls == [1, 2, 1, 2]   # the shared cache served the second evaluation


def test_path_through_empty_reference_is_none(model):
    expr = compile_expression("customer.parent.name", model.entities["followup"], model)
    loader = {1: {"parent": None}}.get
    assert expr.evaluate({"customer": 1}, loader=lambda e, i: loader(i)) is None
    assert expr.evaluate({"customer": None}) is None   # no load needed
    assert expr.result_type == "text"


def test_reference_given_as_expanded_mapping(model):
    expr = compile_expression("customer.name", model.entities["followup"], model)
    assert expr.evaluate({"customer": {"id": 1, "name": "Acme"}}) == "Acme"
    assert expr.evaluate({"customer": {"id": 1}}, loader=lambda e, i: {"name": "Loaded"}) == "Loaded"


def test_path_needs_a_loader(model):
    expr = compile_expression("customer.name", model.entities["followup"], model)
    with pytest.raises(ExpressionEvalError, match="loader"):
        expr.evaluate({"customer": 1})


def test_path_without_model_uses_reference_target(model):
    expr = compile_expression("customer.parent.name", model.entities["followup"])  # no model
    seen = []

    def loader(entity, id_):
        seen.append(entity)
        return {"parent": {"name": "Top"}}

    assert expr.evaluate({"customer": 3}, loader=loader) == "Top"
    assert seen == ["customer"]


# ---- formulas and subtables -------------------------------------------------------------------
def test_r32_line_total_formula_is_money(model):
    lines = model.entities["order"].fields["lines"].child
    expr = compile_expression("quantity * unit_price", lines, model)
    assert expr.result_type == "money"
    assert expr.evaluate({"quantity": 3, "unit_price": Decimal("19.90")}) == Decimal("59.70")
    assert expr.evaluate({"quantity": None, "unit_price": Decimal("19.90")}) is None


def test_subtable_aggregates(model):
    order = model.entities["order"]
    rows = [{"line_total": Decimal("10.50")}, {"line_total": None}, {"line_total": 4}, {}]
    total = compile_expression("sum(lines.line_total)", order, model)
    assert total.result_type == "money"
    assert total.evaluate({"lines": rows}) == Decimal("14.50")
    assert total.evaluate({"lines": []}) == 0
    assert total.evaluate({"lines": None}) == 0
    assert total.evaluate({}) == 0
    assert compile_expression("len(lines)", order, model).evaluate({"lines": rows}) == 4
    assert compile_expression("len(lines)", order, model).evaluate({"lines": []}) == 0
    assert compile_expression("len(lines)", order, model).result_type == "integer"
    assert compile_expression("count(lines.line_total)", order, model).evaluate({"lines": rows}) == 2
    assert compile_expression("avg(lines.line_total)", order, model).evaluate({"lines": rows}) == \
        Decimal("7.25")
    assert compile_expression("avg(lines.line_total)", order, model).evaluate({"lines": []}) is None
    assert compile_expression("max(lines.line_total)", order, model).evaluate({"lines": rows}) == \
        Decimal("10.50")
    assert compile_expression("min(lines.line_total)", order, model).evaluate({"lines": rows}) == 4
    assert compile_expression("min(lines.line_total)", order, model).evaluate({"lines": []}) is None
    assert compile_expression("lines.line_total", order, model).evaluate({"lines": rows}) == \
        [Decimal("10.50"), None, 4, None]


def test_subtable_projection_through_reference(model):
    order = model.entities["order"]
    expr = compile_expression("sum(lines.product.price)", order, model)
    assert expr.result_type == "money"
    prices = {1: {"price": Decimal("2.5")}, 2: {"price": Decimal("4")}}
    calls = []

    def loader(entity, id_):
        calls.append((entity, id_))
        return prices.get(id_)

    rows = [{"product": 1}, {"product": 2}, {"product": 1}, {"product": None}, {"product": 3}]
    assert expr.evaluate({"lines": rows}, loader=loader) == Decimal("9.0")
    assert calls == [("product", 1), ("product", 2), ("product", 3)]


def test_record_load_limit(model):
    expr = compile_expression("count(lines.product.price)", model.entities["order"], model)
    rows = [{"product": i} for i in range(1100)]
    with pytest.raises(ExpressionLimitError, match="load"):
        expr.evaluate({"lines": rows}, loader=lambda e, i: {"price": 1})


def test_r5_r30_weighted_pipeline_amount(model):
    expr = compile_expression("amount * probability / 100", model.entities["order"], model)
    assert expr.result_type == "money"
    assert expr.evaluate({"amount": Decimal("120000.00"), "probability": 80}) == Decimal("96000")


def test_formula_order_and_cycles(model):
    order = model.entities["order"]
    order.fields["net"] = F("net", "formula")
    order.fields["tax"] = F("tax", "formula")
    order.fields["total"].expr = compile_expression("net + tax", order, model)
    order.fields["net"].expr = compile_expression("sum(lines.line_total) * (1 - discount)", order, model)
    order.fields["tax"].expr = compile_expression("net * 0.13", order, model)
    assert formula_order(order) == ["net", "tax", "total"]
    order.fields["net"].expr = compile_expression("total - tax", order, model)
    with pytest.raises(ExpressionError, match=r"formula cycle on order: (total → net → total|"
                                              r"net → total → net)") as info:
        formula_order(order)
    assert info.value.field in ("total", "net")
    order.fields["net"].expr = compile_expression("net + 1", order, model)
    with pytest.raises(ExpressionError, match="net → net"):
        formula_order(order)


def test_compile_formulas_infers_formula_of_formula_types(model):
    order = model.entities["order"]
    order.fields["net"] = F("net", "formula")
    order.fields["gross"] = F("gross", "formula")
    compiled = compile_formulas(order, {"gross": "net * 1.13", "net": "amount - 10"}, model)
    assert list(compiled) == ["net", "gross"]
    assert order.fields["net"].expr.result_type == "money"
    assert order.fields["gross"].expr.result_type == "money"
    assert order.fields["gross"].expr is compiled["gross"]
    with pytest.raises(ExpressionError) as info:
        compile_formulas(order, {"net": "nope + 1"}, model)
    assert info.value.field == "net"
    with pytest.raises(ExpressionError, match="cycle"):
        compile_formulas(order, {"net": "gross", "gross": "net"}, model)


# ---- operators --------------------------------------------------------------------------------
@pytest.mark.parametrize("source, expected", [
    ("1 + 2", 3), ("5 - 7", -2), ("6 * 7", 42), ("7 / 2", Decimal("3.5")), ("6 / 3", Decimal(2)),
    ("7 // 2", 3), ("-7 // 2", -4), ("7.5 // 2", 3), ("7 % 3", 1), ("-7 % 3", 2),
    ("7.5 % 2", Decimal("1.5")), ("2 ** 10", 1024), ("2 ** -1", Decimal("0.5")), ("-3", -3),
    ("+3", 3), ("-(2 - 5)", 3), ("1 + 2 * 3", 7), ("(1 + 2) * 3", 9),
    ("'ab' + 'cd'", "abcd"), ("'ab' * 3", "ababab"), ("[1] + [2]", [1, 2]),
    ("1 == 1", True), ("1 == 1.0", True), ("1 != 2", True), ("2 < 3", True), ("3 <= 3", True),
    ("3 > 4", False), ("4 >= 5", False), ("'a' < 'b'", True), ("'a' == 1", False),
    ("1 < 2 < 3", True), ("1 < 3 < 2", False), ("3 > 2 > 1 > 0", True),
    ("'b' in ['a', 'b']", True), ("'c' in ('a', 'b')", False), ("'c' not in ['a']", True),
    ("'ell' in 'hello'", True), ("'x' not in 'hello'", True), ("2 in [1, 2.0]", True),
    ("True and False", False), ("True or False", True), ("not True", False), ("not 0", True),
    ("1 and 'x'", True), ("0 or ''", False),
    ("'yes' if 1 > 0 else 'no'", "yes"), ("'yes' if 1 < 0 else 'no'", "no"),
    ("None", None), ("True", True), ("[1, 'a', None]", [1, "a", None]),
])
def test_operators(source, expected):
    result = ev(source)
    assert result == expected and type(result) is type(expected)


def test_decimal_literals_are_exact():
    assert ev("0.1 + 0.2") == Decimal("0.3")
    assert isinstance(ev("0.1 + 0.2"), Decimal)
    assert ev("0.1 + 0.2 == 0.3") is True
    assert ev("1e3") == 1000 and isinstance(ev("1e3"), Decimal)
    assert ev("1 / 3") == Decimal(1) / Decimal(3)
    assert ev("19.99 * 3") == Decimal("59.97")
    assert ev("x * 2", {"x": 0.1}) == Decimal("0.2")   # a stray float from a record becomes Decimal
    assert ev("x + 1", {"x": Decimal("2.50")}) == Decimal("3.50")


@pytest.mark.parametrize("source", ["1 / 0", "1.5 / 0", "7 // 0", "7 % 0", "0 ** -1", "x / y"])
def test_division_by_zero_is_empty(source):
    assert ev(source, {"x": 1, "y": 0}) is None


def test_round_and_abs():
    assert ev("round(2.5)") == 3 and isinstance(ev("round(2.5)"), int)
    assert ev("round(-2.5)") == -3
    assert ev("round(2.345, 2)") == Decimal("2.35")
    assert ev("round(2.5, n=0)") == 3
    assert ev("round(1234, -2)") == 1200
    assert ev("round(1250, -2)") == 1300
    assert ev("round(x, 2)", {"x": None}) is None
    assert ev("abs(-3.5)") == Decimal("3.5")
    assert ev("abs(x)") is None


def test_text_functions():
    assert ev("lower('ABC')") == "abc"
    assert ev("upper(x)", {"x": "abc"}) == "ABC"
    assert ev("upper(x)") is None
    assert ev("trim('  a ')") == "a"
    assert ev("contains('有限公司', '公司')") is True
    assert ev("contains(tags, 'vip')", {"tags": ["vip", "new"]}) is True
    assert ev("contains(x, 'a')") is None
    assert ev("startswith('+86-138', '+86')") is True
    assert ev("endswith('Acme Ltd', 'Ltd')") is True
    assert ev("startswith(x, 'a')") is None
    assert ev("concat(name, ' (', city, ')')", {"name": "Acme", "city": None}) == "Acme ()"
    assert ev("concat('n', 1, 2.50, True)") == "n12.50true"
    assert ev("len('客户')") == 2
    assert ev("coalesce(a, b, 'none')", {"a": None, "b": ""}) == "none"
    assert ev("coalesce(a, b)", {"a": None, "b": 0}) == 0
    assert ev("coalesce(a)") is None
    assert ev("is_empty(a) and is_filled(b)", {"a": [], "b": 0}) is True


def test_aggregates_over_arguments():
    assert ev("sum(1, 2.5, x)") == Decimal("3.5")
    assert ev("max(1, 5, 3)") == 5
    assert ev("min('b', 'a')") == "a"
    assert ev("count(a, b, c)", {"a": 1, "b": "", "c": None}) == 1
    assert ev("sum(x)", {"x": [1, 2, None]}) == 3
    assert ev("max(a, b)", {"a": date(2024, 1, 1), "b": date(2024, 2, 1)}) == date(2024, 2, 1)


# ---- empty-value semantics --------------------------------------------------------------------
@pytest.mark.parametrize("source, expected", [
    ("x + 1", None), ("x - 1", None), ("x * 2", None), ("x / 2", None), ("-x", None),
    ("x ** 2", None), ("x + 'a'", None),
    ("x == 1", None), ("x != 1", None), ("x < 1", None), ("1 >= x", None), ("x == x", None),
    ("x in [1, 2]", None), ("'a' in x", None), ("x not in [1]", None), ("1 < x < 3", None),
    ("x is None", True), ("x is not None", False), ("e is None", True), ("l is None", True),
    ("not x", True), ("x and True", False), ("x or True", True), ("x or False", False),
    ("(x > 1) and True", None), ("(x > 1) and False", False), ("(x > 1) or True", True),
    ("(x > 1) or False", None), ("not (x > 1)", None), ("(x > 1) and (x > 2)", None),
    ("1 if x > 0 else 2", None), ("1 if x else 2", 2), ("1 if not x else 2", 1),
    ("len(x)", 0), ("sum(x)", 0), ("count(x)", 0), ("max(x)", None), ("coalesce(x, 5)", 5),
    ("year(x)", None), ("days_between(x, today())", None), ("lower(x)", None),
])
def test_empty_semantics(source, expected):
    result = ev(source, {"x": None, "e": "", "l": []})
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize("a, b, and_, or_", [
    ("t", "t", True, True), ("t", "f", False, True), ("t", "u", None, True),
    ("f", "f", False, False), ("f", "u", False, None), ("u", "u", None, None),
    ("u", "f", False, None), ("u", "t", None, True),
])
def test_kleene_three_valued_logic(a, b, and_, or_):
    values = {"t": "(1 == 1)", "f": "(1 == 2)", "u": "(x == 1)"}
    assert ev(f"{values[a]} and {values[b]}") is and_
    assert ev(f"{values[a]} or {values[b]}") is or_


def test_bare_values_in_boolean_context():
    assert ev("x or y", {"x": 0, "y": ""}) is False
    assert ev("x and y", {"x": "a", "y": [1]}) is True
    assert ev("not x", {"x": Decimal("0.00")}) is True
    rule = compile_expression("phone")
    assert rule.holds({"phone": None}) is False   # a bare empty value is "not filled"
    assert rule.holds({"phone": "1"}) is True
    assert rule.evaluate({"phone": None}) is None
    assert compile_expression("amount > 0").holds({"amount": None}) is True   # unknown passes
    assert compile_expression("amount > 0").matches({"amount": None}) is False


def test_and_or_short_circuit():
    calls = []

    @expression_function(result_type="boolean")
    def spy(v):
        calls.append(v)
        return v

    expr = compile_expression("a > 1 and spy(a)", functions={"spy": spy})
    assert expr.evaluate({"a": 0}) is False and calls == []
    assert compile_expression("a or spy(a)", functions={"spy": spy}).evaluate({"a": 1}) is True
    assert calls == []


# ---- dates ------------------------------------------------------------------------------------
def test_now_and_today_in_tenant_timezone():
    assert ev("now()") == NOW
    assert ev("now()").tzinfo is not None
    assert ev("today()", tz=SHANGHAI) == date(2024, 5, 2)
    assert ev("today()", tz="UTC") == date(2024, 5, 1)
    assert ev("today()", now=datetime(2024, 5, 1, 20, 30)) == date(2024, 5, 1)   # naive = UTC
    assert compile_expression("today()").result_type == "date"
    assert compile_expression("now()").result_type == "datetime"
    live = compile_expression("now()").evaluate({})
    assert abs(live - datetime.now(timezone.utc)) < timedelta(seconds=5)


def test_date_and_datetime_comparison():
    at = datetime(2024, 5, 1, 17, 0, tzinfo=timezone.utc)   # 2024-05-02 01:00 in Shanghai
    rec = {"d": date(2024, 5, 2), "t": at}
    assert ev("d == t", rec, tz=SHANGHAI) is True
    assert ev("d > t", rec, tz="UTC") is True
    assert ev("t < d", rec, tz="UTC") is True
    assert ev("d >= t and t <= d", rec, tz=SHANGHAI) is True
    assert ev("t < now()", rec) is True
    assert ev("t == n", {"t": at, "n": datetime(2024, 5, 1, 17, 0)}) is True   # naive = UTC
    assert ev("d in [t]", rec, tz=SHANGHAI) is True


def test_days_between_and_date_arithmetic():
    rec = {"a": date(2024, 1, 30), "b": date(2024, 3, 1),
           "s": datetime(2024, 1, 1, 23, 0, tzinfo=timezone.utc),
           "e": datetime(2024, 1, 2, 1, 0, tzinfo=timezone.utc)}
    assert ev("days_between(a, b)", rec) == 31
    assert ev("days_between(b, a)", rec) == -31
    assert ev("days_between(s, e)", rec, tz="UTC") == 1
    assert ev("days_between(s, e)", rec, tz=SHANGHAI) == 0     # both on 01-02 in Shanghai
    assert ev("days_between(a, e)", rec, tz="UTC") == -28      # mixed date and datetime
    assert ev("hours_between(s, e)", rec) == 2
    assert ev("minutes_between(e, s)", rec) == -120
    assert ev("b - a", rec) == 31
    assert ev("a + 2", rec) == date(2024, 2, 1)
    assert ev("a - 30", rec) == date(2023, 12, 31)
    assert ev("add_days(a, 7)", rec) == date(2024, 2, 6)
    assert ev("add_months(a, 1)", rec) == date(2024, 2, 29)
    assert ev("add_months(a, 6)", rec) == date(2024, 7, 30)
    assert ev("year(a) * 100 + month(a)", rec) == 202401
    assert ev("day(s)", rec, tz=SHANGHAI) == 2
    assert ev("weekday(a)", rec) == 2   # Tuesday
    assert compile_expression("days_between(a, b)").result_type == "integer"
    assert compile_expression("today() + 7").result_type == "date"


def test_r24_lead_contacted_within_30_minutes():
    rule = compile_expression("minutes_between(created_at, first_contact_at) <= 30")
    created = datetime(2024, 5, 1, 9, 0, tzinfo=timezone.utc)
    assert rule.holds({"created_at": created, "first_contact_at": created + timedelta(minutes=29)})
    assert not rule.holds({"created_at": created, "first_contact_at": created + timedelta(minutes=31)})
    assert rule.holds({"created_at": created, "first_contact_at": None})


def test_r15_next_contact_default_in_a_week():
    default = compile_expression("today() + 7")
    assert default.evaluate({}, now=NOW, tz=SHANGHAI) == date(2024, 5, 9)


# ---- checking at compile time -----------------------------------------------------------------
@pytest.mark.parametrize("source, name", [
    ("__class__", "__class__"),
    ("().__class__", "__class__"),
    ("x.__dict__", "__dict__"),
    ("lines._x", "_x"),
    ("_private + 1", "_private"),
    ("round(1, _n=2)", "_n"),
    ("''.__class__.__mro__", "__mro__"),
])
def test_underscore_names_rejected(model, source, name):
    with pytest.raises(ExpressionError, match="not allowed") as info:
        compile_expression(source)
    assert f"'{name}'" in str(info.value)
    with pytest.raises(ExpressionError, match="not allowed"):
        compile_expression(source, model.entities["order"], model)


@pytest.mark.parametrize("source, fragment", [
    ("lambda: 1", "lambda"),
    ("[x for x in lines]", "comprehension"),
    ("(y := 1)", "assignment"),
    ("lines[0]", "indexing"),
    ("'abc'[1:]", "indexing"),
    ("{'a': 1}", "dict"),
    ("{1, 2}", "set"),
    ("f'{x}'", "f-string"),
    ("1 | 2", "operator |"),
    ("~1", "operator ~"),
    ("1 << 2", "operator <<"),
    ("max(*x)", "unpacking"),
    ("max(**x)", "not allowed"),
    ("x.lower()", "methods"),
    ("(a + b).c", "follow a field name"),
    ("x is 1", "'x is None'"),
    ("None is x", "'x is None'"),
    ("b'bytes'", "not allowed"),
    ("1j", "not allowed"),
    ("...", "not allowed"),
])
def test_disallowed_syntax(source, fragment):
    with pytest.raises(ExpressionError) as info:
        compile_expression(source)
    assert fragment in str(info.value)


@pytest.mark.parametrize("source, fragment", [
    ("1 +", "ends too early"),
    ("a b", "column 3"),
    ("level = 'A'", "use =="),
    ("'abc", "unterminated string"),
    ("", "empty"),
    ("   ", "empty"),
])
def test_syntax_errors_say_what_and_where(source, fragment):
    with pytest.raises(ExpressionError) as info:
        compile_expression(source)
    assert fragment in str(info.value)


def test_syntax_error_carries_column():
    with pytest.raises(ExpressionError) as info:
        compile_expression("a and or b")
    assert info.value.column == 7
    assert isinstance(info.value, FormworkError)


def test_unknown_names_are_named(model):
    customer = model.entities["customer"]
    with pytest.raises(ExpressionError, match="unknown field 'foo' on customer"):
        compile_expression("foo > 1", customer, model)
    with pytest.raises(ExpressionError, match="did you mean 'phone'"):
        compile_expression("phon", customer, model)
    with pytest.raises(ExpressionError, match=r"did you mean the function today\(\)"):
        compile_expression("founded < today", customer, model)
    with pytest.raises(ExpressionError, match="unknown field 'nope' on customer"):
        compile_expression("customer.nope", model.entities["followup"], model)
    with pytest.raises(ExpressionError, match="unknown field 'nope' on order__lines"):
        compile_expression("sum(lines.nope)", model.entities["order"], model)
    with pytest.raises(ExpressionError, match="unknown field 'x' on customer"):
        compile_expression("customer.parent.x", model.entities["followup"], model)


def test_unknown_function_lists_known_ones():
    with pytest.raises(ExpressionError, match="unknown function 'frobnicate'") as info:
        compile_expression("frobnicate(1)")
    assert "days_between" in str(info.value) and "today" in str(info.value)


def test_function_arguments_checked():
    with pytest.raises(ExpressionError, match=r"days_between\(a, b\)"):
        compile_expression("days_between(today())")
    with pytest.raises(ExpressionError, match="round"):
        compile_expression("round(1, 2, 3)")
    with pytest.raises(ExpressionError, match="round"):
        compile_expression("round(1, digits=2)")


def test_attribute_on_plain_field_rejected(model):
    with pytest.raises(ExpressionError, match="'phone' on customer is a phone field") as info:
        compile_expression("phone.number", model.entities["customer"], model)
    assert "not a reference or subtable" in str(info.value)
    with pytest.raises(ExpressionError, match="'owner' on customer is a system field"):
        compile_expression("owner.name", model.entities["customer"], model)


def test_reference_to_unknown_entity(model):
    model.entities["customer"].fields["ghost"] = F("ghost", "reference", to="nowhere")
    with pytest.raises(ExpressionError, match="unknown entity 'nowhere'"):
        compile_expression("ghost.name", model.entities["customer"], model)


def test_system_fields_are_known(model):
    expr = compile_expression("created_at < now() and version >= 1 and id > 0",
                              model.entities["customer"], model)
    assert expr.names == {"created_at", "version", "id"}
    lines = model.entities["order"].fields["lines"].child
    assert compile_expression("position + 1", lines, model).result_type == "integer"
    with pytest.raises(ExpressionError, match="unknown field 'owner' on order__lines"):
        compile_expression("owner", lines, model)


def test_introspection_attributes(model):
    expr = compile_expression("days_between(customer.created_at, followup_date) > 3 and len(notes) > 0",
                              model.entities["followup"], model)
    assert isinstance(expr, CompiledExpression)
    assert expr.source.startswith("days_between")
    assert expr.names == {"customer", "followup_date", "notes"}
    assert expr.paths == {("customer", "created_at")}
    assert expr.functions_used == {"days_between", "len"}


@pytest.mark.parametrize("source, entity, rtype", [
    ("rating * 20", "customer", "integer"),
    ("rating / 2", "customer", "decimal"),
    ("rating // 2", "customer", "integer"),
    ("amount * 2", "order", "money"),
    ("amount * discount", "order", "money"),
    ("amount / amount", "order", "decimal"),
    ("-amount", "order", "money"),
    ("sum(lines.line_total)", "order", "money"),
    ("avg(lines.quantity)", "order", "decimal"),
    ("max(lines.unit_price)", "order", "money"),
    ("round(amount, 2)", "order", "money"),
    ("round(discount)", "order", "integer"),
    ("coalesce(amount, 0)", "order", "money"),
    ("total", "order", "money"),
    ("amount if amount > 0 else None", "order", "money"),
    ("probability + 10", "order", "percent"),
    ("name + '!'", "customer", "text"),
    ("upper(name)", "customer", "text"),
    ("not phone", "customer", "boolean"),
    ("signed_on - 1", "order", "date"),
    ("signed_on - today()", "order", "integer"),
    ("created_at", "order", "datetime"),
    ("customer.founded", "order", "date"),
    ("lines.line_total", "order", None),
    ("customer", "order", None),
    ("level if rating else name", "customer", "text"),
    ("1 if rating else 'x'", "customer", None),
])
def test_result_type_inference(model, source, entity, rtype):
    assert compile_expression(source, model.entities[entity], model).result_type == rtype


def test_node_count_and_length_bounds():
    compile_expression(" + ".join(["1"] * 90))
    with pytest.raises(ExpressionError, match=f"too complex.*{MAX_NODES}"):
        compile_expression(" + ".join(["1"] * 150))
    with pytest.raises(ExpressionError, match="too long"):
        compile_expression("1" + " " * MAX_SOURCE_LENGTH + "+ 1")
    with pytest.raises(ExpressionError, match="nested too deeply"):
        compile_expression("-" * 150 + "1")
    with pytest.raises(ExpressionError):
        compile_expression("(" * 500 + "1" + ")" * 500)


def test_multiline_source():
    expr = compile_expression("level != 'A'\n  or phone")
    assert expr.holds({"level": "A", "phone": "1"})


# ---- run-time safety --------------------------------------------------------------------------
@pytest.mark.parametrize("source", [
    "'a' * 10 ** 9",
    "'ab' * 60000",
    "[1, 2] * 100000000",
    "2 ** 10 ** 10",
    "9 ** 9 ** 9",
    "(10 ** 300) ** 300",
    "1.5 ** 1000000000",
    "s + s",
    "concat(s, s)",
])
def test_huge_results_refused_quickly(source):
    started = time.monotonic()
    with pytest.raises(ExpressionLimitError):
        ev(source, {"s": "x" * 60000})
    assert time.monotonic() - started < 1.0


def test_runtime_type_errors_are_expression_errors():
    with pytest.raises(ExpressionEvalError, match="cannot compare text with integer"):
        ev("name < 3", {"name": "a"})
    with pytest.raises(ExpressionEvalError, match="cannot use \\+ with text and integer"):
        ev("name + 3", {"name": "a"})
    with pytest.raises(ExpressionEvalError, match=r"len\(\) needs text or a list"):
        ev("len(5)")
    with pytest.raises(ExpressionEvalError, match=r"sum\(\) needs numbers"):
        ev("sum(['a'])")
    with pytest.raises(ExpressionEvalError) as info:
        ev("d + 1.5", {"d": date(2024, 1, 1)})
    assert "d + 1.5" in str(info.value)   # the message names the expression


def test_no_attribute_escapes_at_run_time():
    class Secret:
        token = "s3cr3t"

    with pytest.raises(ExpressionEvalError, match="not a record"):
        ev("x.token", {"x": Secret()})
    assert ev("x.token", {"x": {"token": "ok"}}) == "ok"   # only mappings are traversed
    with pytest.raises(ExpressionEvalError, match="not a record"):
        ev("x.y", {"x": "text"})


def test_unchecked_paths_follow_mappings_and_lists():
    rec = {"rows": [{"a": 1}, {"a": 2}, None], "ref": {"inner": {"v": 3}}, "none": None}
    assert ev("sum(rows.a)", rec) == 3
    assert ev("ref.inner.v", rec) == 3
    assert ev("none.v", rec) is None


def test_compiled_expression_is_reusable_and_unchanged():
    expr = compile_expression("x * 0.5")
    assert [expr.evaluate({"x": i}) for i in range(3)] == [0, Decimal("0.5"), Decimal("1.0")]
    assert expr.result_type is None   # x has no known type without an entity
    assert compile_expression("2 * 0.5").result_type == "decimal"
    assert repr(expr).startswith("<CompiledExpression")


# ---- functions from plugins -------------------------------------------------------------------
class _ExtraPlugin:
    @hookimpl
    def formwork_expressions_functions(self):
        @expression_function(result_type="text")
        def grade(score):
            if score is None:
                return None
            return "A" if score >= 80 else "B" if score >= 50 else "C"

        @expression_function(result_type="date", context=True)
        def tomorrow(ctx):
            return ctx.today() + timedelta(days=1)

        def lower(value):   # replaces the built-in
            return "overridden"

        return {"grade": grade, "tomorrow": tomorrow, "lower": lower}


def test_r23_plugin_functions_via_hook():
    import plugins.expression_functions as builtin_plugin

    pm = pluggy.PluginManager("formwork")
    pm.add_hookspecs(hookspecs)
    pm.register(builtin_plugin)
    pm.register(_ExtraPlugin())
    functions = functions_from_plugins(pm)
    assert set(builtin_functions()) <= set(functions)
    expr = compile_expression("grade(score)", functions=functions)
    assert expr.result_type == "text"
    assert expr.evaluate({"score": 85}) == "A"
    assert expr.evaluate({"score": None}) is None
    assert compile_expression("tomorrow()", functions=functions).evaluate({}, now=NOW, tz=SHANGHAI) == \
        date(2024, 5, 3)
    assert compile_expression("lower('X')", functions=functions).evaluate({}) == "overridden"
    assert compile_expression("lower('X')").evaluate({}) == "x"


def test_failing_plugin_function_raises_eval_error():
    def boom(x):
        raise RuntimeError("kaput")

    expr = compile_expression("boom(1)", functions={"boom": boom})
    with pytest.raises(ExpressionEvalError, match=r"boom\(\) failed: kaput"):
        expr.evaluate({})


def test_dangerous_functions_refused():
    with pytest.raises(ExpressionError, match="not allowed"):
        compile_expression("getattr(x, 'y')", functions={"getattr": getattr})
    with pytest.raises(ExpressionError, match="not allowed"):
        compile_expression("f(1)", functions={"f": "not callable"})


def test_unknown_is_internal_only():
    assert ev("x > 1") is None
    assert ev("[x > 1]") == [None]
    assert ev("coalesce(x > 1, 'u')") == "u"
    assert repr(UNKNOWN) == "UNKNOWN"
