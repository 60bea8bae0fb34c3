"""docs/config-format.md must describe every key of the JSON Schema (like datasette's test_docs)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from engine.config import check_config
from engine.config.build import default_plugins
from engine.config.schema import build_schema, schema_keys

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "config-format.md"


@pytest.fixture(scope="module")
def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def plugins():
    return default_plugins()


def _mentioned(key: str, text: str) -> bool:
    """Documented means shown as code (`key`) or used as a key in an example (key:)."""
    return f"`{key}`" in text or re.search(rf"(?<![\w.]){re.escape(key)}:", text) is not None


def test_every_schema_key_is_documented(doc_text, plugins):
    field_types, _ = plugins
    keys = schema_keys(build_schema(field_types)) | schema_keys(build_schema(field_types, for_editor=True))
    assert len(keys) > 40
    missing = sorted(k for k in keys if not _mentioned(k, doc_text))
    assert not missing, f"docs/config-format.md does not mention: {', '.join(missing)}"


def test_every_field_type_is_documented(doc_text, plugins):
    field_types, _ = plugins
    missing = [t for t in field_types.names() if f"| `{t}` |" not in doc_text]
    assert not missing, f"field types missing from the table in docs/config-format.md: {missing}"


def test_doc_yaml_examples_are_yaml(doc_text):
    blocks = re.findall(r"```yaml\n(.*?)```", doc_text, flags=re.S)
    assert len(blocks) >= 10
    for block in blocks:
        yaml.safe_load(block)


def test_first_doc_example_passes_check(doc_text, tmp_path, plugins):
    first = re.search(r"```yaml\n(.*?)```", doc_text, flags=re.S).group(1)
    path = tmp_path / "example.yaml"
    path.write_text(first, encoding="utf-8")
    model, issues = check_config(path, *plugins)
    assert issues == [] and model is not None and model.tenant.name == "acme"


def test_docs_index_links_the_format():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/config-format.md" in readme


def test_r14_r47_every_plugin_hook_is_documented_in_plugins_md():
    """docs/plugins.md names every hook engine/hookspecs.py declares, with its arguments (read at run
    time, so a hook added later must be documented too): R14's duplicate hooks, and R47's outbound events."""
    import inspect

    from engine import hookspecs

    doc = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    specs = {name: fn for name, fn in vars(hookspecs).items()
             if callable(fn) and hasattr(fn, "formwork_spec")}
    assert {"formwork_records_before_write", "formwork_records_before_write_many",
            "formwork_records_after_create_many", "formwork_dedup_normalizers"} <= set(specs)
    missing = []
    for name, fn in sorted(specs.items()):
        args = ", ".join(inspect.signature(fn).parameters)
        if f"`{name}({args})`" not in doc:
            missing.append(f"{name}({args})")
    assert not missing, f"docs/plugins.md does not document: {', '.join(missing)}"
