"""`formwork serve`: refuses a database whose schema does not match the config; the WSGI entry point."""
from __future__ import annotations

import importlib

from click.testing import CliRunner

from engine.cli import build_cli


def test_serve_refuses_an_unmigrated_database(tmp_path, h):
    config = tmp_path / "tenant.yaml"
    config.write_text(h.CRM.read_text(encoding="utf-8"), encoding="utf-8")
    result = CliRunner().invoke(build_cli(), ["serve", str(config), "--db", f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 1
    assert "formwork plan" in result.output and "Traceback" not in result.output


def test_serve_refuses_a_config_change_not_yet_migrated(tmp_path, sqlite_url, h):
    h.make_tenant(sqlite_url, tmp_path).dispose()
    config = tmp_path / "tenant.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        "      remark: {type: textarea", "      extra: {type: text, label: 额外}\n      remark: {type: textarea"),
        encoding="utf-8")
    result = CliRunner().invoke(build_cli(), ["serve", str(config), "--db", sqlite_url])
    assert result.exit_code == 1 and "formwork migrate" in result.output


def test_serve_help_lists_workers(h):
    result = CliRunner().invoke(build_cli(), ["serve", "--help"])
    assert result.exit_code == 0 and "--workers" in result.output and "gunicorn" in result.output


def test_wsgi_module_builds_the_app_from_the_environment(tmp_path, sqlite_url, h, monkeypatch):
    h.make_tenant(sqlite_url, tmp_path).dispose()
    monkeypatch.setenv("FORMWORK_CONFIG", str(tmp_path / "tenant.yaml"))
    monkeypatch.setenv("FORMWORK_DB", sqlite_url)
    monkeypatch.setenv("FORMWORK_SECRET_KEY", "from-env")
    import web.wsgi

    module = importlib.reload(web.wsgi)
    try:
        assert module.app.config["SECRET_KEY"] == "from-env"
        assert module.app.test_client().get("/healthz").get_json()["tenant"] == "webtest"
    finally:
        module.app.extensions["formwork"].tenant.dispose()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_and_probe(args, env, port):
    import os
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    exe = os.path.join(os.path.dirname(sys.executable), "formwork")
    proc = subprocess.Popen([exe, "serve", *args, "--port", str(port)], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    return resp.status, resp.read().decode()
            except OSError:
                if proc.poll() is not None:
                    raise AssertionError(proc.stdout.read().decode()) from None
                time.sleep(0.3)
        raise AssertionError("the server did not answer within 30 s")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_serve_runs_the_dev_server_and_gunicorn(tmp_path, sqlite_url, h):
    h.make_tenant(sqlite_url, tmp_path).dispose()
    config = str(tmp_path / "tenant.yaml")
    env = {"FORMWORK_SECRET_KEY": "serve-test"}
    status, body = _serve_and_probe([config, "--db", sqlite_url], env, _free_port())
    assert status == 200 and "webtest" in body
    status, body = _serve_and_probe([config, "--db", sqlite_url, "--workers", "2"], env, _free_port())
    assert status == 200 and "webtest" in body


def test_secret_key_is_shared_by_every_worker(tmp_path, sqlite_url, h, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from web import _secret_key

    monkeypatch.delenv("FORMWORK_SECRET_KEY", raising=False)
    tenant = h.make_tenant(sqlite_url, tmp_path)
    try:
        with ThreadPoolExecutor(8) as pool:
            keys = set(pool.map(lambda _i: _secret_key(tenant), range(16)))
        assert len(keys) == 1 and len(keys.pop()) == 64
        assert (tmp_path / "instance" / "webtest.secret").stat().st_mode & 0o077 == 0
    finally:
        tenant.dispose()
