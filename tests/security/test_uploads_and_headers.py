"""Files a browser could execute are downloads, and every response carries the security headers."""
from __future__ import annotations

import io
import threading

import pytest

SVG = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg">'
       b'<script>fetch("/api/v1/customer")</script></svg>')
HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,"
WEBP = b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00/\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"


# ------------------------------------------------------------------------------------------ helpers

@pytest.fixture
def sales(tenant):
    """A sales user who has already changed the initial password."""
    tenant.users.add("li.lei", ["sales"], department="sales", password="initial-pass-1", display_name="李雷")
    tenant.users.change_password("li.lei", "initial-pass-1", "correct-horse-9")
    return tenant.users.by_username("li.lei")


@pytest.fixture
def signed_in(client, sales, h):
    assert h.login(client, "li.lei").status_code == 302
    return client


def post_form(client, h, path, data):
    data = dict(data)
    data.setdefault("csrf_token", h.csrf_from(client.get(path).get_data(as_text=True)))
    return client.post(path, data=data, content_type="multipart/form-data")


def upload(client, h, content: bytes, filename: str, client_type: str, name="带执照的公司") -> int:
    """A customer created through the web form with `content` as its licence; its id."""
    resp = post_form(client, h, "/e/customer/new",
                     {"name": name, "industry": "金融业", "licence": (io.BytesIO(content), filename, client_type)})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return int(resp.headers["Location"].rsplit("/", 1)[1])


def stored_keys(tenant) -> set[str]:
    root = tenant.storage.root
    return {p.name for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def assert_download(resp):
    assert resp.status_code == 200
    assert resp.headers["Content-Disposition"].startswith("attachment")
    ctype = resp.headers["Content-Type"].split(";")[0]
    assert ctype == "application/octet-stream", ctype
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


# ------------------------------------------------------------------------------------ served files

@pytest.mark.parametrize("content,filename,client_type", [
    (SVG, "logo.svg", "image/svg+xml"),
    (SVG, "logo.svg", "image/png"),
    (HTML, "page.html", "text/html"),
    (HTML, "page.html", "image/gif"),
    (HTML, "readme", "text/html"),           # no extension: the client's type used to be trusted
    (SVG, "evil.png", "image/png"),          # claims PNG by name and type, content is SVG
    (HTML, "photo.jpg", "image/jpeg"),
    (b"<svg onload=alert(1)>", "x", "image/svg+xml"),
])
def test_security_active_upload_is_a_download(signed_in, h, tenant, content, filename, client_type):
    rid = upload(signed_in, h, content, filename, client_type)
    stored = tenant.records.get("customer", rid)["licence"]
    assert stored.content_type == "application/octet-stream"  # what was detected, not the client's
    resp = signed_in.get(f"/e/customer/{rid}/file/licence")
    assert_download(resp)
    assert resp.data == content
    assert "sandbox" in resp.headers["Content-Security-Policy"]


@pytest.mark.parametrize("content,ctype", [(PNG, "image/png"), (JPEG, "image/jpeg"), (GIF, "image/gif"),
                                           (WEBP, "image/webp")])
@pytest.mark.parametrize("filename,client_type", [("scan", "application/octet-stream"),
                                                  ("scan.bin", "text/html"), ("scan.png", "image/png")])
def test_security_raster_image_checked_by_content_is_inline(signed_in, h, tenant, content, ctype,
                                                            filename, client_type):
    rid = upload(signed_in, h, content, filename, client_type)
    assert tenant.records.get("customer", rid)["licence"].content_type == ctype
    resp = signed_in.get(f"/e/customer/{rid}/file/licence")
    assert resp.status_code == 200 and resp.data == content
    assert resp.headers["Content-Type"] == ctype
    assert resp.headers["Content-Disposition"].startswith("inline")
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_security_pdf_is_an_attachment(signed_in, h, tenant):
    rid = upload(signed_in, h, b"%PDF-1.4 test", "执照.pdf", "application/pdf")
    assert tenant.records.get("customer", rid)["licence"].content_type == "application/pdf"
    resp = signed_in.get(f"/e/customer/{rid}/file/licence")
    assert resp.headers["Content-Disposition"].startswith("attachment")
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_security_a_reference_cannot_relabel_a_file(signed_in, h, tenant, sales):
    """A file reference (API JSON, import CSV) naming an SVG "image/png" keeps the detected type."""
    rid = upload(signed_in, h, SVG, "logo.svg", "image/svg+xml")
    key = tenant.records.get("customer", rid)["licence"].key
    other = tenant.records.create("customer", {"name": "另一家", "industry": "金融业",
                                               "licence": {"key": key, "name": "cat.png",
                                                           "content_type": "image/png"}}, sales)
    assert other["licence"].content_type == "application/octet-stream"
    assert_download(signed_in.get(f"/e/customer/{other['id']}/file/licence"))
    ref = f"{key}|{len(SVG)}|image/png|cat.png"
    third = tenant.records.create("customer", {"name": "第三家", "industry": "金融业", "licence": ref}, sales)
    assert_download(signed_in.get(f"/e/customer/{third['id']}/file/licence"))


def test_security_a_lying_stored_type_is_still_a_download(signed_in, h, tenant, sales):
    """Rows written before this fix (or by SQL) may say image/png for an SVG: the bytes decide."""
    rid = upload(signed_in, h, SVG, "logo.svg", "image/svg+xml")
    key = tenant.records.get("customer", rid)["licence"].key
    table = tenant.schema.table(tenant.model.entities["customer"])
    with tenant.write() as conn:
        conn.execute(table.update().where(table.c.id == rid)
                     .values(licence=f"{key}|{len(SVG)}|image/png|logo.png"))
    assert_download(signed_in.get(f"/e/customer/{rid}/file/licence"))


def test_security_accept_list_checks_the_content(tenant):
    """`accept: [image/*]` is not fooled by an SVG named .png, and the refused upload is not kept."""
    import dataclasses

    from engine.errors import FieldValueError
    from engine.fields.base import FieldContext

    field = dataclasses.replace(tenant.model.entities["customer"].fields["licence"],
                                settings={"accept": ["image/*"]})
    ftype = tenant.field_types.for_field(field)
    ctx = FieldContext(storage=tenant.storage)

    class Upload:
        def __init__(self, data, filename, content_type):
            self.stream, self.filename, self.content_type = io.BytesIO(data), filename, content_type

    with pytest.raises(FieldValueError) as err:
        ftype.coerce(field, Upload(SVG, "evil.png", "image/png"), ctx)
    assert err.value.key == "file_type"
    assert stored_keys(tenant) == set()
    assert ftype.coerce(field, Upload(PNG, "ok.png", "image/png"), ctx).content_type == "image/png"


# ------------------------------------------------------------------------- nothing is left behind

def test_security_failed_create_leaves_no_file(signed_in, h, tenant):
    resp = post_form(signed_in, h, "/e/customer/new",
                     {"name": "", "industry": "金融业", "licence": (io.BytesIO(PNG), "a.png", "image/png")})
    assert resp.status_code == 422
    assert stored_keys(tenant) == set()


def test_security_failed_edit_leaves_no_file(signed_in, h, tenant):
    rid = upload(signed_in, h, PNG, "a.png", "image/png")
    before = stored_keys(tenant)
    resp = post_form(signed_in, h, f"/e/customer/{rid}/edit",
                     {"name": "带执照的公司", "industry": "金融业", "rating": "99", "version": "1",
                      "licence": (io.BytesIO(JPEG), "b.jpg", "image/jpeg")})
    assert resp.status_code == 422
    assert stored_keys(tenant) == before


def test_security_duplicate_name_leaves_no_file(signed_in, h, tenant):
    upload(signed_in, h, PNG, "a.png", "image/png")
    before = stored_keys(tenant)
    resp = post_form(signed_in, h, "/e/customer/new",
                     {"name": "带执照的公司", "industry": "金融业",
                      "licence": (io.BytesIO(GIF), "b.gif", "image/gif")})
    assert resp.status_code in (409, 422)
    assert stored_keys(tenant) == before


def test_security_replaced_and_deleted_files_are_removed(signed_in, h, tenant):
    rid = upload(signed_in, h, PNG, "a.png", "image/png")
    first = tenant.records.get("customer", rid)["licence"].key
    resp = post_form(signed_in, h, f"/e/customer/{rid}/edit",
                     {"name": "带执照的公司", "industry": "金融业", "version": "1",
                      "licence": (io.BytesIO(JPEG), "b.jpg", "image/jpeg")})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    second = tenant.records.get("customer", rid)["licence"].key
    assert stored_keys(tenant) == {second} and first != second
    resp = post_form(signed_in, h, f"/e/customer/{rid}/delete", {"version": "2"})
    assert resp.status_code == 302
    assert stored_keys(tenant) == set()


def test_security_a_shared_file_survives_deleting_one_record(signed_in, h, tenant, sales):
    rid = upload(signed_in, h, PNG, "a.png", "image/png")
    stored = tenant.records.get("customer", rid)["licence"]
    other = tenant.records.create("customer", {"name": "另一家", "industry": "金融业",
                                               "licence": stored.to_dict()}, sales)
    tenant.records.delete("customer", rid, sales)
    assert stored_keys(tenant) == {stored.key}
    tenant.records.delete("customer", other["id"], sales)
    assert stored_keys(tenant) == set()


# ---------------------------------------------------------------------------------------- headers

def assert_security_headers(resp, what: str):
    hdrs = resp.headers
    csp = hdrs.get("Content-Security-Policy", "")
    directives = {d.strip().split(" ", 1)[0]: d.strip() for d in csp.split(";") if d.strip()}
    script = directives.get("script-src") or directives.get("default-src", "")
    assert "'self'" in script or "'none'" in script, f"{what}: {csp!r}"
    assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script, f"{what}: {csp!r}"
    if "script-src" not in directives:
        assert "default-src 'none'" in csp, f"{what}: {csp!r}"
    assert directives.get("frame-ancestors") in ("frame-ancestors 'none'", "frame-ancestors 'self'"), \
        f"{what}: {csp!r}"
    assert hdrs.get("X-Frame-Options") in ("DENY", "SAMEORIGIN"), what
    assert hdrs.get("X-Content-Type-Options") == "nosniff", what
    assert hdrs.get("Referrer-Policy") in ("same-origin", "strict-origin-when-cross-origin", "no-referrer"), what


@pytest.fixture
def boom(app):
    """A page that fails with an unexpected error, answered by the 500 page (set up before any request)."""
    def fail():
        raise RuntimeError("kaboom")

    app.add_url_rule("/__boom", "boom", fail)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    return "/__boom"


def test_security_headers_on_every_kind_of_response(boom, app, client, signed_in, h, tenant):
    rid = upload(signed_in, h, PNG, "a.png", "image/png")
    pid = upload(signed_in, h, b"%PDF-1.4", "b.pdf", "application/pdf", name="第二家")
    token = tenant.users.create_token("li.lei", label="t")
    bearer = {"Authorization": f"Bearer {token}"}
    anon = app.test_client()
    cases = {
        "login page": (anon.get("/login"), 200),
        "redirect to login": (anon.get("/e/customer/"), 302),
        "list page": (signed_in.get("/e/customer/"), 200),
        "htmx partial": (signed_in.get("/e/customer/", headers={"HX-Request": "true",
                                                                 "HX-Target": "list-results"}), 200),
        "record page": (signed_in.get(f"/e/customer/{rid}"), 200),
        "form page": (signed_in.get("/e/customer/new"), 200),
        "failed form": (post_form(signed_in, h, "/e/customer/new", {"name": ""}), 422),
        "home": (signed_in.get("/"), 200),
        "api success": (client.get("/api/v1/customer", headers=bearer), 200),
        "api error": (client.get("/api/v1/customer/9999", headers=bearer), 404),
        "api 401": (anon.get("/api/v1/customer"), 401),
        "404 page": (signed_in.get("/no/such/page"), 404),
        "404 record": (signed_in.get("/e/customer/9999"), 404),
        "403 page": (signed_in.get("/admin/users"), 403),
        "500 page": (signed_in.get(boom), 500),
        "static css": (anon.get("/static/css/formwork.css"), 200),
        "static js": (anon.get("/static/js/formwork.js"), 200),
        "uploaded image": (signed_in.get(f"/e/customer/{rid}/file/licence"), 200),
        "uploaded pdf": (signed_in.get(f"/e/customer/{pid}/file/licence"), 200),
        "health": (anon.get("/healthz"), 200),
    }
    for what, (resp, status) in cases.items():
        assert resp.status_code == status, (what, resp.status_code)
        assert_security_headers(resp, what)


def test_security_pages_have_no_inline_script_or_style(signed_in, h, tenant):
    """The CSP forbids inline script and style attributes: the pages must not need them."""
    import re

    rid = upload(signed_in, h, PNG, "a.png", "image/png")
    for path in ("/", "/e/customer/", "/e/customer/new", f"/e/customer/{rid}", f"/e/customer/{rid}/edit",
                 "/e/follow_up/new", "/search?q=x"):
        html = signed_in.get(path).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert not re.search(r"\sstyle=", html), path
        assert not re.search(r"\son[a-z]+=", html), path


# ---------------------------------------------------------------------------------------- browser

def serve(app):
    """Serve `app` on a free local port in a thread; a context manager yielding its base URL."""
    from contextlib import contextmanager

    from werkzeug.serving import make_server

    @contextmanager
    def running():
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            thread.join(timeout=5)

    return running()


@pytest.fixture
def live_server(app):
    with serve(app) as url:
        yield url


def csp_reports(page) -> list[str]:
    """Console messages of `page` about a Content Security Policy violation (collected as they come)."""
    reports: list[str] = []
    page.on("console", lambda msg: reports.append(msg.text) if "Content Security Policy" in msg.text else None)
    return reports


def sign_in(page, base: str, username: str, password: str) -> None:
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("form button.btn-primary")
    page.wait_for_url(base + "/")


def visit(page, url: str) -> None:
    resp = page.goto(url)
    page.wait_for_load_state("networkidle")
    assert resp.status == 200, url
    assert "script-src 'self'" in resp.headers.get("content-security-policy", ""), url


@pytest.mark.browser
def test_security_no_csp_violation_on_the_main_pages(browser, live_server, sales, tenant):
    rec = tenant.records.create("customer", {"name": "杭州云栖", "industry": "金融业"}, sales)
    page = browser.new_page()
    page.set_default_timeout(15000)
    reports = csp_reports(page)
    try:
        sign_in(page, live_server, "li.lei", "correct-horse-9")
        for path in ("/", "/e/customer/", "/e/customer/new", f"/e/customer/{rec['id']}",
                     f"/e/customer/{rec['id']}/edit", f"/e/customer/{rec['id']}/delete", "/e/follow_up/new",
                     "/search?q=杭州", "/password"):
            visit(page, live_server + path)
        page.goto(live_server + "/e/customer/")
        page.fill("input[name=q]", "杭州")  # htmx live search swaps the table in
        page.wait_for_load_state("networkidle")
        page.goto(live_server + "/e/customer/new")
        page.click("form button.btn-primary")  # a failed submit re-renders the form with errors
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(300)
    finally:
        page.close()
    assert reports == []


@pytest.mark.browser
def test_security_no_csp_violation_on_workflow_dedup_and_admin_pages(browser, db_url):
    """The sample tenant as an admin: pipeline board, deal page, inbox, duplicates, quality, admin."""
    from pathlib import Path

    from engine.demo.generate import generate_demo
    from engine.schema.migrate import migrate
    from engine.tenant import Tenant
    from web import create_app

    tenant = Tenant.load(Path(__file__).resolve().parents[2] / "sample_tenant.yaml", db_url=db_url)
    try:
        migrate(tenant)
        generate_demo(tenant, size=3, seed=1)
        tenant.users.add("boss", ["admin"], password="chief-pass-1")
        tenant.users.change_password("boss", "chief-pass-1", "chief-pass-2x")
        deal = tenant.records.list("opportunity", limit=1).items[0]["id"]
        app = create_app(tenant, config={"SECRET_KEY": "csp-test", "FORMWORK_RELOAD_INTERVAL": -1})
        with serve(app) as base:
            page = browser.new_page()
            page.set_default_timeout(15000)
            reports = csp_reports(page)
            try:
                sign_in(page, base, "boss", "chief-pass-2x")
                for path in ("/pipelines/", "/pipelines/sales", f"/e/opportunity/{deal}", "/inbox",
                             "/duplicates/", "/duplicates/customer", "/quality/", "/admin/", "/admin/users",
                             "/admin/departments", "/admin/roles", "/admin/exports"):
                    visit(page, base + path)
                page.wait_for_timeout(300)
            finally:
                page.close()
        assert reports == []
    finally:
        tenant.dispose()
