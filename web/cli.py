"""`formwork serve TENANT.yaml`: the development server for one worker, gunicorn for several."""
from __future__ import annotations

import sys

import click

from engine.cli.common import config_argument, db_option, load_tenant, reports_errors

from .schema_guard import schema_problem


class _Gunicorn:
    """Build gunicorn's BaseApplication lazily so importing this module stays cheap."""

    @staticmethod
    def run(app_factory, options: dict) -> None:
        from gunicorn.app.base import BaseApplication

        class FormworkApplication(BaseApplication):
            def load_config(self):
                for key, value in options.items():
                    self.cfg.set(key, value)

            def load(self):
                return app_factory()

        FormworkApplication().run()


@click.command("serve")
@config_argument
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="1: Flask's development server; more: gunicorn with that many processes.")
@click.option("--debug/--no-debug", default=False, help="Reload on code change (development only).")
@db_option
@reports_errors
def serve(config, host, port, workers, debug, db_url):
    """Serve TENANT.yaml's web app and JSON API.

    \b
    Production: formwork serve TENANT.yaml --host 0.0.0.0 --workers 4
    (or: FORMWORK_CONFIG=TENANT.yaml FORMWORK_DB=URL gunicorn -w 4 'web.wsgi:app').
    Behind a reverse proxy set FORMWORK_TRUSTED_PROXIES=1; over HTTPS set FORMWORK_SECURE_COOKIES=1.
    """
    from . import create_app

    tenant = load_tenant(config, db_url)
    problem = schema_problem(tenant)
    if problem:
        click.echo(f"error: {problem}", err=True)
        click.echo(f"run `formwork plan {config}` then `formwork migrate {config}`", err=True)
        sys.exit(1)
    url = f"http://{host}:{port}/"
    if workers == 1:
        app = create_app(tenant)
        click.echo(f"Formwork serving {tenant.name} on {url} (development server; "
                   f"use --workers N for gunicorn)")
        app.run(host=host, port=port, debug=debug, use_reloader=debug, threaded=True)
        return
    tenant.dispose()
    click.echo(f"Formwork serving {tenant.name} on {url} with gunicorn, {workers} workers")
    _Gunicorn.run(lambda: create_app(config, db_url=tenant.db_url),
                  {"bind": f"{host}:{port}", "workers": workers, "accesslog": "-",
                   "worker_class": "gthread", "threads": 4, "timeout": 60})
