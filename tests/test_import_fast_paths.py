"""Issue 2 (import speed): every fast path of the bulk import gives what the general path gives.

- compiled field coercers (engine.fields.fast) against ``FieldType.clean`` over thousands of inputs;
- the compiled row coercer (Preparer.row_coercer) against ``Preparer.coerce_input``;
- the driver-level insert and compact audit rows (engine.records.bulk) against the Core insert and
  the generic ``to_json`` audit of the same records, row for row.
"""
from __future__ import annotations

import json
import random
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.errors import FieldValueError
from engine.fields import FieldContext
from engine.fields.fast import _FAST, coercer
from engine.metadata.model import Field, Label, Option
from engine.records.prepare import Errors, is_empty
from engine.schema.migrate import migrate
from engine.tenant import Tenant
from tests.dbtemplates import migrate_empty

DATA = Path(__file__).parent / "data"

OPTIONS = [
    Option("it", Label.of({"zh": "信息技术", "en": "IT"})),
    Option("Manufacturing", Label.of({"zh": "制造业", "en": "Making things"})),
    Option("finance", Label.of({"zh": "金融", "en": "IT"})),   # a label another option also has
    Option("Ａ", Label.of("full width A")),
    Option("a", Label.of("small a")),
]


def F(type_: str, name: str = "x", **kw) -> Field:
    return Field(name=name, type=type_, label=Label.of(name), **kw)


FIELDS = [
    F("text"),
    F("text", max_length=5),
    F("text", pattern=r"[A-Z]{2}-\d+", pattern_message=Label.of({"zh": "编号格式不对", "en": "bad code"})),
    F("textarea"),
    F("textarea", max_length=8),
    F("select", options=OPTIONS),
    F("select", options=[Option("A", Label.of("A")), Option("B", Label.of("B")), Option("C", Label.of("C"))]),
    F("integer"),
    F("integer", min=0, max=5),
    F("integer", min="1,000"),
    F("decimal"),
    F("decimal", settings={"scale": 2}, min="-1.5", max=100),
    F("money"),
    F("money", min=0),
    F("percent", max=100),
    F("date"),
    F("date", min="2020-01-01", max="2030-12-31"),
    F("phone"),
    F("phone", settings={"kind": "mobile"}),
    F("phone", settings={"kind": "landline"}),
    F("phone", settings={"region": "US"}),
    F("phone", pattern=r"\+86.*"),
    F("email"),      # no fast path: the general one
    F("boolean"),
]

PIECES = ["", " ", "  ", "\t", "\n", "\r\n", "\u3000", "\xa0", "\x00", "\x07", "\u2028", "-", "+", ".", ",",
          "0", "1", "5", "9", "00", "12", "123", "1,000", "1,2", "2026", "-01-", "2026-03-05", "2026-02-30",
          "2026/3/5", "2026年3月5日", "13800138000", "+86", "+8613800138000", "021-62345678", "0086",
          "12345678901", "+862878683449", "0000-01-01", "2026-13-01", "2024-02-29", "2025-02-29", "0755-8888 6666", "4008001234", "1e3", "１２３", "¥", "元", "$", "%", "abc", "AB-12", "ab-12", "it", "IT", "Ｉｔ",
          "制造业", "信息技术", "金融", "Manufacturing", "making things", "A", "Ａ", "a", "ａ", "B", "C", "北京",
          "9999999999999999", "99999999999999999999", "0.005", "0.015", "-0", "-0.004", "12.345", "1.5",
          "123456789012345.6789", "9223372036854775808", "'", "=1+1", "x" * 300]


def raw_values(rng: random.Random, n: int) -> list:
    out = [None, 0, 1, -1, 7, 2 ** 63, -2 ** 63 - 1, 1.5, 0.1, 12.0, float("nan"), Decimal("3.14159"),
           Decimal("-0.00"), Decimal("1E+3"), True, False, date(2026, 3, 5),
           datetime(2026, 3, 5, 23, 30, tzinfo=timezone.utc), datetime(2026, 3, 5, 1, 2), [], ["it"], {}]
    out += PIECES
    for _ in range(n):
        k = rng.choice([1, 1, 2, 2, 3])
        out.append("".join(rng.choice(PIECES) for _ in range(k)))
    return out


def outcome(fn):
    """What a coercion gives, comparable exactly: the value with its type and repr, or the error."""
    try:
        value = fn()
    except FieldValueError as exc:
        return ("error", exc.key, exc.params)
    except Exception as exc:  # noqa: BLE001 - both paths must fail alike
        return ("raised", type(exc).__name__)
    return ("ok", type(value).__name__, repr(value))


@pytest.fixture(scope="module")
def types():
    from engine.fields import FieldTypeRegistry
    from engine.plugins import make_plugin_manager

    return FieldTypeRegistry.from_plugins(make_plugin_manager())


def test_issue2_compiled_coercers_equal_coerce_then_validate_for_many_inputs(types):
    rng = random.Random(20261122)
    ctx = FieldContext()
    fast_types = set()
    for field in FIELDS:
        ftype = types.for_field(field)
        if type(ftype) in _FAST:
            fast_types.add(field.type)
        run = coercer(ftype, field, ctx)
        for raw in raw_values(rng, 1500):
            assert outcome(lambda: run(raw)) == outcome(lambda: ftype.clean(field, raw, ctx)), (field, raw)
    assert {"text", "textarea", "select", "integer", "decimal", "money", "percent", "date", "phone"} <= fast_types


def test_issue2_compiled_coercer_honours_a_subclass_that_overrides_coerce(types):
    from engine.fields.text import TextType

    class Shouting(TextType):
        name = "text"

        def coerce(self, field, value, ctx):
            got = super().coerce(field, value, ctx)
            return None if got is None else got.upper()

    field = F("text")
    assert coercer(Shouting(), field, FieldContext())("abc") == "ABC"


@pytest.fixture
def tenant(tmp_path):
    t = Tenant.load(DATA / "crm_v1.yaml", db_url=f"sqlite:///{tmp_path / 't.db'}")
    migrate_empty(t)
    yield t
    t.dispose()


def test_issue2_row_coercer_equals_coerce_input(tenant):
    rng = random.Random(7)
    entity = tenant.model.entity("customer")
    prep = tenant.records.preparer(entity)
    keys = list(entity.fields) + ["owner", "department", "id", "version", "created_at", "nonsense", "score"]
    with tenant.db.connect() as conn:
        ctx = tenant.records.ctx("zh_CN", conn)
        for writable, hidden in ((None, None), (set(entity.fields) - {"rating"}, {"notes"}), (set(), set())):
            coerce_row = prep.row_coercer(ctx, writable=writable, hidden=hidden)
            for _ in range(1500):
                values = {k: rng.choice(PIECES + [None, 3, Decimal("2.5")]) for k in rng.sample(keys, rng.randint(0, 8))}
                if "owner" in values:  # (a user id beyond SQLite's integers is a crash of its own, not ours)
                    values["owner"] = rng.choice([None, "", "admin", "1", 1, "nobody", "abc"])
                e1, e2 = Errors("zh_CN"), Errors("zh_CN")
                got = coerce_row(values, e1)
                want = prep.coerce_input(dict(values), None, ctx, e2, writable=writable, hidden=hidden)
                assert list(got.items()) == list(want.items()), values
                assert e1.by_key == e2.by_key, values


def _rows(n: int) -> list[dict]:
    rng = random.Random(3)
    rows = []
    for i in range(n):
        row = {"name": f"客户{i:04d}有限公司", "industry": rng.choice(["制造业", "金融业"])}
        for key, values in (("phone", ["13800138000", "+86 139-0013-9000", ""]), ("revenue", ["1,234.5", "0", "¥88"]),
                            ("founded", ["2020-01-02", "2021/3/4"]), ("rating", ["0", "5", 3]),
                            ("level", ["A", "B", ""]), ("notes", ["第一行\n第二行", " 备注 "]), ("source", ["website", "展会获客"])):
            if rng.random() < 0.7:
                row[key] = rng.choice(values)
        if row.get("level") == "A" and not row.get("phone"):
            row["phone"] = "13800138000"
        rows.append(row)
    return rows


def _dump(tenant) -> tuple[list, list]:
    t = tenant.schema.table("customer")
    a = tenant.schema.system["audit"]
    with tenant.db.connect() as conn:
        records = [tuple(r) for r in conn.execute(sa.select(t).order_by(t.c.id))]
        audits = [tuple(r) for r in conn.execute(sa.select(a.c.user_id, a.c.username, a.c.entity, a.c.record_id,
                                                           a.c.action, a.c.changes, a.c.note).order_by(a.c.id))]
    return records, audits


def test_issue2_driver_insert_stores_what_the_core_insert_stores(tmp_path):
    """The same import through the driver path and through Core (forced) leaves identical rows,
    and each audit row is the generic to_json audit of the record."""
    now = datetime(2026, 11, 22, 8, 30, 15, 123456, tzinfo=timezone.utc)
    dumps = []
    for forced_core in (False, True):
        t = Tenant.load(DATA / "crm_v1.yaml", db_url=f"sqlite:///{tmp_path / f'{forced_core}.db'}")
        migrate(t)
        t.clock = lambda: now
        if forced_core:
            entity = t.model.entity("customer")
            import sqlalchemy.dialects.sqlite as sqlite_dialect

            plan = t.records._record_insert(entity, sqlite_dialect.dialect())
            plan.ok = False
        result = t.records.create_many("customer", _rows(1200), note="import")
        assert len(result.created) == 1200
        dumps.append(_dump(t))
        records = [t.records.get("customer", i) for i in result.created[:50]]
        for rec in records:
            # the compact audit equals the generic one built from to_json
            want = {k: [None, v] for k, v in t.records.to_json("customer", rec).items()
                    if k in t.model.entity("customer").fields and not is_empty(v)}
            history = t.records.history("customer", rec["id"])
            assert history[-1]["action"] == "create" and history[-1]["changes"] == want
            assert json.loads(json.dumps(want, ensure_ascii=False, default=str)) == history[-1]["changes"]
        t.dispose()
    assert dumps[0] == dumps[1]


def test_issue2_imported_record_history_shows_its_initial_values(tenant):
    result = tenant.records.create_many("customer", [{"name": "星河科技", "industry": "制造业", "phone": "13800138000",
                                                      "revenue": "1,234.5", "rating": "4"}])
    history = tenant.records.history("customer", result.created[0])
    assert [h["action"] for h in history] == ["create"]
    assert history[0]["changes"] == {"name": [None, "星河科技"], "industry": [None, "制造业"],
                                     "level": [None, "C"], "phone": [None, "+8613800138000"],
                                     "revenue": [None, "1234.50"], "rating": [None, 4], "score": [None, 80]}
    assert history[0]["note"] == "import"


def test_issue2_audit_json_equals_json_dumps():
    """The driver path writes an audit row's changes as text pieces: the same text as the audit log's
    canonical JSON (json.dumps with sorted keys; RecordInsert puts the fields in name order)."""
    from engine.records.bulk import change_prefix, json_fragment

    def audit_json(changes):
        return "{" + ", ".join(change_prefix(k) + json_fragment(v[1]) + "]" for k, v in changes.items()) + "}"

    rng = random.Random(5)
    values = [None, True, 0, -7, 2 ** 70, 1.5, float("inf"), "", "星河\"科技\\", "\x00\n\u2028", "a" * 50,
              Decimal("1.10"), date(2026, 3, 5), ["x", None], {"k": "值"}, [{"qty": 2, "price": "5.00"}]]
    for _ in range(2000):
        changes = {f"f{i}": [None, rng.choice(values)] for i in range(rng.randint(0, 6))}
        assert audit_json(changes) == json.dumps(changes, ensure_ascii=False, sort_keys=True, default=str)


# ---- compiled expressions (engine/expressions/closures.py) against the tree-walking handlers ----

EXPR_LEAVES = ["a", "b", "d", "s", "t", "n", "dt", "lst", "child.qty", "0", "1", "2", "-3", "2.5", "0.1", "'x'",
               "'星河'", "''", "None", "True", "False", "[1, 2]", "['x', None]"]
EXPR_UNARY = ["not {}", "-{}", "+{}"]
EXPR_BINARY = ["{} + {}", "{} - {}", "{} * {}", "{} / {}", "{} // {}", "{} % {}", "{} ** 2", "{} == {}",
               "{} != {}", "{} < {}", "{} <= {}", "{} > {} >= {}", "{} in {}", "{} not in {}", "{} and {}",
               "{} or {}", "{} or {} or {}", "{} if {} else {}", "{} is None", "{} is not None"]
EXPR_CALLS = ["len({})", "round({}, 1)", "abs({})", "coalesce({}, {})", "sum({}, {})", "upper({})",
              "max({}, {})", "year({})", "today()", "count({})"]


def _random_expression(rng: random.Random, depth: int) -> str:
    if depth == 0 or rng.random() < 0.25:
        return rng.choice(EXPR_LEAVES)
    kind = rng.random()
    template = rng.choice(EXPR_UNARY if kind < 0.15 else EXPR_CALLS if kind < 0.4 else EXPR_BINARY)
    parts = [_random_expression(rng, depth - 1) for _ in range(template.count("{}"))]
    return "(" + template.format(*parts) + ")"


def test_issue2_compiled_expressions_equal_the_tree_walk():
    import decimal

    from engine.expressions import compile_expression
    from engine.expressions.closures import closure_of
    from engine.expressions.compiler import make_context
    from engine.expressions.evaluator import _DECIMAL_CONTEXT, FormworkEval

    def outcome(fn):
        with decimal.localcontext(_DECIMAL_CONTEXT):
            try:
                value = fn()
            except Exception as exc:  # noqa: BLE001 - both ways must fail alike
                return ("raised", type(exc).__name__, str(exc))
        return ("ok", type(value).__name__, repr(value))

    rng = random.Random(11)
    records = [{"a": 3, "b": Decimal("2.50"), "d": date(2026, 3, 5), "s": "abc", "t": "", "n": None,
                "dt": datetime(2026, 3, 5, 8, tzinfo=timezone.utc), "lst": ["x", "y"],
                "child": [{"qty": 2}, {"qty": None}]},
               {"a": 0, "b": Decimal("-1"), "d": None, "s": "星河", "t": "x", "n": None, "dt": None, "lst": [],
                "child": []},
               {"a": None, "b": 0.5, "s": None, "lst": None}]
    ctx = make_context(datetime(2026, 11, 22, tzinfo=timezone.utc), "Asia/Shanghai")
    compiled = 0
    for _ in range(3000):
        source = _random_expression(rng, 4)
        try:
            expr = compile_expression(source)
        except Exception:  # noqa: BLE001 - a generated expression the checker refuses
            continue
        compiled += 1
        for record in records:
            def walk():
                return FormworkEval(expr.source, expr.plans, expr.functions, record, None, ctx, None)._eval(expr.tree)

            def closure():
                return closure_of(expr.tree)(FormworkEval(expr.source, expr.plans, expr.functions, record, None,
                                                          ctx, None))

            assert outcome(closure) == outcome(walk), (source, record)
    assert compiled > 1000


def test_issue2_driver_lookup_of_existing_values_equals_core(tenant):
    """_existing (uniqueness and reference checks of a bulk create) on SQLite goes to the driver;
    it finds exactly what the Core ``IN`` query finds, for columns of several types."""
    from engine.records.bulk import existing_values

    rng = random.Random(9)
    made = tenant.records.create_many("customer", [
        {"name": f"客户{i}", "industry": "制造业", "revenue": str(rng.choice([0, 1, 99.5, 1234.56])),
         "founded": f"2020-01-{1 + i % 28:02d}", "rating": str(i % 6), "phone": f"1380013{i:04d}"}
        for i in range(1200)])
    t = tenant.schema.table("customer")
    probes = {
        "id": made.created[::7] + [0, 10 ** 9],
        "name": [f"客户{i}" for i in range(0, 1500, 3)],
        "founded": [date(2020, 1, d) for d in range(1, 31)] + [date(2021, 1, 1)],
        "revenue": [Decimal("0"), Decimal("1.00"), Decimal("99.50"), Decimal("1234.56"), Decimal("5")],
        "rating": list(range(-1, 8)),
        "phone": [f"+861380013{i:04d}" for i in range(0, 1500, 11)],
    }
    with tenant.db.connect() as conn:
        for column, values in probes.items():
            col = t.c[column]
            want = set()
            for i in range(0, len(values), 100):
                want.update(r[0] for r in conn.execute(sa.select(col).where(col.in_(values[i:i + 100]))))
            got = existing_values(conn, col, values, 100)
            assert got == want and want, column


def test_issue2_bound_expressions_equal_evaluate():
    """CompiledExpression.bind / bind_holds (one evaluator for a batch) give what evaluate / holds
    give for every record, call after call: nothing of one record's evaluation leaks into the next;
    and a bound expression that skips setting up its Decimal context (no arithmetic) gives the same
    under a caller's coarse context (3 digits) as one that does."""
    import decimal

    from engine.expressions import compile_expression

    with decimal.localcontext(decimal.Context(prec=3, traps=[])):
        _bound_equal_evaluate(compile_expression)


def _bound_equal_evaluate(compile_expression):

    rng = random.Random(5)
    now = datetime(2026, 11, 22, 3, tzinfo=timezone.utc)
    records = [{"a": 3, "b": Decimal("2.50"), "d": date(2026, 3, 5), "s": "abc", "t": "", "n": None,
                "lst": ["x", "y"]},
               {"a": 0, "b": Decimal("-1"), "d": None, "s": "星河", "t": "x", "lst": []},
               {"a": 123456789, "b": Decimal("1234.5678"), "s": "x", "lst": ["x"]},
               None, {"a": None, "b": 0.5, "s": None, "lst": None}]
    checked = 0
    for _ in range(1500):
        try:
            expr = compile_expression(_random_expression(rng, 3))
        except Exception:  # noqa: BLE001 - a generated expression the checker refuses
            continue
        value, holds = expr.bind(now=now, tz="Asia/Shanghai"), expr.bind_holds(now=now, tz="Asia/Shanghai")
        for record in records + records[::-1]:
            for bound, direct in ((value, lambda r: expr.evaluate(r, now=now, tz="Asia/Shanghai")),
                                  (holds, lambda r: expr.holds(r, now=now, tz="Asia/Shanghai"))):
                try:
                    want = ("ok", repr(direct(record)))
                except Exception as exc:  # noqa: BLE001 - both ways must fail alike
                    want = ("raised", type(exc).__name__, str(exc))
                try:
                    got = ("ok", repr(bound(record)))
                except Exception as exc:  # noqa: BLE001
                    got = ("raised", type(exc).__name__, str(exc))
                assert got == want, (expr.source, record)
        checked += 1
    assert checked > 500


def test_issue2_bound_path_expression_loads_per_record(tmp_path):
    """A bound expression with a dotted path loads each record's reference (no cache between calls)."""
    from engine.expressions import compile_expression

    t = Tenant.load(DATA / "crm_v1.yaml", db_url=f"sqlite:///{tmp_path / 'p.db'}")
    follow_up = t.model.entity("follow_up")
    expr = compile_expression("customer.name", follow_up, t.model)
    loads = []
    names = {1: "甲公司", 2: "乙公司"}

    def loader(entity, rid):
        loads.append((entity, rid))
        return {"id": rid, "name": names.get(rid)}

    bound = expr.bind(loader=loader)
    assert [bound({"customer": 1}), bound({"customer": 2}), bound({"customer": 1}), bound({})] == \
        ["甲公司", "乙公司", "甲公司", None]
    assert loads == [("customer", 1), ("customer", 2), ("customer", 1)]
    t.dispose()


COMPLETER_CONFIG = """
tenant: {name: comp, locale: zh_CN, timezone: Asia/Shanghai, currency: CNY}
dictionaries:
  colours: [red, green, blue]
entities:
  account:
    title: name
    fields:
      name: {type: text, required: true}
  deal:
    fields:
      name:      {type: text, required: true, max_length: 20}
      account:   {type: reference, to: account}
      amount:    {type: money, required: true}
      discount:  {type: percent, min: 0, max: 100, default: 0}
      level:     {type: select, options: [A, B, C], default: C}
      colours:   {type: multiselect, options: colours, default: [red]}
      active:    {type: boolean, default: true}
      opened_on: {type: date, default: today()}
      target:    {type: money, default: "coalesce(amount, 0) * 2"}
      net:       {type: formula, expr: "amount * (100 - discount) / 100", returns: money}
      big:       {type: formula, expr: "net > 1000", returns: boolean}
      lines:
        type: subtable
        fields:
          qty: {type: integer, min: 1}
    rules:
      - check: "level != 'A' or amount >= 100"
        message: A级金额至少100
        field: amount
      - check: "not account or account.name != name"
        message: 名称不能与客户相同
      - check: "len(lines) <= 2"
        message: 最多两行
"""


def test_issue2_completer_equals_complete(tmp_path):
    """Preparer.completer (expressions bound once, constant defaults coerced once) gives the record
    and the errors Preparer.complete gives, for valid and invalid rows, one after another."""
    path = tmp_path / "comp.yaml"
    path.write_text(COMPLETER_CONFIG, encoding="utf-8")
    t = Tenant.load(path, db_url=f"sqlite:///{tmp_path / 'c.db'}")
    migrate(t)
    account = t.records.create("account", {"name": "星河"})
    deal = t.model.entity("deal")
    prep = t.records.preparer(deal)
    rng = random.Random(9)
    now = datetime(2026, 11, 22, 3, tzinfo=timezone.utc)
    pieces = {"name": ["星河", "甲", "", "x" * 25], "account": [account["id"], None],
              "amount": [Decimal("50"), Decimal("2000"), None, Decimal("1E+30")],
              "discount": [0, 15, 120, None], "level": ["A", "B", None], "colours": [["blue"], [], None],
              "active": [False, None], "opened_on": [date(2026, 1, 1), None], "target": [Decimal("1"), None],
              "lines": [[], [{"qty": 1}], [{"qty": 1}, {"qty": 2}, {"qty": 3}]]}
    with t.db.connect() as conn:
        ctx = t.records.ctx("zh_CN", conn)
        loader = t.records._loader(conn)
        complete_new = prep.completer(ctx, loader=loader, now=now)
        for _ in range(600):
            values = {k: rng.choice(v) for k, v in pieces.items() if rng.random() < 0.6}
            e1, e2 = Errors("zh_CN"), Errors("zh_CN")
            got = complete_new(dict(values), e1)
            want = prep.complete(dict(values), None, ctx, e2, loader=loader, now=now)
            assert list(got.items()) == list(want.items()), values
            assert e1.by_key == e2.by_key, values
        first, second = complete_new({"name": "a", "amount": Decimal("1")}, Errors("zh_CN")), \
            complete_new({"name": "b", "amount": Decimal("1")}, Errors("zh_CN"))
        first["colours"].append("green")  # a list default is each record's own
        assert second["colours"] == ["red"]
    t.dispose()


def test_issue2_flat_row_builder_equals_the_field_loop(tmp_path):
    """RecordInsert's flat builder (values fetched in one map, picked into column order) gives the
    driver rows and audit texts of its general per-field loop, for every entity of the sample
    tenant (every field type), with fields absent, None or empty."""
    import sqlalchemy.dialects.sqlite as sqlite_dialect

    from engine.demo.generate import generate_demo

    t = Tenant.load(Path(__file__).parent.parent / "sample_tenant.yaml", db_url=f"sqlite:///{tmp_path / 's.db'}")
    migrate(t)
    generate_demo(t, size=12, seed=4)
    rng = random.Random(2)
    stamps = dict(created_at=datetime(2026, 11, 22, tzinfo=timezone.utc), created_by=1,
                  updated_at=datetime(2026, 11, 22, tzinfo=timezone.utc), updated_by=1, version=1)
    flat_entities = 0
    for entity in t.model.entities.values():
        plan = t.records._record_insert(entity, sqlite_dialect.dialect())
        if plan.flat is None:
            continue
        flat_entities += 1
        with t.db.connect() as conn:
            ids = [r[0] for r in conn.execute(sa.select(t.schema.table(entity).c.id))]
        records = []
        for rid in ids:
            rec = {k: v for k, v in t.records.get(entity.name, rid).items() if k in entity.fields or
                   k in ("owner", "department")}
            for k in list(rec):
                roll = rng.random()
                if roll < 0.15:
                    del rec[k]
                elif roll < 0.25:
                    rec[k] = None
                elif roll < 0.3 and isinstance(rec[k], (str, list)):
                    rec[k] = type(rec[k])()
            records.append(rec)
        new_ids = list(range(1000, 1000 + len(records)))
        got = plan._flat_rows_and_changes(records, new_ids, stamps)
        flat, plan.flat = plan.flat, None
        try:
            want = plan.rows_and_changes(records, new_ids, stamps, t.records._json)
        finally:
            plan.flat = flat
        assert got == want, entity.name
    assert flat_entities >= 8
    t.dispose()


def test_issue2_driver_insert_of_records_with_subtables_equals_core(tmp_path):
    """An entity with a subtable (quote lines) takes the driver path's per-field loop: its rows,
    child rows and audit texts equal those of the Core insert."""
    now = datetime(2026, 11, 22, 8, 30, tzinfo=timezone.utc)
    dumps = []
    for forced_core in (False, True):
        t = Tenant.load(DATA / "crm_v1.yaml", db_url=f"sqlite:///{tmp_path / f'q{forced_core}.db'}")
        migrate(t)
        t.clock = lambda: now
        quote = t.model.entity("quote")
        import sqlalchemy.dialects.sqlite as sqlite_dialect

        plan = t.records._record_insert(quote, sqlite_dialect.dialect())
        assert plan.flat is None and plan.ok
        plan.ok = not forced_core
        customer = t.records.create("customer", {"name": "甲公司", "industry": "制造业"})
        products = [t.records.create("product", {"name": f"产品{i}", "price": "10"})["id"] for i in range(3)]
        rows = [{"customer": customer["id"],
                 "lines": [{"product": products[(i + k) % 3], "quantity": k + 1, "unit_price": f"{i}.5{k}"}
                           for k in range(i % 3)]} for i in range(40)]
        assert len(t.records.create_many("quote", rows).created) == 40
        q, lines, a = t.schema.table(quote), t.schema.table(quote.fields["lines"].child), t.schema.system["audit"]
        with t.db.connect() as conn:
            dumps.append(([tuple(r) for r in conn.execute(sa.select(q).order_by(q.c.id))],
                          [tuple(r) for r in conn.execute(sa.select(lines).order_by(lines.c.id))],
                          [tuple(r) for r in conn.execute(sa.select(a.c.record_id, a.c.changes)
                                                          .where(a.c.entity == "quote").order_by(a.c.id))]))
        t.dispose()
    assert dumps[0] == dumps[1]
    assert '"lines": [null, [{' in dumps[0][2][1][1]  # the second quote's audit holds its line
