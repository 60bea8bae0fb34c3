"""The tenant config: YAML with locations, extends/remove, JSON Schema, semantic checks, `formwork check`."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli.config_cmds import check as check_command
from engine.cli.config_cmds import schema as schema_command
from engine.config import SCHEMA_PATH, check_config, is_expression_default, load_config, load_model
from engine.config.build import default_plugins
from engine.config.schema import builtin_schema, schema_text
from engine.errors import ConfigError, FieldValueError
from engine.fields import FieldContext

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "config"
TEMPLATES = sorted((ROOT / "configs").glob("*.yaml"))

MINIMAL = """\
tenant: {name: t}
entities:
  customer:
    fields:
      name: {type: text}
"""


@pytest.fixture(scope="module")
def plugins():
    return default_plugins()


@pytest.fixture(scope="module")
def sample(plugins):
    return load_model(ROOT / "sample_tenant.yaml", *plugins)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def issues_of(path, plugins) -> list:
    model, issues = check_config(path, *plugins)
    assert (model is None) == bool(issues)
    return issues


def where(issue) -> tuple:
    return (Path(issue.location.file).name, issue.location.line, issue.location.col)


def run_check(args: list[str], cwd: Path = ROOT):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(check_command, args, catch_exceptions=False)
    finally:
        os.chdir(old)


# ---------------------------------------------------------------------------------------------
# Acceptance: ten different mistakes, each at its file:line:col


TEN_MISTAKES = [
    (3, 10, "extends: no template named 'no_such_template'"),                 # bad extends
    (8, 5, "unknown key 'lable' in entity 'customer' (did you mean 'label'?)"),  # misspelt key
    (10, 36, "required: expected true or false, got 'yes please'"),            # wrong value type
    (11, 23, "unknown field type 'dat' (did you mean 'date'?)"),               # unknown type
    (12, 37, "to: unknown entity 'company'"),                                  # unknown to: entity
    (13, 41, "options: unknown dictionary 'industries' (did you mean 'industry'?)"),  # unknown dictionary
    (14, 7, "'version' is a system field every record already has"),           # system field name
    (15, 45, "expr: syntax error"),                                             # bad expression
    (16, 43, "expr: the name '__class__' is not allowed"),                      # __class__
    (17, 7, "duplicate key 'founded' (first defined at line 11)"),             # duplicate key
]


def test_acceptance_ten_mistakes_each_reported_at_file_line_col():
    rel = "tests/fixtures/config/ten_mistakes.yaml"
    result = run_check([rel])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 10, result.stdout
    for line, (row, col, text) in zip(lines, TEN_MISTAKES):
        assert line.startswith(f"{rel}:{row}:{col}: "), line
        assert text in line, line
    assert "10 errors in tests/fixtures/config/ten_mistakes.yaml" in result.stderr


def test_acceptance_formwork_check_process_has_no_traceback():
    exe = Path(sys.executable).with_name("formwork")
    if not exe.exists():
        if os.environ.get("CI") == "true":   # make test installs it: missing in CI is a broken install
            pytest.fail(f"the formwork console script is missing beside {sys.executable}")
        pytest.skip("the formwork console script is not installed in this environment")
    proc = subprocess.run([str(exe), "check", "tests/fixtures/config/ten_mistakes.yaml"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    assert len(re.findall(r"^tests/fixtures/config/ten_mistakes\.yaml:\d+:\d+: ", proc.stdout, re.M)) == 10


def test_errors_in_a_template_point_at_the_template():
    result = run_check(["tests/fixtures/config/template_errors/tenant.yaml"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines == [
        "tests/fixtures/config/template_errors/template.yaml:9:41: options: unknown dictionary "
        "'industri' (did you mean 'industry'?)",
        "tests/fixtures/config/template_errors/template.yaml:10:27: unknown key 'requird' in field "
        "'since' (did you mean 'required'?)",
        "tests/fixtures/config/template_errors/tenant.yaml:7:7: 'owner' is a system field every record "
        "already has; choose another name",
    ]


def test_extends_cycle_is_an_error_naming_the_chain():
    result = run_check(["tests/fixtures/config/cycle/a.yaml"])
    assert result.exit_code == 1
    assert result.stdout.strip() == (
        "tests/fixtures/config/cycle/c.yaml:2:10: extends: a cycle: tests/fixtures/config/cycle/a.yaml → "
        "tests/fixtures/config/cycle/b.yaml → tests/fixtures/config/cycle/c.yaml → "
        "tests/fixtures/config/cycle/a.yaml")


def test_extends_self_is_a_cycle(tmp_path, plugins):
    path = write(tmp_path, "self.yaml", "extends: self.yaml\n" + MINIMAL)
    [issue] = issues_of(path, plugins)
    assert "a cycle" in issue.message and where(issue) == ("self.yaml", 1, 10)


@pytest.mark.parametrize("config_path", [ROOT / "sample_tenant.yaml", *TEMPLATES],
                         ids=lambda p: p.name)
def test_sample_and_every_template_pass_check(config_path):
    result = run_check([str(config_path.relative_to(ROOT))])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ok: ") and len(result.stdout.splitlines()) == 1


def test_configs_has_base_and_another_template():
    names = {p.stem for p in TEMPLATES}
    assert "base" in names and len(names) >= 2


def test_check_summary_line_names_tenant_counts_and_files(sample):
    result = run_check(["sample_tenant.yaml"])
    n_fields = sum(len(e.fields) for e in sample.all_entities())
    assert result.stdout.strip() == (f"ok: acme (艾克美科技) — 10 entities, {n_fields} fields, "
                                     f"8 dictionaries, from sample_tenant.yaml ← configs/base.yaml")


def test_schema_file_is_current():
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(builtin_schema()), (
        "engine/config/tenant.schema.json is stale: run `formwork schema > engine/config/tenant.schema.json`")


@pytest.mark.parametrize("config_path", [ROOT / "sample_tenant.yaml", *TEMPLATES], ids=lambda p: p.name)
def test_editor_schema_accepts_each_file_as_written(config_path):
    """Editors validate one file before extends: is merged: no required keys, {remove: true} allowed."""
    import jsonschema
    import yaml

    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
    data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    assert [e.message for e in validator.iter_errors(data)] == []
    misspelt = {"entities": {"customer": {"lable": "x"}}}
    assert list(validator.iter_errors(misspelt))


def test_schema_command_prints_the_schema_and_its_path():
    runner = CliRunner()
    out = runner.invoke(schema_command, [])
    assert out.exit_code == 0 and json.loads(out.stdout)["properties"]["entities"]
    path = runner.invoke(schema_command, ["--path"])
    assert path.exit_code == 0 and Path(path.stdout.strip()) == SCHEMA_PATH


# ---------------------------------------------------------------------------------------------
# The file itself: never a traceback


@pytest.mark.parametrize("case, content, expected", [
    ("missing", None, ":1:1: no such file"),
    ("empty", b"", ":1:1: the file is empty"),
    ("comments_only", b"# yaml-language-server: $schema=x.json\n", ":1:1: the file is empty"),
    ("not_utf8", "tenant:\n  name: 客户\n".encode("gb18030"), ":2:9: not UTF-8 text"),
    ("syntax", b"tenant: {name: a\nentities: [\n", ":2:9: YAML syntax error"),
    ("tab", b"tenant:\n\tname: a\n", ":2:1: YAML syntax error: a tab character"),
    ("list", b"- a\n- b\n", ":1:1: a tenant config must be a mapping"),
    ("nul", b"tenant: {name: a\x00}\n", ":1:17: YAML syntax error: the character '\\x00' is not allowed"),
    ("deep", b"tenant: {name: t}\nentities: " + b"[" * 3000 + b"]" * 3000 + b"\n",
     ":2:51: nested more than 40 levels deep"),
    ("bomb", b"a: &a [1, 2]\n" + b"".join(b"%c: &%c [%s]\n" % (98 + i, 98 + i, b", ".join([b"*%c" % (97 + i)] * 9))
                                       for i in range(7)), ":1:1: the document is too large"),
    ("python_tag", b"tenant: !!python/object/apply:os.system [ls]\nentities: {}\n",
     ":1:9: unsupported YAML tag !!python/object/apply:os.system"),
])
def test_unreadable_files_are_reported_without_traceback(tmp_path, case, content, expected):
    path = tmp_path / f"{case}.yaml"
    if content is not None:
        path.write_bytes(content)
    result = run_check([str(path)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert any(line.startswith(f"{path}{expected}") for line in result.stdout.splitlines()), result.stdout


def test_a_directory_is_reported(tmp_path):
    result = run_check([str(tmp_path)])
    assert result.exit_code == 1
    assert result.stdout.startswith(f"{tmp_path}:1:1: is a directory")


def test_utf8_bom_is_accepted(tmp_path, plugins):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode())
    assert issues_of(path, plugins) == []


def test_duplicate_key_is_reported_at_the_second_key(tmp_path, plugins):
    path = write(tmp_path, "dup.yaml", """\
        tenant: {name: t}
        entities:
          customer:
            fields:
              name: {type: text}
          customer:
            fields:
              code: {type: text}
        """)
    [issue] = issues_of(path, plugins)
    assert where(issue) == ("dup.yaml", 6, 3)
    assert issue.message == "duplicate key 'customer' (first defined at line 3)"


def test_yaml_core_schema_keeps_yes_no_and_dates_as_text(tmp_path, plugins):
    path = write(tmp_path, "core.yaml", """\
        tenant: {name: t}
        entities:
          survey:
            fields:
              name: {type: text}
              answer: {type: select, options: [yes, no, on, off], default: no}
              starts: {type: date, default: 2026-01-31}
              slot: {type: text, default: 10:30}
        """)
    model, issues = check_config(path, *plugins)
    assert issues == []
    fields = model.entities["survey"].fields
    assert fields["answer"].option_values() == ["yes", "no", "on", "off"]
    assert fields["answer"].default == "no"
    assert fields["starts"].default == "2026-01-31"
    assert fields["slot"].default == "10:30"


def test_anchors_and_merge_keys_work(tmp_path, plugins):
    path = write(tmp_path, "anchors.yaml", """\
        tenant: {name: t}
        entities:
          customer:
            fields:
              name: &short_text {type: text, max_length: 50}
              city: {<<: *short_text, label: 城市}
              bad: {<<: *short_text, lenght: 3}
        """)
    [issue] = issues_of(path, plugins)
    assert where(issue) == ("anchors.yaml", 7, 30) and "unknown key 'lenght'" in issue.message
    model = load_model(write(tmp_path, "ok.yaml", MINIMAL.replace(
        "name: {type: text}", "name: &t {type: text, max_length: 50}\n      city: {<<: *t, label: 城市}")),
        *plugins)
    city = model.entities["customer"].fields["city"]
    assert city.max_length == 50 and city.label.get() == "城市"


# ---------------------------------------------------------------------------------------------
# extends, deep merge, remove


def test_deep_merge_mappings_merge_lists_and_scalars_replace(tmp_path, plugins):
    write(tmp_path, "template.yaml", """\
        tenant: {name: template, currency: USD}
        dictionaries:
          industry: [a, b, c]
        entities:
          customer:
            label: Customer
            fields:
              name: {type: text, required: true, max_length: 100}
              industry: {type: select, options: industry}
            layout:
              list: [name, industry]
        """)
    tenant = write(tmp_path, "tenant.yaml", """\
        tenant: {name: tenant}
        extends: template.yaml
        dictionaries:
          industry: [x, y]
        entities:
          customer:
            fields:
              name: {label: 公司全称}
              phone: {type: phone}
            layout:
              list: [name, phone]
        """)
    model, issues = check_config(tenant, *plugins)
    assert issues == []
    assert model.tenant.name == "tenant" and model.tenant.currency == "USD"
    customer = model.entities["customer"]
    assert list(customer.fields) == ["name", "industry", "phone"]          # template order, new after
    name = customer.fields["name"]
    assert (name.label.get(), name.required, name.max_length) == ("公司全称", True, 100)
    assert customer.fields["industry"].option_values() == ["x", "y"]       # the list was replaced
    assert customer.list_layout == ["name", "phone"]
    assert model.files == [str(tmp_path / "template.yaml"), str(tenant)] or \
        [Path(f).name for f in model.files] == ["template.yaml", "tenant.yaml"]
    assert "extends" not in model.config
    smap = model.source_map
    assert Path(smap.value(("entities", "customer", "fields", "name", "label")).file).name == "tenant.yaml"
    type_loc = smap.value(("entities", "customer", "fields", "name", "type"))
    assert (Path(type_loc.file).name, type_loc.line) == ("template.yaml", 8)


def test_remove_true_deletes_what_the_template_defined(tmp_path, plugins):
    write(tmp_path, "template.yaml", """\
        tenant: {name: template}
        dictionaries:
          industry: [a, b]
          region: [north, south]
        entities:
          customer:
            fields:
              name: {type: text}
              fax: {type: phone}
            rules:
              - {check: "name != 'x'", message: no x}
          ticket:
            fields:
              subject: {type: text}
        """)
    tenant = write(tmp_path, "tenant.yaml", """\
        tenant: {name: tenant}
        extends: template.yaml
        dictionaries:
          region: {remove: true}
        entities:
          customer:
            fields:
              fax: {remove: true}
            rules: {remove: true}
          ticket: {remove: true}
        """)
    model, issues = check_config(tenant, *plugins)
    assert issues == []
    assert list(model.dictionaries) == ["industry"]
    assert list(model.entities) == ["customer"]
    assert list(model.entities["customer"].fields) == ["name"]
    assert model.entities["customer"].rules == []
    assert ("entities", "ticket") not in model.source_map


def test_remove_with_nothing_to_remove_is_an_error(tmp_path, plugins):
    write(tmp_path, "template.yaml", MINIMAL)
    tenant = write(tmp_path, "tenant.yaml", """\
        tenant: {name: tenant}
        extends: template.yaml
        entities:
          customer:
            fields:
              nmae: {remove: true}
              name: {remove: true, label: x}
        """)
    issues = issues_of(tenant, plugins)
    assert [(where(i), i.message) for i in issues] == [
        (("tenant.yaml", 6, 14), "nothing named 'nmae' here in the template to remove"),
        (("tenant.yaml", 7, 14), "remove: true must be the only key of its mapping"),
    ]
    alone = write(tmp_path, "alone.yaml", MINIMAL + "      fax: {remove: true}\n")
    [issue] = issues_of(alone, plugins)
    assert where(issue) == ("alone.yaml", 6, 13) and "nothing is inherited" in issue.message


def test_templates_extend_templates_to_any_depth(tmp_path, plugins):
    write(tmp_path, "t1.yaml", MINIMAL)
    write(tmp_path, "t2.yaml", "extends: t1.yaml\nentities: {customer: {fields: {b: {type: text}}}}\n")
    write(tmp_path, "t3.yaml", "extends: t2.yaml\nentities: {customer: {fields: {c: {type: text}}}}\n")
    top = write(tmp_path, "top.yaml", "extends: t3.yaml\ntenant: {name: top}\n")
    model = load_model(top, *plugins)
    assert list(model.entities["customer"].fields) == ["name", "b", "c"]
    assert [Path(f).name for f in model.files] == ["t1.yaml", "t2.yaml", "t3.yaml", "top.yaml"]


def test_extends_bare_name_finds_configs_and_formwork_configs(tmp_path, plugins, monkeypatch):
    tenant = write(tmp_path, "tenant.yaml", "tenant: {name: x}\nextends: base\n")
    model = load_model(tenant, *plugins)
    assert Path(model.files[0]).resolve() == (ROOT / "configs" / "base.yaml").resolve()
    extra = tmp_path / "mine"
    write(extra, "base.yaml", MINIMAL)
    monkeypatch.setenv("FORMWORK_CONFIGS", str(extra))
    model = load_model(tenant, *plugins)
    assert list(model.entities) == ["customer"] and Path(model.files[0]).parent == extra


@pytest.mark.parametrize("value, message", [
    ("nowhere", "extends: no template named 'nowhere' in configs/"),
    ("missing.yaml", "extends: no such file missing.yaml"),
    ("../x/y", "is neither a template name"),
    ("42", "extends: expected a template name (e.g. base) or a path ending in .yaml, got the number 42"),
])
def test_bad_extends_is_reported_at_its_value(tmp_path, plugins, value, message):
    path = write(tmp_path, "t.yaml", f"extends: {value}\n" + MINIMAL)
    [issue] = issues_of(path, plugins)
    assert where(issue) == ("t.yaml", 1, 10) and message in issue.message


# ---------------------------------------------------------------------------------------------
# Schema messages


@pytest.mark.parametrize("snippet, loc, message", [
    ("      name: {type: text, lable: x}", (5, 26), "unknown key 'lable' in field 'name' (did you mean 'label'?)"),
    ("      name: {type: txt}", (5, 20), "unknown field type 'txt' (did you mean 'text'?)"),
    ("      name: {type: text, max_length: many}", (5, 38), "max_length: expected a whole number, got 'many'"),
    ("      name: {type: text, max_length: 0}", (5, 38), "max_length: must be at least 1"),
    ("      name: {label: x}", (5, 7), "field 'name' is missing the required key 'type'"),
    ("      Name: {type: text}", (5, 7), "'Name' is not a valid name"),
    ("      name: {type: text, label: {zh: 名, EN: name}}", (5, 41), "'EN' is not a language code"),
    ("      name: {type: text, label: [a]}", (5, 33),
     "label: expected a text or texts per language such as {zh: 客户, en: Customer}, got a list"),
    ("      name: {type: select, options: [{value: a, lable: b}]}", (5, 49),
     "unknown key 'lable' in item 1 of options (did you mean 'label'?)"),
    ("      name: {type: select, options: [[a]]}", (5, 38), "options: expected a plain value or"),
])
def test_schema_errors_are_short_and_located(tmp_path, plugins, snippet, loc, message):
    path = write(tmp_path, "s.yaml", MINIMAL.replace("      name: {type: text}", snippet))
    issues = issues_of(path, plugins)
    assert any(where(i)[1:] == loc and message in i.message for i in issues), \
        [str(i) for i in issues]


def test_unknown_top_level_key_and_missing_entities(tmp_path, plugins):
    path = write(tmp_path, "top.yaml", "tenant: {name: t}\nentites: {}\n")
    messages = [(where(i)[1:], i.message) for i in issues_of(path, plugins)]
    assert ((1, 1), "the config is missing the required key 'entities'") in messages
    assert ((2, 1), "unknown key 'entites' at the top level (did you mean 'entities'?)") in messages


@pytest.mark.parametrize("text", [
    "tenant: x\nentities: []\n",
    "tenant: {name: t}\nentities: {customer: []}\n",
    "tenant: {name: t}\nentities: {customer: {fields: x}}\n",
    "tenant: {name: t}\nentities: {customer: {fields: {name: [1]}, rules: {a: 1}, layout: [1]}}\n",
    "tenant: {name: t}\nentities: {customer: {fields: {name: {type: select, options: 5, default: []}}}}\n",
    "tenant: {name: t}\nentities: {c: {fields: {n: {type: subtable, fields: [1]}}, title: 3}}\n",
    "tenant: {name: t}\ndictionaries: {a: 1, b: {options: x}}\ndepartments: [1]\nroles: {r: 1}\n"
    "entities: {c: {fields: {n: {type: text}}}}\n",
    "tenant: {name: t}\nentities: {c: {fields: {n: {type: formula, expr: 5}, m: {type: text, default: [1]}}}}\n",
    "tenant: {name: t}\nentities: {c: {fields: {n: {type: text}}, rules: [{check: 1, message: 2}, 3]}}\n",
    "tenant: {name: t}\nentities: {c: {fields: {n: {type: text}}, layout: {list: [1], form: [{fields: [2]}, 3]}}}\n",
])
def test_odd_shapes_never_crash_the_check(tmp_path, plugins, text):
    path = write(tmp_path, "odd.yaml", text)
    issues = issues_of(path, plugins)
    assert issues and not any("internal error" in i.message or "cannot compile" in i.message for i in issues)
    assert all(i.location is not None and i.location.line >= 1 for i in issues)


# ---------------------------------------------------------------------------------------------
# Semantic checks


def config_with_fields(fields: str, extra: str = "") -> str:
    return ("tenant: {name: t}\n" + extra + "entities:\n  customer:\n    fields:\n"
            + textwrap.indent(textwrap.dedent(fields), "      "))


@pytest.mark.parametrize("name, message", [
    ("id", "'id' is a system field"),
    ("created_at", "'created_at' is a system field"),
    ("owner", "'owner' is a system field"),
    ("a__b", "contains '__'"),
])
def test_reserved_and_system_field_names(tmp_path, plugins, name, message):
    path = write(tmp_path, "n.yaml", config_with_fields(f"name: {{type: text}}\n{name}: {{type: text}}\n"))
    [issue] = issues_of(path, plugins)
    assert where(issue) == ("n.yaml", 6, 7) and message in issue.message


@pytest.mark.parametrize("name", ["order", "date", "position", "parent_id", "class", "from", "returning"])
def test_sql_words_and_python_keywords_are_field_names(tmp_path, plugins, name):
    """SQLAlchemy quotes them; expressions write keywords in backticks (tests/security/test_reserved_words.py)."""
    path = write(tmp_path, "n.yaml", config_with_fields(f"name: {{type: text}}\n{name}: {{type: text}}\n"))
    assert issues_of(path, plugins) == []


@pytest.mark.parametrize("name, message", [
    ("position", "'position' is a system field every row already has"),
    ("parent_id", "'parent_id' is a system field every row already has"),
])
def test_subtable_rows_keep_their_system_field_names(tmp_path, plugins, name, message):
    path = write(tmp_path, "n.yaml", config_with_fields(
        f"name: {{type: text}}\nlines:\n  type: subtable\n  fields:\n    {name}: {{type: text}}\n"))
    [issue] = issues_of(path, plugins)
    assert message in issue.message


@pytest.mark.parametrize("entity, message", [
    ("fw_users", "may not start with 'fw_'"),
])
def test_reserved_entity_names(tmp_path, plugins, entity, message):
    path = write(tmp_path, "e.yaml", MINIMAL.replace("  customer:", f"  {entity}:"))
    [issue] = issues_of(path, plugins)
    assert where(issue) == ("e.yaml", 3, 3) and message in issue.message


def test_type_specific_keys_on_another_type(tmp_path, plugins):
    path = write(tmp_path, "k.yaml", config_with_fields("""\
        name: {type: text, to: customer}
        born: {type: date, scale: 2}
        n: {type: integer, options: [a]}
        """))
    assert [(where(i)[1:], i.message) for i in issues_of(path, plugins)] == [
        ((5, 26), "'to' does not apply to a text field (only to reference)"),
        ((6, 26), "'scale' does not apply to a date field (only to decimal and formula)"),
        ((7, 26), "'options' does not apply to an integer field (only to select and multiselect)"),
    ]


def test_computed_fields_take_no_required_or_default(tmp_path, plugins):
    path = write(tmp_path, "c.yaml", config_with_fields("""\
        name: {type: text}
        n: {type: formula, expr: "1 + 1", required: true}
        code: {type: autonumber, default: x}
        lines: {type: subtable, required: true, fields: {x: {type: text}}}
        parts: {type: subtable, unique: true, fields: {x: {type: text}}}
        """))
    messages = [(where(i)[1:], i.message) for i in issues_of(path, plugins)]
    assert len(messages) == 3
    assert ((9, 31), "'unique' does not apply to a subtable field") in messages
    assert ((6, 41), "'required' does not apply to a formula field: its value is computed") in messages
    assert ((7, 32), "'default' does not apply to an autonumber field: its value is computed") in messages


def test_select_default_must_be_an_option_and_options_unique(tmp_path, plugins):
    path = write(tmp_path, "d.yaml", config_with_fields("""\
        name: {type: text}
        level: {type: select, options: [A, B, A], default: D}
        tags: {type: multiselect, options: [x, y], default: [x, z]}
        """))
    assert [(where(i)[1:], i.message) for i in issues_of(path, plugins)] == [
        ((6, 45), "duplicate option 'A' (also item 1)"),
        ((6, 58), "default: 'D' is not one of the options (options: A, B)"),
        ((7, 59), "default: 'z' is not one of the options (options: x, y)"),
    ]


def test_literal_defaults_are_checked_against_the_type(tmp_path, plugins):
    path = write(tmp_path, "d.yaml", config_with_fields("""\
        name: {type: text}
        n: {type: integer, default: many}
        d: {type: date, default: today}
        ok: {type: date, default: 2026-02-01}
        """))
    messages = [(where(i)[1:], i.message) for i in issues_of(path, plugins)]
    assert [m[0] for m in messages] == [(6, 35), (7, 32)]
    assert "default: 'many'" in messages[0][1] and "default: 'today'" in messages[1][1]


def test_default_expression_detection_rule():
    assert is_expression_default("today()")
    assert is_expression_default("add_days(today(), 7)")
    assert is_expression_default("now()")
    assert not is_expression_default("today")
    assert not is_expression_default("N/A (none)")
    assert not is_expression_default("Hello (world)")
    assert not is_expression_default(5)
    assert not is_expression_default("C")


def test_default_expressions_are_compiled_and_located(tmp_path, plugins):
    path = write(tmp_path, "e.yaml", config_with_fields("""\
        name: {type: text}
        joined: {type: date, default: today()}
        bad: {type: date, default: tomorrow()}
        """))
    [issue] = issues_of(path, plugins)
    assert where(issue)[:2] == ("e.yaml", 7) and issue.message.startswith("default: ")
    assert "tomorrow" in issue.message
    fixed = write(tmp_path, "f.yaml", config_with_fields("""\
        name: {type: text}
        joined: {type: date, default: today()}
        """))
    joined = load_model(fixed, *plugins).entities["customer"].fields["joined"]
    assert joined.default is None and joined.default_expr is not None
    assert joined.default_expr.evaluate({}, now=datetime(2026, 3, 5, 4, tzinfo=timezone.utc),
                                        tz="Asia/Shanghai") == date(2026, 3, 5)


def test_expression_errors_point_into_the_expression(tmp_path, plugins):
    path = write(tmp_path, "x.yaml", """\
        tenant: {name: t}
        entities:
          customer:
            fields:
              name: {type: text}
              rating: {type: integer}
            rules:
              - check: "rating > 3 and nmae"
                message: x
              - check: >-
                  rating >
                  unknown_thing
                message: y
        """)
    issues = issues_of(path, plugins)
    assert [where(i) for i in issues] == [("x.yaml", 8, 32), ("x.yaml", 10, 16)]
    assert "nmae" in issues[0].message and "unknown_thing" in issues[1].message


def test_formula_cycles_are_reported(tmp_path, plugins):
    path = write(tmp_path, "f.yaml", config_with_fields("""\
        name: {type: text}
        a: {type: formula, expr: "b + 1"}
        b: {type: formula, expr: "c + 1"}
        c: {type: formula, expr: "a + 1"}
        d: {type: formula, expr: "d + 1"}
        """))
    messages = [i.message for i in issues_of(path, plugins)]
    assert any("cycle" in m and all(n in m for n in "abc") for m in messages), messages
    assert any("'d' uses itself" in m or "cycle" in m and "d" in m for m in messages), messages


def test_formulas_get_their_result_type_in_dependency_order(tmp_path, plugins):
    path = write(tmp_path, "r.yaml", config_with_fields("""\
        name: {type: text}
        total: {type: formula, expr: "net * 2"}
        net: {type: formula, expr: "price - 1"}
        price: {type: money}
        """))
    fields = load_model(path, *plugins).entities["customer"].fields
    assert fields["net"].returns == "money" and fields["total"].returns == "money"


def test_layout_and_title_names_must_exist(tmp_path, plugins):
    path = write(tmp_path, "l.yaml", """\
        tenant: {name: t}
        entities:
          customer:
            title: nmae
            fields:
              name: {type: text}
              lines: {type: subtable, fields: {x: {type: text}}}
            layout:
              list: [name, owner, created_at, lines, nope]
              form:
                - {section: A, fields: [name, owner]}
                - {section: B, fields: [name, ghost]}
        """)
    assert [(where(i)[1:], i.message) for i in issues_of(path, plugins)] == [
        ((4, 12), "title: 'nmae' is not a field of customer (did you mean 'name'?)"),
        ((9, 39), "list: 'lines' is a subtable and cannot be a column"),
        ((9, 46), "list: 'nope' is not a field of customer"),
        ((12, 33), "form: 'name' is already in section 1"),
        ((12, 39), "form: 'ghost' is not a field of customer"),
    ]


def test_layout_defaults_when_absent(tmp_path, plugins):
    path = write(tmp_path, "l.yaml", config_with_fields("""\
        code: {type: autonumber}
        name: {type: text}
        notes: {type: textarea}
        a: {type: integer}
        b: {type: integer}
        c: {type: integer}
        d: {type: integer}
        """))
    customer = load_model(path, *plugins).entities["customer"]
    assert customer.title == "name"
    assert customer.list_layout == ["name", "code", "a", "b", "c"]
    [section] = customer.form_layout
    assert section["fields"] == list(customer.fields) and section["section"].get("en_US") == "Details"


def test_renamed_from_must_not_name_an_existing_field(tmp_path, plugins):
    path = write(tmp_path, "r.yaml", config_with_fields("""\
        name: {type: text}
        short_name: {type: text, renamed_from: name}
        alias: {type: text, renamed_from: abbreviation}
        """))
    [issue] = issues_of(path, plugins)
    assert where(issue) == ("r.yaml", 6, 46) and "'name' is still a field of customer" in issue.message


def test_field_types_own_checks_are_located(tmp_path, plugins):
    path = write(tmp_path, "a.yaml", config_with_fields("""\
        name: {type: text, pattern: "([a-z"}
        code: {type: autonumber, format: "BJ-{YYYY}"}
        n: {type: integer, min: 5, max: 1}
        """))
    locs = {where(i)[1:]: i.message for i in issues_of(path, plugins)}
    assert any(loc[0] == 5 and "pattern" in m for loc, m in locs.items()), locs
    assert any(loc[0] == 6 and "seq" in m for loc, m in locs.items()), locs
    assert any(loc[0] == 7 and "min" in m for loc, m in locs.items()), locs


def test_departments_and_roles_references(tmp_path, plugins):
    path = write(tmp_path, "o.yaml", MINIMAL + """\
departments:
  a: {label: A, parent: b}
  b: {label: B, parent: a}
  c: {label: C, parent: nope}
roles:
  rep:
    entities: {customer: {read: own}, custmer: {read: own}}
    fields: {customer.nam: hidden, x.y: read, customer.name: read}
""")
    messages = [(where(i)[1:], i.message) for i in issues_of(path, plugins)]
    assert any(loc[0] in (7, 8) and "cycle" in m for loc, m in messages), messages
    assert ((9, 25), "parent: unknown department 'nope'") in messages
    assert ((12, 39), "unknown entity 'custmer' (did you mean 'customer'?)") in messages
    assert any(loc[0] == 13 and "customer.nam" in m and "did you mean 'customer.name'" in m
               for loc, m in messages)
    assert any(loc[0] == 13 and "'x.y': unknown entity 'x'" in m for loc, m in messages)


def test_timezone_is_checked(tmp_path, plugins):
    path = write(tmp_path, "tz.yaml", MINIMAL.replace("{name: t}", "{name: t, timezone: Asia/Shanghia}"))
    [issue] = issues_of(path, plugins)
    assert where(issue) == ("tz.yaml", 1, 29) and "unknown time zone" in issue.message


def test_load_model_raises_config_error_with_every_issue():
    with pytest.raises(ConfigError) as exc:
        load_model(FIXTURES / "ten_mistakes.yaml")
    assert len(exc.value.issues) == 10


def test_fingerprint_is_stable_and_follows_the_merged_config(tmp_path, plugins):
    write(tmp_path, "template.yaml", MINIMAL)
    tenant = write(tmp_path, "tenant.yaml", "extends: template.yaml\ntenant: {name: t}\n")
    one = load_model(tenant, *plugins).fingerprint
    assert one == load_model(tenant, *plugins).fingerprint and len(one) == 64
    # the same merged config written in one file is the same config version
    assert load_model(write(tmp_path, "flat.yaml", MINIMAL), *plugins).fingerprint == one
    write(tmp_path, "template.yaml", MINIMAL + "      code: {type: text}\n")
    assert load_model(tenant, *plugins).fingerprint != one


def test_load_config_gives_the_merged_data_and_source_map(tmp_path):
    write(tmp_path, "template.yaml", MINIMAL)
    tenant = write(tmp_path, "tenant.yaml", "extends: template.yaml\ntenant: {name: u}\n")
    loaded = load_config(tenant)
    assert loaded.issues == [] and loaded.data["tenant"] == {"name": "u"}
    loc = loaded.source_map.key(("entities", "customer", "fields", "name"))
    assert (Path(loc.file).name, loc.line, loc.col) == ("template.yaml", 5, 7)


# ---------------------------------------------------------------------------------------------
# The sample tenant: requirements it expresses


def test_r7_dictionaries_plain_and_labelled(tmp_path, plugins, sample):
    path = write(tmp_path, "d.yaml", """\
        tenant: {name: t}
        dictionaries:
          industry: [制造业, 金融业]
          lead_source: [{value: website, label: 网站咨询}, {value: expo, label: {zh: 展会获客, en: Trade show}}]
          size: {label: {zh: 企业规模, en: Size}, options: [1, 2]}
        entities:
          customer:
            fields:
              name: {type: text}
              industry: {type: select, options: industry}
              source: {type: select, options: lead_source}
              size: {type: select, options: size}
        """)
    model = load_model(path, *plugins)
    assert model.dictionaries["industry"].values() == ["制造业", "金融业"]
    assert model.dictionaries["industry"].options[0].label.get() == "制造业"
    expo = model.dictionaries["lead_source"].options[1]
    assert (expo.value, expo.label.get("zh_CN"), expo.label.get("en_US")) == ("expo", "展会获客", "Trade show")
    assert model.dictionaries["size"].label.get("en") == "Size" and model.dictionaries["size"].values() == ["1", "2"]
    source = model.entities["customer"].fields["source"]
    assert source.dictionary == "lead_source" and source.option_label("website") == "网站咨询"
    # the sample's base data: industry, lead source, product catalogue, competitors
    assert {"industry", "lead_source", "product_category"} <= set(sample.dictionaries)
    assert sample.entities["product"].fields["category"].dictionary == "product_category"
    assert {"strengths", "weaknesses"} <= set(sample.entities["competitor"].fields)


def test_r12_customer_required_fields(sample):
    f = sample.entities["customer"].fields
    assert f["name"].required and f["name"].unique
    assert f["industry"].required and f["industry"].dictionary == "industry"
    assert f["source"].required and f["source"].dictionary == "lead_source"
    for name in ("contact_name", "contact_title", "mobile"):
        assert f[name].required, name
    assert "wechat" in f


def test_r13_address_format_and_real_names_are_enforced(sample, plugins):
    field_types, _ = plugins
    ctx = FieldContext(locale="zh_CN")
    address = sample.entities["customer"].fields["address"]
    text = field_types["text"]
    assert text.clean(address, "浙江省杭州市西湖区文三路90号", ctx)
    assert text.clean(address, "北京市朝阳区建国路88号", ctx)
    with pytest.raises(FieldValueError) as exc:
        text.clean(address, "杭州西湖边", ctx)
    assert "XX省XX市XX区XX路XX号" in exc.value.key
    for entity, field in (("contact", "name"), ("customer", "contact_name")):
        fld = sample.entities[entity].fields[field]
        assert text.clean(fld, "王小明", ctx) == "王小明"
        for title in ("王总", "李经理", "张老板"):
            with pytest.raises(FieldValueError):
                text.clean(fld, title, ctx)


def test_r15_follow_up_template_and_required_next_contact(sample):
    f = sample.entities["follow_up"].fields
    labels = {f[n].label.get("zh_CN") for n in ("focus", "needs_change", "concerns", "next_steps")}
    assert labels == {"本次沟通重点", "客户需求变化", "客户顾虑反馈", "下一步计划"}
    assert f["next_contact_at"].required and f["next_contact_at"].type == "datetime"
    assert f["next_action_owner"].type == "user" and f["next_action_owner"].required
    assert "summary" not in f                       # removed from base with {remove: true}


def test_r19_follow_up_cannot_predate_the_customer(sample):
    rule = next(r for r in sample.entities["follow_up"].rules if "customer.created_at" in r.check.source)
    created = {1: {"created_at": datetime(2026, 3, 1, 2, 0, tzinfo=timezone.utc)}}

    def loader(entity, id):
        assert entity == "customer"
        return created.get(id)

    assert not rule.check.holds({"followed_on": date(2026, 2, 28), "customer": 1}, loader=loader,
                                tz="Asia/Shanghai")
    assert rule.check.holds({"followed_on": date(2026, 3, 1), "customer": 1}, loader=loader,
                            tz="Asia/Shanghai")
    assert rule.field == "followed_on" and "客户创建日期" in rule.message.get("zh_CN")


def test_r20_short_name_and_duplicate_settings(sample):
    customer = sample.entities["customer"]
    assert customer.fields["short_name"].type == "text"
    assert customer.settings["duplicates"][0] == {"field": "name", "match": "fuzzy", "threshold": 80,
                                                  "normalize": "company_name"}
    assert "key_fields" in customer.settings["quality"]


def test_r21_contact_channels_are_distinct_typed_fields(sample):
    for entity in ("customer", "contact"):
        f = sample.entities[entity].fields
        assert (f["mobile"].type, f["mobile"].settings.get("kind")) == ("phone", "mobile")
        assert (f["landline"].type, f["landline"].settings.get("kind")) == ("phone", "landline")
        assert f["wechat"].type == "wechat"
    assert "phone" not in sample.entities["customer"].fields and "fax" not in sample.entities["customer"].fields


def test_r5_pipeline_stages_with_probability(sample):
    opp = sample.entities["opportunity"]
    stage = opp.fields["stage"]
    assert [(o.value, o.label.get("zh_CN")) for o in stage.options[:5]] == [
        ("contact", "初步接触"), ("qualify", "需求确认"), ("proposal", "方案报价"),
        ("negotiation", "商务谈判"), ("won", "签约成交")]
    probability = opp.fields["probability"]
    expected = {"contact": 10, "qualify": 30, "proposal": 50, "negotiation": 80, "won": 100, "lost": 0}
    for value, pct in expected.items():
        assert probability.expr.evaluate({"stage": value}) == pct
    weighted = opp.fields["weighted_amount"].expr
    assert weighted.evaluate({"amount": Decimal("200000.00"), "probability": 30}) == Decimal("60000")


def test_r32_won_deal_needs_contract_amount_and_delivery_date(sample):
    won = sample.pipelines["sales"].stage("won")
    assert won.outcome == "won" and won.requires == ["contract_amount", "delivery_date"]
    assert {"contract_amount", "delivery_date"} <= set(sample.entities["opportunity"].fields)


def test_quote_lines_subtable_autonumber_and_totals(sample):
    quote = sample.entities["quote"]
    assert quote.fields["code"].format == "BJ-{YYYY}-{seq:4}" and quote.title == "code"
    lines = quote.fields["lines"]
    child = lines.child
    assert child.parent is quote and child.parent_field == "lines" and child.table_name == "quote__lines"
    assert child.fields["line_total"].entity is child and lines.entity is quote
    assert child.fields["product"].to == "product"
    rows = [{"quantity": 2, "unit_price": Decimal("100.00")}, {"quantity": 1, "unit_price": Decimal("50.50")}]
    for row in rows:
        row["line_total"] = child.fields["line_total"].expr.evaluate(row)
    subtotal = quote.fields["subtotal"].expr.evaluate({"lines": rows})
    assert subtotal == Decimal("250.50")
    total = quote.fields["total"].expr.evaluate({"subtotal": subtotal, "discount": 10})
    assert total == Decimal("225.45")
    assert [e.name for e in sample.all_entities()].count("lines") == 1


def test_r1_sample_organisation_and_roles(sample):
    depts = sample.config["departments"]
    labels = {d["label"]["zh"] for d in depts.values()}
    assert {"销售部", "华东组", "市场部", "客服部", "财务部"} <= labels
    assert depts["sales_east"]["parent"] == "sales"
    assert {"sales_rep", "sales_manager", "finance", "service", "admin"} <= set(sample.config["roles"])


def test_model_back_references_and_sources(sample):
    for ent in sample.all_entities():
        for fld in ent.fields.values():
            assert fld.entity is ent
            assert fld.source is not None and fld.source.line > 0
    customer = sample.entities["customer"]
    assert customer.source.file == "configs/base.yaml" or customer.source.file.endswith("sample_tenant.yaml")
    assert Path(customer.fields["fax" if "fax" in customer.fields else "email"].source.file).name == "base.yaml"


def test_r3_role_rights_are_checked_with_locations(tmp_path):
    """Scopes are from the list, limits non-negative, and a `where` must be expressible in SQL."""
    cfg = tmp_path / "roles.yaml"
    cfg.write_text(
        "tenant: {name: roles}\n"
        "entities:\n"
        "  customer:\n"
        "    fields:\n"
        "      name: {type: text}\n"
        "      level: {type: select, options: [A, B]}\n"
        "roles:\n"
        "  rep:\n"
        "    entities:\n"
        "      customer: {read: mine, update: {scope: own, where: \"len(name) > 3\"}}\n"
        "  fin:\n"
        "    entities:\n"
        "      customer: {read: {scope: all, where: \"level != 'A'\"}, export_limit: -1}\n", encoding="utf-8")
    from engine.config import check_config

    _model, issues = check_config(cfg)
    text = "\n".join(str(i) for i in issues)
    assert len(issues) == 3, text
    assert f"{cfg}:10:" in text and "mine" in text
    assert "row filter" in text
    assert f"{cfg}:13:" in text and "export_limit" in text
