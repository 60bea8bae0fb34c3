"""Where every key and value of a config came from: path tuple → (key location, value location).

A path is a tuple of mapping keys (str) and list indexes (int), e.g.
``("entities", "customer", "fields", "name", "type")``. The root is ``()``.
"""
from __future__ import annotations

from typing import Iterable, Iterator

from ..errors import SourceLocation

Path = tuple


class SourceMap:
    """Locations of the keys and values of one config (or of a merge of several files)."""

    def __init__(self, entries: dict[Path, tuple[SourceLocation | None, SourceLocation | None]] | None = None):
        self._entries: dict[Path, tuple[SourceLocation | None, SourceLocation | None]] = {}
        self._children: dict[Path, set[Path]] = {}   # path → the paths one level below it
        for path, locs in (entries or {}).items():
            self.set(path, *locs)

    # -- building -------------------------------------------------------------------------------
    def set(self, path: Path, key: SourceLocation | None, value: SourceLocation | None) -> None:
        path = tuple(path)
        self._entries[path] = (key, value)
        p = path
        while p:
            kids = self._children.setdefault(p[:-1], set())
            if p in kids:
                break
            kids.add(p)
            p = p[:-1]

    def _below(self, prefix: Path) -> list[Path]:
        """`prefix` and every path under it (with or without an entry)."""
        out, stack = [], [tuple(prefix)]
        while stack:
            p = stack.pop()
            out.append(p)
            stack.extend(self._children.get(p, ()))
        return out

    def subtree(self, prefix: Path) -> Iterator[tuple[Path, tuple]]:
        """Every entry at or under `prefix`."""
        for p in self._below(prefix):
            if p in self._entries:
                yield p, self._entries[p]

    def drop(self, prefix: Path) -> None:
        """Forget every entry at or under `prefix`."""
        prefix = tuple(prefix)
        for p in self._below(prefix):
            self._entries.pop(p, None)
            self._children.pop(p, None)
        if prefix:
            self._children.get(prefix[:-1], set()).discard(prefix)

    def copy_from(self, other: "SourceMap", prefix: Path) -> None:
        """Take `other`'s entries at and under `prefix` (replacing ours there)."""
        prefix = tuple(prefix)
        self.drop(prefix)
        for path, locs in list(other.subtree(prefix)):
            self.set(path, *locs)

    def remap(self, old_prefix: Path, new_prefix: Path) -> "SourceMap":
        """A copy of the entries under `old_prefix` moved to `new_prefix`."""
        out = SourceMap()
        n = len(old_prefix)
        for path, locs in self.subtree(tuple(old_prefix)):
            out.set(tuple(new_prefix) + path[n:], *locs)
        return out

    # -- reading --------------------------------------------------------------------------------
    def __contains__(self, path: Path) -> bool:
        return tuple(path) in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def paths(self) -> Iterable[Path]:
        return self._entries.keys()

    def key(self, path: Path) -> SourceLocation | None:
        """The location of the key at `path` (of the list item for an index), else the nearest parent's."""
        return self._find(tuple(path), 0)

    def value(self, path: Path) -> SourceLocation | None:
        """The location of the value at `path`, else the nearest parent's."""
        return self._find(tuple(path), 1)

    def _find(self, path: Path, which: int) -> SourceLocation | None:
        while True:
            locs = self._entries.get(path)
            if locs is not None:
                loc = locs[which] or locs[1 - which]
                if loc is not None:
                    return loc
            if not path:
                return None
            path = path[:-1]
            which = 0  # a parent: point at its key, which names what holds the problem

    def file_of(self, path: Path) -> str | None:
        loc = self.value(path)
        return loc.file if loc else None

    def __repr__(self) -> str:
        return f"<SourceMap {len(self._entries)} entries>"
