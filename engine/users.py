"""Users, passwords (argon2), login throttling and API tokens over the fw_users/fw_tokens tables."""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from .errors import FormworkError, NotFound
from .passwords import MIN_LENGTH as MIN_PASSWORD_LENGTH, generate_password, password_problem  # noqa: F401 - re-exported
from .schema.system import define_system_tables

BUILTIN_ROLES = ("admin",)
TOKEN_PREFIX = "fwt_"


class UserError(FormworkError):
    """A user-management request was refused; `key` and `params` name a message for translation."""

    def __init__(self, message: str, key: str = "user_error", **params):
        self.key = key
        self.params = params
        super().__init__(message)


class PasswordPolicyError(UserError):
    """A new password does not meet the rule (engine/passwords.py), repeats the old one, or the
    current password given was wrong."""


@dataclass
class User:
    """A person who signs in; roles are labels until the permissions feature interprets them."""

    id: int
    username: str
    display_name: str = ""
    roles: list[str] = field(default_factory=list)
    department: str | None = None
    manages: list[str] = field(default_factory=list)
    active: bool = True
    must_change_password: bool = True
    locale: str | None = None
    session_epoch: int = 0
    email: str | None = None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def name(self) -> str:
        """What to show people: the display name, else the username."""
        return self.display_name or self.username


@dataclass(frozen=True)
class AuthResult:
    """The outcome of a login attempt: `user` on success, else `reason` is "invalid" or "throttled"."""

    user: User | None
    reason: str = "ok"

    @property
    def ok(self) -> bool:
        return self.user is not None


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class UserStore:
    """Reads and writes a tenant's users and tokens through `tenant.db`."""

    failure_window = timedelta(minutes=15)
    max_failures_per_user = 5
    max_failures_per_ip = 20       # an office behind one NAT address shares this budget
    token_touch_interval = timedelta(minutes=5)

    def __init__(self, tenant, hasher: PasswordHasher | None = None):
        self.tenant = tenant
        self.hasher = hasher or PasswordHasher()
        tables = define_system_tables(sa.MetaData())
        self.users_t = tables["users"]
        self.tokens_t = tables["tokens"]
        self.throttle_t = tables["login_throttle"]
        self._dummy_hash: str | None = None
        u, tk = self.users_t, self.tokens_t
        # Built once: every API request runs it (statement building and cache keys add up).
        self._token_query = (sa.select(u, tk.c.id.label("token_id"), tk.c.token_hash, tk.c.last_used_at)
                             .join(tk, tk.c.user_id == u.c.id)
                             .where(tk.c.token_hash == sa.bindparam("digest"), tk.c.revoked == sa.false(),
                                    u.c.active == sa.true()))

    # -- configuration ---------------------------------------------------------------------------
    def defined_roles(self) -> list[str]:
        """Role names the tenant config defines, plus the built-in ones."""
        roles = (self.tenant.model.config or {}).get("roles") or {}
        names = list(roles.keys()) if isinstance(roles, dict) else [str(r) for r in roles]
        return list(BUILTIN_ROLES) + [r for r in names if r not in BUILTIN_ROLES]

    def _known_departments(self) -> tuple[str, ...]:
        try:
            return tuple(self.tenant.field_context().departments)
        except Exception:  # noqa: BLE001 - a tenant without storage/timezone support still works
            depts = (self.tenant.model.config or {}).get("departments") or {}
            return tuple(depts.keys()) if isinstance(depts, dict) else ()

    def _check_roles(self, roles: Iterable[str]) -> list[str]:
        roles = [r.strip() for r in roles if r and r.strip()]
        if not roles:
            raise UserError("a user needs at least one role", key="no_role")
        defined = self.defined_roles()
        unknown = [r for r in roles if r not in defined]
        if unknown:
            raise UserError(f"unknown role {', '.join(unknown)}; defined roles: {', '.join(defined)}",
                            key="unknown_role", role=", ".join(unknown), defined=", ".join(defined))
        return list(dict.fromkeys(roles))

    def _check_departments(self, names: Iterable[str | None]) -> None:
        known = self._known_departments()
        if not known:
            return
        for name in names:
            if name and name not in known:
                raise UserError(f"unknown department {name}; defined departments: {', '.join(known)}",
                                key="unknown_department", department=name,
                                defined=", ".join(known))

    # -- reading ---------------------------------------------------------------------------------
    def _row_to_user(self, row) -> User:
        m = row._mapping
        return User(id=m["id"], username=m["username"], display_name=m["display_name"] or "",
                    roles=json.loads(m["roles"] or "[]"), department=m["department"],
                    manages=json.loads(m["manages"] or "[]"), active=bool(m["active"]),
                    must_change_password=bool(m["must_change_password"]), locale=m["locale"],
                    session_epoch=int(m["session_epoch"] or 0), email=m["email"])

    def get(self, user_id: int) -> User | None:
        with self.tenant.db.connect() as conn:
            row = conn.execute(sa.select(self.users_t).where(self.users_t.c.id == user_id)).first()
        return self._row_to_user(row) if row else None

    def by_username(self, username: str) -> User | None:
        with self.tenant.db.connect() as conn:
            row = conn.execute(sa.select(self.users_t)
                               .where(self.users_t.c.username == username.strip())).first()
        return self._row_to_user(row) if row else None

    def require(self, username: str) -> User:
        user = self.by_username(username)
        if user is None:
            raise NotFound(f"no user named {username}")
        return user

    def list(self, include_inactive: bool = True) -> list[User]:
        query = sa.select(self.users_t).order_by(self.users_t.c.username)
        if not include_inactive:
            query = query.where(self.users_t.c.active == sa.true())
        with self.tenant.db.connect() as conn:
            return [self._row_to_user(r) for r in conn.execute(query)]

    def usernames(self, ids: Iterable[int]) -> dict[int, str]:
        """Display names for user ids (for showing owner / created_by)."""
        ids = [i for i in set(ids) if i is not None]
        if not ids:
            return {}
        t = self.users_t
        with self.tenant.db.connect() as conn:
            rows = conn.execute(sa.select(t.c.id, t.c.username, t.c.display_name)
                                .where(t.c.id.in_(ids)))
            return {r.id: (r.display_name or r.username) for r in rows}

    # -- writing ---------------------------------------------------------------------------------
    def add(self, username: str, roles: Iterable[str], department: str | None = None,
            password: str | None = None, manages: Iterable[str] = (), display_name: str | None = None,
            email: str | None = None, locale: str | None = None) -> tuple[User, str | None]:
        """Create a user; returns (user, the generated initial password or None when one was given).

        The user must change the password at first login either way (R2).
        """
        username = (username or "").strip()
        if not username or len(username) > 150 or any(c.isspace() for c in username):
            raise UserError("a username must be 1-150 characters without spaces", key="bad_username")
        roles = self._check_roles(roles)
        manages = [m for m in manages if m]
        self._check_departments([department, *manages])
        generated = None
        if password is None:
            generated = password = generate_password(**self._names(username, display_name))
        else:
            self.check_new_password(password, username=username, display_name=display_name or "")
        values = dict(username=username, display_name=display_name or "", email=email,
                      roles=json.dumps(roles, ensure_ascii=False), department=department,
                      manages=json.dumps(list(dict.fromkeys(manages)), ensure_ascii=False),
                      password_hash=self.hasher.hash(password), must_change_password=True,
                      active=True, locale=locale, session_epoch=0, created_at=self.tenant.now())
        with self.tenant.db.begin() as conn:
            exists = conn.execute(sa.select(self.users_t.c.id)
                                  .where(self.users_t.c.username == username)).first()
            if exists:
                raise UserError(f"a user named {username} already exists", key="user_exists",
                                username=username)
            new_id = conn.execute(self.users_t.insert().values(**values)).inserted_primary_key[0]
        return self.get(new_id), generated

    def disable(self, username: str) -> User:
        """Disable at once: sessions end on their next request and tokens stop working (R44)."""
        user = self.require(username)
        with self.tenant.db.begin() as conn:
            conn.execute(self.users_t.update().where(self.users_t.c.id == user.id).values(
                active=False, disabled_at=self.tenant.now(),
                session_epoch=self.users_t.c.session_epoch + 1))
            conn.execute(self.tokens_t.update().where(self.tokens_t.c.user_id == user.id)
                         .values(revoked=True))
        self.tenant.approvals.reroute_from(user)  # an approval never waits on someone who has left
        return self.get(user.id)

    def enable(self, username: str) -> User:
        user = self.require(username)
        with self.tenant.db.begin() as conn:
            conn.execute(self.users_t.update().where(self.users_t.c.id == user.id)
                         .values(active=True, disabled_at=None))
        return self.get(user.id)

    def set_locale(self, user_id: int, locale: str | None) -> None:
        with self.tenant.db.begin() as conn:
            conn.execute(self.users_t.update().where(self.users_t.c.id == user_id)
                         .values(locale=locale))

    # -- passwords -------------------------------------------------------------------------------
    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        return self._dummy_hash

    def _verify(self, stored: str | None, password: str) -> bool:
        try:
            return self.hasher.verify(stored or self._dummy(), password or "")
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _keys(self, username: str, ip: str | None) -> list[str]:
        keys = ["user:" + username.strip().lower()[:290]]
        if ip:
            keys.append("ip:" + ip[:290])
        return keys

    def _limit(self, key: str) -> int:
        return self.max_failures_per_user if key.startswith("user:") else self.max_failures_per_ip

    def _count_attempt(self, conn, key: str, now: datetime) -> int:
        """Add one attempt to `key` and return the new count, in one statement: concurrent logins
        each see a distinct count, so no more than the limit ever reach the password check."""
        t = self.throttle_t
        insert = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(t)
        expired = t.c.window_start <= sa.literal(now - self.failure_window, t.c.window_start.type)
        stmt = (insert.values(key=key, attempts=1, window_start=now)
                .on_conflict_do_update(index_elements=[t.c.key], set_={
                    "attempts": sa.case((expired, 1), else_=t.c.attempts + 1),
                    "window_start": sa.case((expired, sa.literal(now, t.c.window_start.type)),
                                            else_=t.c.window_start)})
                .returning(t.c.attempts))
        return conn.execute(stmt).scalar_one()

    def is_throttled(self, username: str, ip: str | None) -> bool:
        """Whether the next login for `username` from `ip` would be refused without a password check."""
        t = self.throttle_t
        since = self.tenant.now() - self.failure_window
        with self.tenant.db.connect() as conn:
            rows = conn.execute(sa.select(t.c.key, t.c.attempts).where(
                t.c.key.in_(self._keys(username or "", ip)), t.c.window_start > since)).all()
        return any(attempts >= self._limit(key) for key, attempts in rows)

    def authenticate(self, username: str, password: str, ip: str | None = None) -> AuthResult:
        """Check a login. Unknown, disabled and wrong-password users all get "invalid" after the
        same amount of work; after repeated failures per user or per IP the result is "throttled"
        until the window passes (even with the right password).

        The attempt is counted before the password hash is checked, so the limit holds however many
        attempts run at once; a success then clears the user's count and gives the IP its one back.
        """
        username = (username or "").strip()
        now = self.tenant.now()
        keys = self._keys(username, ip)
        with self.tenant.write() as conn:
            counts = {key: self._count_attempt(conn, key, now) for key in keys}
        if any(n > self._limit(key) for key, n in counts.items()):
            return AuthResult(None, "throttled")
        with self.tenant.db.connect() as conn:
            row = conn.execute(sa.select(self.users_t)
                               .where(self.users_t.c.username == username)).first()
        stored = row._mapping["password_hash"] if row is not None else None
        ok = self._verify(stored, password) and row is not None
        t = self.throttle_t
        if ok and row._mapping["active"]:
            user = self._row_to_user(row)
            with self.tenant.write() as conn:
                conn.execute(t.delete().where(t.c.key == keys[0]))
                if ip:
                    conn.execute(t.update().where(t.c.key == keys[1], t.c.attempts > 0)
                                 .values(attempts=t.c.attempts - 1))
                if self.hasher.check_needs_rehash(stored):
                    conn.execute(self.users_t.update().where(self.users_t.c.id == user.id)
                                 .values(password_hash=self.hasher.hash(password)))
            return AuthResult(user)
        with self.tenant.write() as conn:
            # Keys idle for two windows are useless; keep the table small.
            conn.execute(t.delete().where(t.c.window_start < now - 2 * self.failure_window))
        return AuthResult(None, "invalid")

    def _names(self, username: str, display_name: str | None) -> dict:
        """What a password must not be built on: the user's names and the tenant's."""
        tenant_names = [self.tenant.name]
        label = getattr(self.tenant.model.tenant, "label", None)
        for _lang, text in getattr(label, "texts", ()):
            # "Acme Technology" also forbids "acme": people build passwords on the short name
            tenant_names += [text, *(w for w in text.split() if len(w) >= 4)]
        return {"username": username or "", "display_name": display_name or "",
                "tenant_names": [str(n) for n in tenant_names if n]}

    def check_new_password(self, new_password: str, old_password: str | None = None, *,
                           username: str = "", display_name: str = "") -> None:
        """Raise PasswordPolicyError naming the rule `new_password` breaks (engine/passwords.py)."""
        problem = password_problem(new_password, **self._names(username, display_name))
        if problem is not None:
            key, message, params = problem
            raise PasswordPolicyError(message, key=key, **params)
        if old_password is not None and new_password == old_password:
            raise PasswordPolicyError("the new password must differ from the old one",
                                      key="password_unchanged")

    def change_password(self, username: str, old_password: str, new_password: str) -> User:
        """Change a password knowing the current one; ends the user's other sessions."""
        with self.tenant.db.connect() as conn:
            row = conn.execute(sa.select(self.users_t)
                               .where(self.users_t.c.username == username)).first()
        if row is None or not self._verify(row._mapping["password_hash"], old_password):
            raise PasswordPolicyError("the current password is wrong", key="password_wrong")
        self.check_new_password(new_password, old_password, username=row._mapping["username"],
                                display_name=row._mapping["display_name"] or "")
        return self._store_password(row._mapping["id"], new_password, must_change=False)

    def reset_password(self, username: str, new_password: str | None = None) -> tuple[User, str | None]:
        """An administrator sets a new password (generated when omitted) to be changed at login.

        A reset answers a lost or compromised account: it ends every session (the credential
        version moves on) and revokes the user's API tokens. A user's own password change keeps
        the tokens, so routine rotation does not break integrations."""
        user = self.require(username)
        generated = None
        names = {"username": user.username, "display_name": user.display_name}
        if new_password is None:
            generated = new_password = generate_password(**self._names(**names))
        self.check_new_password(new_password, **names)
        return self._store_password(user.id, new_password, must_change=True, revoke_tokens=True), generated

    def _store_password(self, user_id: int, password: str, must_change: bool,
                        revoke_tokens: bool = False) -> User:
        with self.tenant.db.begin() as conn:
            conn.execute(self.users_t.update().where(self.users_t.c.id == user_id).values(
                password_hash=self.hasher.hash(password), must_change_password=must_change,
                session_epoch=self.users_t.c.session_epoch + 1))
            if revoke_tokens:
                conn.execute(self.tokens_t.update().where(self.tokens_t.c.user_id == user_id)
                             .values(revoked=True))
        return self.get(user_id)

    # -- API tokens ------------------------------------------------------------------------------
    def create_token(self, username: str, label: str = "") -> str:
        """A new API token for a user; only its sha256 is stored, the plaintext is returned once."""
        user = self.require(username)
        if not user.active:
            raise UserError(f"user {username} is disabled", key="user_disabled", username=username)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.tenant.db.begin() as conn:
            conn.execute(self.tokens_t.insert().values(user_id=user.id, token_hash=_token_hash(token),
                                                       label=label or "", created_at=self.tenant.now(),
                                                       revoked=False))
        return token

    def revoke_tokens(self, username: str) -> int:
        user = self.require(username)
        with self.tenant.db.begin() as conn:
            return conn.execute(self.tokens_t.update().where(self.tokens_t.c.user_id == user.id,
                                                             self.tokens_t.c.revoked == sa.false())
                                .values(revoked=True)).rowcount

    def user_for_token(self, token: str | None) -> User | None:
        """The active user a token belongs to, or None (unknown, revoked, or user disabled)."""
        if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        digest = _token_hash(token)
        tk = self.tokens_t
        with self.tenant.db.connect() as conn:
            row = conn.execute(self._token_query, {"digest": digest}).first()
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            return None
        last = row.last_used_at
        now = self.tenant.now()
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=timezone.utc)
        if last is None or now - last > self.token_touch_interval:
            with self.tenant.db.begin() as conn:
                conn.execute(tk.update().where(tk.c.id == row.token_id).values(last_used_at=now))
        return self._row_to_user(row)
