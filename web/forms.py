"""WTForms built from entity metadata: a widget per field type, and submitted values for the engine."""
from __future__ import annotations

from dataclasses import dataclass, field as dc_field
from datetime import date, datetime, timezone
from decimal import Decimal

from wtforms import Field, FieldList, FileField, FormField, StringField, TextAreaField
from wtforms.form import BaseForm
from wtforms.meta import DefaultMeta
from wtforms.utils import unset_value

from .i18n import label

# Field type → how the form shows it. Types a plugin adds fall back to a text input.
WIDGETS = {
    "text": "text", "textarea": "textarea", "integer": "integer", "decimal": "decimal", "money": "money",
    "percent": "percent", "boolean": "boolean", "date": "date", "datetime": "datetime",
    "select": "select", "multiselect": "multiselect", "reference": "reference", "user": "user",
    "department": "department", "phone": "tel", "email": "email", "url": "url", "wechat": "text",
    "file": "file", "subtable": "subtable", "formula": "readonly", "autonumber": "readonly",
    "stage": "select",  # a pipeline's stage field: its stages are the options
}


def widget(field) -> str:
    return WIDGETS.get(field.type, "text")


def is_editable(field) -> bool:
    return widget(field) != "readonly"


@dataclass
class Section:
    """A titled group of fields on a form or detail page."""

    title: str
    fields: list = dc_field(default_factory=list)


def sections(entity, lang: str | None = None, access: dict | None = None) -> list[Section]:
    """`layout.form` sections; fields the layout leaves out come last so nothing is unreachable.
    Fields the user may not see (`access[name] == "hidden"`) are left out."""
    out: list[Section] = []
    hidden = {n for n, a in (access or {}).items() if a == "hidden"}
    placed: set[str] = set(hidden)
    for sec in entity.form_layout or []:
        names = [n for n in sec.get("fields", []) if n in entity.fields and n not in placed]
        placed.update(names)
        if names:
            out.append(Section(label(sec.get("section"), lang) if sec.get("section") else "",
                               [entity.fields[n] for n in names]))
    rest = [f for n, f in entity.fields.items() if n not in placed]
    if rest:
        out.append(Section("" if not out else "…", rest))
    if len(out) > 1 and out[-1].title == "…":
        out[-1].title = ""
    return out


class Choices:
    """Option lists for select-like widgets, in the caller's language."""

    def __init__(self, tenant, lang: str):
        self.tenant = tenant
        self.lang = lang
        self._users = None

    def options(self, field) -> list[tuple[str, str]]:
        return [(o.value, label(o.label, self.lang)) for o in field.options or []]

    def users(self) -> list[tuple[str, str]]:
        if self._users is None:
            self._users = [(str(u.id), u.name) for u in self.tenant.users.list(include_inactive=False)]
        return self._users

    def departments(self) -> list[tuple[str, str]]:
        config = (self.tenant.model.config or {}).get("departments") or {}
        out = []
        for key, spec in config.items() if isinstance(config, dict) else []:
            text = label(_as_label(spec.get("label")) if isinstance(spec, dict) else None, self.lang) or key
            out.append((key, text))
        return out

    def department_label(self, key) -> str:
        return dict(self.departments()).get(key, key or "")

    def booleans(self) -> list[tuple[str, str]]:
        return [("true", "是" if self.lang == "zh" else "Yes"), ("false", "否" if self.lang == "zh" else "No")]

    def for_field(self, field) -> list[tuple[str, str]]:
        kind = widget(field)
        if kind in ("select", "multiselect"):
            return self.options(field)
        if kind == "user":
            return self.users()
        if kind == "department":
            return self.departments()
        if kind == "boolean":
            return self.booleans()
        return []


def _as_label(value):
    from engine.metadata.model import Label

    return Label.of(value) if value is not None else None


class ListField(Field):
    """Every value submitted under one name (checkbox groups); the engine checks the options."""

    def process_formdata(self, valuelist):
        self.data = [v for v in valuelist if v]

    def process_data(self, value):
        self.data = list(value or [])


class RecordForm(BaseForm):
    """A form whose fields are reached only as form[name], never as attributes: a declarative
    wtforms.Form sets each field as an attribute, so fields named `data`, `meta`, `errors`,
    `process` or `validate` would replace the form's own members."""

    unbound: dict = {}

    def __init__(self, formdata=None, data=None, prefix: str = "", meta: dict | None = None):
        meta_obj = DefaultMeta()
        if meta:
            meta_obj.update_values(meta)
        super().__init__(self.unbound, prefix=prefix, meta=meta_obj)
        self.process(formdata, data=data)


class RowForm(FormField):
    """One subtable row: hands the row's values over as one dict (FormField spreads them as keyword
    arguments, where row fields named `formdata`, `prefix` or `meta` would clash)."""

    def process(self, formdata, data=unset_value, extra_filters=None):
        self.object_data = None if data is unset_value else data
        self.form = self.form_class(formdata=formdata, data=data if isinstance(data, dict) else None,
                                    prefix=self.name + self.separator, meta={"_parent_form": self._form})


def _wt_field(field, choices: Choices, tenant_types):
    # Options are rendered by the templates and checked by the engine, so selects bind as text.
    kind = widget(field)
    if kind == "textarea":
        return TextAreaField(field.name)
    if kind == "multiselect":
        return ListField(field.name)
    if kind == "file":
        return FileField(field.name)
    if kind == "subtable":
        return FieldList(RowForm(row_form_class(field.child, choices, tenant_types)), min_entries=0)
    return StringField(field.name)


def row_form_class(entity, choices: Choices, tenant_types, writable=None):
    unbound = {n: _wt_field(f, choices, tenant_types) for n, f in entity.fields.items()
               if is_editable(f) and (writable is None or writable(f))}
    return type(f"{entity.table_name}_row", (RecordForm,), {"unbound": unbound})


def form_class(entity, choices: Choices, tenant_types, writable=None):
    """A RecordForm class with one field per field the user may write (CSRF is checked app-wide).
    `writable(field) -> bool` answers for fields and subtable row fields alike."""
    unbound = {}
    for n, f in entity.fields.items():
        if not is_editable(f) or (writable is not None and not writable(f)):
            continue
        if widget(f) == "subtable":
            unbound[n] = FieldList(RowForm(row_form_class(f.child, choices, tenant_types, writable)),
                                   min_entries=0)
        else:
            unbound[n] = _wt_field(f, choices, tenant_types)
    return type(f"{entity.name}_form", (RecordForm,), {"unbound": unbound})


def input_value(field, value, tz):
    """A stored value as the text an input shows (dates ISO, datetimes local, numbers plain)."""
    kind = widget(field)
    if value is None:
        return [] if kind == "multiselect" else ""
    if kind == "subtable":
        return [{f.name: input_value(f, row.get(f.name), tz) for f in field.child.fields.values()
                 if is_editable(f)} for row in value]
    if kind == "multiselect":
        return list(value)
    if kind == "boolean":
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(tz).strftime("%Y-%m-%dT%H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        text = format(value, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    if kind == "file":
        return value
    return str(value)


def record_to_form_data(entity, record: dict, tz) -> dict:
    return {f.name: input_value(f, record.get(f.name), tz) for f in entity.fields.values()
            if is_editable(f) and f.type != "file"}


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def row_values(entity, row_form) -> dict:
    out = {}
    for f in entity.fields.values():
        if f.name not in row_form:
            continue
        out[f.name] = row_form[f.name].data
    return out


def submitted_values(entity, form, formdata, files, creating: bool, keep_blank_rows: bool = False) -> dict:
    """Values for the records service from a bound form. On create, blanks are left out so the
    engine applies defaults; on edit, a blank clears the field. A file input left empty keeps the
    stored file unless its "remove" box is ticked."""
    values: dict = {}
    for f in entity.fields.values():
        if f.name not in form._fields:
            continue  # computed, or not writable for this user
        kind = widget(f)
        if kind == "file":
            upload = files.get(f.name)
            if upload is not None and upload.filename:
                values[f.name] = upload
            elif formdata.get(f"{f.name}__clear"):
                values[f.name] = None
            continue
        if kind == "subtable":
            rows = [row_values(f.child, entry.form) for entry in form[f.name].entries]
            values[f.name] = rows if keep_blank_rows else \
                [r for r in rows if not all(_blank(v) for v in r.values())]
            if creating and not values[f.name]:
                values[f.name] = []
            continue
        data = form[f.name].data
        if creating and _blank(data):
            continue
        values[f.name] = data if data is not None else ""
    return values
