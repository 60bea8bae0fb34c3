"""The user store: accounts, argon2 passwords, throttled logins and API tokens (R2, R44)."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from engine.users import PasswordPolicyError, UserError


def test_r2_add_generates_initial_password_that_must_be_changed(tenant):
    user, initial = tenant.users.add("han.mei", ["sales"], department="sales", display_name="韩梅梅")
    assert initial and len(initial) >= 12
    assert user.must_change_password and user.active
    assert user.roles == ["sales"] and user.department == "sales" and user.display_name == "韩梅梅"
    assert tenant.users.authenticate("han.mei", initial, "10.0.0.1").ok


def test_given_password_is_hashed_with_argon2(tenant):
    user, initial = tenant.users.add("han.mei", ["sales"], password="given-password")
    assert initial is None and user.must_change_password
    with tenant.db.connect() as c:
        stored = c.execute(sa.text("select password_hash from fw_users")).scalar_one()
    assert stored.startswith("$argon2id$") and "given-password" not in stored


def test_unknown_role_names_the_defined_roles(tenant):
    with pytest.raises(UserError) as err:
        tenant.users.add("x", ["boss"])
    assert "boss" in str(err.value) and "admin" in str(err.value) and "sales" in str(err.value)
    assert "manager" in str(err.value)


def test_unknown_department_and_duplicate_user_are_refused(tenant):
    with pytest.raises(UserError, match="finance"):
        tenant.users.add("x", ["sales"], department="finance")
    tenant.users.add("x", ["admin"], manages=["sales_east"])
    assert tenant.users.by_username("x").manages == ["sales_east"]
    with pytest.raises(UserError, match="already exists"):
        tenant.users.add("x", ["sales"])


def test_get_list_and_by_username(tenant):
    a, _ = tenant.users.add("a", ["admin"])
    tenant.users.add("b", ["sales", "manager"])
    assert tenant.users.get(a.id).username == "a"
    assert tenant.users.get(9999) is None
    assert [u.username for u in tenant.users.list()] == ["a", "b"]
    assert tenant.users.by_username("b").roles == ["sales", "manager"]
    assert tenant.users.by_username("nobody") is None
    assert a.is_admin


def test_wrong_password_and_unknown_user_give_the_same_result(tenant):
    tenant.users.add("a", ["sales"], password="right-password")
    wrong = tenant.users.authenticate("a", "nope-nope", "1.1.1.1")
    unknown = tenant.users.authenticate("ghost", "nope-nope", "1.1.1.1")
    assert wrong == unknown
    assert not wrong.ok and wrong.reason == "invalid"


def test_login_throttled_per_user_after_five_failures(tenant):
    tenant.users.add("a", ["sales"], password="right-password")
    for i in range(5):
        assert tenant.users.authenticate("a", "bad-guess", f"10.0.0.{i}").reason == "invalid"
    # locked even with the right password, from any address
    assert tenant.users.authenticate("a", "right-password", "10.9.9.9").reason == "throttled"
    # unknown users lock exactly the same way
    for _i in range(5):
        tenant.users.authenticate("ghost", "bad-guess", "10.1.1.1")
    assert tenant.users.authenticate("ghost", "x", "10.1.1.2").reason == "throttled"


def test_login_throttle_window_passes(tenant):
    tenant.users.add("a", ["sales"], password="right-password")
    start = tenant.now()
    tenant.clock = lambda: start
    for _i in range(5):
        tenant.users.authenticate("a", "bad-guess", "10.0.0.1")
    tenant.clock = lambda: start + timedelta(minutes=16)  # the failures happened 16 minutes ago
    assert tenant.users.authenticate("a", "right-password", "10.0.0.1").ok


def test_login_throttled_per_ip(tenant):
    tenant.users.add("a", ["sales"], password="right-password")
    store = tenant.users
    for i in range(store.max_failures_per_ip):
        store.authenticate(f"guess{i}", "bad-guess", "6.6.6.6")
    assert store.authenticate("a", "right-password", "6.6.6.6").reason == "throttled"
    assert store.authenticate("a", "right-password", "7.7.7.7").ok


def test_r2_change_password_rules(tenant):
    tenant.users.add("a", ["sales"], password="initial-pass")
    with pytest.raises(PasswordPolicyError) as err:
        tenant.users.change_password("a", "initial-pass", "short")
    assert err.value.key == "password_too_short"
    with pytest.raises(PasswordPolicyError) as err:
        tenant.users.change_password("a", "initial-pass", "initial-pass")
    assert err.value.key == "password_unchanged"
    with pytest.raises(PasswordPolicyError) as err:
        tenant.users.change_password("a", "wrong-pass", "brand-new-pass")
    assert err.value.key == "password_wrong"
    before = tenant.users.by_username("a").session_epoch
    user = tenant.users.change_password("a", "initial-pass", "brand-new-pass")
    assert not user.must_change_password and user.session_epoch == before + 1
    assert tenant.users.authenticate("a", "brand-new-pass").ok
    assert not tenant.users.authenticate("a", "initial-pass").ok


def test_tokens_store_only_a_hash(tenant):
    tenant.users.add("a", ["sales"])
    token = tenant.users.create_token("a", "ERP sync")
    assert tenant.users.user_for_token(token).username == "a"
    with tenant.db.connect() as c:
        row = c.execute(sa.text("select token_hash, label from fw_tokens")).one()
    assert token not in row.token_hash and len(row.token_hash) == 64 and row.label == "ERP sync"
    assert tenant.users.user_for_token(token + "x") is None
    assert tenant.users.user_for_token("") is None
    assert tenant.users.user_for_token(None) is None


def test_r44_disable_ends_sessions_and_tokens(tenant):
    user, _ = tenant.users.add("a", ["sales"], password="right-password")
    token = tenant.users.create_token("a")
    disabled = tenant.users.disable("a")
    assert not disabled.active and disabled.session_epoch == user.session_epoch + 1
    assert tenant.users.user_for_token(token) is None
    assert tenant.users.authenticate("a", "right-password").reason == "invalid"
    with pytest.raises(UserError):
        tenant.users.create_token("a")
    tenant.users.enable("a")
    assert tenant.users.user_for_token(token) is None  # revoked tokens stay revoked
