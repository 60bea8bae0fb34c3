"""The layering checked on every run (issue 12): what may import what, and who writes fw_audit."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, relative imports resolved to absolute names."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                found.add(".".join(base + ([node.module] if node.module else [])))
            else:
                found.add(node.module or "")
    return found


def python_files(folder: str):
    return sorted((ROOT / folder).rglob("*.py"))


def test_the_engine_never_imports_the_web_layer_flask_or_wtforms():
    offenders = [f"{p.relative_to(ROOT)} imports {m}" for p in python_files("engine") for m in imports_of(p)
                 if m.split(".")[0] in ("web", "flask", "flask_login", "flask_wtf", "wtforms", "werkzeug")]
    assert offenders == []


def test_the_engine_reaches_the_built_in_plugins_only_through_the_plugin_manager():
    offenders = [f"{p.relative_to(ROOT)} imports {m}" for p in python_files("engine") for m in imports_of(p)
                 if m.split(".")[0] == "plugins"]
    assert offenders == []


def test_plugins_import_the_engine_never_the_web_app():
    offenders = [f"{p.relative_to(ROOT)} imports {m}" for p in python_files("plugins") for m in imports_of(p)
                 if m.split(".")[0] == "web"]
    assert offenders == []


def test_fw_audit_is_written_only_by_the_audit_log():
    audit_module = ROOT / "engine" / "records" / "audit.py"
    writes = re.compile(r'system\["audit"\]\)?\.(insert|update|delete)\(|_t\("audit"\)|write_audit\(|\.audit\.run\(')
    offenders = [f"{p.relative_to(ROOT)}:{n}" for folder in ("engine", "plugins", "web")
                 for p in python_files(folder) if p != audit_module
                 for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if writes.search(line)]
    assert offenders == []
