"""Requests/s of the generated `GET /api/v1/customer?limit=20` beside a hand-written Flask + Core endpoint.

Usage: .venv/bin/python bench/api_list.py [--rows N] [--seconds S] [--rounds R] [--workers W]
                                          [--worker-class gthread|sync] [--config PATH]

Both apps run under gunicorn with the same worker count and class over the same temporary SQLite
database holding N customers (default 100,000), in the same run, driven by the same load generator
(`wrk` when installed, else a multi-process keep-alive http.client loop) after a warm-up each.

- generated: the real app (`web.wsgi:app`, i.e. create_app over the tenant config) → Flask-Login
  bearer-token user loading, the security gatekeeper, the API blueprint (schema guard, query
  parameter checks), RecordsService.list (typed filters, permissions seam, keyset cursor) and
  RecordsService.to_json for every record.
- hand-written baseline (`baseline_app()` below): one Flask view that checks the same bearer token
  the same way (sha256 of the token looked up in fw_tokens joined to fw_users, not revoked, user
  active), selects the 21 newest rows of the customer table with SQLAlchemy Core, and serialises the
  first 20 (every column; datetimes as ISO text, decimals as text) plus an id cursor as
  `{"items": [...], "next": ...}` — items equal to the generated endpoint's (checked each run). No
  Flask-Login, no CSRF, no sessions, no permission layer, no validation of query parameters.

Prints both requests/s figures and the ratio (target: generated ≥ 0.7× hand-written).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET = 0.7
PATH_GENERATED = "/api/v1/customer?limit=20"
PATH_BASELINE = "/customer?limit=20"


# ------------------------------------------------------------------------- the hand-written app

def baseline_app():
    """A minimal Flask + SQLAlchemy Core endpoint over the same table (gunicorn factory)."""
    import sqlalchemy as sa
    from flask import Flask, jsonify, request

    from engine.tenant import create_db_engine

    engine = create_db_engine(os.environ["BENCH_DB_URL"])   # same SQLite settings (WAL, timeouts)
    md = sa.MetaData()
    customer = sa.Table("customer", md, autoload_with=engine)
    users = sa.Table("fw_users", md, autoload_with=engine)
    tokens = sa.Table("fw_tokens", md, autoload_with=engine)
    app = Flask(__name__)
    app.json.ensure_ascii = False
    app.json.sort_keys = False

    def plain(v):
        if isinstance(v, datetime):            # SQLite hands back naive UTC
            return (v if v.tzinfo else v.replace(tzinfo=timezone.utc)).isoformat()
        if isinstance(v, date):
            return v.isoformat()
        if isinstance(v, Decimal):
            return str(v)
        return v

    @app.get("/customer")
    def list_customers():
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        try:
            limit = max(1, min(500, int(request.args.get("limit", 50))))
        except ValueError:
            return jsonify({"error": "bad limit"}), 400
        digest = hashlib.sha256(token.encode()).hexdigest()
        with engine.connect() as conn:
            user = conn.execute(
                sa.select(users.c.id).join(tokens, tokens.c.user_id == users.c.id)
                .where(tokens.c.token_hash == digest, tokens.c.revoked == sa.false(),
                       users.c.active == sa.true())).first()
            if user is None:
                return jsonify({"error": "unauthorized"}), 401
            rows = conn.execute(sa.select(customer).order_by(customer.c.id.desc())
                                .limit(limit + 1)).mappings().all()
        items = [{k: plain(v) for k, v in r.items()} for r in rows[:limit]]
        nxt = None
        if len(rows) > limit:
            nxt = base64.urlsafe_b64encode(json.dumps(["id", True, None, items[-1]["id"]]).encode()) \
                .decode().rstrip("=")
        return jsonify({"items": items, "next": nxt})

    return app


# ----------------------------------------------------------------------------------- set-up

def pick_config(arg: str | None) -> Path:
    from engine.tenant import Tenant

    if arg:
        return Path(arg).resolve()
    sample = ROOT / "sample_tenant.yaml"
    try:
        t = Tenant.load(sample, db_url="sqlite://")
        ok = "customer" in t.model.entities
        t.dispose()
        if ok:
            return sample
        print("sample_tenant.yaml has no customer entity; using tests/data/crm_v1.yaml")
    except Exception as exc:  # noqa: BLE001 - any load problem means "use the stable test config"
        print(f"sample_tenant.yaml does not load ({type(exc).__name__}: {exc}); using tests/data/crm_v1.yaml")
    return ROOT / "tests" / "data" / "crm_v1.yaml"


SERVICE_ROWS = 2000


def load_customers(tenant, n: int) -> tuple[float, int]:
    """n valid customers: the first 2,000 through RecordsService.create_many (coercion, validation,
    rules, audit; likely duplicates confirmed), the rest as copies of those stored rows (new unique
    titles) through a plain Core insert — set-up speed does not matter, the rows only need to be
    valid. Returns (seconds, rows written through the service)."""
    import sqlalchemy as sa

    from engine.demo.generate import DemoGenerator

    entity = tenant.model.entity("customer")
    gen = DemoGenerator(tenant, seed=7)
    templates: list[dict] = []
    first = min(n, SERVICE_ROWS)
    while len(templates) < first:
        batch = []
        for _ in range(500):
            values = gen.values(entity)
            values.pop("owner", None)
            batch.append(values)
        result = tenant.records.create_many("customer", batch, dry_run=True, skip_invalid=True,
                                            confirm_duplicates=True)
        bad = {e.row for e in result.errors}
        templates.extend(r for i, r in enumerate(batch, start=1) if i not in bad)
    templates = templates[:first]
    title = entity.title
    for i, row in enumerate(templates):
        if title:
            row[title] = f"{row.get(title) or '公司'}{i:06d}号"
    t0 = time.perf_counter()
    tenant.records.create_many("customer", templates, note="bench", confirm_duplicates=True)
    table = tenant.schema.table(entity)
    with tenant.db.connect() as conn:
        stored = [dict(r) for r in conn.execute(sa.select(table).order_by(table.c.id)).mappings()]
    with tenant.write() if hasattr(tenant, "write") else tenant.db.begin() as conn:
        for start in range(first, n, 5000):
            rows = []
            for i in range(start, min(n, start + 5000)):
                row = dict(stored[i % len(stored)])
                del row["id"]
                if title:
                    row[title] = f"{templates[i % len(templates)][title][:-7]}{i:06d}号"
                rows.append(row)
            conn.execute(table.insert(), rows)
    return time.perf_counter() - t0, first


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(target: str, port: int, env: dict, args, log: Path) -> subprocess.Popen:
    cmd = [str(ROOT / ".venv" / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{port}",
           "--workers", str(args.workers), "--worker-class", args.worker_class,
           "--threads", str(args.threads), "--keep-alive", "30", "--log-level", "warning",
           "--pythonpath", f"{ROOT},{ROOT / 'bench'}", target]
    return subprocess.Popen(cmd, cwd=str(ROOT), env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_ready(port: int, path: str, token: str, proc: subprocess.Popen, log: Path) -> bytes:
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server on :{port} exited:\n{log.read_text()[-3000:]}")
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                         headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(req, timeout=5) as resp:
                if resp.status == 200:
                    return resp.read()
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"server on :{port} did not answer:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# ------------------------------------------------------------------------------ load generation

def server_cpu_seconds(master_pid: int) -> float:
    """User+system CPU seconds used so far by a gunicorn master and its workers (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry), int(fields[1])
        if pid == master_pid or ppid == master_pid:
            total += int(fields[11]) + int(fields[12])      # utime + stime
    return total / tick


def run_wrk(url: str, token: str, seconds: float, connections: int, threads: int) -> tuple[int, float, str]:
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
                          "-H", f"Authorization: Bearer {token}", url],
                         capture_output=True, text=True, check=True).stdout
    # "  12345 requests in 12.00s, 200.00MB read"
    line = next(line for line in out.splitlines() if " requests in " in line)
    count, rest = line.split(" requests in ")
    elapsed = float(rest.split(",")[0].strip().rstrip("s"))
    bad = [line.strip() for line in out.splitlines() if "Non-2xx" in line or "Socket errors" in line]
    return int(count), elapsed, "; ".join(bad)


def _client_loop(port: int, path: str, token: str, until: float, out) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    n = errors = 0
    while time.time() < until:
        try:
            conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
            resp = conn.getresponse()
            resp.read()
            if resp.status == 200:
                n += 1
            else:
                errors += 1
            if resp.getheader("Connection", "").lower() == "close":
                conn.close()
        except OSError:
            errors += 1
            conn.close()
    out.put((n, errors))


def run_python_client(port: int, path: str, token: str, seconds: float,
                      connections: int) -> tuple[int, float, str]:
    queue = multiprocessing.Queue()
    until = time.time() + seconds
    procs = [multiprocessing.Process(target=_client_loop, args=(port, path, token, until, queue))
             for _ in range(connections)]
    t0 = time.time()
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.time() - t0
    errors = sum(r[1] for r in results)
    return sum(r[0] for r in results), elapsed, (f"{errors} errors" if errors else "")


def measure(proc: subprocess.Popen, port: int, path: str, token: str, seconds: float, args) -> dict:
    """Requests/s over the run, and the server processes' CPU milliseconds per request."""
    cpu0 = server_cpu_seconds(proc.pid)
    if shutil.which("wrk") and not args.python_client:
        count, elapsed, note = run_wrk(f"http://127.0.0.1:{port}{path}", token, seconds, args.connections,
                                       min(2, args.connections))
    else:
        count, elapsed, note = run_python_client(port, path, token, seconds, args.connections)
    cpu = server_cpu_seconds(proc.pid) - cpu0
    return {"rps": count / elapsed if elapsed else 0.0, "cpu_ms": 1000 * cpu / count if count else 0.0,
            "note": note}


# ------------------------------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=5.0, help="measured seconds per app per round")
    ap.add_argument("--warmup", type=float, default=4.0, help="seconds of warm-up per app, once")
    ap.add_argument("--rounds", type=int, default=7, help="paired rounds (generated, hand-written)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--worker-class", default="gthread", choices=["gthread", "sync"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--python-client", action="store_true", help="skip wrk even when installed")
    ap.add_argument("--config")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (for profiling)")
    ap.add_argument("--reuse-db", metavar="PATH", help="serve an already loaded bench.db (from --keep)")
    args = ap.parse_args()

    from engine.schema.migrate import migrate
    from engine.tenant import Tenant

    config = pick_config(args.config)
    print(f"config: {config.relative_to(ROOT) if config.is_relative_to(ROOT) else config}")
    tmp = Path(tempfile.mkdtemp(prefix="fw-bench-api-"))
    db_path = Path(args.reuse_db).resolve() if args.reuse_db else tmp / "bench.db"
    db_url = f"sqlite:///{db_path}"
    servers: list[subprocess.Popen] = []
    try:
        tenant = Tenant.load(config, db_url=db_url)
        if args.reuse_db:
            token = tenant.users.create_token("bench", label="bench")
            print(f"reusing {db_path}")
        else:
            migrate(tenant)
            tenant.users.add("bench", ["admin"], password="throughput-pass-1")
            token = tenant.users.create_token("bench", label="bench")
            load_s, through_service = load_customers(tenant, args.rows)
            print(f"loaded {args.rows:,} customers in {load_s:.1f}s ({through_service:,} through "
                  f"RecordsService.create_many, the rest copies of them via Core; SQLite, {db_path})")
        tenant.dispose()

        env = dict(os.environ, FORMWORK_CONFIG=str(config), FORMWORK_DB=db_url, BENCH_DB_URL=db_url,
                   FORMWORK_SECRET_KEY="bench-secret", PYTHONDONTWRITEBYTECODE="1")
        port_gen, port_base = free_port(), free_port()
        gen = start_gunicorn("web.wsgi:app", port_gen, env, args, tmp / "generated.log")
        servers.append(gen)
        base = start_gunicorn("api_list:baseline_app()", port_base, env, args, tmp / "baseline.log")
        servers.append(base)
        body_gen = json.loads(wait_ready(port_gen, PATH_GENERATED, token, gen, tmp / "generated.log"))
        body_base = json.loads(wait_ready(port_base, PATH_BASELINE, token, base, tmp / "baseline.log"))
        ids_gen = [r["id"] for r in body_gen["items"]]
        ids_base = [r["id"] for r in body_base["items"]]
        if ids_gen != ids_base or len(ids_gen) != 20:
            raise SystemExit(f"the two endpoints disagree: {ids_gen} vs {ids_base}")
        differing = sorted({k for a, b in zip(body_gen["items"], body_base["items"])
                            for k in set(a) | set(b) if a.get(k) != b.get(k)})
        print(f"both return the same 20 customers (ids {ids_gen[0]}…{ids_gen[-1]}; "
              f"{'identical items' if not differing else 'items differ in ' + ', '.join(differing)}); "
              f"response sizes {len(json.dumps(body_gen, ensure_ascii=False).encode())} / "
              f"{len(json.dumps(body_base, ensure_ascii=False).encode())} bytes")
        tool = "wrk" if shutil.which("wrk") and not args.python_client else "python http.client processes"
        print(f"load: {tool}, {args.connections} keep-alive connections, {args.warmup:g}s warm-up each, then "
              f"{args.rounds} paired rounds of {args.seconds:g}s per app (order alternating); gunicorn "
              f"{args.workers} workers ({args.worker_class}, {args.threads} threads) each; "
              f"{os.cpu_count()} CPUs")

        apps = (("generated", gen, port_gen, PATH_GENERATED), ("hand-written", base, port_base, PATH_BASELINE))
        for name, proc, port, path in apps:
            measure(proc, port, path, token, args.warmup, args)
        runs = {"generated": [], "hand-written": []}
        pair_ratios = []
        for rnd in range(1, args.rounds + 1):
            # Adjacent short runs see the same background load; their ratio is what each round reports.
            order = apps if rnd % 2 else apps[::-1]
            got = {}
            for name, proc, port, path in order:
                got[name] = m = measure(proc, port, path, token, args.seconds, args)
                runs[name].append(m)
            pair_ratios.append(got["generated"]["rps"] / got["hand-written"]["rps"])
            print(f"  round {rnd}: " + "   ".join(
                f"{name} {got[name]['rps']:7.1f} req/s ({got[name]['cpu_ms']:.2f} CPU ms/req)"
                + (f" [{got[name]['note']}]" if got[name]["note"] else "") for name, *_ in apps)
                + f"   ratio {pair_ratios[-1]:.2f}")

        def median(values):
            values = sorted(values)
            mid = len(values) // 2
            return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2

        summary = {name: (median([m["rps"] for m in ms]), max(m["rps"] for m in ms),
                          median([m["cpu_ms"] for m in ms])) for name, ms in runs.items()}
        for name, path in (("generated", PATH_GENERATED), ("hand-written", PATH_BASELINE)):
            med, best, cpu = summary[name]
            print(f"{name:<12} GET {path:<26} {med:7.1f} req/s median ({best:.1f} best)   "
                  f"{cpu:.2f} server CPU ms/request")
        ratio = median(pair_ratios)
        cpu_ratio = summary["hand-written"][2] / summary["generated"][2] if summary["generated"][2] else 0.0
        print(f"ratio generated/hand-written: {ratio:.2f} requests/s (median of the paired rounds; target ≥ "
              f"{TARGET}: {'met' if ratio >= TARGET else 'NOT met'}); {cpu_ratio:.2f} by server CPU per request "
              f"(steadier when other processes share the machine)")
    finally:
        for proc in servers:
            stop(proc)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
