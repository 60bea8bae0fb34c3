"""Where uploaded files live: a small FileStorage protocol and a local-folder implementation.

Stored objects get RANDOM keys (``secrets.token_hex(16)`` plus a sanitised extension, e.g.
``3f9a…c2.pdf``); the client's file name is only kept as display metadata and never touches a path.
Keys are checked against ``KEY_RE`` before any filesystem access, so a crafted key cannot escape
the root folder.
"""
from __future__ import annotations

import io
import mimetypes
import os
import re
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable

KEY_RE = re.compile(r"[0-9a-f]{32}(?:\.[a-z0-9]{1,10})?", re.ASCII)
_EXT_RE = re.compile(r"[a-z0-9]{1,10}", re.ASCII)
_MIME_RE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}", re.ASCII)
_NAME_BAD_RE = re.compile(r"[\x00-\x1f\x7f|]")
MAX_NAME = 200
CHUNK = 64 * 1024
DEFAULT_CONTENT_TYPE = "application/octet-stream"


class FileTooLarge(Exception):
    """The stream was longer than the allowed size; nothing was kept."""

    def __init__(self, max_size: int):
        self.max_size = max_size
        super().__init__(f"file larger than {max_size} bytes")


@dataclass(frozen=True)
class StoredFile:
    """A stored object: its storage key plus display metadata (the value of a file field)."""

    key: str
    name: str
    size: int
    content_type: str

    # The column holds "key|size|content_type|name" (name last: it may contain anything but "|").
    def to_ref(self) -> str:
        return f"{self.key}|{self.size}|{self.content_type}|{self.name}"

    @classmethod
    def from_ref(cls, ref: str) -> "StoredFile":
        parts = ref.split("|", 3)
        if len(parts) == 1:  # a bare key
            return cls.checked(parts[0], "", 0, "")
        if len(parts) != 4:
            raise ValueError("not a file reference")
        key, size, ctype, name = parts
        return cls.checked(key, name, size, ctype)

    def to_dict(self) -> dict:
        return {"key": self.key, "name": self.name, "size": self.size, "content_type": self.content_type}

    @classmethod
    def from_dict(cls, data: dict) -> "StoredFile":
        if not isinstance(data.get("key"), str):
            raise ValueError("not a file reference")
        return cls.checked(data["key"], data.get("name") or "", data.get("size") or 0,
                           data.get("content_type") or "")

    @classmethod
    def checked(cls, key: str, name: Any, size: Any, content_type: Any) -> "StoredFile":
        """A StoredFile from untrusted parts: key format checked, name and type sanitised."""
        key = str(key).strip()
        if not KEY_RE.fullmatch(key):
            raise ValueError("not a file key")
        if isinstance(size, bool):
            raise ValueError("bad size")
        try:
            size = int(size)
        except (TypeError, ValueError):
            raise ValueError("bad size") from None
        if size < 0:
            raise ValueError("bad size")
        name = safe_name(str(name)) or key
        return cls(key, name, size, safe_content_type(str(content_type), name))


def safe_extension(filename: str) -> str:
    """".pdf" from a client file name when the extension is plain ASCII letters/digits, else ""."""
    base = re.split(r"[/\\]", filename or "")[-1]
    _, dot, ext = base.rpartition(".")
    ext = ext.lower()
    return f".{ext}" if dot and _EXT_RE.fullmatch(ext) else ""


def safe_name(filename: str) -> str:
    """The client file name for display only: last path segment, no control characters or "|"."""
    base = re.split(r"[/\\]", unicodedata.normalize("NFC", filename or ""))[-1]
    base = _NAME_BAD_RE.sub("", base).strip()
    if base.strip(".") == "":
        return ""
    if len(base) > MAX_NAME:
        ext = safe_extension(base)
        base = base[:MAX_NAME - len(ext)] + ext
    return base


def safe_content_type(client_type: str, filename: str) -> str:
    """The type guessed from the extension (server-side), else the client's if well-formed."""
    guessed, _ = mimetypes.guess_type("x" + safe_extension(filename), strict=False)
    if guessed:
        return guessed
    ctype = (client_type or "").split(";")[0].strip().lower()
    return ctype if _MIME_RE.fullmatch(ctype) else DEFAULT_CONTENT_TYPE


@runtime_checkable
class FileStorage(Protocol):
    """What file fields need from a storage backend (local folder, S3-compatible, …)."""

    def save(self, stream: BinaryIO, filename: str, content_type: str | None = None,
             max_size: int | None = None) -> StoredFile:
        """Store the stream under a new random key; raise FileTooLarge past `max_size` bytes."""

    def open(self, key: str) -> BinaryIO:
        """The stored bytes (binary file object); FileNotFoundError for an unknown key."""

    def delete(self, key: str) -> None:
        """Remove the object; an unknown key is not an error."""

    def exists(self, key: str) -> bool:
        """Whether an object with this key is stored."""


class LocalFileStorage:
    """Files under ``root_dir/<first two key chars>/<key>`` (e.g. the instance folder's files/)."""

    def __init__(self, root_dir: str | os.PathLike):
        self.root = Path(root_dir)

    def _path(self, key: str) -> Path:
        if not isinstance(key, str) or not KEY_RE.fullmatch(key):
            raise ValueError(f"not a file key: {key!r}")
        return self.root / key[:2] / key

    def save(self, stream: Any, filename: str, content_type: str | None = None,
             max_size: int | None = None) -> StoredFile:
        if isinstance(stream, (bytes, bytearray, memoryview)):
            stream = io.BytesIO(bytes(stream))
        key = secrets.token_hex(16) + safe_extension(filename)
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{secrets.token_hex(8)}.part")
        size = 0
        try:
            with open(tmp, "xb") as out:
                while True:
                    chunk = stream.read(CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    if max_size is not None and size > max_size:
                        raise FileTooLarge(max_size)
                    out.write(chunk)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        name = safe_name(filename) or key
        return StoredFile(key, name, size, safe_content_type(content_type or "", name))

    def open(self, key: str) -> BinaryIO:
        try:
            path = self._path(key)
        except ValueError:
            raise FileNotFoundError(key) from None
        return open(path, "rb")

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except ValueError:
            return

    def exists(self, key: str) -> bool:
        try:
            return self._path(key).is_file()
        except ValueError:
            return False
