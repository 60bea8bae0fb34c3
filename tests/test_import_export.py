"""`formwork import` / `export` on SQLite and PostgreSQL: round trips, all-or-nothing, encodings, CSV safety."""
from __future__ import annotations

import csv
import io
import json
import random
import shutil
from contextlib import ExitStack
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import build_cli

DATA = Path(__file__).parent / "data"


@pytest.fixture
def run(tmp_path):
    shutil.copy(DATA / "crm_v1.yaml", tmp_path / "crm.yaml")
    runner = CliRunner()
    cli = build_cli()

    def invoke(*args, db=None):
        result = runner.invoke(cli, [args[0], str(tmp_path / "crm.yaml"), *args[1:], "--db", db])
        assert "Traceback" not in result.output
        return result

    return invoke


def fresh_db(db_url, tmp_path, run, name, stack):
    """A second, empty database of the same kind (SQLite file or PostgreSQL schema)."""
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / (name + '.db')}"
    else:
        from tests.conftest import pg_schema

        url = stack.enter_context(pg_schema())
    assert run("migrate", db=url).exit_code == 0
    return url


@pytest.fixture
def stack():
    with ExitStack() as s:
        yield s


def raw_customers(n: int) -> str:
    """Customers as a person would type them: labels, spaced phone numbers, formula-looking text."""
    rnd = random.Random(7)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["公司全称", "industry", "source", "level", "phone", "revenue", "founded", "rating", "abbreviation",
                "employees", "notes"])
    for i in range(n):
        w.writerow([f"测试公司{i:05d}有限公司", rnd.choice(["制造业", "金融业", "教育业"]),
                    rnd.choice(["网站咨询", "expo", ""]), rnd.choice(["A", "B", "C"]),
                    f"138 {i % 10000:04d} {rnd.randint(0, 9999):04d}", f"{rnd.randint(0, 10**7)}.5",
                    f"20{rnd.randint(0, 24):02d}-0{rnd.randint(1, 9)}-1{rnd.randint(0, 9)}", rnd.randint(0, 5),
                    rnd.choice(["", "星河", "=SUM(A1)", "-折扣", "逗号,引号\"换行\n第二行"]),
                    rnd.choice(["", "12", "@home"]), rnd.choice(["", "老客户", "+86 备注"])])
    return out.getvalue()


def test_import_export_round_trip_10000_rows_byte_for_byte(run, db_url, tmp_path, stack):
    assert run("migrate", db=db_url).exit_code == 0
    src = tmp_path / "raw.csv"
    src.write_text(raw_customers(10_000), encoding="utf-8")
    r = run("import", "customer", str(src), db=db_url)
    assert r.exit_code == 0, r.output
    assert "imported 10000 customer" in r.output
    first = run("export", "customer", db=db_url)
    assert first.exit_code == 0
    exported = first.stdout
    lines = exported.splitlines()
    assert lines[0].startswith("name,industry,source,level,phone,revenue,founded,rating,score,abbreviation")
    assert "'+8613800" in exported  # E.164, neutralised against spreadsheet formulas
    assert "'=SUM(A1)" in exported and "'-折扣" in exported and "'@home" in exported
    normalised = tmp_path / "normalised.csv"
    normalised.write_text(exported, encoding="utf-8")
    db2 = fresh_db(db_url, tmp_path, run, "second", stack)
    r = run("import", "customer", str(normalised), db=db2)
    assert r.exit_code == 0, r.output
    second = run("export", "customer", db=db2)
    assert second.stdout == exported


def test_import_with_bad_rows_writes_nothing_and_names_every_row(run, db_url, tmp_path):
    assert run("migrate", db=db_url).exit_code == 0
    f = tmp_path / "bad.csv"
    f.write_text("name,industry,rating,phone\n好公司,制造业,3,13800138000\n,金融业,2,\n坏公司,外星业,9,123\n"
                 "好公司,教育业,1,\n", encoding="utf-8")
    r = run("import", "customer", str(f), db=db_url)
    assert r.exit_code == 1
    assert "row 2: name: 必填" in r.output
    assert "row 3: industry:" in r.output and "row 3: rating: 不能大于 5" in r.output and "row 3: phone:" in r.output
    assert "row 4: name:" in r.output
    assert "nothing imported: 3 invalid row(s) of 4" in r.output
    assert run("export", "customer", db=db_url).stdout.count("\n") == 1  # header only
    r = run("import", "customer", str(f), "--skip-invalid", db=db_url)
    assert r.exit_code == 0 and "imported 1 customer record(s), skipped 3 invalid" in r.output


def test_import_dry_run_writes_nothing(run, db_url, tmp_path):
    assert run("migrate", db=db_url).exit_code == 0
    f = tmp_path / "ok.csv"
    f.write_text("name,industry\n甲,制造业\n乙,金融业\n", encoding="utf-8")
    r = run("import", "customer", str(f), "--dry-run", db=db_url)
    assert r.exit_code == 0 and "would import 2" in r.output
    assert run("export", "customer", db=db_url).stdout.count("\n") == 1


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030"])
def test_import_chinese_spreadsheet_encodings(run, sqlite_url, tmp_path, encoding):
    assert run("migrate", db=sqlite_url).exit_code == 0
    f = tmp_path / "gb.csv"
    f.write_bytes("公司全称,industry,source\n北京星河科技有限公司,制造业,网站咨询\n".encode(encoding))
    r = run("import", "customer", str(f), db=sqlite_url)
    assert r.exit_code == 0, r.output
    out = run("export", "customer", "--format", "json", db=sqlite_url).stdout
    [rec] = json.loads(out)
    assert rec["name"] == "北京星河科技有限公司" and rec["source"] == "website"


def test_unknown_column_and_entity_are_clear_errors(run, sqlite_url, tmp_path):
    assert run("migrate", db=sqlite_url).exit_code == 0
    f = tmp_path / "x.csv"
    f.write_text("name,colour\n甲,红\n", encoding="utf-8")
    r = run("import", "customer", str(f), db=sqlite_url)
    assert r.exit_code == 1 and "unknown column(s) for customer: colour" in r.output
    r = run("import", "nope", str(f), db=sqlite_url)
    assert r.exit_code != 0 and "unknown entity 'nope'" in r.output


def test_quotes_with_lines_round_trip_as_json_and_csv(run, db_url, tmp_path, stack):
    assert run("migrate", db=db_url).exit_code == 0
    (tmp_path / "c.csv").write_text("name,industry\n甲公司,制造业\n", encoding="utf-8")
    (tmp_path / "p.csv").write_text("name,price\nCRM 标准版,19999.90\n实施服务,5000\n", encoding="utf-8")
    assert run("import", "customer", str(tmp_path / "c.csv"), db=db_url).exit_code == 0
    assert run("import", "product", str(tmp_path / "p.csv"), db=db_url).exit_code == 0
    quotes = [{"customer": "甲公司", "lines": [{"product": "CRM 标准版", "quantity": 2, "unit_price": "19999.90"},
                                              {"product": "实施服务", "quantity": 1, "unit_price": "5000"}]}]
    (tmp_path / "q.json").write_text(json.dumps(quotes, ensure_ascii=False), encoding="utf-8")
    r = run("import", "quote", str(tmp_path / "q.json"), db=db_url)
    assert r.exit_code == 0, r.output
    [q] = json.loads(run("export", "quote", "--format", "json", db=db_url).stdout)
    assert q["total"] == "44999.80" and [l["line_total"] for l in q["lines"]] == ["39999.80", "5000.00"]
    csv_out = run("export", "quote", db=db_url).stdout
    (tmp_path / "q.csv").write_text(csv_out, encoding="utf-8")
    db2 = fresh_db(db_url, tmp_path, run, "quotes2", stack)
    assert run("import", "customer", str(tmp_path / "c.csv"), db=db2).exit_code == 0
    assert run("import", "product", str(tmp_path / "p.csv"), db=db2).exit_code == 0
    r = run("import", "quote", str(tmp_path / "q.csv"), db=db2)
    assert r.exit_code == 0, r.output
    assert run("export", "quote", db=db2).stdout == csv_out
