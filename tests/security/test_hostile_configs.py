"""Hostile configs (issue #11 point 8): catastrophic regexes, deep nesting and huge files never take
down `formwork check` or a running server; a bad config on disk leaves the last good one serving."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.config.loader import load_config
from engine.errors import ConfigError
from engine.tenant import Tenant

ROOT = Path(__file__).resolve().parent.parent.parent
FORMWORK = Path(sys.executable).with_name("formwork")

CATASTROPHIC = textwrap.dedent("""\
    tenant: {name: hostile, label: Hostile, locale: en}
    entities:
      prospect:
        label: Prospect
        title: code
        fields:
          code: {type: text, label: Code, max_length: 5000, pattern: "(a+)+b"}
    """)


def run_check(path: Path) -> subprocess.CompletedProcess:
    if not FORMWORK.exists():
        pytest.skip("the formwork console script is not installed in this environment")
    return subprocess.run([str(FORMWORK), "check", str(path)], capture_output=True, text=True, timeout=120,
                          cwd=path.parent)


def deep_yaml(levels: int) -> str:
    return "tenant: {name: deep, label: Deep}\nentities:\n  a: " + "[" * levels + "]" * levels + "\n"


def test_security_catastrophic_pattern_runs_in_linear_time(tmp_path, db_url):
    """`(a+)+b` backtracks for days on 40 a's under Python's re; RE2 answers at once, so a process
    validating such a value (and 5000 a's) finishes well inside the timeout."""
    (tmp_path / "tenant.yaml").write_text(CATASTROPHIC, encoding="utf-8")
    script = textwrap.dedent(f"""
        import sys, time
        from engine.errors import ValidationFailed
        from engine.schema.migrate import migrate
        from engine.tenant import Tenant
        t = Tenant.load(sys.argv[1], db_url=sys.argv[2])
        migrate(t)
        start = time.monotonic()
        for value in ("a" * 40 + "c", "a" * 4999 + "c"):
            try:
                t.records.create("prospect", {{"code": value}})
                raise SystemExit("accepted a value the pattern refuses")
            except ValidationFailed as exc:
                assert "code" in exc.errors, exc.errors
        assert t.records.create("prospect", {{"code": "a" * 4999 + "b"}})["code"].endswith("ab")
        t.dispose()
        print("elapsed", time.monotonic() - start)
        """)
    try:
        proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "tenant.yaml"), db_url],
                              capture_output=True, text=True, timeout=30, cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail("validating a value against (a+)+b did not finish in 30 s (backtracking regex)")
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout.split()[-1]) < 2.0


def test_security_backtracking_only_pattern_refused_at_check_with_location(tmp_path):
    """A pattern RE2 cannot run (lookaround) with a nested quantifier would run on backtracking
    `re`: `formwork check` refuses it at FILE:LINE:COL, without a traceback."""
    path = tmp_path / "tenant.yaml"
    path.write_text(CATASTROPHIC.replace('"(a+)+b"', '"(?=(a+)+b).*"'), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        Tenant.load(path)
    assert any(i.location and i.location.line == 7 and "quantifier inside a repeated group" in i.message
               for i in err.value.issues), err.value.issues
    proc = run_check(path)
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
    assert "tenant.yaml:7:" in proc.stdout and "pattern" in proc.stdout
    # the sample's "a real name, not 王总" lookahead has no nested quantifier: still allowed
    path.write_text(CATASTROPHIC.replace('"(a+)+b"', '"(?!.*(总|经理)$).{2,}"'), encoding="utf-8")
    Tenant.load(path).dispose()


def test_security_deeply_nested_yaml_is_a_located_error_not_a_crash(tmp_path):
    """100 000 '[' segfaulted the recursive YAML composer (in `check` and in a reloading server)."""
    path = tmp_path / "tenant.yaml"
    path.write_text(deep_yaml(100_000), encoding="utf-8")
    loaded = load_config(path)  # in-process: no RecursionError, no segfault
    assert loaded.data is None
    assert [str(i) for i in loaded.issues][0].startswith(f"{path}:3:")
    assert "nested more than 40 levels" in loaded.issues[0].message
    proc = run_check(path)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-500:])
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "tenant.yaml:3:" in proc.stdout and "nested more than 40 levels" in proc.stdout


def test_security_huge_file_refused_before_parsing(tmp_path):
    path = tmp_path / "tenant.yaml"
    path.write_text("tenant: {name: big, label: Big}\n" + "# padding\n" * 300_000, encoding="utf-8")
    issues = load_config(path).issues
    assert len(issues) == 1 and str(issues[0]).startswith(f"{path}:1:1: the file is 3.0 MB")
    proc = run_check(path)
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
    assert "tenant.yaml:1:1: the file is 3.0 MB" in proc.stdout


@pytest.mark.parametrize("hostile", ["deep", "regex", "huge"])
def test_security_running_app_keeps_last_good_config_and_admins_see_why(tmp_path, db_url, h, hostile):
    from web import create_app

    tenant = h.make_tenant(db_url, tmp_path)
    path = tmp_path / "tenant.yaml"
    tenant.users.add("boss", ["admin"], password="chief-pass-1")
    tenant.users.change_password("boss", "chief-pass-1", "chief-pass-2x")
    tenant.users.add("li.lei", ["sales"], department="sales", password="initial-pass-1")
    tenant.users.change_password("li.lei", "initial-pass-1", "sales-password-2")
    app = create_app(tenant, config={"TESTING": True, "SECRET_KEY": "x", "FORMWORK_RELOAD_INTERVAL": 0})
    admin, sales = app.test_client(), app.test_client()
    h.login(admin, "boss", "chief-pass-2x")
    h.login(sales, "li.lei", "sales-password-2")
    good = path.read_text(encoding="utf-8")
    if hostile == "deep":
        path.write_text(good + "extra: " + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
        expected = "nested more than 40 levels"
    elif hostile == "regex":
        path.write_text(good.replace("      remark: {type: textarea",
                                     '      code: {type: text, label: Code, pattern: "(?=(a+)+b).*"}\n'
                                     "      remark: {type: textarea", 1), encoding="utf-8")
        expected = "quantifier inside a repeated group"
    else:
        path.write_text(good + "#" * 2_100_000 + "\n", encoding="utf-8")
        expected = "a tenant config may be at most 2 MB"
    resp = admin.get("/e/customer/")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert app.extensions["formwork"].tenant is tenant           # the last good config still serves
    assert expected in page and "tenant.yaml:" in page            # admins see which line and why
    resp = sales.get("/e/customer/")
    assert resp.status_code == 200 and expected not in resp.get_data(as_text=True)

    path.write_text(good.replace("公司全称", "企业全称"), encoding="utf-8")  # fixed: served, banner gone
    page = admin.get("/e/customer/new").get_data(as_text=True)
    assert "企业全称" in page and expected not in page
    app.extensions["formwork"].tenant.dispose()
    tenant.dispose()
