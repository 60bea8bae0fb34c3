"""Where uploaded files live: a small FileStorage protocol and a local-folder implementation.

Stored objects get RANDOM keys (``secrets.token_hex(16)`` plus a sanitised extension, e.g.
``3f9a…c2.pdf``); the client's file name is only kept as display metadata and never touches a path.
Keys are checked against ``KEY_RE`` before any filesystem access, so a crafted key cannot escape
the root folder.

The content type kept for a file is what the server detected (``detect_content_type``), never
the client's: a browser would run an SVG or HTML file served from the app's origin.
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
SNIFF_BYTES = 16
# Raster formats a browser only ever decodes as a picture: the only types a file may be shown inline as.
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
# Types an extension may claim for a file whose bytes were not recognised: a browser would render or
# run them (markup, script, SVG), or they promise a format the bytes just failed to show.
_UNTRUSTED_CLAIM_RE = re.compile(r"image/.*|application/pdf|.*(?:html|xml|script|svg|xsl|flash).*", re.ASCII)


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
        # Only well-formedness is checked here: FileType.coerce re-detects the type from the stored
        # bytes, and the download route sniffs them again before anything is shown inline.
        return cls(key, name, size, safe_content_type(str(content_type)))


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


def sniff(head: bytes) -> str | None:
    """The type the first bytes of a file prove (PNG, JPEG, GIF, WebP, PDF), else None."""
    if head.startswith(b"\x89PNG"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF"):
        return "application/pdf"
    return None


def detect_content_type(head: bytes, filename: str) -> str:
    """The type to keep for a file starting with `head`: proven by its bytes, else the extension's
    when that is harmless, else application/octet-stream. The client's claimed type is never used."""
    proven = sniff(head)
    if proven:
        return proven
    guessed, _ = mimetypes.guess_type("x" + safe_extension(filename), strict=False)
    if not guessed or _UNTRUSTED_CLAIM_RE.fullmatch(guessed.lower()):
        return DEFAULT_CONTENT_TYPE
    return guessed


def safe_content_type(content_type: str) -> str:
    """A recorded content type if well-formed, else application/octet-stream."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    return ctype if _MIME_RE.fullmatch(ctype) else DEFAULT_CONTENT_TYPE


def read_head(storage: "FileStorage", key: str) -> bytes:
    """The first bytes of a stored object, for detect_content_type."""
    with storage.open(key) as fh:
        return fh.read(SNIFF_BYTES)


@runtime_checkable
class FileStorage(Protocol):
    """What file fields need from a storage backend (local folder, S3-compatible, …)."""

    def save(self, stream: BinaryIO, filename: str, content_type: str | None = None,
             max_size: int | None = None) -> StoredFile:
        """Store the stream under a new random key; raise FileTooLarge past `max_size` bytes.
        The StoredFile's content_type is detected from the bytes (`content_type` is only a hint)."""

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
        head = b""
        try:
            with open(tmp, "xb") as out:
                while True:
                    chunk = stream.read(CHUNK)
                    if not chunk:
                        break
                    if len(head) < SNIFF_BYTES:
                        head += chunk[:SNIFF_BYTES - len(head)]
                    size += len(chunk)
                    if max_size is not None and size > max_size:
                        raise FileTooLarge(max_size)
                    out.write(chunk)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        name = safe_name(filename) or key
        return StoredFile(key, name, size, detect_content_type(head, name))

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


class UploadLog:
    """A FileStorage that remembers what was saved through it, so a write that fails can drop it."""

    def __init__(self, storage: FileStorage):
        self.storage = storage
        self.saved: list[str] = []

    def save(self, stream: Any, filename: str, content_type: str | None = None,
             max_size: int | None = None) -> StoredFile:
        stored = self.storage.save(stream, filename, content_type, max_size=max_size)
        self.saved.append(stored.key)
        return stored

    def open(self, key: str) -> BinaryIO:
        return self.storage.open(key)

    def delete(self, key: str) -> None:
        self.storage.delete(key)

    def exists(self, key: str) -> bool:
        return self.storage.exists(key)

    def discard(self) -> None:
        """Delete everything saved through this log (the write that needed it did not happen)."""
        while self.saved:
            self.storage.delete(self.saved.pop())
