"""A Tenant owns one config's model, its database engine and its plugin manager."""
from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Iterator
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from .clock import system_now
from .fields import FieldContext, FieldTypeRegistry
from .schema.quoting import quote_every_keyword
from .plugins import make_plugin_manager


WRITE_OPTION = "formwork_write"


def default_db_url(config_path: str | os.PathLike, tenant_name: str) -> str:
    """`$FORMWORK_DB`, else `sqlite:///instance/<tenant>.db` beside the config."""
    env = os.environ.get("FORMWORK_DB")
    if env:
        return env
    folder = Path(config_path).resolve().parent / "instance"
    return f"sqlite:///{folder / (tenant_name + '.db')}"


def create_db_engine(url: str) -> sa.Engine:
    """An engine with Formwork's connection settings: SQLite in WAL with a busy timeout."""
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # pysqlite's own BEGIN handling defers locking; take the write lock at BEGIN instead
            # so concurrent writers queue on busy_timeout rather than failing mid-transaction.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # Writers (Tenant.write) take the write lock up front so they queue on busy_timeout;
            # readers begin deferred and, in WAL mode, never wait for writers.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION)
                                 else "BEGIN")

        return quote_every_keyword(engine)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return quote_every_keyword(sa.create_engine(url, pool_pre_ping=True))


class Tenant:
    """One tenant: config model + database + plugins; nothing here is shared between tenants."""

    def __init__(self, model, db_url: str, pm, field_types: FieldTypeRegistry, functions: dict,
                 config_path: str | None = None):
        self.model = model
        self.pm = pm
        self.field_types = field_types
        self.functions = functions
        self.db_url = db_url
        self.config_path = config_path
        self.db = create_db_engine(db_url)
        # Tests freeze time by setting this; everything that stamps or measures time asks now().
        self.clock = None
        self.extra_plugins: tuple = ()   # plugins passed by hand to load(); a reload keeps them
        self._services: dict = {}

    def now(self) -> datetime:
        """The current time (UTC, aware): the tenant's clock, so tests can freeze it."""
        return self.clock() if self.clock is not None else system_now()

    @classmethod
    def load(cls, config_path: str | os.PathLike, db_url: str | None = None,
             plugins: tuple = ()) -> "Tenant":
        """Check and load a tenant config (raises ConfigError listing every issue)."""
        from .config import load_config, load_model
        from .plugins import config_plugin_names

        loaded = load_config(config_path)
        pm = make_plugin_manager(plugins, enabled=config_plugin_names(loaded.data))
        field_types = FieldTypeRegistry.from_plugins(pm)
        functions = collect_functions(pm)
        model = load_model(config_path, field_types=field_types, functions=functions, pm=pm, loaded=loaded)
        url = db_url or default_db_url(config_path, model.tenant.name)
        tenant = cls(model, url, pm, field_types, functions, config_path=str(config_path))
        tenant.extra_plugins = tuple(plugins)
        pm.hook.formwork_tenant_loaded(tenant=tenant)
        return tenant

    @contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """A write transaction: committed at the end of the block, rolled back on error.

        Its events (engine/records/events.py) go to ``formwork_records_changed`` before the commit and
        to ``formwork_records_committed`` after it, never after a rollback. On SQLite it begins
        IMMEDIATE, so concurrent writers wait for each other instead of failing.
        """
        from .records.events import EVENTS_KEY, EventBatch

        with self.db.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            batch = EventBatch()
            conn.info[EVENTS_KEY] = batch
            try:
                with conn.begin():
                    yield conn
                    if batch.events:
                        self.events.before_commit(conn, batch.events)
            finally:
                conn.info.pop(EVENTS_KEY, None)
        if batch.events:
            self.events.after_commit(batch.events)

    def service(self, name: str):
        """A plugin's service (formwork_tenant_services), built on first use and kept by this tenant."""
        if name not in self._services:
            factories: dict = {}
            for batch in reversed(self.pm.hook.formwork_tenant_services()):
                factories.update(batch or {})
            if name not in factories:
                raise KeyError(f"no plugin of tenant {self.name} provides the service {name!r}")
            self._services[name] = factories[name](self)
        return self._services[name]

    @property
    def name(self) -> str:
        return self.model.tenant.name

    @cached_property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.model.tenant.timezone)

    @cached_property
    def schema(self):
        """The SQLAlchemy tables for this tenant's model (engine.schema.tables.TenantSchema)."""
        from .schema.tables import TenantSchema

        return TenantSchema.of(self)

    @cached_property
    def audit(self):
        """The audit log: the only writer of fw_audit (engine.records.audit.AuditLog)."""
        from .records.audit import AuditLog

        return AuditLog(self)

    @cached_property
    def events(self):
        """The event stream of committed changes (engine.records.events.EventStream)."""
        from .records.events import EventStream

        return EventStream(self)

    @property
    def instance_id(self) -> str | None:
        """The random id `migrate` stored in this database (None before it ran): web sessions carry
        it, so a session of one tenant is refused by another even under the same secret key."""
        if self.__dict__.get("_instance_id"):
            return self.__dict__["_instance_id"]
        from .instance import read_instance_id

        with self.db.connect() as conn:
            value = read_instance_id(conn, self.schema.system["instance"])
        self.__dict__["_instance_id"] = value  # None is looked up again: a migrate may come later
        return value

    @cached_property
    def records(self):
        """The records service: the only read and write path for entity records."""
        from .records.service import RecordsService

        return RecordsService(self)

    @cached_property
    def users(self):
        """Users, passwords and API tokens."""
        from .users import UserStore

        return UserStore(self)

    @cached_property
    def pipelines(self):
        """Pipelines: criteria, stage history, stagnation, the board (engine.workflows.pipelines)."""
        from .workflows.pipelines import Pipelines

        return Pipelines(self)

    @cached_property
    def approvals(self):
        """Approval flows: instances, steps, decisions (engine.workflows.approvals)."""
        from .workflows.approvals import Approvals

        return Approvals(self)

    @cached_property
    def notifications(self):
        """In-app notifications (engine.workflows.notifications)."""
        from .workflows.notifications import Notifications

        return Notifications(self)

    @cached_property
    def tasks(self):
        """Help requests and other tasks (engine.workflows.tasks)."""
        from .workflows.tasks import Tasks

        return Tasks(self)

    @cached_property
    def storage(self):
        from .fields.storage import LocalFileStorage

        base = Path(self.config_path).resolve().parent if self.config_path else Path.cwd()
        return LocalFileStorage(base / "instance" / "files" / self.name)

    def field_context(self, locale: str | None = None) -> FieldContext:
        """A context for coercing and displaying values for a caller in `locale`."""
        departments = tuple((self.model.config.get("departments") or {}).keys())
        return FieldContext(locale=locale or self.model.tenant.locale, timezone=self.timezone,
                            currency=self.model.tenant.currency,
                            phone_region=phone_region(self.model.tenant.locale),
                            storage=self.storage, departments=departments, now=self.now)

    def dispose(self) -> None:
        self.db.dispose()


def phone_region(locale: str) -> str:
    """The default phone region for a locale such as zh_CN → CN, en_US → US."""
    parts = locale.replace("-", "_").split("_")
    return parts[1].upper() if len(parts) > 1 else "CN"


def collect_functions(pm) -> dict:
    """Merge every plugin's expression functions; later plugins override earlier ones."""
    functions: dict = {}
    for batch in reversed(pm.hook.formwork_expressions_functions()):
        functions.update(batch or {})
    return functions
