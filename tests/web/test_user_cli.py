"""`formwork user add|disable|list|reset-password` and `formwork token create` (R2, R44)."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from engine.cli import build_cli
from engine.tenant import Tenant


@pytest.fixture
def cli_env(tmp_path, db_url, h):
    """A migrated tenant config on disk and a runner for the `formwork` command."""
    h.make_tenant(db_url, tmp_path).dispose()
    runner = CliRunner()
    cli = build_cli()

    def run(*args):
        return runner.invoke(cli, [*args[:2], str(tmp_path / "tenant.yaml"), *args[2:], "--db", db_url],
                             catch_exceptions=False)

    run.config = tmp_path / "tenant.yaml"
    run.db_url = db_url
    return run


def test_r2_user_add_prints_a_random_initial_password(cli_env):
    result = cli_env("user", "add", "han.mei", "--role", "sales", "--role", "manager", "--department", "sales",
                     "--manages", "sales_east", "--display-name", "韩梅梅")
    assert result.exit_code == 0, result.output
    password = result.output.strip().split()[-1]
    tenant = Tenant.load(cli_env.config, db_url=cli_env.db_url)
    try:
        user = tenant.users.by_username("han.mei")
        assert user.roles == ["sales", "manager"] and user.manages == ["sales_east"] and user.must_change_password
        assert tenant.users.authenticate("han.mei", password).ok
    finally:
        tenant.dispose()


def test_user_add_with_password_prints_none(cli_env):
    result = cli_env("user", "add", "a", "--role", "admin", "--password", "given-password")
    assert result.exit_code == 0 and "given-password" not in result.output
    assert "initial password" not in result.output


def test_unknown_role_is_a_clear_error(cli_env):
    result = cli_env("user", "add", "a", "--role", "boss")
    assert result.exit_code == 1
    assert "unknown role boss" in result.output and "admin, sales, manager, viewer" in result.output
    assert "Traceback" not in result.output


def test_r44_disable_and_token_create(cli_env):
    cli_env("user", "add", "a", "--role", "sales")
    result = cli_env("token", "create", "a", "--label", "ERP")
    assert result.exit_code == 0, result.output
    token = result.output.strip().split()[-1]
    assert token.startswith("fwt_")
    tenant = Tenant.load(cli_env.config, db_url=cli_env.db_url)
    try:
        assert tenant.users.user_for_token(token).username == "a"
        assert cli_env("user", "disable", "a").exit_code == 0
        assert tenant.users.user_for_token(token) is None
    finally:
        tenant.dispose()
    listing = cli_env("user", "list")
    assert "disabled" in listing.output
    assert cli_env("token", "create", "a").exit_code == 1
    assert cli_env("user", "disable", "nobody").exit_code == 1


def test_user_list_and_reset_password(cli_env):
    cli_env("user", "add", "zhang", "--role", "sales", "--display-name", "张伟")
    listing = cli_env("user", "list")
    assert listing.exit_code == 0 and "zhang" in listing.output and "张伟" in listing.output
    result = cli_env("user", "reset-password", "zhang")
    assert result.exit_code == 0 and "must be changed" in result.output


def test_missing_tables_say_run_migrate(tmp_path, h):
    (tmp_path / "tenant.yaml").write_text(h.CRM.read_text(encoding="utf-8"), encoding="utf-8")
    result = CliRunner().invoke(build_cli(), ["user", "list", str(tmp_path / "tenant.yaml"),
                                              "--db", f"sqlite:///{tmp_path / 'empty.db'}"])
    assert result.exit_code == 1 and "formwork migrate" in result.output
