"""Everyday words as names (issue #11 point 11): every SQL:2016 reserved word names an entity too, on
SQLite and PostgreSQL — checked, migrated, and records created, filtered, sorted, counted, searched,
exported and imported through the records service."""
from __future__ import annotations

import pytest

from engine.config import check_config
from engine.config.reserved import API_ROUTE_NAMES
from engine.tenant import Tenant
from tests.dbtemplates import migrate_empty
from tests.security.test_reserved_words import SQL2016

# `search` is the one SQL word the JSON API itself uses (/api/v1/search): refused with a clear message.
ENTITY_WORDS = tuple(w for w in SQL2016 if w not in API_ROUTE_NAMES)


def test_security_every_sql2016_reserved_word_names_an_entity(db_url, tmp_path):
    lines = ["tenant: {name: words, label: 词}", "entities:"]
    for word in ENTITY_WORDS:
        lines += [f"  {word}:", "    title: name", "    fields:",
                  "      name: {type: text, required: true}", "      amount: {type: money}"]
    config = tmp_path / "words.yaml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tenant = Tenant.load(config, db_url=db_url)
    assert set(tenant.model.entities) == set(ENTITY_WORDS) and len(ENTITY_WORDS) == len(SQL2016) - 1
    migrate_empty(tenant)
    svc = tenant.records
    for word in ENTITY_WORDS:
        svc.create_many(word, [{"name": f"{word}-b", "amount": "2.50"}, {"name": f"{word}-a", "amount": "10"}])
        page = svc.list(word, filters={"amount__gte": "2.5"}, sort="name")
        assert [r["name"] for r in page.items] == [f"{word}-a", f"{word}-b"], word
        assert svc.count(word, filters={"name": f"{word}-a"}) == 1, word
        assert [r["name"] for r in svc.list(word, search=f"{word}-b").items] == [f"{word}-b"], word
        exported = list(svc.export(word))
        assert sorted(r["name"] for r in exported) == [f"{word}-a", f"{word}-b"], word
    tenant.dispose()


@pytest.mark.parametrize("word", API_ROUTE_NAMES)
def test_security_an_entity_named_after_an_api_route_is_refused_with_the_reason(word, tmp_path):
    config = tmp_path / "t.yaml"
    config.write_text(f"tenant: {{name: t}}\nentities:\n  {word}:\n    fields:\n      name: {{type: text}}\n",
                      encoding="utf-8")
    _, issues = check_config(config)
    assert [(i.location.line, i.message.split(";")[0]) for i in issues] == [
        (3, f"'{word}' is the JSON API's own route /api/v1/{word}, so its records could not be listed there")]
