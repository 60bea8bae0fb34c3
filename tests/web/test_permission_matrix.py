"""The acceptance suite of issue 4, generated from sample_tenant.yaml's roles (R39–R44).

For every role × entity × action, and every hidden field, each read path (web list, detail, related
lists and audit timeline; API list, GET and history; quick search; CLI and web export) must show exactly
the records the role's scope allows, and never a hidden field's value. Expected results come from an
oracle written here from the YAML (scope rules evaluated in Python), not from engine.permissions.

Issue #11 point 3 adds the other read paths that carry field values (409 conflicts, pipeline boards,
formulas derived from a hidden field, history rows, notifications, tasks, approval snapshots,
duplicate prompts and merge previews): the world is sample_tenant.yaml plus OVERLAY, a marketing role
that reads deals but not their amounts and a formula that reads a hidden field across a reference.

The tenant, users and records are built once per module per database; tests only read, or change
records created for them.
"""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from click.testing import CliRunner

from engine.cli import build_cli
from engine.demo.generate import DemoGenerator, generate_demo
from engine.expressions import compile_expression
from engine.permissions import parse_grant
from engine.records.ownership import transfer
from engine.schema.migrate import migrate
from engine.tenant import Tenant
from engine.users import UserStore

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_tenant.yaml"
PASSWORD = "matrix-pass-99"
# One user per role; owners of the records are spread over the first five.
PEOPLE = [("rep_east", "sales_rep", "sales_east", []), ("rep_east2", "sales_rep", "sales_east", []),
          ("rep_sales", "sales_rep", "sales", []), ("mgr_east", "sales_manager", "sales_east", ["sales_east"]),
          ("svc", "service", "service", []), ("fin", "finance", "finance", []), ("mkt", "marketing", "marketing", []),
          ("root", "admin", None, [])]
OWNERS = ["rep_east", "rep_east2", "rep_sales", "mgr_east", "svc"]
SENTINEL_NEEDS = "SECRETNEEDS"
SENTINEL_CREDIT = "987654"


# Laid over sample_tenant.yaml: a role that sees deals but not their amounts (R40 "prices visible only
# to some roles") nor contract numbers, and a formula reading a hidden field through a reference.
OVERLAY = {
    "roles": {"marketing": {
        "label": {"zh": "市场专员", "en": "Marketing"},
        "entities": {"customer": {"read": "all"}, "opportunity": {"read": "all", "export": "all"},
                     "contract": {"read": "all"}, "follow_up": {"read": "all"}, "product": {"read": "all"}},
        "fields": {"customer.credit_limit": "hidden", "opportunity.amount": "hidden", "contract.code": "hidden"}}},
    "entities": {"opportunity": {"fields": {"customer_credit": {
        "type": "formula", "label": {"zh": "客户信用额度", "en": "Customer credit"}, "returns": "money",
        "expr": "customer.credit_limit"}}}},
}


def _config():
    import yaml

    with open(SAMPLE, encoding="utf-8") as fh:
        config = yaml.safe_load(fh)
    config["roles"].update(OVERLAY["roles"])
    for name, spec in OVERLAY["entities"].items():
        config["entities"][name]["fields"].update(spec["fields"])
    return config


CONFIG = _config()
ROLES = CONFIG["roles"]
ENTITIES = ["customer", "contact", "follow_up", "prospect", "opportunity", "quote", "product", "competitor"]
USERS = [p[0] for p in PEOPLE]
ROLE_OF = {p[0]: p[1] for p in PEOPLE}
EXPLICIT = [(user, key.split(".")[0], key.split(".")[1]) for user in USERS if ROLE_OF[user] != "admin"
            for key, access in (ROLES[ROLE_OF[user]].get("fields") or {}).items() if access == "hidden"]


def _derived(user) -> list[tuple[str, str, str]]:
    """Formulas hidden from `user` because they read a hidden field, by the YAML's expression texts:
    a field name of the same entity, or `ref.field` through a reference to another entity."""
    hidden = {(e, f) for (u, e, f) in EXPLICIT if u == user}
    refs = {(e, n): spec["to"] for e, ent in CONFIG["entities"].items()
            for n, spec in (ent.get("fields") or {}).items() if (spec or {}).get("type") == "reference"}
    formulas = [(e, n, spec["expr"]) for e, ent in CONFIG["entities"].items()
                for n, spec in (ent.get("fields") or {}).items() if (spec or {}).get("type") == "formula"]
    out = []
    grew = True
    while grew:
        grew = False
        for e, n, expr in formulas:
            if (e, n) in hidden:
                continue
            direct = any(he == e and re.search(rf"(?<![\w.]){f}\b", expr) for he, f in hidden)
            via = any(re.search(rf"(?<![\w.]){ref}\.{f}\b", expr) for (re_, ref), to in refs.items()
                      if re_ == e for he, f in hidden if he == to)
            if direct or via:
                hidden.add((e, n))
                out.append((user, e, n))
                grew = True
    return out


DERIVED = [t for user in USERS if ROLE_OF[user] != "admin" for t in _derived(user)]
HIDDEN = EXPLICIT + DERIVED


# ------------------------------------------------------------------------------------------ the world

@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world_db(request, tmp_path_factory):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('matrix') / 'tenant.db'}"
        return
    request.getfixturevalue("pg_reachable")
    from tests.conftest import pg_schema  # noqa: PLC0415

    with pg_schema("fwm") as url:
        yield url


class World:
    """The tenant, its users, every record (as the engine sees it) and signed-in clients."""

    def __init__(self, tenant, db_url, config_path):
        self.t = tenant
        self.db_url = db_url
        self.config_path = config_path
        self.users = {}
        self.tokens = {}
        self.clients = {}
        self.records: dict[str, dict[int, dict]] = {}
        self.shares: dict[tuple[str, int], list[tuple]] = {}
        self.app = None

    def client(self, name):
        if name not in self.clients:
            c = self.app.test_client()
            page = c.get("/login").get_data(as_text=True)
            resp = c.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": csrf(page)})
            assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
            self.clients[name] = c
        return self.clients[name]

    def api(self, name, method, path, **kw):
        c = self.app.test_client()
        headers = {"Authorization": f"Bearer {self.tokens[name]}", **kw.pop("headers", {})}
        return c.open(path, method=method, headers=headers, **kw)


def _all(t, entity) -> dict[int, dict]:
    out, after = {}, None
    while True:
        page = t.records.list(entity, None, limit=500, after=after, sort="id")
        out.update({r["id"]: r for r in page.items})
        if not page.next:
            return out
        after = page.next


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


@pytest.fixture(scope="module")
def world(world_db, tmp_path_factory):
    import yaml
    from web import create_app

    config_path = tmp_path_factory.mktemp("matrix_config") / "tenant.yaml"
    config_path.write_text(yaml.safe_dump({"extends": str(SAMPLE), **OVERLAY}, allow_unicode=True), encoding="utf-8")
    t = Tenant.load(config_path, db_url=world_db)
    t.__dict__["users"] = UserStore(t, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    migrate(t)
    w = World(t, world_db, config_path)
    for name, role, dept, manages in PEOPLE + [("leaver", "sales_rep", "sales_east", [])]:
        t.users.add(name, [role], department=dept, manages=manages, password="initial-pass-1")
        t.users.change_password(name, "initial-pass-1", PASSWORD)
        w.users[name] = t.users.by_username(name)
        w.tokens[name] = t.users.create_token(name, "matrix")
    generate_demo(t, size=5, seed=7)
    for entity in ENTITIES:
        ids = sorted(_all(t, entity))
        for i, owner in enumerate(OWNERS):
            mine = ids[i::len(OWNERS)]
            if mine:
                transfer(t, entity, mine, owner)
    for i, rid in enumerate(sorted(_all(t, "customer"))):
        t.records.update("customer", rid, {"needs": f"{SENTINEL_NEEDS}-old-{rid}", "credit_limit": f"{SENTINEL_CREDIT}.{rid % 10}1",
                                           "level": "ABC"[i % 3]})
        t.records.update("customer", rid, {"needs": f"{SENTINEL_NEEDS}-{rid}", "credit_limit": f"{SENTINEL_CREDIT}.{rid % 10}2"})
    for rid in sorted(_all(t, "opportunity")):
        t.records.update("opportunity", rid, {})   # customer_credit reads the credit limits just set
    for entity in ENTITIES:
        w.records[entity] = _all(t, entity)
        assert len(w.records[entity]) >= 3, entity
    sh = t.schema.system["shares"]
    with t.db.connect() as conn:   # approvals share a record with its approvers (R4)
        for r in conn.execute(sa.select(sh)).mappings():
            w.shares.setdefault((r["entity"], r["record_id"]), []).append((r["user_id"], r["department"], r["access"]))
    w.app = create_app(t, config={"TESTING": True, "SECRET_KEY": "matrix-secret"})
    yield w
    t.dispose()


# ------------------------------------------------------------------------------------------ the oracle

def _subtree(dept):
    parents = {n: (s or {}).get("parent") for n, s in w_departments().items()}
    out = {dept} if dept else set()
    grew = True
    while grew:
        grew = False
        for d, p in parents.items():
            if p in out and d not in out:
                out.add(d)
                grew = True
    return out


def w_departments():
    merged = {"sales": {}, "service": {}}
    merged.update(CONFIG.get("departments") or {})
    return merged


def grant(user, entity, action):
    role = ROLE_OF[user]
    if role == "admin":
        return "all", None
    spec = ((ROLES[role].get("entities") or {}).get(entity) or {})
    if action in ("create", "import"):
        return ("all" if spec.get(action) else "none"), None
    return parse_grant(spec.get(action))


def shared(w, user, entity, action, rec) -> bool:
    """Is `rec` shared with the user or their department for `action` (read and export: any share,
    update: a write share)?"""
    u = w.users[user]
    if action not in ("read", "export", "update"):
        return False
    return any((uid == u.id or (dept and dept == u.department)) and (action != "update" or access == "write")
               for uid, dept, access in w.shares.get((entity, rec["id"]), []))


def allowed(w, user, entity, action, rec) -> bool:
    """May `user` do `action` on `rec`, by the YAML and the shares the world's approvals made."""
    scope, where = grant(user, entity, action)
    u = w.users[user]
    if scope == "none":
        return False
    if scope == "own":
        ok = rec["owner"] == u.id
    elif scope == "department":
        ok = rec["department"] == u.department
    elif scope == "department_tree":
        depts = _subtree(u.department)
        for m in u.manages:
            depts |= _subtree(m)
        ok = rec["department"] in depts or rec["owner"] == u.id
    else:
        ok = True
    ok = ok or shared(w, user, entity, action, rec)
    if ok and where:
        expr = compile_expression(where, entity=w.t.model.entity(entity), model=w.t.model)
        ok = bool(expr.matches(rec, tz=w.t.timezone))
    return ok


def expected(w, user, entity, action="read") -> set[int]:
    return {rid for rid, rec in w.records[entity].items() if allowed(w, user, entity, action, rec)}


def hidden_fields(user, entity) -> set[str]:
    return {f for (u, e, f) in HIDDEN if u == user and e == entity}


def sentinels(user) -> list[str]:
    out = []
    for (_u, e, f) in HIDDEN:
        if _u == user and (e, f) == ("customer", "needs"):
            out.append(SENTINEL_NEEDS)
        if _u == user and (e, f) == ("customer", "credit_limit"):
            out += [SENTINEL_CREDIT, "987,654"]
    return out


def links(html: str, entity: str) -> set[int]:
    return {int(m) for m in re.findall(rf'href="/e/{entity}/(\d+)"', html)}


def audit_state(w):
    audit = w.t.schema.system["audit"]
    with w.t.db.connect() as conn:
        return conn.execute(sa.select(sa.func.count(), sa.func.max(audit.c.id)).select_from(audit)).one()


def test_the_matrix_is_not_trivial(world):
    """The world really separates the roles: reps see a part of customers, finance no A grade."""
    w = world
    everything = set(w.records["customer"])
    assert expected(w, "rep_east", "customer") < everything
    assert expected(w, "rep_east", "customer") and expected(w, "fin", "customer") < everything
    assert expected(w, "mgr_east", "customer") > expected(w, "rep_east", "customer")
    assert not expected(w, "svc", "opportunity") and expected(w, "root", "quote") == set(w.records["quote"])
    assert len(HIDDEN) >= 2


# ------------------------------------------------------------------------------------------ reads

@pytest.mark.parametrize("entity", ENTITIES)
@pytest.mark.parametrize("user", USERS)
def test_r39_every_read_path_shows_exactly_the_scope(world, user, entity):
    w = world
    want = expected(w, user, entity)
    readable, _ = grant(user, entity, "read")
    web = w.client(user)
    api_list = w.api(user, "GET", f"/api/v1/{entity}?limit=100")
    page = web.get(f"/e/{entity}/?limit=100")
    if readable == "none":
        assert api_list.status_code == 403 and page.status_code == 403
        for rid in list(w.records[entity])[:2]:
            assert w.api(user, "GET", f"/api/v1/{entity}/{rid}").status_code in (403, 404)
            assert web.get(f"/e/{entity}/{rid}").status_code in (403, 404)
        return
    assert api_list.status_code == 200
    body = api_list.get_json()
    items = body.get("items", body.get("data", body)) if isinstance(body, dict) else body
    assert {r["id"] for r in items} == want
    assert page.status_code == 200 and links(page.get_data(as_text=True), entity) == want
    for rid in w.records[entity]:
        resp = w.api(user, "GET", f"/api/v1/{entity}/{rid}")
        detail = web.get(f"/e/{entity}/{rid}")
        history = w.api(user, "GET", f"/api/v1/{entity}/{rid}/history")
        if rid not in want:
            assert (resp.status_code, detail.status_code, history.status_code) == (404, 404, 404), rid
            continue
        assert (resp.status_code, detail.status_code, history.status_code) == (200, 200, 200), rid
        html = detail.get_data(as_text=True)
        # related lists only show what the user may read
        for section in re.findall(r'<section class="card related".*?</section>', html, re.S):
            for other in ENTITIES:
                assert links(section, other) <= expected(w, user, other), (rid, other)
        for hidden in hidden_fields(user, entity):
            assert hidden not in resp.get_json()
        for secret in sentinels(user) if entity == "customer" else []:
            assert secret not in html and secret not in resp.get_data(as_text=True)
            assert secret not in history.get_data(as_text=True)


@pytest.mark.parametrize("user", USERS)
def test_r39_quick_search_finds_only_records_in_scope(world, user):
    w = world
    web = w.client(user)
    for entity in ("customer", "opportunity", "prospect"):
        title_field = w.t.model.entity(entity).title
        for rid, rec in list(w.records[entity].items())[:6]:
            title = rec.get(title_field)
            if not title:
                continue
            hits = w.api(user, "GET", f"/api/v1/search?q={title}").get_json()
            hits = hits.get("items", hits.get("results", hits)) if isinstance(hits, dict) else hits
            found = {h["id"] for h in hits if h["entity"] == entity}
            html = web.get(f"/search?q={title}").get_data(as_text=True)
            if rid in expected(w, user, entity):
                assert rid in found and f"/e/{entity}/{rid}" in html
            else:
                assert rid not in found and f'/e/{entity}/{rid}"' not in html
            assert found <= expected(w, user, entity)


# ------------------------------------------------------------------------------------------ hidden fields

@pytest.mark.parametrize("user, entity, field", HIDDEN)
def test_r40_hidden_field_is_no_oracle(world, user, entity, field):
    w = world
    web = w.client(user)
    for query in (f"{field}=x", f"{field}__contains=1", f"{field}__gte=0", f"sort={field}", f"sort=-{field}"):
        resp = w.api(user, "GET", f"/api/v1/{entity}?{query}")
        assert resp.status_code == 400, (query, resp.get_data(as_text=True))
        page = web.get(f"/e/{entity}/?{query}")
        assert page.status_code == 302 and page.headers["Location"].endswith(f"/e/{entity}/")
    for secret in sentinels(user):
        assert w.api(user, "GET", f"/api/v1/search?q={secret}").get_data(as_text=True).count(secret) <= 1
        page = web.get(f"/e/{entity}/?q={secret}").get_data(as_text=True)
        assert links(page, entity) == set()
        body = web.get(f"/search?q={secret}").get_data(as_text=True)
        assert not re.search(rf'href="/e/{entity}/\d+"', body)
    export = web.get(f"/e/{entity}/export.csv")
    if export.status_code == 200:
        text = export.get_data(as_text=True)
        assert field not in text.splitlines()[0].split(",")
        assert not any(s in text for s in sentinels(user))


# ------------------------------------------------------------------------------------------ writes

@pytest.mark.parametrize("entity", ENTITIES)
@pytest.mark.parametrize("user", USERS)
def test_writes_follow_scope_and_denials_change_nothing(world, user, entity):
    w = world
    before = audit_state(w)
    can_create = grant(user, entity, "create")[0] != "none"
    resp = w.api(user, "POST", f"/api/v1/{entity}", json={})
    assert resp.status_code == (422 if can_create else 403), resp.get_data(as_text=True)
    # Without the right on the entity at all, every id is refused alike (403), existing or not: no oracle.
    may_update = grant(user, entity, "update")[0] != "none"
    may_delete = grant(user, entity, "delete")[0] != "none"
    missing = max(w.records[entity]) + 1000
    assert w.api(user, "PATCH", f"/api/v1/{entity}/{missing}", json={},
                 headers={"If-Match": "*"}).status_code == (404 if may_update else 403)
    assert w.api(user, "DELETE", f"/api/v1/{entity}/{missing}").status_code == (404 if may_delete else 403)
    for rid, rec in w.records[entity].items():
        readable = allowed(w, user, entity, "read", rec)
        upd = w.api(user, "PATCH", f"/api/v1/{entity}/{rid}", json={}, headers={"If-Match": "*"})
        if not may_update:
            assert upd.status_code == 403, rid
        elif not readable:
            assert upd.status_code == 404, rid
        elif not allowed(w, user, entity, "update", rec):
            assert upd.status_code == 403, rid
        else:
            assert upd.status_code == 200, (rid, upd.get_data(as_text=True))
        if not readable or not allowed(w, user, entity, "delete", rec):
            dele = w.api(user, "DELETE", f"/api/v1/{entity}/{rid}")
            assert dele.status_code == (404 if may_delete and not readable else 403), rid
    assert audit_state(w) == before                       # empty PATCHes and refusals leave no trace
    assert _all(w.t, entity) == w.records[entity]


def throwaway(w, entity, owner):
    """A new demo record of `entity` for `owner` whose values start no approval (R4: a record frozen by
    a pending approval cannot be deleted, which test_r4_… covers elsewhere)."""
    gen = DemoGenerator(w.t, seed=None)
    gen.existing_ids(entity)
    flows = w.t.model.approvals_of(entity)
    draw = gen.values

    def values(ent, only=None, late=False):
        for _ in range(50):
            v = draw(ent, only, late)
            if not any(f.when.matches(w.t.records.preview(ent.name, v)) for f in flows):
                break
        return v

    gen.values = values
    rid = gen.create(w.t.model.entity(entity))
    assert rid is not None
    transfer(w.t, entity, [rid], owner)
    return rid


@pytest.mark.parametrize("user, entity", [(u, e) for u in USERS for e in ENTITIES
                                           if grant(u, e, "delete")[0] != "none"])
def test_delete_within_scope_works(world, user, entity):
    w = world
    rid = throwaway(w, entity, user)
    assert w.api(user, "DELETE", f"/api/v1/{entity}/{rid}").status_code == 204
    assert rid not in _all(w.t, entity)


# ------------------------------------------------------------------------------------------ export

@pytest.mark.parametrize("entity", ENTITIES)
@pytest.mark.parametrize("user", USERS)
def test_r42_web_export_is_the_export_scope_without_hidden_fields(world, user, entity):
    w = world
    resp = w.client(user).get(f"/e/{entity}/export.csv")
    if grant(user, entity, "export")[0] == "none":
        assert resp.status_code == 403
        return
    assert resp.status_code == 200
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    want = expected(w, user, entity, "export") & expected(w, user, entity, "read")
    assert len(rows) == len(want)
    title = w.t.model.entity(entity).title
    if title:
        assert sorted(r[title] for r in rows) == sorted(str(w.records[entity][i][title]) for i in want)
    assert not set(rows[0] if rows else {}) & hidden_fields(user, entity)


CLI_CASES = [(u, e) for u in USERS for e in ENTITIES
             if grant(u, e, "export")[0] != "none" and (ROLE_OF[u] != "admin" or e in ("customer", "follow_up"))]
CLI_DENIED = [(u, "customer" if grant(u, "customer", "export")[0] == "none" else "product") for u in USERS
              if ROLE_OF[u] != "admin"]


@pytest.mark.parametrize("user, entity", CLI_CASES + CLI_DENIED)
def test_r42_cli_export_as_user(world, user, entity):
    w = world
    exports = w.t.schema.system["exports"]
    with w.t.db.connect() as conn:
        logged = conn.execute(sa.select(sa.func.count()).select_from(exports)).scalar_one()
    result = CliRunner().invoke(build_cli(), ["export", str(w.config_path), entity, "--as", user, "--format", "json",
                                              "--system", "--db", w.db_url])
    with w.t.db.connect() as conn:
        now = conn.execute(sa.select(sa.func.count()).select_from(exports)).scalar_one()
    if (user, entity) in CLI_DENIED:
        assert result.exit_code == 1 and "Traceback" not in result.output and now == logged
        return
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {r["id"] for r in data} == expected(w, user, entity, "export") & expected(w, user, entity, "read")
    assert not any(set(r) & hidden_fields(user, entity) for r in data)
    assert not any(s in result.stdout for s in sentinels(user))
    assert now == logged + 1


# ------------------------------------------------------------------------------------------ attacks

def foreign_customer(w, user):
    return next(rid for rid, rec in w.records["customer"].items() if not allowed(w, user, "customer", "read", rec))


def own_customer(w, user):
    return next(rid for rid, rec in w.records["customer"].items() if rec["owner"] == w.users[user].id)


def test_attack_foreign_id_by_get_patch_delete_is_404_and_changes_nothing(world):
    w = world
    rid = foreign_customer(w, "rep_east")
    before = audit_state(w)
    assert w.api("rep_east", "GET", f"/api/v1/customer/{rid}").status_code == 404
    assert w.api("rep_east", "PATCH", f"/api/v1/customer/{rid}", json={"level": "A"},
                 headers={"If-Match": "*"}).status_code == 404
    assert w.api("rep_east", "DELETE", f"/api/v1/customer/{rid}").status_code == 403  # no delete right at all
    contact = next(i for i, r in w.records["contact"].items() if not allowed(w, "rep_east", "contact", "read", r))
    assert w.api("rep_east", "DELETE", f"/api/v1/contact/{contact}").status_code == 404  # may delete own ones
    web = w.client("rep_east")
    token = csrf(web.get("/").get_data(as_text=True))
    assert web.post(f"/e/customer/{rid}/delete", data={"csrf_token": token}).status_code == 404
    assert web.post(f"/e/customer/{rid}/edit", data={"csrf_token": token, "name": "x"}).status_code == 404
    assert audit_state(w) == before and _all(w.t, "customer")[rid] == w.records["customer"][rid]
    assert _all(w.t, "contact") == w.records["contact"]


def test_attack_denied_patch_changes_nothing(world):
    w = world
    rid = next(iter(expected(w, "svc", "customer")))          # service reads customers, may not change them
    before = audit_state(w)
    resp = w.api("svc", "PATCH", f"/api/v1/customer/{rid}", json={"level": "A"}, headers={"If-Match": "*"})
    assert resp.status_code == 403
    rid = own_customer(w, "rep_east")                          # own record, hidden field
    resp = w.api("rep_east", "PATCH", f"/api/v1/customer/{rid}", json={"credit_limit": "1", "level": "A"},
                 headers={"If-Match": "*"})
    assert resp.status_code in (400, 403, 422) and SENTINEL_CREDIT not in resp.get_data(as_text=True)
    assert audit_state(w) == before and _all(w.t, "customer") == w.records["customer"]


def test_attack_bulk_mixing_own_and_foreign_ids_is_rejected_whole(world):
    from engine.errors import FormworkError

    w = world
    mine, theirs = own_customer(w, "rep_east"), foreign_customer(w, "rep_east")
    rep = w.users["rep_east"]
    before = audit_state(w)
    with pytest.raises(FormworkError):
        w.t.records.update_many("customer", [mine, theirs], {"level": "A"}, rep)
    with pytest.raises(FormworkError):
        w.t.records.delete_many("contact", [i for i in w.records["contact"]], rep)
    mgr = w.users["mgr_east"]
    outside = next(rid for rid in w.records["customer"] if rid not in expected(w, "mgr_east", "customer", "transfer"))
    inside = next(iter(expected(w, "mgr_east", "customer", "transfer")))
    with pytest.raises(FormworkError):
        transfer(w.t, "customer", [inside, outside], "rep_east", mgr)
    web = w.client("mgr_east")
    token = csrf(web.get("/").get_data(as_text=True))
    resp = web.post("/e/customer/transfer", data={"csrf_token": token, "ids": [inside, outside], "to": "rep_east"},
                    follow_redirects=True)
    assert "alert-error" in resp.get_data(as_text=True)
    assert audit_state(w) == before and _all(w.t, "customer") == w.records["customer"]


@pytest.mark.parametrize("body", [{"owner": "OTHER"}, {"created_by": "OTHER"}, {"department": "finance"},
                                  {"id": 424242}, {"created_at": "2020-01-01T00:00:00Z"}, {"updated_by": "OTHER"}])
def test_attack_mass_assignment_is_rejected(world, body):
    w = world
    rid = own_customer(w, "rep_east")
    body = {k: (w.users["rep_sales"].id if v == "OTHER" else v) for k, v in body.items()}
    before = audit_state(w)
    resp = w.api("rep_east", "PATCH", f"/api/v1/customer/{rid}", json=body, headers={"If-Match": "*"})
    assert resp.status_code in (400, 403, 422), resp.get_data(as_text=True)
    created = w.api("rep_east", "POST", "/api/v1/customer", json=body)
    assert created.status_code in (400, 403, 422)
    assert audit_state(w) == before and _all(w.t, "customer") == w.records["customer"]


def test_attack_version_in_the_body_is_a_check_not_an_assignment(world):
    w = world
    rid = own_customer(w, "rep_east")
    before = audit_state(w)
    resp = w.api("rep_east", "PATCH", f"/api/v1/customer/{rid}", json={"version": 999, "level": "B"})
    assert resp.status_code in (409, 412, 422)
    assert audit_state(w) == before and _all(w.t, "customer")[rid]["version"] == w.records["customer"][rid]["version"]


def test_r44_disabled_users_live_session_and_token_get_401(world):
    w = world
    web = w.client("leaver")
    assert web.get("/e/customer/").status_code == 200
    assert w.api("leaver", "GET", "/api/v1/customer").status_code == 200
    w.t.users.disable("leaver")
    assert w.api("leaver", "GET", "/api/v1/customer").status_code == 401
    resp = web.get("/e/customer/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    assert web.get("/api/v1/customer").status_code == 401


# ------------------------------------------------------------------------------------------ every read path (#11.3)
# These come last: they add records (throwaways, help requests) that the checks above compare against.

def readers(entity):
    return [u for u in USERS if grant(u, entity, "read")[0] != "none"]


def secret_values(w, entity, field, rid=None) -> list[str]:
    """The texts a hidden field's stored values would show as (all records, or one)."""
    recs = w.records[entity].values() if rid is None else [w.t.records.get(entity, rid)]
    out = set()
    for rec in recs:
        v = rec.get(field)
        if v not in (None, "") and len(str(v)) >= 4:
            out.add(str(v))
    return sorted(out)


@pytest.mark.parametrize("user, entity, field", DERIVED)
def test_r40_a_formula_over_a_hidden_field_is_hidden_too(world, user, entity, field):
    w = world
    unknown = w.api(user, "GET", f"/api/v1/{entity}?no_such_field=1").get_json()["error"]
    resp = w.api(user, "GET", f"/api/v1/{entity}?{field}=1")
    assert resp.status_code == 400 and resp.get_json()["error"] == unknown.replace("no_such_field", field)
    resp = w.api(user, "GET", f"/api/v1/{entity}?sort=-{field}")
    assert resp.status_code == 400 and field in resp.get_json()["error"]
    items = w.api(user, "GET", f"/api/v1/{entity}?limit=100").get_json()["items"]
    assert items and not any(field in r for r in items)
    rid = items[0]["id"]
    assert field not in w.api(user, "GET", f"/api/v1/{entity}/{rid}").get_json()
    assert field not in w.t.records.preview(entity, {}, w.users[user])
    history = w.api(user, "GET", f"/api/v1/{entity}/{rid}/history").get_json()
    assert not any(field in (h.get("changes") or {}) for h in history.get("items", history))
    page = w.client(user).get(f"/e/{entity}/{rid}").get_data(as_text=True)
    label = w.t.model.entity(entity).fields[field].label.get("zh")
    assert label not in page


@pytest.mark.parametrize("user", [u for u in USERS if grant(u, "customer", "update")[0] != "none"
                                  and hidden_fields(u, "customer")])
def test_r40_a_409_conflict_shows_no_hidden_change(world, user):
    """The last change of every customer touched credit_limit and needs: the conflict names only what
    the user may see (API body and the web form's conflict box)."""
    w = world
    rid = own_customer(w, user)
    before = audit_state(w)
    resp = w.api(user, "PATCH", f"/api/v1/customer/{rid}", json={"level": "B"}, headers={"If-Match": '"1"'})
    assert resp.status_code == 409, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["changes"] and not set(body["changes"]) & hidden_fields(user, "customer")
    web = w.client(user)
    token = csrf(web.get(f"/e/customer/{rid}/edit").get_data(as_text=True))
    page = web.post(f"/e/customer/{rid}/edit", data={"csrf_token": token, "version": "1", "level": "B"})
    assert page.status_code == 409
    html = page.get_data(as_text=True)
    for secret in sentinels(user):
        assert secret not in resp.get_data(as_text=True) and secret not in html
    assert audit_state(w) == before


@pytest.mark.parametrize("user", readers("opportunity"))
def test_r40_pipeline_board_totals_leave_out_a_hidden_amount(world, user):
    w = world
    hidden = "amount" in hidden_fields(user, "opportunity")
    board = w.api(user, "GET", "/api/v1/pipelines/sales")
    assert board.status_code == 200
    body = board.get_json()
    cols = body["columns"]
    listed = w.api(user, "GET", "/api/v1/opportunity?limit=500").get_json()["items"]
    assert sum(c["count"] for c in cols) == len([r for r in listed if r.get("stage")])
    figures = [body.get("total_amount"), body.get("total_weighted")] + \
        [c.get(k) for c in cols for k in ("amount", "weighted")]
    if hidden:
        assert all(f is None for f in figures), figures
    else:
        assert body["total_amount"] is not None and all(c["amount"] is not None for c in cols)
    html = w.client(user).get("/pipelines/sales").get_data(as_text=True)
    assert ('class="col-amount"' in html) is not hidden and ('class="deal-amount"' in html) is not hidden


@pytest.mark.parametrize("user, entity, field", [h for h in EXPLICIT if h[1] in ("customer", "opportunity")])
def test_r40_history_leaves_out_a_change_of_hidden_fields_only(world, user, entity, field):
    """A write that touched only hidden fields (and formulas over them) is not in the user's history at
    all: not even as "changed" with a time."""
    w = world
    rid = throwaway(w, entity, user)
    if entity == "customer":
        w.t.records.update("customer", rid, {"level": "B"})
    value = {"needs": f"{SENTINEL_NEEDS}-history", "credit_limit": f"{SENTINEL_CREDIT}.55",
             "amount": f"{SENTINEL_CREDIT}.33"}[field]
    w.t.records.update(entity, rid, {field: value})
    everything = w.t.records.history(entity, rid)
    assert set(everything[0]["changes"]) - {field} <= {f for (u, e, f) in DERIVED if u == user and e == entity}
    seen = w.api(user, "GET", f"/api/v1/{entity}/{rid}/history")
    assert seen.status_code == 200
    items = seen.get_json().get("items", seen.get_json())
    assert len(items) == len(everything) - 1
    assert all(i["changes"] for i in items if i["action"] == "update")
    assert SENTINEL_CREDIT not in seen.get_data(as_text=True) and SENTINEL_NEEDS not in seen.get_data(as_text=True)
    html = w.client(user).get(f"/e/{entity}/{rid}").get_data(as_text=True)
    assert html.count('class="timeline-item ') == len(items)


def test_r40_notifications_tasks_and_approvals_carry_no_hidden_value(world):
    """mkt may not see contract numbers (the contract's title): a help request about a contract, its
    notification and the approval of a contract name it by id for mkt, by number for others."""
    w = world
    mkt, root = w.users["mkt"], w.users["root"]
    rid = sorted(w.t.records.list("contract", None, limit=500).items, key=lambda r: r["id"])[0]["id"]
    code = w.t.records.get("contract", rid)["code"]
    assert code
    w.t.tasks.ask_for_help("contract", rid, root, "user:mkt", "please check")
    notes = w.api("mkt", "GET", "/api/v1/notifications")
    tasks = w.api("mkt", "GET", "/api/v1/tasks")
    assert notes.status_code == 200 and tasks.status_code == 200
    assert notes.get_json()["items"] and tasks.get_json()["items"]
    assert code not in notes.get_data(as_text=True) and code not in tasks.get_data(as_text=True)
    assert code not in w.client("mkt").get("/inbox").get_data(as_text=True)
    assert code not in str(w.t.notifications.list(mkt)) and code not in str(w.t.tasks.list(mkt))
    # the asker, who may see the number, still reads it
    assert code in str(w.t.tasks.list(root, assigned=False))
    # approvals: a contract's approval is titled by the number; values of hidden locked fields stay out
    approvals = [a for a in w.t.approvals.list(None, entity="contract", limit=500)]
    assert approvals
    for a in approvals[:3]:
        got = w.api("mkt", "GET", f"/api/v1/approvals/{a['id']}")
        assert got.status_code == 200 and a["title"] not in got.get_data(as_text=True)
    deals = [a for a in w.t.approvals.list(None, entity="opportunity", limit=500)]
    for a in deals[:3]:
        got = w.api("mkt", "GET", f"/api/v1/opportunity/{a['record_id']}/approvals").get_json()["items"]
        assert got and not any(set(x["values"]) & hidden_fields("mkt", "opportunity") for x in got)


@pytest.mark.parametrize("user", [u for u in USERS if grant(u, "customer", "create")[0] != "none"
                                  and hidden_fields(u, "customer")])
def test_r40_duplicate_prompt_and_merge_preview_show_no_hidden_value(world, user):
    w = world
    rid = own_customer(w, user)
    rec = w.t.records.get("customer", rid)
    writable = {n for n, a in w.t.records.permissions.field_access(w.t.model.entity("customer"), w.users[user]).items()
                if a == "write" and not w.t.field_types.for_field(w.t.model.entity("customer").fields[n]).computed}
    body = {k: v for k, v in w.t.records.to_json("customer", rec).items() if k in writable and v not in (None, "", [])}
    body["name"] += "（分部）"   # names are unique: the same mobile makes it a duplicate
    before = audit_state(w)
    resp = w.api(user, "POST", "/api/v1/customer", json=body)
    assert resp.status_code == 409 and resp.get_json().get("duplicates"), resp.get_data(as_text=True)
    for secret in sentinels(user):
        assert secret not in resp.get_data(as_text=True)
    assert audit_state(w) == before
    other = throwaway(w, "customer", user)
    page = w.client(user).get(f"/duplicates/customer/merge?ids={rid}&ids={other}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for secret in sentinels(user):
        assert secret not in html
