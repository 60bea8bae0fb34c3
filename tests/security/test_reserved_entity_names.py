"""Everyday words as names (issue #11 point 11): every SQL:2016 reserved word names an entity too, on
SQLite and PostgreSQL — checked, migrated, and records created, filtered, sorted, counted, searched,
exported and imported through the records service."""
from __future__ import annotations

from engine.tenant import Tenant
from tests.dbtemplates import migrate_empty
from tests.security.test_reserved_words import SQL2016


def test_security_every_sql2016_reserved_word_names_an_entity(db_url, tmp_path):
    lines = ["tenant: {name: words, label: 词}", "entities:"]
    for word in SQL2016:
        lines += [f"  {word}:", "    title: name", "    fields:",
                  "      name: {type: text, required: true}", "      amount: {type: money}"]
    config = tmp_path / "words.yaml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tenant = Tenant.load(config, db_url=db_url)
    assert set(tenant.model.entities) == set(SQL2016)
    migrate_empty(tenant)
    svc = tenant.records
    for word in SQL2016:
        svc.create_many(word, [{"name": f"{word}-b", "amount": "2.50"}, {"name": f"{word}-a", "amount": "10"}])
        page = svc.list(word, filters={"amount__gte": "2.5"}, sort="name")
        assert [r["name"] for r in page.items] == [f"{word}-a", f"{word}-b"], word
        assert svc.count(word, filters={"name": f"{word}-a"}) == 1, word
        assert [r["name"] for r in svc.list(word, search=f"{word}-b").items] == [f"{word}-b"], word
        exported = list(svc.export(word))
        assert sorted(r["name"] for r in exported) == [f"{word}-a", f"{word}-b"], word
    tenant.dispose()
