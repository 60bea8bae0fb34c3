"""Field types carry their capabilities (issue 12): the core asks the type, not its name."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import load_model
from engine.config.build import default_plugins
from engine.schema.tables import column_settings

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = [ROOT / "sample_tenant.yaml", *sorted((ROOT / "tests" / "data").glob("*.yaml")),
           ROOT / "configs" / "service_company.yaml"]


def settings_as_recorded_before(field) -> dict:
    """The column settings Formwork recorded in fw_schema_state before types described them: a
    database migrated then must still match, so the two must agree for every built-in type."""
    out = {"type": {"stage": "select"}.get(field.type, field.type)}
    if field.type == "formula":
        out["returns"] = field.returns
    if field.max_length and field.type in ("text", "formula"):
        out["max_length"] = field.max_length
    if "scale" in field.settings:
        out["scale"] = field.settings["scale"]
    return out


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_column_settings_from_the_types_equal_what_older_databases_recorded(config):
    types, functions = default_plugins()
    model = load_model(config, types, functions)
    fields = [f for e in model.all_entities() for f in e.fields.values()]
    assert fields
    for f in fields:
        assert column_settings(f, types) == settings_as_recorded_before(f), f"{config.name}: {f.name}"


def test_capabilities_of_the_built_in_types():
    types, functions = default_plugins()
    model = load_model(ROOT / "sample_tenant.yaml", types, functions)
    by_type = {}
    for e in model.all_entities():
        for f in e.fields.values():
            by_type.setdefault(f.type, f)
    money, select, ref = by_type["money"], by_type["select"], by_type["reference"]
    assert "sum" in types["money"].aggregations_for(money) and types["money"].numeric_for(money)
    assert "sum" not in types["select"].aggregations_for(select) and types["select"].groupable_for(select)
    assert types["select"].json_schema(select)["anyOf"][0]["enum"] == select.option_values()
    assert types["reference"].target(ref) == ref.to and types["reference"].indexed
    assert types["user"].target(by_type["user"]) == "user"
    assert types["date"].temporal and types["phone"].search == "phone" and types["text"].search == "text"
    formula = next(f for f in by_type.values() if f.type == "formula")
    delegate = types["formula"].delegate(formula)
    assert types["formula"].aggregations_for(formula) == delegate.aggregations_for(formula)
    assert types["formula"].json_schema(formula)["readOnly"] is True
