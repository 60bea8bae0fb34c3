"""The Formwork web application: `create_app()` builds a Flask app over one tenant."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask

from .context import FormworkState


def _load_tenant(tenant_or_config_path, db_url):
    if isinstance(tenant_or_config_path, (str, os.PathLike)):
        from engine.tenant import Tenant

        return Tenant.load(tenant_or_config_path, db_url=db_url)
    return tenant_or_config_path


def _secret_key(tenant) -> str:
    """$FORMWORK_SECRET_KEY, else a key kept in instance/ beside the config (shared by workers)."""
    env = os.environ.get("FORMWORK_SECRET_KEY")
    if env:
        return env
    if not getattr(tenant, "config_path", None):
        return secrets.token_hex(32)
    path = Path(tenant.config_path).resolve().parent / "instance" / f"{tenant.name}.secret"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write a complete temporary file, then link it into place: several workers starting at once
    # all end up reading the same, whole key.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()


def create_app(tenant_or_config_path, db_url: str | None = None, config: dict | None = None) -> Flask:
    """An app serving one tenant: a Tenant object, or a config path loaded with `db_url`."""
    tenant = _load_tenant(tenant_or_config_path, db_url)
    app = Flask(__name__)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME=f"fw_{tenant.name}",
        MAX_CONTENT_LENGTH=32 * 1024 * 1024,
        JSON_SORT_KEYS=False,
    )
    if os.environ.get("FORMWORK_SECURE_COOKIES") == "1":   # served over HTTPS
        app.config["SESSION_COOKIE_SECURE"] = True
    if config:
        app.config.update(config)
    proxies = int(app.config.get("FORMWORK_TRUSTED_PROXIES") or os.environ.get("FORMWORK_TRUSTED_PROXIES") or 0)
    if proxies:
        # Behind a reverse proxy: take the client address (login throttling per IP) from X-Forwarded-For.
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(tenant)
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    state = FormworkState(tenant=tenant)
    app.extensions["formwork"] = state

    from . import auth, errors, headers, home, inputs, reload, search, security, views

    headers.init_app(app)
    inputs.init_app(app)
    reload.init_app(app, state)
    security.init_app(app)
    views.init_app(app)
    errors.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(home.bp)
    app.register_blueprint(search.bp)
    from . import entities

    app.register_blueprint(entities.bp)
    from . import admin, sharing

    app.register_blueprint(sharing.bp)
    app.register_blueprint(admin.bp)
    from . import dedup

    app.register_blueprint(dedup.bp)
    from . import workflows

    app.register_blueprint(workflows.bp)
    from . import api_workflows  # noqa: F401 - pipelines/approvals/tasks/notifications routes on the API blueprint
    from .api import bp as api_bp  # JSON API v1, owned by web/api.py
    app.register_blueprint(api_bp)
    # Plugins add their pages and API routes after the core's, so theirs cannot shadow a core route.
    tenant.pm.hook.formwork_web_setup(app=app, tenant=tenant)

    @app.context_processor
    def plugin_template_variables():
        from flask_login import current_user

        from .context import tenant as serving

        user = getattr(current_user, "user", None)
        out: dict = {}
        for batch in reversed(serving().pm.hook.formwork_web_template_variables(tenant=serving(), user=user)):
            out.update(batch or {})
        return out

    @app.get("/healthz", endpoint="health")
    def health():
        return {"status": "ok", "tenant": tenant.name}

    return app
