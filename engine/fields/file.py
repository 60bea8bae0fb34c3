"""file: one stored object per field value (see engine.fields.storage).

* Python value: ``StoredFile(key, name, size, content_type)``.
* Column: String(500) holding ``"<key>|<size>|<content_type>|<name>"``, e.g.
  ``"3f9ad0…c2.pdf|48213|application/pdf|报价单.pdf"``; that string is also the CSV form.
* JSON: ``{"key": …, "name": …, "size": …, "content_type": …}``.
* coerce accepts a StoredFile, that dict, a JSON string of it, the column string, or an upload
  (anything with .stream, .filename and .content_type, e.g. werkzeug's FileStorage; an upload with an
  empty filename counts as "no file") which is saved through ``ctx.storage``. References to stored
  objects are checked against ``ctx.storage.exists`` when a storage is given, and their content type
  is detected again from the stored bytes (a reference cannot relabel an SVG as image/png).
* settings.max_size (bytes, default 10 MiB) → file_too_large; settings.accept (extensions like
  ".pdf"/"pdf" or MIME types like "application/pdf", "image/*") → file_type.
"""
from __future__ import annotations

import json
import re
from typing import Any, Mapping

import sqlalchemy as sa

from ..metadata.model import Field
from ._util import is_blank
from .base import FieldContext, FieldType, fail
from .storage import FileTooLarge, StoredFile, detect_content_type, read_head, safe_extension

DEFAULT_MAX_SIZE = 10 * 1024 * 1024
_ACCEPT_RE = re.compile(r"\.?[a-z0-9]{1,10}|[a-z0-9][a-z0-9!#$&^_.+-]*/(?:\*|[a-z0-9][a-z0-9!#$&^_.+-]*)",
                        re.ASCII)


def accepts(accept: list[str] | None, name: str, content_type: str) -> bool:
    """Whether a file named `name` of `content_type` passes an accept list (None/empty: anything)."""
    if not accept:
        return True
    ext = safe_extension(name).lstrip(".")
    ctype = (content_type or "").lower()
    for item in accept:
        a = str(item).strip().lower()
        if "/" in a:
            if a.endswith("/*") and ctype.startswith(a[:-1]):
                return True
            if ctype == a:
                return True
        elif ext and a.lstrip(".") == ext:
            return True
    return False


def _is_upload(value: Any) -> bool:
    return hasattr(value, "stream") and hasattr(value, "filename") and not isinstance(value, Mapping)


class FileType(FieldType):
    name = "file"
    operators = ("empty", "not_empty")
    sortable = False
    aggregations = ("count",)
    widget = "file"
    json_type = {"type": "object", "properties": {"name": {"type": "string"}, "size": {"type": "integer"},
                                                   "content_type": {"type": "string"}, "url": {"type": "string"}}}
    settings_schema = {
        "max_size": {"type": "integer", "minimum": 1,
                     "description": "Largest accepted file in bytes (default 10 MiB)."},
        "accept": {"type": "array", "items": {"type": "string"},
                   "description": "Allowed extensions (.pdf) or MIME types (image/*)."},
    }

    def max_size(self, field: Field) -> int:
        return int(field.settings.get("max_size") or DEFAULT_MAX_SIZE)

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        return sa.String(500)

    def coerce(self, field: Field, value: Any, ctx: FieldContext) -> Any:
        if is_blank(value):
            return None
        if _is_upload(value):
            return self._save_upload(field, value, ctx)
        try:
            if isinstance(value, StoredFile):
                stored = value
            elif isinstance(value, Mapping):
                stored = StoredFile.from_dict(dict(value))
            elif isinstance(value, str):
                s = value.strip()
                stored = StoredFile.from_dict(json.loads(s)) if s.startswith("{") else StoredFile.from_ref(s)
            else:
                raise ValueError
        except (ValueError, TypeError, AttributeError):
            raise fail("not_a_file") from None
        if ctx.storage is not None:
            if not ctx.storage.exists(stored.key):
                raise fail("not_a_file")
            try:
                detected = detect_content_type(read_head(ctx.storage, stored.key), stored.name)
            except FileNotFoundError:
                raise fail("not_a_file") from None
            if detected != stored.content_type:
                stored = StoredFile(stored.key, stored.name, stored.size, detected)
        return stored

    def _save_upload(self, field: Field, upload: Any, ctx: FieldContext) -> StoredFile | None:
        filename = upload.filename or ""
        if not filename:
            return None  # an empty file input in a form
        if ctx.storage is None:
            raise fail("not_a_file")
        limit = self.max_size(field)
        try:
            stored = ctx.storage.save(upload.stream, filename, max_size=limit)
        except FileTooLarge:
            raise fail("file_too_large", max_size=limit) from None
        # The accept list is checked against the type the bytes proved, so it runs after saving.
        if not accepts(field.settings.get("accept"), stored.name, stored.content_type):
            ctx.storage.delete(stored.key)
            raise fail("file_type", value=stored.name)
        return stored

    def validate(self, field: Field, value: Any, ctx: FieldContext) -> None:
        limit = self.max_size(field)
        if value.size > limit:
            raise fail("file_too_large", max_size=limit)
        if not accepts(field.settings.get("accept"), value.name, value.content_type):
            raise fail("file_type", value=value.name)

    def to_db(self, field: Field, value: Any) -> Any:
        return None if value is None else value.to_ref()

    def from_db(self, field: Field, value: Any) -> Any:
        if value is None or value == "":
            return None
        return StoredFile.from_ref(value)

    def to_json(self, field: Field, value: Any) -> Any:
        return None if value is None else value.to_dict()

    def to_csv(self, field: Field, value: Any) -> str:
        return "" if value is None else value.to_ref()

    def to_text(self, field: Field, value: Any, ctx: FieldContext) -> str:
        return "" if value is None else value.name

    def check_config(self, field: Field, raw: dict) -> list[tuple[tuple, str]]:
        issues = []
        max_size = field.settings.get("max_size")
        if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int)
                                     or max_size < 1):
            issues.append((("max_size",), "max_size must be a positive number of bytes"))
        accept = field.settings.get("accept")
        if accept is not None:
            if not isinstance(accept, list):
                issues.append((("accept",), "accept must be a list of extensions or MIME types"))
            else:
                for i, item in enumerate(accept):
                    if not isinstance(item, str) or not _ACCEPT_RE.fullmatch(item.strip().lower()):
                        issues.append((("accept", i), f"{item!r} is not an extension (.pdf) or MIME type"))
        return issues
