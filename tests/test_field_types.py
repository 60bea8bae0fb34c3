"""Built-in field types: coercion, validation, storage, display, config checks and demo values."""
from __future__ import annotations

import io
import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import jsonschema
import pluggy
import pytest
import sqlalchemy as sa
from faker import Faker

from engine import hookspecs
from engine.errors import FieldValueError
from engine.fields import FieldContext, FieldTypeRegistry
from engine.fields.exact import ExactDecimal
from engine.fields.base import ALL_OPERATORS
from engine.fields.computed import autonumber_period, render_autonumber
from engine.fields.storage import KEY_RE, LocalFileStorage, StoredFile
from engine.i18n import MESSAGES, message
from engine.metadata.model import Entity, Field, Label, Option

UTC = timezone.utc
SHANGHAI = ZoneInfo("Asia/Shanghai")


# ------------------------------------------------------------------------------------------ fixtures

def _registry() -> FieldTypeRegistry:
    try:
        from engine.plugins import make_plugin_manager

        pm = make_plugin_manager()
    except ImportError:  # another built-in plugin not written yet: register ours alone
        import plugins.field_types

        pm = pluggy.PluginManager("formwork")
        pm.add_hookspecs(hookspecs)
        pm.register(plugins.field_types)
    return FieldTypeRegistry.from_plugins(pm)


@pytest.fixture(scope="module")
def reg() -> FieldTypeRegistry:
    return _registry()


@pytest.fixture
def ctx(tmp_path) -> FieldContext:
    return FieldContext(departments=("销售部", "市场部", "华东组"), storage=LocalFileStorage(tmp_path / "files"))


def F(type_: str, name: str = "x", **kw) -> Field:
    return Field(name=name, type=type_, label=Label.of(kw.pop("label", name)), **kw)


INDUSTRY = [
    Option("it", Label.of({"zh": "信息技术", "en": "IT"})),
    Option("manufacturing", Label.of({"zh": "制造业", "en": "Manufacturing"})),
    Option("finance", Label.of({"zh": "金融", "en": "Finance"})),
]


def err(fn, *args) -> FieldValueError:
    with pytest.raises(FieldValueError) as info:
        fn(*args)
    return info.value


def clean(reg, field, value, ctx):
    return reg.for_field(field).clean(field, value, ctx)


# --------------------------------------------------------------------------------------- registry

def test_registry_has_every_builtin_type(reg):
    expected = {"text", "textarea", "integer", "decimal", "money", "percent", "boolean", "date",
                "datetime", "select", "multiselect", "reference", "user", "department", "phone",
                "email", "url", "wechat", "formula", "autonumber", "file", "subtable"}
    assert expected <= set(reg.names())


def test_every_type_declares_operators_schema_and_flags(reg):
    for name in reg.names():
        t = reg[name]
        assert t.name == name
        assert set(t.operators) <= set(ALL_OPERATORS), name
        jsonschema.Draft202012Validator.check_schema({"type": "object", "properties": t.settings_schema})
    assert reg["formula"].computed and reg["autonumber"].computed
    assert not reg["subtable"].stored
    assert not reg["multiselect"].sortable and not reg["file"].sortable


def test_every_message_key_used_exists_in_both_languages():
    for key in ("not_text", "not_a_mobile", "not_a_landline", "not_a_wechat", "too_few_rows",
                "too_many_rows", "not_an_option", "file_too_large", "file_type", "not_a_file"):
        assert set(MESSAGES[key]) == {"zh", "en"}
    assert message("too_long", "zh_CN", max_length=5) == "不能超过 5 个字符"


# ------------------------------------------------------------------------------------ round trips

def _samples(ctx):
    stored = ctx.storage.save(io.BytesIO(b"%PDF-1.4 hello"), "报价单.pdf", "application/pdf")
    return [
        (F("text"), "北京星辰科技有限公司"),
        (F("textarea"), "本次沟通重点：价格\n下一步：发报价"),
        (F("integer"), 1200),
        (F("integer"), -7),
        (F("decimal"), Decimal("1234.5678")),
        (F("decimal", settings={"scale": 2}), Decimal("0.10")),
        (F("money"), Decimal("1234567.89")),
        (F("money"), Decimal("-0.05")),
        (F("percent"), Decimal("12.5")),
        (F("boolean"), True),
        (F("boolean"), False),
        (F("date"), date(2026, 3, 5)),
        (F("datetime"), datetime(2026, 3, 5, 6, 30, 15, tzinfo=UTC)),
        (F("datetime"), datetime(2026, 3, 5, 6, 30, 15, 123456, tzinfo=UTC)),
        (F("select", options=INDUSTRY), "manufacturing"),
        (F("stage", options=INDUSTRY), "finance"),   # a pipeline's stage: a select fed by the stages
        (F("multiselect", options=INDUSTRY), ["it", "finance"]),
        (F("reference", to="customer"), 42),
        (F("user"), 7),
        (F("department"), "华东组"),
        (F("phone"), "+8613800138000"),
        (F("phone"), "+862162345678"),
        (F("phone"), "+862162345678;ext=123"),
        (F("phone"), "+16502530000"),
        (F("email"), "Zhang.San@example.com"),
        (F("url"), "https://www.example.com/a?b=1#c"),
        (F("wechat"), "wx_zhang123"),
        (F("formula", returns="money"), Decimal("88.80")),
        (F("formula", returns="date"), date(2026, 1, 31)),
        (F("formula"), Decimal("3.1416")),
        (F("autonumber", format="BJ-{YYYY}-{seq:4}"), "BJ-2026-0007"),
        (F("file"), stored),
        (F("subtable"), [{"product": "A1", "qty": 2}, {"product": "B2", "qty": 1}]),
    ]


def test_round_trip_json_and_csv_for_every_type(reg, ctx):
    samples = _samples(ctx)
    covered = {f.type for f, _ in samples}
    assert covered == set(reg.names())
    for field, value in samples:
        t = reg.for_field(field)
        assert t.coerce(field, value, ctx) == value, field.type
        as_json = t.to_json(field, value)
        json.dumps(as_json, ensure_ascii=False)  # API JSON is JSON
        assert t.coerce(field, as_json, ctx) == value, (field.type, as_json)
        as_csv = t.to_csv(field, value)
        assert isinstance(as_csv, str)
        assert t.coerce(field, as_csv, ctx) == value, (field.type, as_csv)
        t.validate(field, value, ctx)
        assert isinstance(t.to_text(field, value, ctx), str)


def test_empty_input_is_none_for_every_type(reg, ctx):
    for name in reg.names():
        t = reg[name]
        field = F(name, options=INDUSTRY, to="customer", returns="integer", format="{seq}")
        for empty in (None, "", "   "):
            assert t.coerce(field, empty, ctx) is None, name
        assert t.to_json(field, None) is None
        assert t.to_csv(field, None) == ""
        assert t.to_text(field, None, ctx) == ""


def test_database_round_trip_every_column_type(reg, ctx, db_url):
    samples = [(f, v) for f, v in _samples(ctx) if reg.for_field(f).stored]
    md = sa.MetaData()
    cols = [sa.Column("id", sa.Integer, primary_key=True)]
    for i, (field, _) in enumerate(samples):
        cols.append(sa.Column(f"c{i}", reg.for_field(field).column_type(field)))
    table = sa.Table("field_types_rt", md, *cols)
    engine = sa.create_engine(db_url)
    try:
        md.create_all(engine)
        row = {f"c{i}": reg.for_field(f).to_db(f, v) for i, (f, v) in enumerate(samples)}
        with engine.begin() as conn:
            conn.execute(table.insert(), dict(row, id=1))
            conn.execute(table.insert(), {"id": 2})
        with engine.connect() as conn:
            got = conn.execute(sa.select(table).order_by(table.c.id)).mappings().all()
        for i, (field, value) in enumerate(samples):
            t = reg.for_field(field)
            back = t.from_db(field, got[0][f"c{i}"])
            assert back == value, (field.type, back, value)
            assert type(back) is type(value), field.type
            if isinstance(value, datetime):
                assert back.utcoffset() == timedelta(0)
            assert t.from_db(field, got[1][f"c{i}"]) is None, field.type
    finally:
        engine.dispose()


def test_database_datetime_filter_compares_instants(reg, db_url):
    """Stored UTC on both backends: a comparison with an aware value means the same instant."""
    f = F("datetime")
    t = reg["datetime"]
    md = sa.MetaData()
    table = sa.Table("dt", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("at", t.column_type(f)))
    engine = sa.create_engine(db_url)
    try:
        md.create_all(engine)
        ctx = FieldContext()
        with engine.begin() as conn:
            for i, s in enumerate(["2026-03-05 07:00", "2026-03-05 09:00"], 1):
                conn.execute(table.insert(), {"id": i, "at": t.to_db(f, t.coerce(f, s, ctx))})
            bound = t.to_db(f, t.coerce(f, "2026-03-05 08:00", ctx))
            ids = conn.execute(sa.select(table.c.id).where(table.c.at > bound)).scalars().all()
        assert ids == [2]
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------------------- text

def test_text_strips_flattens_lines_and_limits_length(reg, ctx):
    f = F("text", max_length=5)
    t = reg["text"]
    assert t.coerce(f, "  a\r\nb\tc  ", ctx) == "a b c"
    assert t.coerce(f, 12, ctx) == "12"
    assert t.coerce(f, "a\x00b", ctx) == "ab"
    assert err(t.validate, f, "123456", ctx).key == "too_long"
    assert err(t.validate, f, "123456", ctx).params == {"max_length": 5}
    assert err(t.validate, F("text"), "x" * 256, ctx).key == "too_long"  # the column's 255
    assert err(t.coerce, f, {"a": 1}, ctx).key == "not_text"
    assert isinstance(t.column_type(f), sa.String) and t.column_type(f).length == 5
    assert t.column_type(F("text")).length == 255


def test_text_pattern_uses_pattern_message_label(reg, ctx):
    t = reg["text"]
    plain = F("text", pattern=r"\d{6}")
    t.validate(plain, "100080", ctx)
    assert err(t.validate, plain, "10008", ctx).key == "pattern"
    assert err(t.validate, plain, "1000800", ctx).key == "pattern"  # the whole value must match
    custom = F("text", pattern=r"\d{6}", pattern_message=Label.of({"zh": "邮编为6位数字", "en": "6 digits"}))
    e = err(t.validate, custom, "abc", ctx)
    assert message(e.key, "zh_CN", **e.params) == "邮编为6位数字"
    e_en = err(t.validate, custom, "abc", FieldContext(locale="en_US"))
    assert e_en.key == "6 digits"


def test_r13_contact_name_rule_expressible_with_pattern(reg, ctx):
    """Real names, not "王总"/"李经理": a tenant pattern on a text field enforces it."""
    f = F("text", name="contact_name", pattern=r"(?!.*(?:总|经理|老板)$)[\u4e00-\u9fa5·]{2,10}",
          pattern_message=Label.of({"zh": "请填写真实姓名，不要写“王总”", "en": "Use the real name"}))
    assert clean(reg, f, "王建国", ctx) == "王建国"
    for bad in ("王总", "李经理"):
        assert err(clean, reg, f, bad, ctx).key == "请填写真实姓名，不要写“王总”"


def test_textarea_keeps_line_breaks(reg, ctx):
    t = reg["textarea"]
    f = F("textarea")
    assert t.coerce(f, "  第一行\r\n第二行\n ", ctx) == "第一行\n第二行"
    assert isinstance(t.column_type(f), sa.Text)
    t.validate(f, "x" * 100000, ctx)  # no limit unless max_length
    assert err(t.validate, F("textarea", max_length=10), "x" * 11, ctx).key == "too_long"


# --------------------------------------------------------------------------------------- numbers

@pytest.mark.parametrize("raw,expected", [
    (12, 12), ("12", 12), (" -3 ", -3), ("1,200", 1200), ("1,234,567", 1234567), ("１２３", 123),
    (12.0, 12), (Decimal("5"), 5), ("12.00", 12), ("+4", 4),
])
def test_integer_accepts(reg, ctx, raw, expected):
    got = reg["integer"].coerce(F("integer"), raw, ctx)
    assert got == expected and type(got) is int


@pytest.mark.parametrize("raw", [1.5, "1.5", True, False, "1e3", "1,2,3", "12,00", "abc", "1 200", [1]])
def test_integer_rejects(reg, ctx, raw):
    assert err(reg["integer"].coerce, F("integer"), raw, ctx).key == "not_an_integer"


def test_integer_bounds_and_display(reg, ctx):
    t = reg["integer"]
    f = F("integer", min=0, max=100)
    t.validate(f, 0, ctx)
    t.validate(f, 100, ctx)
    e = err(t.validate, f, -1, ctx)
    assert (e.key, e.params) == ("too_small", {"min": "0"})
    assert err(t.validate, f, 101, ctx).key == "too_large"
    assert err(t.coerce, f, 2 ** 63, ctx).key == "too_large"
    assert t.to_text(f, 1234567, ctx) == "1,234,567"
    assert t.to_text(F("integer", settings={"thousands_separator": False}), 2026, ctx) == "2026"
    assert isinstance(t.column_type(f), sa.BigInteger)


def test_decimal_is_exact_never_float(reg, ctx):
    t = reg["decimal"]
    f = F("decimal")
    a, b = t.coerce(f, "0.1", ctx), t.coerce(f, 0.2, ctx)
    assert isinstance(a, Decimal) and isinstance(b, Decimal)
    assert a + b == Decimal("0.3")
    assert t.coerce(f, "1,234.50", ctx) == Decimal("1234.5")
    assert t.coerce(f, "１２.５", ctx) == Decimal("12.5")
    assert t.coerce(f, "1.23455", ctx) == Decimal("1.2346")  # scale 4, half-up
    assert t.coerce(F("decimal", settings={"scale": 2}), "2.675", ctx) == Decimal("2.68")
    col = t.column_type(F("decimal", settings={"scale": 2}))
    # NUMERIC(18, 2) on PostgreSQL; integer hundredths on SQLite (engine/fields/exact.py)
    assert isinstance(col, ExactDecimal) and (col.precision, col.scale) == (18, 2)
    assert t.column_type(f).scale == 4
    assert t.to_json(f, Decimal("1234.5000")) == "1234.5"
    assert t.to_json(f, Decimal("100.0000")) == "100"
    assert t.to_text(f, Decimal("1234567.5000"), ctx) == "1,234,567.5"
    for bad in ("1.2.3", "abc", "1e5", True, float("nan"), "1,5"):
        assert err(t.coerce, f, bad, ctx).key == "not_a_number", bad
    assert err(t.coerce, f, "1" + "0" * 14, ctx).key == "too_large"  # Numeric(18,4) holds < 10^14


def test_money_rounds_half_up_and_reads_symbols(reg, ctx):
    t = reg["money"]
    f = F("money")
    assert t.coerce(f, "2.345", ctx) == Decimal("2.35")
    assert t.coerce(f, "2.344", ctx) == Decimal("2.34")
    assert t.coerce(f, "-2.345", ctx) == Decimal("-2.35")
    assert t.coerce(f, 0.125, ctx) == Decimal("0.13")
    for raw in ("¥1,234.50", "￥1234.5", "1234.50元", "CNY 1,234.5", "RMB1234.50", "1234.5 CNY"):
        assert t.coerce(f, raw, ctx) == Decimal("1234.50"), raw
    assert t.coerce(f, "-¥3", ctx) == Decimal("-3.00")
    assert str(t.coerce(f, 5, ctx)) == "5.00"
    assert err(t.coerce, f, "¥abc", ctx).key == "not_a_number"
    assert err(t.coerce, f, "--3", ctx).key == "not_a_number"
    col = t.column_type(f)
    assert (col.precision, col.scale) == (18, 2)


def test_money_display_with_currency_and_separators(reg):
    t = reg["money"]
    f = F("money")
    assert t.to_text(f, Decimal("1234567.5"), FieldContext()) == "¥1,234,567.50"
    assert t.to_text(f, Decimal("-12"), FieldContext()) == "-¥12.00"
    assert t.to_text(f, Decimal("99.9"), FieldContext(currency="USD")) == "$99.90"
    assert t.to_text(F("money", settings={"currency": "EUR"}), Decimal("1"), FieldContext()) == "€1.00"
    assert t.to_text(f, Decimal("1"), FieldContext(currency="CHF")) == "CHF 1.00"
    assert t.to_json(f, Decimal("1234.5")) == "1234.50"


def test_r5_percent_is_percentage_points(reg, ctx):
    t = reg["percent"]
    f = F("percent", min=0, max=100)
    assert t.coerce(f, "15%", ctx) == Decimal("15")
    assert t.coerce(f, "12.5 %", ctx) == Decimal("12.5")
    assert t.coerce(f, 80, ctx) == Decimal("80")
    assert t.coerce(f, "0.15", ctx) == Decimal("0.15")  # never silently ×100
    assert t.to_text(f, Decimal("15.0000"), ctx) == "15%"
    assert t.to_text(f, Decimal("12.5000"), ctx) == "12.5%"
    assert err(t.validate, f, Decimal("101"), ctx).key == "too_large"
    col = t.column_type(f)
    assert (col.precision, col.scale) == (9, 4)


@pytest.mark.parametrize("raw,expected", [
    ("true", True), ("FALSE", False), ("1", True), ("0", False), ("yes", True), ("No", False),
    ("是", True), ("否", False), ("on", True), ("off", False), (1, True), (0, False), (True, True),
])
def test_boolean_accepts(reg, ctx, raw, expected):
    assert reg["boolean"].coerce(F("boolean"), raw, ctx) is expected


def test_boolean_rejects_and_displays(reg, ctx):
    t = reg["boolean"]
    f = F("boolean")
    for bad in ("maybe", 2, "是的吧"):
        assert err(t.coerce, f, bad, ctx).key == "not_a_boolean"
    assert t.to_text(f, True, ctx) == "是" and t.to_text(f, False, ctx) == "否"
    en = FieldContext(locale="en_US")
    assert t.to_text(f, True, en) == "Yes" and t.to_text(f, False, en) == "No"
    assert t.to_csv(f, True) == "true"


# ------------------------------------------------------------------------------------------ dates

@pytest.mark.parametrize("raw", ["2026-03-05", "2026/03/05", "2026/3/5", "2026.3.5", "2026年3月5日",
                                 "2026 年 3 月 5 日", "2026-03-05T00:00:00", "2026/3/5 0:00",
                                 date(2026, 3, 5), datetime(2026, 3, 5, 15, 0)])
def test_date_formats(reg, ctx, raw):
    assert reg["date"].coerce(F("date"), raw, ctx) == date(2026, 3, 5)


def test_date_rejects_and_displays(reg, ctx):
    t = reg["date"]
    f = F("date")
    for bad in ("2026-02-30", "05/03/2026", "tomorrow", "2026-03-05 14:30", 20260305):
        assert err(t.coerce, f, bad, ctx).key == "not_a_date", bad
    assert t.to_text(f, date(2026, 3, 5), ctx) == "2026-03-05"
    long = F("date", settings={"display": "long"})
    assert t.to_text(long, date(2026, 3, 5), ctx) == "2026年3月5日"
    assert t.to_text(long, date(2026, 3, 5), FieldContext(locale="en_US")) == "5 March 2026"
    # an aware datetime is read in the caller's timezone: 2026-03-04 20:00 UTC is the 5th in Shanghai
    assert t.coerce(f, datetime(2026, 3, 4, 20, 0, tzinfo=UTC), ctx) == date(2026, 3, 5)


def test_date_min_max(reg, ctx):
    t = reg["date"]
    f = F("date", min="2020-01-01", max="2030-12-31")
    t.validate(f, date(2026, 3, 5), ctx)
    e = err(t.validate, f, date(2019, 12, 31), ctx)
    assert (e.key, e.params) == ("too_small", {"min": "2020-01-01"})
    assert t.check_config(F("date", min="soon"), {}) == [(("min",), "min 'soon' is not a valid date value")]


def test_datetime_naive_input_is_tenant_local_and_stored_utc(reg, ctx):
    t = reg["datetime"]
    f = F("datetime")
    got = t.coerce(f, "2026-03-05 14:30", ctx)
    assert got == datetime(2026, 3, 5, 6, 30, tzinfo=UTC) and got.tzinfo is UTC
    assert t.coerce(f, "2026年3月5日 14:30", ctx) == got
    assert t.coerce(f, "2026/3/5 14:30:00", ctx) == got
    assert t.coerce(f, datetime(2026, 3, 5, 14, 30), ctx) == got
    assert t.coerce(f, "2026-03-05T06:30:00Z", ctx) == got
    assert t.coerce(f, "2026-03-05T14:30:00+08:00", ctx) == got
    assert t.coerce(f, "2026-03-05T01:30:00-05:00", ctx) == got
    assert t.coerce(f, datetime(2026, 3, 5, 15, 30, tzinfo=timezone(timedelta(hours=9))), ctx) == got
    assert t.coerce(f, date(2026, 3, 5), ctx) == datetime(2026, 3, 4, 16, 0, tzinfo=UTC)
    ny = FieldContext(timezone=ZoneInfo("America/New_York"))
    assert t.coerce(f, "2026-07-01 09:00", ny) == datetime(2026, 7, 1, 13, 0, tzinfo=UTC)  # EDT
    assert t.coerce(f, "2026-01-01 09:00", ny) == datetime(2026, 1, 1, 14, 0, tzinfo=UTC)  # EST
    for bad in ("2026-03-05 25:00", "yesterday", "2026-13-01 10:00", "2026-03-05T10:00+25:00"):
        assert err(t.coerce, f, bad, ctx).key == "not_a_datetime", bad


def test_datetime_json_is_utc_z_and_text_is_local(reg, ctx):
    t = reg["datetime"]
    f = F("datetime")
    v = datetime(2026, 3, 5, 6, 30, tzinfo=UTC)
    assert t.to_json(f, v) == "2026-03-05T06:30:00Z"
    assert t.to_csv(f, v) == "2026-03-05T06:30:00Z"
    assert t.to_text(f, v, ctx) == "2026-03-05 14:30"
    assert t.to_text(f, v, FieldContext(timezone=ZoneInfo("Europe/London"))) == "2026-03-05 06:30"
    assert t.to_text(f, v, FieldContext(timezone=ZoneInfo("America/Los_Angeles"))) == "2026-03-04 22:30"
    assert isinstance(t.column_type(f), sa.DateTime) and t.column_type(f).timezone is True


def test_datetime_from_db_attaches_utc_to_naive_sqlite_values(reg):
    t = reg["datetime"]
    f = F("datetime")
    assert t.from_db(f, datetime(2026, 3, 5, 6, 30)) == datetime(2026, 3, 5, 6, 30, tzinfo=UTC)
    assert t.from_db(f, datetime(2026, 3, 5, 14, 30, tzinfo=SHANGHAI)).tzinfo is UTC
    assert t.from_db(f, "2026-03-05 06:30:00.000000") == datetime(2026, 3, 5, 6, 30, tzinfo=UTC)
    assert t.to_db(f, datetime(2026, 3, 5, 14, 30, tzinfo=SHANGHAI)) == datetime(2026, 3, 5, 6, 30, tzinfo=UTC)


# ---------------------------------------------------------------------------------------- choices

def test_r12_industry_select_rejects_free_text(reg, ctx):
    t = reg["select"]
    f = F("select", name="industry", options=INDUSTRY, dictionary="industry")
    e = err(t.coerce, f, "互联网+", ctx)
    assert (e.key, e.params) == ("not_an_option", {"value": "互联网+"})
    assert message(e.key, "zh_CN", **e.params) == "“互联网+”不在可选项中"
    assert err(t.validate, f, "retail", ctx).key == "not_an_option"
    assert err(t.coerce, f, ["it"], ctx).key == "not_an_option"


def test_select_accepts_values_and_labels_in_any_language(reg, ctx):
    t = reg["select"]
    f = F("select", options=INDUSTRY)
    assert t.coerce(f, "it", ctx) == "it"
    assert t.coerce(f, "信息技术", ctx) == "it"
    assert t.coerce(f, " 制造业 ", ctx) == "manufacturing"
    assert t.coerce(f, "Manufacturing", ctx) == "manufacturing"
    assert t.coerce(f, "FINANCE", ctx) == "finance"
    assert t.to_text(f, "manufacturing", ctx) == "制造业"
    assert t.to_text(f, "manufacturing", FieldContext(locale="en_US")) == "Manufacturing"
    assert t.to_json(f, "manufacturing") == "manufacturing"
    numeric = F("select", options=[Option("1", Label.of("一级")), Option("2", Label.of("二级"))])
    assert t.coerce(numeric, 2, ctx) == "2"


def test_multiselect_inputs_order_and_display(reg, ctx):
    t = reg["multiselect"]
    f = F("multiselect", options=INDUSTRY)
    want = ["it", "finance"]
    for raw in (["finance", "it"], "finance,it", "金融、信息技术", "金融；IT", '["finance","it"]',
                "finance, it, it", ("it", "金融")):
        assert t.coerce(f, raw, ctx) == want, raw
    assert t.coerce(f, [], ctx) is None
    assert err(t.coerce, f, "金融、房地产", ctx).key == "not_an_option"
    assert err(t.coerce, f, "[1", ctx).key == "not_a_list"
    assert err(t.coerce, f, 5, ctx).key == "not_a_list"
    assert t.to_text(f, want, ctx) == "信息技术、金融"
    assert t.to_text(f, want, FieldContext(locale="en")) == "IT, Finance"
    assert t.to_db(f, want) == '["it", "finance"]'
    assert t.from_db(f, '["it", "finance"]') == want
    assert t.to_csv(f, want) == "it,finance"
    assert isinstance(t.column_type(f), sa.Text)


def test_multiselect_contains_filter_on_stored_json(reg, ctx, sqlite_url):
    """The `contains` operator on the JSON text: LIKE '%"value"%' finds exactly that option."""
    t = reg["multiselect"]
    opts = [Option("a", Label.of("A")), Option("ab", Label.of("AB"))]
    f = F("multiselect", options=opts)
    md = sa.MetaData()
    table = sa.Table("m", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("v", t.column_type(f)))
    engine = sa.create_engine(sqlite_url)
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"id": 1, "v": t.to_db(f, ["ab"])}, {"id": 2, "v": t.to_db(f, ["a", "ab"])}])
        needle = '%' + json.dumps("a") + '%'
        assert conn.execute(sa.select(table.c.id).where(table.c.v.like(needle))).scalars().all() == [2]
    engine.dispose()


def test_select_check_config(reg):
    t = reg["select"]
    assert t.check_config(F("select"), {})[0][0] == ("options",)
    assert t.check_config(F("select"), {"options": "industry"}) == []
    dup = F("select", options=[Option("a", Label.of("A")), Option("a", Label.of("B"))])
    assert t.check_config(dup, {}) == [(("options", 1), "duplicate option value 'a'")]
    bad_multi = F("multiselect", options=[Option("a,b", Label.of("AB"))])
    assert reg["multiselect"].check_config(bad_multi, {})[0][0] == ("options", 0)


# ------------------------------------------------------------------------------- links and people

def test_reference_ids_and_title_resolution(reg, ctx):
    t = reg["reference"]
    f = F("reference", to="customer")
    assert t.coerce(f, 12, ctx) == 12
    assert t.coerce(f, "12", ctx) == 12
    assert t.coerce(f, "#12", ctx) == 12
    assert t.coerce(f, {"id": 12, "title": "x"}, ctx) == 12
    assert err(t.coerce, f, "北京星辰科技有限公司", ctx).key == "no_such_record"
    for bad in (True, 0, -3, 1.5):
        assert err(t.coerce, f, bad, ctx).key == "no_such_record"
    calls = []

    def resolve(field, value):
        calls.append((field.to, value))
        if value == "北京星辰科技有限公司":
            return 99
        raise FieldValueError("no_such_record", {"value": value})

    rctx = FieldContext(resolve_reference=resolve)
    assert t.coerce(f, " 北京星辰科技有限公司 ", rctx) == 99
    assert calls == [("customer", "北京星辰科技有限公司")]
    assert err(t.coerce, f, "不存在公司", rctx).key == "no_such_record"
    assert t.to_text(f, 99, ctx) == "#99"
    assert t.check_config(F("reference"), {}) == [(("to",), "a reference field needs `to:` (the target entity)")]


def test_user_by_id_or_username(reg, ctx):
    t = reg["user"]
    f = F("user")
    users = {"zhangsan": 3}

    def resolve(value):
        if value in users:
            return users[value]
        raise FieldValueError("no_such_user", {"value": value})

    uctx = FieldContext(resolve_user=resolve)
    assert t.coerce(f, 3, uctx) == 3
    assert t.coerce(f, "3", uctx) == 3
    assert t.coerce(f, "zhangsan", uctx) == 3
    assert err(t.coerce, f, "lisi", uctx).key == "no_such_user"
    assert err(t.coerce, f, "lisi", ctx).key == "no_such_user"


def test_department_must_exist(reg, ctx):
    t = reg["department"]
    f = F("department")
    assert t.coerce(f, " 销售部 ", ctx) == "销售部"
    e = err(t.coerce, f, "财务部", ctx)
    assert (e.key, e.params) == ("no_such_department", {"value": "财务部"})
    assert err(t.validate, f, "财务部", ctx).key == "no_such_department"
    assert err(t.coerce, f, "销售部", FieldContext()).key == "no_such_department"


# ----------------------------------------------------------------------------------------- phones

def test_r13_phone_stored_e164_shown_formatted(reg, ctx):
    t = reg["phone"]
    f = F("phone")
    for raw in ("+86 138-0013-8000", "13800138000", "+86-138-0013-8000", "+8613800138000",
                "0086 138 0013 8000", "8613800138000", "138 0013 8000", "１３８００１３８０００",
                13800138000):
        assert t.coerce(f, raw, ctx) == "+8613800138000", raw
    assert t.to_text(f, "+8613800138000", ctx) == "+86-138-0013-8000"
    assert t.to_json(f, "+8613800138000") == "+8613800138000"
    assert t.to_csv(f, "+8613800138000") == "+8613800138000"


def test_phone_landlines_extensions_and_foreign_numbers(reg, ctx):
    t = reg["phone"]
    f = F("phone")
    assert t.coerce(f, "(021) 6234 5678", ctx) == "+862162345678"
    assert t.coerce(f, "010-12345678", ctx) == "+861012345678"
    assert t.to_text(f, "+862162345678", ctx) == "+86-21-6234-5678"
    assert t.coerce(f, "021-62345678 转 123", ctx) == "+862162345678;ext=123"
    assert t.to_text(f, "+862162345678;ext=123", ctx) == "+86-21-6234-5678 ext. 123"
    assert t.coerce(f, "+1 650-253-0000", ctx) == "+16502530000"
    assert t.to_text(f, "+16502530000", ctx) == "+1-650-253-0000"
    assert t.coerce(F("phone", settings={"region": "US"}), "(650) 253-0000", ctx) == "+16502530000"
    assert t.coerce(f, "650 253 0000", FieldContext(phone_region="US")) == "+16502530000"


@pytest.mark.parametrize("bad", ["12345", "+8614000000000", "1380013800", "138001380001", "电话",
                                 "+86 138-0013-800X", True, 3.5])
def test_phone_rejects_invalid_numbers(reg, ctx, bad):
    assert err(reg["phone"].coerce, F("phone"), bad, ctx).key == "not_a_phone"


def test_r21_mobile_landline_wechat_distinct_types(reg, ctx):
    mobile = F("phone", name="mobile", settings={"kind": "mobile"})
    landline = F("phone", name="landline", settings={"kind": "landline"})
    wechat = F("wechat", name="wechat")
    assert clean(reg, mobile, "13800138000", ctx) == "+8613800138000"
    assert err(clean, reg, mobile, "021-62345678", ctx).key == "not_a_mobile"
    assert clean(reg, landline, "021-62345678", ctx) == "+862162345678"
    assert clean(reg, landline, "400-810-8888", ctx) == "+864008108888"
    assert err(clean, reg, landline, "13800138000", ctx).key == "not_a_landline"
    assert clean(reg, wechat, "wx_zhang123", ctx) == "wx_zhang123"
    assert clean(reg, wechat, "138 0013 8000", ctx) == "13800138000"  # WeChat found by mobile
    assert err(clean, reg, wechat, "张三的微信", ctx).key == "not_a_wechat"
    assert err(clean, reg, wechat, "abc", ctx).key == "not_a_wechat"
    assert err(clean, reg, mobile, "wx_zhang123", ctx).key == "not_a_phone"
    assert reg["phone"].check_config(F("phone", settings={"kind": "fax"}), {})[0][0] == ("kind",)


def test_phone_fast_paths_skip_the_full_parser_and_agree_with_it(reg, ctx, monkeypatch):
    """Bulk imports coerce 100,000 phones: CN mobiles and landlines must not need phonenumbers.parse,
    and what the fast paths decide must equal the full parse."""
    import phonenumbers

    from engine.fields import phone as phone_module

    t = reg["phone"]
    f = F("phone")
    samples = ["+86 138-0013-8000", "13912345678", "021-6234 5678", "(0755) 8888 6666", "+86 10 8765 4321",
               "0086 571 8888 7777"]
    expected = {raw: phonenumbers.format_number(phonenumbers.parse(raw, "CN"), phonenumbers.PhoneNumberFormat.E164)
                for raw in samples}
    phone_module.normalize_phone.cache_clear()

    def no_parse(*_a, **_k):
        raise AssertionError("full parse used")

    monkeypatch.setattr(phonenumbers, "parse", no_parse)
    for raw in samples:
        assert t.coerce(f, raw, ctx) == expected[raw]


# ------------------------------------------------------------------------------------ email & url

def test_email(reg, ctx):
    t = reg["email"]
    f = F("email")
    assert t.coerce(f, " Zhang.San@Example.COM ", ctx) == "Zhang.San@example.com"
    assert t.coerce(f, "mailto:a@b.cn", ctx) == "a@b.cn"
    assert t.coerce(f, "ａ＠ｂ．ｃｎ", ctx) == "a@b.cn"
    assert t.coerce(f, "li@例子.中国", ctx) == "li@例子.中国"
    for bad in ("zhang", "a@b", "a@@b.cn", "a b@c.cn", ".a@b.cn", "a..b@c.cn", "a@-b.cn", "a@b.c", 12,
                "张三@qq.com"):
        assert err(t.coerce, f, bad, ctx).key == "not_an_email", bad


def test_url_adds_https_and_only_allows_http(reg, ctx):
    t = reg["url"]
    f = F("url")
    assert t.coerce(f, "www.example.com", ctx) == "https://www.example.com"
    assert t.coerce(f, "HTTP://Example.COM/Path?Q=1", ctx) == "http://example.com/Path?Q=1"
    assert t.coerce(f, "example.com:8080/x", ctx) == "https://example.com:8080/x"
    assert t.coerce(f, "//cdn.example.com/a.png", ctx) == "https://cdn.example.com/a.png"
    assert t.coerce(f, "http://127.0.0.1:5000/", ctx) == "http://127.0.0.1:5000/"
    assert t.coerce(f, "https://例子.中国/", ctx) == "https://例子.中国/"
    for bad in ("javascript:alert(1)", "ftp://example.com", "mailto:a@b.cn", "http://", "https://exa mple.com",
                "http://user:pw@example.com", "http://example", "https://example.com:99999", "data:text/html,x"):
        assert err(t.coerce, f, bad, ctx).key == "not_a_url", bad


# --------------------------------------------------------------------------------------- computed

def test_formula_delegates_to_returns_type(reg, ctx):
    t = reg["formula"]
    money = F("formula", returns="money")
    assert isinstance(t.column_type(money), ExactDecimal) and t.column_type(money).scale == 2
    assert t.coerce(money, 1234.565, ctx) == Decimal("1234.57")
    assert t.to_text(money, Decimal("1234.5"), ctx) == "¥1,234.50"
    assert t.to_json(money, Decimal("1234.5")) == "1234.50"
    integer = F("formula", returns="integer")
    assert t.coerce(integer, 2.5, ctx) == 3 and t.coerce(integer, Decimal("7.0"), ctx) == 7
    assert isinstance(t.column_type(integer), sa.BigInteger)
    assert t.coerce(F("formula", returns="boolean"), True, ctx) is True
    assert isinstance(t.column_type(F("formula", returns="text")), sa.String)
    assert t.coerce(F("formula", returns="datetime"), "2026-03-05 14:30", ctx) == \
        datetime(2026, 3, 5, 6, 30, tzinfo=UTC)
    assert t.to_text(F("formula", returns="percent"), Decimal("80"), ctx) == "80%"
    assert isinstance(t.column_type(F("formula")), ExactDecimal)  # default decimal
    assert t.operators_for(F("formula", returns="text")) == reg["text"].operators
    assert t.operators_for(money) == reg["money"].operators
    assert t.check_config(F("formula", returns="money"), {}) == [(("expr",), "a formula field needs `expr:`")]
    assert t.check_config(F("formula", returns="json"), {"expr": "1"})[0][0] == ("returns",)


def test_autonumber_rendering():
    d = date(2026, 3, 5)
    assert render_autonumber("BJ-{YYYY}-{seq:4}", 7, d) == "BJ-2026-0007"
    assert render_autonumber("HT{YY}{MM}{DD}-{seq:3}", 12, d) == "HT260305-012"
    assert render_autonumber("C{seq}", 12345, d) == "C12345"
    assert render_autonumber("BJ-{YYYY}-{seq:4}", 123456, d) == "BJ-2026-123456"  # never cut
    assert render_autonumber("合同-{YYYY}{MM}-{seq:5}", 1, datetime(2026, 12, 31, 23, 0)) == "合同-202612-00001"
    with pytest.raises(ValueError):
        render_autonumber("X-{Q}-{seq}", 1, d)


def test_autonumber_periods():
    d = date(2026, 3, 5)
    assert autonumber_period("BJ-{YYYY}-{seq:4}", d) == "2026"
    assert autonumber_period("{YY}-{seq}", d) == "2026"
    assert autonumber_period("{YYYY}{MM}-{seq}", d) == "2026-03"
    assert autonumber_period("{YYYY}{MM}{DD}-{seq}", d) == "2026-03-05"
    assert autonumber_period("KH-{seq:6}", d) == ""


def test_autonumber_check_config(reg):
    t = reg["autonumber"]
    assert t.check_config(F("autonumber", format="BJ-{YYYY}-{seq:4}"), {}) == []
    assert t.check_config(F("autonumber"), {}) == []  # default {seq:6}
    no_seq = t.check_config(F("autonumber", format="BJ-{YYYY}"), {})
    assert no_seq == [(("format",), "format needs a {seq} or {seq:N} token")]
    unknown = t.check_config(F("autonumber", format="BJ-{YYYY}-{seq:4}-{HH}"), {})
    assert [m for _, m in unknown] == ["unknown token {HH} (use {YYYY} {YY} {MM} {DD} {seq:N})"]
    assert t.check_config(F("autonumber", format="BJ-{seq:4"), {})
    assert t.check_config(F("autonumber", format="{seq}{seq}"), {})
    assert t.render(F("autonumber"), 5, date(2026, 1, 1)) == "000005"
    assert t.computed and isinstance(t.column_type(F("autonumber")), sa.String)


# ------------------------------------------------------------------------------------------ files

class Upload:
    """The werkzeug FileStorage shape, without importing werkzeug."""

    def __init__(self, data: bytes, filename: str, content_type: str = "application/octet-stream"):
        self.stream = io.BytesIO(data)
        self.filename = filename
        self.content_type = content_type


def test_file_storage_uses_random_names_never_the_client_name(tmp_path):
    storage = LocalFileStorage(tmp_path)
    a = storage.save(io.BytesIO(b"one"), "../../etc/passwd", "text/plain")
    b = storage.save(io.BytesIO(b"two"), "../../etc/passwd", "text/plain")
    assert a.key != b.key and KEY_RE.fullmatch(a.key) and KEY_RE.fullmatch(b.key)
    assert a.name == "passwd" and "passwd" not in a.key
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 2 and all(tmp_path in p.parents for p in files)
    assert not (tmp_path.parent / "etc").exists()
    with storage.open(a.key) as fh:
        assert fh.read() == b"one"
    c = storage.save(b"%PDF", "报价单 v2.PDF", None)
    assert c.key.endswith(".pdf") and c.name == "报价单 v2.PDF" and c.content_type == "application/pdf"
    assert c.size == 4
    assert storage.exists(c.key)
    storage.delete(c.key)
    assert not storage.exists(c.key)
    storage.delete(c.key)  # already gone: no error
    for evil in ("../x", "/etc/passwd", "a" * 32 + "/../../x", "A" * 32):
        assert not storage.exists(evil)
        with pytest.raises(FileNotFoundError):
            storage.open(evil)


def test_file_storage_size_limit_keeps_nothing(tmp_path):
    storage = LocalFileStorage(tmp_path)
    from engine.fields.storage import FileTooLarge

    with pytest.raises(FileTooLarge):
        storage.save(io.BytesIO(b"x" * 200_000), "big.bin", None, max_size=100_000)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_file_field_upload_limits_and_types(reg, ctx):
    t = reg["file"]
    f = F("file", settings={"max_size": 1000, "accept": [".pdf", "image/*"]})
    stored = t.coerce(f, Upload(b"%PDF-1.4", "合同.pdf", "application/pdf"), ctx)
    assert isinstance(stored, StoredFile)
    assert (stored.name, stored.size, stored.content_type) == ("合同.pdf", 8, "application/pdf")
    assert ctx.storage.exists(stored.key)
    t.validate(f, stored, ctx)
    assert t.coerce(f, Upload(b"\x89PNG", "photo.png", "image/png"), ctx).content_type == "image/png"
    e = err(t.coerce, f, Upload(b"x" * 1001, "大文件.pdf"), ctx)
    assert (e.key, e.params) == ("file_too_large", {"max_size": 1000})
    e = err(t.coerce, f, Upload(b"MZ", "virus.exe", "application/pdf"), ctx)
    assert (e.key, e.params) == ("file_type", {"value": "virus.exe"})
    assert t.coerce(f, Upload(b"", ""), ctx) is None  # empty file input
    assert err(t.coerce, f, Upload(b"x", "a.pdf"), FieldContext()).key == "not_a_file"  # no storage


def test_file_default_size_limit_is_10_mib(reg, ctx):
    t = reg["file"]
    e = err(t.coerce, F("file"), Upload(b"x" * (10 * 1024 * 1024 + 1), "a.bin"), ctx)
    assert (e.key, e.params) == ("file_too_large", {"max_size": 10 * 1024 * 1024})


def test_file_references_json_csv_and_db_forms(reg, ctx):
    t = reg["file"]
    f = F("file")
    stored = t.coerce(f, Upload(b"\xff\xd8\xff\xe0\x00", "名片|扫描.jpg", "image/jpeg"), ctx)
    assert "|" not in stored.name
    as_json = t.to_json(f, stored)
    assert as_json == {"key": stored.key, "name": "名片扫描.jpg", "size": 5, "content_type": "image/jpeg"}
    ref = t.to_db(f, stored)
    assert ref == f"{stored.key}|5|image/jpeg|名片扫描.jpg" and len(ref) <= 500
    assert t.from_db(f, ref) == stored
    assert t.coerce(f, json.dumps(as_json, ensure_ascii=False), ctx) == stored
    assert t.to_text(f, stored, ctx) == "名片扫描.jpg"
    # references must name an object the storage holds, with a well-formed key
    missing = dict(as_json, key="0" * 32 + ".jpg")
    assert err(t.coerce, f, missing, ctx).key == "not_a_file"
    for bad in ({"key": "../../etc/passwd"}, "../../x|1|a/b|n", 42, {"name": "x"}):
        assert err(t.coerce, f, bad, ctx).key == "not_a_file"
    long_name = t.coerce(f, Upload(b"x", "长" * 400 + ".pdf"), ctx)
    assert len(t.to_db(f, long_name)) <= 500 and long_name.name.endswith(".pdf")


def test_file_check_config(reg):
    t = reg["file"]
    assert t.check_config(F("file", settings={"max_size": 1024, "accept": [".pdf", "image/*"]}), {}) == []
    assert t.check_config(F("file", settings={"max_size": 0}), {})[0][0] == ("max_size",)
    assert t.check_config(F("file", settings={"accept": ".pdf"}), {})[0][0] == ("accept",)
    assert t.check_config(F("file", settings={"accept": ["pdf", "../x"]}), {})[0][0] == ("accept", 1)


# --------------------------------------------------------------------------------------- subtable

def test_subtable_shape_only(reg, ctx):
    t = reg["subtable"]
    f = F("subtable", min=1, max=2)
    rows = [{"product": "A", "qty": "2"}]
    assert t.coerce(f, rows, ctx) == rows
    assert t.coerce(f, json.dumps(rows), ctx) == rows
    assert t.coerce(f, [], ctx) == []
    for bad in ({"product": "A"}, [1, 2], "[1", "abc", 5):
        assert err(t.coerce, f, bad, ctx).key == "not_a_list", bad
    assert err(t.validate, f, [], ctx).key == "too_few_rows"
    assert err(t.validate, f, rows * 3, ctx).key == "too_many_rows"
    assert t.column_type(f) is None and t.stored is False
    assert t.to_text(f, rows, ctx) == "1 行"
    assert t.check_config(F("subtable"), {})[0][0] == ("fields",)


# ------------------------------------------------------------------------------------ config checks

def test_check_config_catches_bad_type_settings(reg):
    assert reg["text"].check_config(F("text", pattern="("), {})[0][0] == ("pattern",)
    assert reg["decimal"].check_config(F("decimal", settings={"scale": 12}), {})[0][0] == ("scale",)
    assert reg["integer"].check_config(F("integer", min="a"), {})[0][0] == ("min",)
    assert reg["integer"].check_config(F("integer", min=10, max=1), {}) == [(("min",), "min is greater than max")]
    assert reg["money"].check_config(F("money", settings={"currency": "rmb"}), {})[0][0] == ("currency",)
    assert reg["money"].check_config(F("money", min=0), {}) == []
    assert reg["date"].check_config(F("date", settings={"display": "fancy"}), {})[0][0] == ("display",)


# ------------------------------------------------------------------------------------------ demo

@pytest.mark.parametrize("locale", ["zh_CN", "en_US"])
def test_demo_values_are_valid_for_every_type(reg, tmp_path, locale):
    faker = Faker(locale)
    faker.seed_instance(7)
    ctx = FieldContext(locale=locale, departments=("销售部", "市场部"),
                       phone_region="CN" if locale == "zh_CN" else "US",
                       storage=LocalFileStorage(tmp_path))
    fields = [F(n, options=INDUSTRY, to="customer", returns="money", format="{seq}") for n in reg.names()]
    fields += [F("text", name="company_name"), F("text", name="address"), F("text", name="title"),
               F("text", name="contact_name"), F("phone", settings={"kind": "landline"}),
               F("phone", settings={"kind": "mobile"}), F("integer", min=5, max=9),
               F("date", min="2026-01-01", max="2026-01-31"), F("text", name="code", max_length=4)]
    for _ in range(20):
        for f in fields:
            t = reg.for_field(f)
            v = t.demo_value(f, faker, ctx)
            if v is None:
                continue
            got = t.clean(f, t.to_json(f, v), ctx)
            assert got == v, (f.type, f.name, v)


def test_demo_phone_is_a_real_looking_cn_mobile(reg):
    faker = Faker("zh_CN")
    faker.seed_instance(1)
    t = reg["phone"]
    ctx = FieldContext()
    for _ in range(50):
        v = t.demo_value(F("phone"), faker, ctx)
        assert v.startswith("+861") and len(v) == 14
        assert t.to_text(F("phone"), v, ctx).startswith("+86-1")


def test_demo_text_uses_name_hints(reg):
    faker = Faker("zh_CN")
    faker.seed_instance(3)
    t = reg["text"]
    ctx = FieldContext()
    company = t.demo_value(F("text", name="company_name"), faker, ctx)
    assert company.endswith(("公司", "有限公司")) or "公司" in company
    address = t.demo_value(F("text", name="address"), faker, ctx)
    assert "市" in address and "区" in address and "路" in address and address.endswith("号")
    contact = t.demo_value(F("text", name="contact_name"), faker, ctx)
    assert 2 <= len(contact) <= 4
    customer = Entity(name="customer", label=Label.of("客户"), fields={})
    f = F("text", name="name")
    f.entity = customer
    assert "公司" in t.demo_value(f, faker, ctx)
