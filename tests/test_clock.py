"""One clock: every "now" in engine, plugins and web comes from the tenant's clock (issue 12)."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

from engine.clock import FrozenClock
from engine.tenant import Tenant
from tests.dbtemplates import migrate_empty

ROOT = Path(__file__).resolve().parent.parent
READS_THE_MACHINE_CLOCK = re.compile(r"\b(datetime\.(now|utcnow|today)|date\.today|time\.time)\(")


def test_no_code_outside_the_clock_reads_the_machine_time():
    offenders = []
    for folder in ("engine", "web", "plugins"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == ROOT / "engine" / "clock.py":
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if READS_THE_MACHINE_CLOCK.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == []


def test_a_frozen_clock_stamps_records_audit_and_expression_defaults(db_url):
    tenant = Tenant.load(ROOT / "tests" / "data" / "crm_v1.yaml", db_url=db_url)
    migrate_empty(tenant)
    at = datetime(2031, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    tenant.clock = FrozenClock(at)
    rec = tenant.records.create("customer", {"name": "星河科技", "industry": "制造业"})
    assert rec["created_at"] == at and rec["updated_at"] == at
    assert [h["at"] for h in tenant.records.history("customer", rec["id"])] == [at]
    tenant.clock.advance(days=1)
    assert tenant.now() == datetime(2031, 5, 7, 7, 8, 9, tzinfo=timezone.utc)
    assert tenant.field_context().now() == tenant.now()
    tenant.dispose()

