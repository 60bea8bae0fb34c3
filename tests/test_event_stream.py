"""One event stream (issue 12): every committed change of every write path reaches
formwork_records_committed as exactly one batch; a rolled-back or refused write sends none."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine import hookimpl
from engine.dedup.merge import merge
from engine.errors import ValidationFailed
from engine.records.ownership import hand_over, share, transfer
from engine.tenant import Tenant
from tests.dbtemplates import migrate_empty

DATA = Path(__file__).parent / "data"
QUALIFIED = {"budget": "100000", "decision_maker": "王建国"}


class Recorder:
    """A plugin that keeps what the stream hands out."""

    def __init__(self):
        self.changed: list[list] = []
        self.committed: list[tuple] = []

    @hookimpl
    def formwork_records_changed(self, tenant, events, connection):
        self.changed.append([e.name for e in events])

    @hookimpl
    def formwork_records_committed(self, tenant, events):
        self.committed.append(events)

    def take(self) -> list[list[str]]:
        """The committed batches since the last take, as event names."""
        out = [[e.name for e in batch] for batch in self.committed]
        self.committed.clear()
        self.changed.clear()
        return out


def loaded(config: Path, db_url: str, people) -> tuple:
    t = Tenant.load(config, db_url=db_url)
    migrate_empty(t)
    users = {name: t.users.add(name, roles, department=dept, manages=manages, password="initial-pass-1")[0]
             for name, roles, dept, manages in people}
    recorder = Recorder()
    t.pm.register(recorder)
    return t, users, recorder


@pytest.fixture
def pipe(db_url):
    t, u, rec = loaded(DATA / "pipeline.yaml", db_url, [
        ("rep", ["sales_rep"], "sales_east", []), ("rep2", ["sales_rep"], "sales_east", []),
        ("east_mgr", ["sales_manager"], "sales_east", ["sales_east"]), ("ceo", ["executive"], "board", []),
        ("fin", ["finance"], "finance", []), ("root", ["admin"], None, [])])
    yield t, u, rec
    t.dispose()


def test_create_update_delete_and_bulk_edit_are_one_batch_each(pipe):
    t, u, rec = pipe
    d = t.records.create("opportunity", {"name": "商机甲"}, u["rep"])
    e = t.records.create("opportunity", {"name": "商机乙"}, u["rep"])
    created = ["opportunity.created", "opportunity.stage_changed"]      # created in the first stage
    assert rec.take() == [created, created]
    t.records.update_many("opportunity", [d["id"], e["id"]], {"name": "改名"}, u["rep"])
    assert rec.take() == [["opportunity.updated", "opportunity.updated"]]
    t.records.delete("opportunity", e["id"], u["root"])
    [[deleted]] = rec.committed
    assert deleted.type == "deleted" and deleted.record_id == e["id"] and deleted.changes["name"] == ["改名", None]
    rec.take()


def test_a_stage_move_announces_the_update_and_the_stage_change(pipe):
    t, u, rec = pipe
    d = t.records.create("opportunity", {"name": "商机甲"}, u["rep"])
    rec.take()
    t.records.update("opportunity", d["id"], {"stage": "qualify", **QUALIFIED}, u["rep"])
    [batch] = rec.committed
    assert [e.name for e in batch] == ["opportunity.updated", "opportunity.stage_changed"]
    assert batch[1].data == {"pipeline": "sales", "from": "contact", "to": "qualify"}
    assert batch[0].changes["stage"] == ["contact", "qualify"]


def test_an_approval_decision_is_one_batch(pipe):
    t, u, rec = pipe
    d = t.records.create("opportunity", {"name": "大单", "amount": "100000", "discount": "25"}, u["rep"])
    assert "opportunity.approval_changed" in rec.take()[0]
    [a] = t.approvals.for_record("opportunity", d["id"], u["rep"])
    t.approvals.approve(a["id"], u["east_mgr"], "同意")
    [batch] = rec.take()
    assert set(batch) == {"opportunity.approval_changed"}


def test_transfer_share_and_departure_are_one_batch_each(pipe):
    t, u, rec = pipe
    ids = [t.records.create("opportunity", {"name": f"商机{i}"}, u["rep"])["id"] for i in range(3)]
    rec.take()
    transfer(t, "opportunity", ids[:2], u["rep2"].id, u["root"])
    assert rec.take() == [["opportunity.transferred", "opportunity.transferred"]]
    share(t, "opportunity", ids[2], u["root"], with_user=u["rep2"].username)
    assert rec.take() == [["opportunity.shared"]]
    hand_over(t, "rep2", to="east_mgr")
    assert rec.take() == [["opportunity.transferred", "opportunity.transferred"]]


def test_refused_and_rolled_back_writes_send_nothing(pipe):
    t, u, rec = pipe
    d = t.records.create("opportunity", {"name": "商机甲"}, u["rep"])
    rec.take()
    with pytest.raises(ValidationFailed):
        t.records.update("opportunity", d["id"], {"stage": "qualify"}, u["rep"])   # criteria unmet
    with pytest.raises(RuntimeError):
        with t.write() as conn:
            t.records.update("opportunity", d["id"], {"name": "回滚"}, u["rep"], connection=conn)
            raise RuntimeError("the caller gives up")
    assert rec.committed == [] and rec.changed == []
    assert t.records.get("opportunity", d["id"])["name"] == "商机甲"


def test_a_hook_inside_the_transaction_can_refuse_the_whole_write(pipe):
    t, u, rec = pipe

    class Veto:
        @hookimpl
        def formwork_records_changed(self, tenant, events, connection):
            raise ValidationFailed({"_record": ["vetoed"]})

    t.pm.register(Veto())
    with pytest.raises(ValidationFailed):
        t.records.create("opportunity", {"name": "商机甲"}, u["rep"])
    assert rec.committed == [] and t.records.count("opportunity") == 0


def test_durable_events_go_to_the_outbox_in_the_same_transaction(pipe):
    t, u, rec = pipe

    class Webhooks:
        @hookimpl
        def formwork_events_durable(self, tenant):
            return ["opportunity.created", "*.deleted"]

    t.pm.register(Webhooks())
    d = t.records.create("opportunity", {"name": "商机甲"}, u["rep"])
    t.records.update("opportunity", d["id"], {"name": "商机乙"}, u["rep"])
    t.records.delete("opportunity", d["id"], u["root"])
    outbox = t.schema.system["outbox"]
    with t.db.connect() as conn:
        rows = conn.execute(sa.select(outbox).order_by(outbox.c.id)).mappings().all()
    assert [r["event"] for r in rows] == ["opportunity.created", "opportunity.deleted"]
    assert json.loads(rows[0]["payload"])["changes"]["name"] == [None, "商机甲"]


def test_import_is_one_batch(pipe):
    t, u, rec = pipe
    result = t.records.create_many("opportunity", [{"name": f"导入{i}"} for i in range(5)], u["root"])
    assert len(result.created) == 5
    assert rec.take() == [["opportunity.created"] * 5 + ["opportunity.stage_changed"] * 5]


@pytest.fixture
def dedup(db_url):
    t, u, rec = loaded(DATA / "dedup.yaml", db_url, [("rep_a", ["sales_rep"], "sales_east", []),
                                                    ("root", ["admin"], None, [])])
    yield t, u, rec
    t.dispose()


def test_merge_is_one_batch_and_links_history_instead_of_copying_it(dedup):
    t, u, rec = dedup
    keep = t.records.create("customer", {"name": "北京星河科技有限公司"}, u["rep_a"])
    dup = t.records.create("customer", {"name": "星河科技（北京）有限公司"}, u["rep_a"], confirm_duplicates=True)
    t.records.create("contact", {"name": "张伟", "customer": dup["id"]}, u["rep_a"])
    rec.take()
    audit = t.schema.system["audit"]
    with t.db.connect() as conn:
        before = conn.execute(sa.select(sa.func.count()).select_from(audit)).scalar_one()
    merge(t, "customer", keep["id"], [dup["id"]], {}, u["rep_a"])
    [batch] = rec.take()
    assert "customer.merged" in batch and "contact.updated" in batch and "customer.deleted" in batch
    with t.db.connect() as conn:
        after = conn.execute(sa.select(audit.c.record_id, audit.c.note).where(audit.c.id > before)).all()
    assert not [note for rid, note in after if rid == keep["id"] and (note or "").startswith("merged from")]
    history = t.records.history("customer", keep["id"], u["rep_a"])
    assert [h["note"] for h in history if h["action"] == "create"] == [f"merged from #{dup['id']}", None]
