"""The hooks a Formwork plugin may implement; built-in features use the same hooks.

Hook names follow ``formwork_<area>_<event>``. Implement them with ``engine.hookimpl``::

    from engine import hookimpl

    @hookimpl
    def formwork_fields_register():
        return [MyFieldType()]

Only hooks that make a decision are ``firstresult``.
"""
from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("formwork")


@hookspec
def formwork_fields_register() -> list:
    """Return field type objects (``engine.fields.FieldType``) to add to the tenant's type registry.

    A later plugin's type of the same name replaces an earlier one.
    """


@hookspec
def formwork_expressions_functions() -> dict:
    """Return ``{name: callable}`` functions that expressions (rules, defaults, formulas) may call.

    Functions must be pure and cheap; they receive already-evaluated arguments, any of which may be
    ``None`` (an empty field).
    """


@hookspec
def formwork_records_validate(tenant: Any, entity: Any, values: dict, old: dict | None,
                              errors: dict, locale: str) -> None:
    """Add messages to ``errors`` (``{field or "_record": [message]}``) for a record about to be written.

    ``values`` is the full record after coercion and formulas; ``old`` is the stored record on update;
    ``locale`` is the writer's language for the messages.
    """


@hookspec
def formwork_records_validate_many(tenant: Any, entity: Any, rows: list, locale: str) -> list:
    """A bulk create (import) validated ``rows``, a list of ``(row number, record)`` after coercion and
    formulas. Return ``[(row number, field or "_record", message)]``. A plugin that implements this hook
    receives the batch *instead of* one ``formwork_records_validate`` per row (one call per import for
    an entity it has nothing to check).
    """


@hookspec
def formwork_records_after_create(tenant: Any, entity: Any, record: dict, user: Any,
                                  connection: Any) -> None:
    """A record was created; runs inside the write transaction (raise to roll it back)."""


@hookspec
def formwork_records_after_create_many(tenant: Any, entity: Any, records: list, user: Any,
                                       connection: Any) -> None:
    """A bulk create (import) wrote ``records`` (each with its id and system fields); runs inside the
    write transaction, once per bulk create. A plugin that implements this hook receives it *instead of*
    one ``formwork_records_after_create`` per record, so it can do its work in batches.
    """


@hookspec
def formwork_records_after_update(tenant: Any, entity: Any, record: dict, old: dict, changes: dict,
                                  user: Any, connection: Any) -> None:
    """A record was updated; ``changes`` is ``{field: [old, new]}``. Runs inside the transaction."""


@hookspec
def formwork_records_after_delete(tenant: Any, entity: Any, record: dict, user: Any,
                                  connection: Any) -> None:
    """A record was deleted; ``record`` is its last state. Runs inside the transaction."""


@hookspec
def formwork_tenant_loaded(tenant: Any) -> None:
    """A tenant finished loading its config, database and plugins."""


@hookspec
def formwork_records_before_write(tenant: Any, entity: Any, record: dict, old: dict | None, user: Any,
                                  connection: Any, options: dict) -> None:
    """A validated record is about to be created (``old`` is None) or updated; raise a
    ``FormworkError`` (e.g. ``DuplicatesFound``) to refuse the write. Runs inside the write transaction.

    ``options`` holds the caller's write options: ``confirm_duplicates`` (bool: the user confirmed
    "not a duplicate") and ``locale`` (the language for messages).
    """


@hookspec
def formwork_records_before_write_many(tenant: Any, entity: Any, rows: list, user: Any, connection: Any,
                                       options: dict) -> list:
    """A bulk create (import) is about to write ``rows``, a list of ``(row number, record)``.

    Return ``[(row number, field or "_record", message)]`` for rows to refuse; they are reported like
    validation errors (all-or-nothing, or skipped with ``skip_invalid``). ``options`` as for
    ``formwork_records_before_write``. Runs inside the write transaction.
    """


@hookspec(firstresult=True)
def formwork_records_filter(tenant: Any, entity: Any, table: Any, name: str, value: Any, user: Any) -> Any:
    """Translate a list filter ``name`` that is not a field of ``entity`` (such as ``stagnant``) into
    a SQLAlchemy condition on ``table``, or return None to leave it to other plugins (a filter no
    plugin claims is refused as unknown). ``user`` is the reader (None for the engine).
    """


@hookspec
def formwork_notifications_send(tenant: Any, notifications: list, connection: Any) -> None:
    """Notifications were stored for people who must act (``user_id``, ``kind``, ``params``, ``entity``,
    ``record_id``, ``approval_id``, ``task_id``). Runs inside the write transaction: an e-mail or IM
    plugin should queue its messages and send them after commit, not block the write.
    """


@hookspec
def formwork_workflows_stage_changed(tenant: Any, pipeline: Any, entity: Any, record: dict, old_stage: Any,
                                     new_stage: Any, user: Any, connection: Any) -> None:
    """A record entered a stage of ``pipeline`` (``old_stage`` is None when it was created there).
    Runs inside the write transaction."""


@hookspec
def formwork_approvals_changed(tenant: Any, flow: Any, approval: dict, event: str, user: Any,
                               connection: Any) -> None:
    """An approval moved: ``event`` is submitted, step_approved, approved, rejected, withdrawn or
    resubmitted; ``approval`` is its stored row. Runs inside the transaction."""


@hookspec
def formwork_dedup_normalizers() -> dict:
    """Return ``{name: fn(value: str, ctx) -> str}`` normalisers for ``duplicates:`` rules.

    ``ctx`` is an ``engine.dedup.normalize.NormalizeContext`` (``region``, ``locale``); return the
    text to compare, or "" when the value should never count as a duplicate. A later plugin's
    normaliser of the same name replaces an earlier one.
    """


# -- what a feature plugin contributes (datasette's and pytest's pattern: a feature is a plugin) ----

@hookspec(historic=True)
def formwork_plugins_addhooks(pm: Any) -> None:
    """Called with the tenant's plugin manager when a plugin registers: a feature plugin declares its
    own hooks here with ``pm.add_hookspecs(module)`` (pytest's ``pytest_addhooks``)."""


@hookspec
def formwork_config_schema() -> dict:
    """Return the JSON Schema of the config keys a plugin adds: ``{"tenant": {key: schema},
    "entity": {key: schema}}`` for top-level keys and keys of an entity. ``formwork check`` validates
    them like the core's keys (an unknown key is still an error) at FILE:LINE:COL."""


@hookspec
def formwork_model_build(builder: Any, model: Any) -> None:
    """Build a plugin's part of the model from the merged config (``builder.data``) after the core's
    entities and expressions. Report problems with ``builder.error(path, message, at="key"|"value")``
    (path: the keys from the config's root); store what was built on ``model.extensions[name]``."""


@hookspec
def formwork_schema_tables(metadata: Any, model: Any) -> dict:
    """Define a plugin's system tables on ``metadata`` (SQLAlchemy Core; names start with ``fw_``)
    and return ``{key: table}``. ``formwork plan``/``migrate`` create and alter them like the core's;
    code reaches them as ``tenant.schema.system[key]``."""


@hookspec
def formwork_tenant_services() -> dict:
    """Return ``{name: factory(tenant)}``: services a tenant builds on first use and keeps
    (``tenant.service(name)``), such as a feature's engine object."""


@hookspec
def formwork_web_setup(app: Any, tenant: Any) -> None:
    """Add a plugin's pages and API routes to the Flask ``app`` (``app.register_blueprint``; API
    routes under ``/api/v1/``). Called once by ``create_app``; every route gets the app's sign-in,
    CSRF, headers and error pages."""


@hookspec
def formwork_web_template_variables(tenant: Any, user: Any) -> dict:
    """Return ``{name: value}`` added to every page's template context (``user`` is the signed-in
    engine user or None)."""


@hookspec
def formwork_cli_commands() -> list:
    """Return click commands added to the ``formwork`` command line. Installed plugins (the
    ``formwork`` entry-point group) are asked when a verb is not built in, or for ``--help``."""


# -- the event stream of committed changes (engine/records/events.py) ------------------------------

@hookspec
def formwork_records_changed(tenant: Any, events: list, connection: Any) -> None:
    """A write transaction is about to commit these ``RecordEvent``s (created, updated, deleted,
    transferred, shared, merged, stage_changed, approval_changed …), in order. Runs inside it:
    raise to roll the whole write back; write related rows on ``connection``."""


@hookspec
def formwork_records_committed(tenant: Any, events: tuple) -> None:
    """These events were committed (never called after a rollback): send, enqueue, invalidate caches.
    A failure here is logged and does not undo the write."""


@hookspec
def formwork_events_durable(tenant: Any) -> list:
    """Return event names (``<entity>.<type>``, shell patterns such as ``customer.*``) that must not be
    lost: they are also written to the ``fw_outbox`` table in the write's transaction, so a consumer
    (webhooks, a queue) can deliver them after a crash."""
