"""Live config reload: a changed tenant YAML is served once its schema is migrated, never before."""
from __future__ import annotations

import os
import threading
import time

import sqlalchemy as sa
from flask import g

from engine.errors import ConfigError
from engine.schema.system import define_system_tables

from .schema_guard import schema_problem

MAX_SHOWN = 20  # errors listed on admin pages; `formwork check` prints them all


class ConfigWatcher:
    """Checks, at most every `interval` seconds, whether the config files or the applied schema
    changed; loads the new config and swaps it in only when the database matches it. Until then the
    old config keeps serving and `state.schema_problem` tells admins what to run."""

    def __init__(self, state, interval: float = 2.0):
        self.state = state
        self.interval = interval
        self.lock = threading.Lock()
        self.last_check = 0.0
        self.seen = self._signature(state.tenant)

    @staticmethod
    def _files(tenant) -> list[str]:
        files = list(getattr(tenant.model, "files", None) or [])
        if tenant.config_path and tenant.config_path not in files:
            files.append(tenant.config_path)
        return files

    def _signature(self, tenant) -> tuple:
        stamps = []
        for path in self._files(tenant):
            try:
                st = os.stat(path)
                stamps.append((path, st.st_mtime_ns, st.st_size))
            except OSError:
                stamps.append((path, None, None))
        return tuple(stamps), self._applied(tenant)

    @staticmethod
    def _applied(tenant):
        versions = define_system_tables(sa.MetaData())["config_versions"]
        try:
            with tenant.db.connect() as conn:
                return conn.execute(sa.select(sa.func.max(versions.c.id))).scalar()
        except sa.exc.SQLAlchemyError:
            return None

    def check(self) -> None:
        """Called before each request; cheap unless something changed."""
        now = time.monotonic()
        if now - self.last_check < self.interval or not self.state.tenant.config_path:
            return
        if not self.lock.acquire(blocking=False):
            return  # another thread is checking
        try:
            self.last_check = now
            current = self.state.tenant
            signature = self._signature(current)
            if signature == self.seen:
                return
            self.seen = signature
            self._reload(current)
        finally:
            self.lock.release()

    def _reload(self, current) -> None:
        from engine.tenant import Tenant

        try:
            fresh = Tenant.load(current.config_path, db_url=current.db_url, plugins=current.extra_plugins)
        except ConfigError as exc:
            self._refuse([str(i) for i in exc.issues])
            return
        except Exception as exc:  # noqa: BLE001 - whatever a hostile file triggers, keep the last good config
            self._refuse([f"{current.config_path}: the config could not be loaded "
                          f"({type(exc).__name__}: {str(exc)[:200]})"])
            return
        self.state.config_errors = []
        if fresh.model.fingerprint == current.model.fingerprint:
            fresh.dispose()
            self.state.schema_problem = None
            return
        problem = schema_problem(fresh)
        if problem:
            fresh.dispose()
            self.state.schema_problem = problem
            return
        # Build what requests use before anyone can see the new tenant, so the first requests after
        # the switch do not race each other building it.
        fresh.schema, fresh.records  # noqa: B018 - cached properties, evaluated for their effect
        self.state.tenant = fresh
        self.state.schema_problem = None
        current.dispose()  # idle connections only; requests still using it finish normally

    def _refuse(self, errors: list[str]) -> None:
        """Keep serving the last good config; admins see why the file on disk is not used."""
        self.state.schema_problem = f"the config has {len(errors)} error(s): run `formwork check`"
        self.state.config_errors = errors[:MAX_SHOWN]


def init_app(app, state) -> None:
    """Check for a changed config (unless FORMWORK_RELOAD_INTERVAL < 0), then pin the tenant the
    request will use from start to finish: a switch only affects requests that begin after it."""
    interval = float(app.config.get("FORMWORK_RELOAD_INTERVAL", 2.0))
    watcher = ConfigWatcher(state, interval) if interval >= 0 else None
    if watcher is not None:
        app.extensions["formwork_watcher"] = watcher

    @app.before_request
    def pin_tenant():
        if watcher is not None:
            watcher.check()
        g.formwork_tenant = state.tenant
