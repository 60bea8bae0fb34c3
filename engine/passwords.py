"""The password rule: a minimum length, not built on the user's or tenant's names, hard to guess."""
from __future__ import annotations

import secrets
from typing import Iterable

MIN_LENGTH = 10
MAX_LENGTH = 256        # argon2 and the strength estimate stay cheap
MIN_SCORE = 3           # zxcvbn's 0-4 scale: 3 is "safely unguessable" for an online attack
SCORED_PREFIX = 100     # zxcvbn slows down sharply on long inputs; the first 100 characters decide
MIN_NAME_LENGTH = 3     # a one- or two-letter name is too short to forbid as a substring


def password_problem(password: str, *, username: str = "", display_name: str = "",
                     tenant_names: Iterable[str] = ()) -> tuple[str, str, dict] | None:
    """None when `password` meets the rule, else (message key, English message, parameters)."""
    password = password or ""
    if len(password) < MIN_LENGTH:
        return "password_too_short", f"a password needs at least {MIN_LENGTH} characters", {"min": MIN_LENGTH}
    if len(password) > MAX_LENGTH:
        return "password_too_long", f"a password may have at most {MAX_LENGTH} characters", {"max": MAX_LENGTH}
    folded = password.casefold()
    tenant_names = [n for n in tenant_names if n]
    for name, key, message in (
            [(username, "password_has_username", "a password must not contain the username"),
             (display_name, "password_has_name", "a password must not contain the user's display name")]
            + [(n, "password_has_tenant", "a password must not contain the tenant name") for n in tenant_names]):
        name = (name or "").strip().casefold()
        if len(name) >= MIN_NAME_LENGTH and name in folded:
            return key, message, {}
    from zxcvbn import zxcvbn

    inputs = [s for s in (username, display_name, *tenant_names) if s]
    result = zxcvbn(password[:SCORED_PREFIX], user_inputs=inputs)
    if result["score"] < MIN_SCORE:
        hint = (result.get("feedback") or {}).get("warning") or ""
        message = (f"a password must not be common or easy to guess (strength {result['score']} of 4, "
                   f"at least {MIN_SCORE} needed)" + (f": {hint}" if hint else ""))
        return "password_too_weak", message, {"score": result["score"], "min_score": MIN_SCORE}
    return None


def generate_password(**names) -> str:
    """A random initial password that meets the rule (a random one fails it only by rare chance)."""
    while True:
        candidate = secrets.token_urlsafe(12)
        if password_problem(candidate, **names) is None:
            return candidate
