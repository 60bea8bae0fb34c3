"""Read tenant YAML safely, keeping the file:line:col of every key and value.

Only plain data is built: mappings, lists, strings, numbers, booleans and null. Scalars follow the
YAML 1.2 core schema rather than PyYAML's YAML 1.1 defaults, so ``yes``/``no``/``on``/``off`` stay
strings, ``2024-01-31`` stays a string (field types read dates) and ``10:30`` is not a base-60
number. Duplicate keys are errors. A ``# yaml-language-server: $schema=…`` line is just a comment.

Then ``extends:`` is resolved (templates under the tenant, any depth, cycles reported) and the
files are deep-merged into one config whose SourceMap points every value at the file that gave it.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field as dc_field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigIssue, SourceLocation
from .merge import deep_merge, strip_removals
from .sourcemap import SourceMap

# The project's templates folder; FORMWORK_CONFIGS (os.pathsep-separated folders) is searched first.
PACKAGE_CONFIGS = Path(__file__).resolve().parent.parent.parent / "configs"
MAX_NODES = 200_000  # bounds alias expansion ("billion laughs")
MAX_DEPTH = 40       # a tenant config is at most ~10 levels deep
MAX_FILE_BYTES = 2_000_000  # the sample tenant is ~26 KB; a bigger file is a mistake or an attack

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"

_INT_RE = re.compile(r"^[-+]?[0-9]+$|^0o[0-7]+$|^0x[0-9a-fA-F]+$")
_FLOAT_RE = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$"
                       r"|^[-+]?\.(inf|Inf|INF)$|^\.(nan|NaN|NAN)$")
_BOOL_RE = re.compile(r"^(true|True|TRUE|false|False|FALSE)$")
_NULL_RE = re.compile(r"^(~|null|Null|NULL|)$")


class _CoreSchemaLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """(C)SafeLoader whose implicit scalar types are the YAML 1.2 core schema's (libyaml when present:
    its marks count characters too)."""

    yaml_implicit_resolvers: dict = {}


for _tag, _regexp, _first in (
        (_BOOL, _BOOL_RE, list("tTfF")),
        (_INT, _INT_RE, list("-+0123456789")),
        (_FLOAT, _FLOAT_RE, list("-+0123456789.")),
        (_NULL, _NULL_RE, ["~", "n", "N", ""]),
        (_MERGE, re.compile(r"^(?:<<)$"), ["<"])):
    _CoreSchemaLoader.add_implicit_resolver(_tag, _regexp, _first)


@dataclass
class ParsedFile:
    """One YAML file: its data (None when unreadable), where each part is, and what went wrong."""

    path: Path            # resolved path
    display: str          # how messages name it
    data: Any
    source_map: SourceMap
    issues: list[ConfigIssue]


def display_path(path: Path, given: str | None = None) -> str:
    """The path as the user gave it, else relative to the working directory when inside it."""
    if given is not None:
        return given
    try:
        return os.path.relpath(path) if path.resolve().is_relative_to(Path.cwd().resolve()) else str(path)
    except ValueError:  # another drive on Windows
        return str(path)


def read_yaml(path: str | os.PathLike, display: str | None = None) -> ParsedFile:
    """Parse one YAML file into plain data plus a SourceMap; never raises for bad input."""
    p = Path(path)
    shown = display if display is not None else str(path)
    smap = SourceMap()

    def fail(message: str, line: int = 1, col: int = 1) -> ParsedFile:
        return ParsedFile(p, shown, None, smap, [ConfigIssue(SourceLocation(shown, line, col), message)])

    if not p.exists():
        return fail("no such file")
    if p.is_dir():
        return fail("is a directory, not a YAML file")
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:  # refused before reading, so a huge file costs no memory
            return fail(_too_big(size))
        raw = p.read_bytes()
    except OSError as exc:
        return fail(f"cannot read the file: {exc.strerror or exc}")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        col = len(raw[line_start:exc.start].decode("utf-8", "replace")) + 1
        return fail(f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8", line, col)
    return parse_yaml_text(text, shown, p)


def parse_yaml_text(text: str, display: str, path: Path | None = None) -> ParsedFile:
    """Parse YAML text (see read_yaml)."""
    p = path or Path(display)
    smap = SourceMap()
    issues: list[ConfigIssue] = []

    def loc(mark) -> SourceLocation:
        return SourceLocation(display, mark.line + 1, mark.column + 1)

    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        issues.append(ConfigIssue(SourceLocation(display, 1, 1), _too_big(len(text.encode("utf-8", "surrogatepass")))))
        return ParsedFile(p, display, None, smap, issues)
    if not text.strip() or all(not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()):
        issues.append(ConfigIssue(SourceLocation(display, 1, 1), "the file is empty"))
        return ParsedFile(p, display, None, smap, issues)

    deep = _first_too_deep(text)
    if deep is not None:
        issues.append(ConfigIssue(loc(deep), f"nested more than {MAX_DEPTH} levels deep "
                                             f"(a tenant config needs about 10)"))
        return ParsedFile(p, display, None, smap, issues)

    loader = _CoreSchemaLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = ""
        if exc.problem_mark is not None:
            lines = text.splitlines()
            if exc.problem_mark.line < len(lines):
                at = lines[exc.problem_mark.line][exc.problem_mark.column:exc.problem_mark.column + 1]
        problem = _friendly(exc.problem or "invalid YAML", at)
        if exc.context and exc.context_mark and exc.problem_mark and exc.context_mark.line != exc.problem_mark.line:
            problem += f" ({exc.context} at line {exc.context_mark.line + 1})"
        elif exc.context:
            problem = f"{problem} ({exc.context})"
        location = loc(mark) if mark else SourceLocation(display, 1, 1)
        issues.append(ConfigIssue(location, f"YAML syntax error: {problem}"))
        return ParsedFile(p, display, None, smap, issues)
    except yaml.reader.ReaderError as exc:
        before = text[:exc.position]
        line = before.count("\n") + 1
        col = exc.position - (before.rfind("\n") + 1) + 1
        char = chr(exc.character) if isinstance(exc.character, int) else exc.character
        issues.append(ConfigIssue(SourceLocation(display, line, col),
                                  f"YAML syntax error: the character {char!r} is not allowed"))
        return ParsedFile(p, display, None, smap, issues)
    except yaml.YAMLError as exc:  # pragma: no cover - other PyYAML errors carry no mark
        issues.append(ConfigIssue(SourceLocation(display, 1, 1), f"YAML syntax error: {exc}"))
        return ParsedFile(p, display, None, smap, issues)
    finally:
        loader.dispose()

    if node is None:
        issues.append(ConfigIssue(SourceLocation(display, 1, 1), "the file is empty"))
        return ParsedFile(p, display, None, smap, issues)

    builder = _Builder(display, smap, issues)
    smap.set((), SourceLocation(display, 1, 1), loc(node.start_mark))
    try:
        data = builder.build(node, ())
    except _TooLarge:
        issues.append(ConfigIssue(loc(node.start_mark),
                                  f"the document is too large (over {MAX_NODES} values after expanding aliases)"))
        return ParsedFile(p, display, None, smap, issues)
    if not isinstance(data, dict):
        issues.append(ConfigIssue(loc(node.start_mark),
                                  f"a tenant config must be a mapping of keys (tenant:, entities: …), "
                                  f"not {describe(data)}"))
        data = None
    return ParsedFile(p, display, data, smap, issues)


def _too_big(size: int) -> str:
    return (f"the file is {size / 1e6:.1f} MB; a tenant config may be at most {MAX_FILE_BYTES / 1e6:g} MB "
            f"(split it with extends: templates)")


_OPEN = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSE = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def _first_too_deep(text: str):
    """The mark of the first collection nested deeper than MAX_DEPTH, else None.

    PyYAML's composer (and libyaml's, behind CSafeLoader) recurses once per nesting level, so a
    file of 100 000 '[' overflows the C stack and kills the process; the parser's event stream is
    iterative, so depth is measured on it before anything is composed."""
    loader = _CoreSchemaLoader(text)
    depth = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, _OPEN):
                depth += 1
                if depth > MAX_DEPTH + 1:  # the top-level mapping is level 0, as in _Builder
                    return event.start_mark
            elif isinstance(event, _CLOSE):
                depth -= 1
    except yaml.YAMLError:
        return None  # the composing pass below reports syntax errors with its friendlier wording
    finally:
        loader.dispose()
    return None


_FRIENDLY = (
    ("expected <block end>", "bad indentation: this line does not line up with the lines above"),
    ("mapping values are not allowed here",
     "unexpected ':' (put text containing ': ' in quotes, or check the indentation)"),
    ("found character '\\t' that cannot start any token", "a tab character: indent with spaces"),
    ("could not find expected ':'", "a key without ':' (or an unclosed quote)"),
    ("found undefined alias", "an alias (*name) without a matching anchor (&name)"),
)


def _friendly(problem: str, char: str = "") -> str:
    if char == "\t" and "cannot start any token" in problem:
        return f"a tab character: indent with spaces [{problem}]"
    for start, text in _FRIENDLY:
        if problem.startswith(start):
            return f"{text} [{problem}]"
    return problem


def _tag(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:"):] if tag.startswith("tag:yaml.org,2002:") else tag


class _TooLarge(Exception):
    pass


class _Builder:
    """Turns composed YAML nodes into plain data, recording every location."""

    def __init__(self, display: str, smap: SourceMap, issues: list[ConfigIssue]):
        self.display = display
        self.smap = smap
        self.issues = issues
        self.count = 0
        self.too_deep = False
        self.active: set[int] = set()

    def loc(self, node) -> SourceLocation:
        return SourceLocation(self.display, node.start_mark.line + 1, node.start_mark.column + 1)

    def problem(self, node, message: str) -> None:
        self.issues.append(ConfigIssue(self.loc(node), message))

    def build(self, node, path: tuple) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooLarge
        if len(path) > MAX_DEPTH:
            if not self.too_deep:
                self.too_deep = True
                self.problem(node, f"nested more than {MAX_DEPTH} levels deep")
            return None
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        if id(node) in self.active:
            self.problem(node, "a recursive alias (an anchor used inside itself)")
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag not in (_SEQ,):
                    self.problem(node, f"unsupported YAML tag {_tag(node.tag)}")
                out = []
                for i, item in enumerate(node.value):
                    self.smap.set(path + (i,), self.loc(item), self.loc(item))
                    out.append(self.build(item, path + (i,)))
                return out
            if node.tag not in (_MAP,):
                self.problem(node, f"unsupported YAML tag {_tag(node.tag)}")
            return self.mapping(node, path)
        finally:
            self.active.discard(id(node))

    def scalar(self, node) -> Any:
        tag, value = node.tag, node.value
        if tag == _STR:
            return value
        if tag == _NULL:
            return None
        if tag == _BOOL:
            if _BOOL_RE.match(value):
                return value.lower() == "true"
        elif tag == _INT:
            try:
                if value.startswith(("0o", "0x")):
                    return int(value[2:], 8 if value[1] == "o" else 16)
                return int(value.replace("_", ""))
            except ValueError:
                pass
        elif tag == _FLOAT:
            try:
                return float(value.replace("_", "").replace(".inf", "inf").replace(".Inf", "inf")
                             .replace(".INF", "inf").replace(".nan", "nan").replace(".NaN", "nan")
                             .replace(".NAN", "nan"))
            except ValueError:
                pass
        else:
            self.problem(node, f"unsupported YAML tag {_tag(tag)} (only plain data is allowed)")
            return value
        self.problem(node, f"{value!r} is not a valid {tag.rsplit(':', 1)[-1]}")
        return value

    def mapping(self, node, path: tuple) -> dict:
        out: dict = {}
        first_seen: dict[str, Any] = {}
        merged_keys: set[str] = set()
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                self.merge_into(out, value_node, path, first_seen, merged_keys)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(key_node, "a key must be a plain name, not a list or mapping")
                continue
            key = key_node.value
            if key in first_seen and key not in merged_keys:
                line = first_seen[key].start_mark.line + 1
                self.problem(key_node, f"duplicate key '{key}' (first defined at line {line})")
                continue
            first_seen[key] = key_node
            child = path + (key,)
            if key in merged_keys:
                merged_keys.discard(key)
                self.smap.drop(child)  # a key given after a << merge replaces the merged one
            self.smap.set(child, self.loc(key_node), self.loc(value_node))
            out[key] = self.build(value_node, child)
        return out

    def merge_into(self, out: dict, value_node, path: tuple, first_seen: dict, merged_keys: set) -> None:
        """YAML merge keys (``<<: *defaults``): earlier explicit keys win over merged ones."""
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        for src in sources:
            if not isinstance(src, yaml.MappingNode):
                self.problem(src, "a << merge needs a mapping (or a list of mappings)")
                continue
            for key_node, item_node in src.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE:
                    continue
                key = key_node.value
                if key in first_seen:
                    continue
                first_seen[key] = key_node
                merged_keys.add(key)
                child = path + (key,)
                self.smap.set(child, self.loc(key_node), self.loc(item_node))
                out[key] = self.build(item_node, child)


def describe(value: Any) -> str:
    """A short human description of a value's kind, for messages."""
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    text = str(value)
    return f"'{text[:40]}…'" if len(text) > 40 else f"'{text}'"


# ---------------------------------------------------------------------------------------------
# extends: templates


@dataclass
class LoadedConfig:
    """A tenant file merged over its templates."""

    data: dict | None                      # merged config (without `extends`), None when unusable
    source_map: SourceMap
    files: list[str]                       # display paths, template first
    issues: list[ConfigIssue] = dc_field(default_factory=list)
    paths: list[Path] = dc_field(default_factory=list)  # resolved paths, template first


def config_dirs() -> list[Path]:
    """Where bare template names are looked up: $FORMWORK_CONFIGS folders, then the project's configs/."""
    dirs = [Path(d) for d in os.environ.get("FORMWORK_CONFIGS", "").split(os.pathsep) if d.strip()]
    return dirs + [PACKAGE_CONFIGS]


_BARE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def resolve_extends(value: Any, from_file: Path) -> tuple[Path | None, str | None]:
    """(path, None) for an `extends:` value, or (None, message) when it names nothing usable."""
    if not isinstance(value, str) or not value.strip():
        return None, f"extends: expected a template name (e.g. base) or a path ending in .yaml, got {describe(value)}"
    value = value.strip()
    if value.endswith((".yaml", ".yml")):
        target = (from_file.parent / value)
        if not target.is_file():
            return None, f"extends: no such file {value} (looked for {display_path(target.resolve())})"
        return target.resolve(), None
    if not _BARE.match(value) or "/" in value or "\\" in value:
        return None, (f"extends: '{value}' is neither a template name (e.g. base) "
                      f"nor a path ending in .yaml")
    for folder in config_dirs():
        target = folder / f"{value}.yaml"
        if target.is_file():
            return target.resolve(), None
    known = sorted({p.stem for d in config_dirs() if d.is_dir() for p in d.glob("*.yaml")})
    hint = f" (templates: {', '.join(known)})" if known else ""
    return None, f"extends: no template named '{value}' in configs/{hint}"


def load_config(path: str | os.PathLike) -> LoadedConfig:
    """Read a tenant file and its `extends:` chain, and deep-merge them (template under tenant)."""
    given = str(path)
    chain: list[ParsedFile] = []          # tenant first, then its template, then that one's …
    issues: list[ConfigIssue] = []
    current = read_yaml(path, display=given)
    seen: list[Path] = []
    while True:
        chain.append(current)
        issues.extend(current.issues)
        resolved = current.path.resolve() if current.path.exists() else current.path
        seen.append(resolved)
        data = current.data
        if not isinstance(data, dict) or "extends" not in data or data.get("extends") is None:
            break
        where = current.source_map.value(("extends",))
        target, problem = resolve_extends(data["extends"], resolved)
        if problem:
            issues.append(ConfigIssue(where, problem))
            break
        if target in seen:
            names = [p.display for p in chain] + [display_path(target)]
            issues.append(ConfigIssue(where, "extends: a cycle: " + " → ".join(names)))
            break
        current = read_yaml(target, display=display_path(target))

    # Merge from the deepest template up to the tenant.
    merged: dict | None = None
    smap = SourceMap()
    for parsed in reversed(chain):
        data = parsed.data
        if not isinstance(data, dict):
            continue
        data = {k: v for k, v in data.items() if k != "extends"}
        own_map = SourceMap({p: l for p, l in parsed.source_map.subtree(()) if p[:1] != ("extends",)})
        if merged is None:
            merged, smap = strip_removals(data, own_map, issues, has_template=False)
        else:
            merged, smap = deep_merge(merged, smap, data, own_map, issues)
    files = [p.display for p in reversed(chain) if p.data is not None]
    paths = [p.path for p in reversed(chain) if p.data is not None]
    return LoadedConfig(merged, smap, files, issues, paths)
