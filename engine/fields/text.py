"""Text-like field types: text, textarea, email, url, wechat."""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa

from ..metadata.model import Field
from ._util import (TEXT_OPERATORS, check_length, check_pattern, clean_line, clean_multiline,
                    config_pattern_issues, halfwidth, is_blank, is_zh, truncate)
from .base import FieldContext, FieldType, fail
from .regex import fullmatches

DEFAULT_TEXT_LENGTH = 255


class TextType(FieldType):
    """A single line of text: String(max_length or 255); line breaks become spaces, outer space trimmed."""

    name = "text"
    operators = TEXT_OPERATORS
    search = "text"
    groupable = True
    json_type = {"type": "string"}

    def column_settings(self, field: Field) -> dict:
        out = super().column_settings(field)
        if field.max_length:
            out["max_length"] = field.max_length
        return out

    def max_length(self, field: Field) -> int | None:
        return field.max_length or DEFAULT_TEXT_LENGTH

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        return sa.String(field.max_length or DEFAULT_TEXT_LENGTH)

    def coerce(self, field: Field, value: Any, ctx: FieldContext) -> Any:
        if is_blank(value):
            return None
        return clean_line(value) or None

    def validate(self, field: Field, value: Any, ctx: FieldContext) -> None:
        check_length(value, self.max_length(field))
        check_pattern(field, value, ctx.locale)

    def check_config(self, field: Field, raw: dict) -> list[tuple[tuple, str]]:
        issues = config_pattern_issues(field)
        if field.max_length is not None and (not isinstance(field.max_length, int)
                                             or not 1 <= field.max_length <= 10000):
            issues.append((("max_length",), "max_length must be a whole number from 1 to 10000"))
        return issues

    def demo_value(self, field: Field, faker: Any, ctx: FieldContext) -> Any:
        value = truncate(demo_text(field, faker), self.max_length(field))
        if field.pattern and not fullmatches(field.pattern, value or ""):
            value = demo_matching(field.pattern, self.max_length(field)) or value
        return value


class TextareaType(TextType):
    """Several lines of text (Text); line breaks kept (normalised to \\n), outer space trimmed."""

    name = "textarea"
    operators = ("contains", "empty", "not_empty")
    sortable = False
    search = None
    groupable = False
    widget = "textarea"

    def column_settings(self, field: Field) -> dict:
        return FieldType.column_settings(self, field)

    def max_length(self, field: Field) -> int | None:
        return field.max_length

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        return sa.Text()

    def coerce(self, field: Field, value: Any, ctx: FieldContext) -> Any:
        if is_blank(value):
            return None
        return clean_multiline(value) or None

    def demo_value(self, field: Field, faker: Any, ctx: FieldContext) -> Any:
        try:
            text = faker.paragraph(nb_sentences=2)
        except Exception:  # noqa: BLE001 - any faker without paragraph()
            text = demo_text(field, faker)
        return truncate(text, field.max_length)


# ------------------------------------------------------------------------------------------- email

_EMAIL_LOCAL_RE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*",
                             re.ASCII)
_DOMAIN_LABEL = r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)"
_HOST_RE = re.compile(rf"{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*", re.ASCII)
_TLD_RE = re.compile(r"(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})", re.ASCII)


def _valid_domain(domain: str, need_dot: bool = True) -> bool:
    """A DNS host name (IDN allowed: checked in its punycode form)."""
    if not domain or len(domain) > 253:
        return False
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            return False
    if not _HOST_RE.fullmatch(domain):
        return False
    labels = domain.split(".")
    if need_dot and len(labels) < 2:
        return False
    return len(labels) < 2 or bool(_TLD_RE.fullmatch(labels[-1]))


class EmailType(FieldType):
    """An email address (String(254)): local part kept as typed, domain lower-cased; no display names."""

    name = "email"
    operators = TEXT_OPERATORS
    search = "text"
    json_type = {"type": "string", "format": "email"}
    widget = "email"

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        return sa.String(254)

    def coerce(self, field: Field, value: Any, ctx: FieldContext) -> Any:
        if is_blank(value):
            return None
        if not isinstance(value, str):
            raise fail("not_an_email", value=str(value))
        s = halfwidth(value.strip())
        if s.lower().startswith("mailto:"):
            s = s[7:]
        local, at, domain = s.rpartition("@")
        domain = domain.lower().rstrip(".")
        if (not at or len(local) > 64 or not _EMAIL_LOCAL_RE.fullmatch(local)
                or not _valid_domain(domain)):
            raise fail("not_an_email", value=value)
        return f"{local}@{domain}"

    def validate(self, field: Field, value: Any, ctx: FieldContext) -> None:
        check_length(value, field.max_length or 254)
        check_pattern(field, value, ctx.locale)

    def check_config(self, field: Field, raw: dict) -> list[tuple[tuple, str]]:
        return config_pattern_issues(field)

    def demo_value(self, field: Field, faker: Any, ctx: FieldContext) -> Any:
        return faker.email()


# --------------------------------------------------------------------------------------------- url

_URL_FORBIDDEN_RE = re.compile(r"[\s\x00-\x1f\x7f]")
# An already-normalised http(s) URL (lower-case host name, no port or user, printable ASCII): what the
# full check below would return unchanged, so imports of exported data skip urlsplit.
_PLAIN_URL_RE = re.compile(r"https?://((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63})"
                           r"(?:/[!-\x22\x24-\x3e\x40-~]*)?(?:\?[!-\x22\x24-~]+)?(?:#[!-~]+)?", re.ASCII)
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:(?!\d)", re.ASCII)
_IPV4_RE = re.compile(r"(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)", re.ASCII)


class UrlType(FieldType):
    """A web address (String(2048)), http or https only.

    Decision: a value without a scheme ("www.example.com/x") gets ``https://``; any other scheme
    (javascript:, ftp:, mailto:) is refused. Scheme and host are lower-cased; user:password@ is refused.
    """

    name = "url"
    search = "text"
    json_type = {"type": "string", "format": "uri"}
    widget = "url"
    operators = TEXT_OPERATORS

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        return sa.String(2048)

    def coerce(self, field: Field, value: Any, ctx: FieldContext) -> Any:
        if is_blank(value):
            return None
        if not isinstance(value, str):
            raise fail("not_a_url", value=str(value))
        s = value.strip()
        m = _PLAIN_URL_RE.fullmatch(s)
        if m and len(m.group(1)) <= 253:
            return s
        if _URL_FORBIDDEN_RE.search(s):
            raise fail("not_a_url", value=value)
        if s.startswith("//"):
            s = "https:" + s
        elif "://" not in s:
            if _SCHEME_RE.match(s):
                raise fail("not_a_url", value=value)
            s = "https://" + s
        try:
            parts = urlsplit(s)
            port = parts.port  # raises ValueError on a bad port
            host = parts.hostname or ""
        except ValueError:
            raise fail("not_a_url", value=value) from None
        if parts.scheme.lower() not in ("http", "https") or parts.username is not None \
                or parts.password is not None:
            raise fail("not_a_url", value=value)
        if host.startswith("[") or ":" in host:
            ok = True  # an IPv6 literal; urlsplit already checked its brackets
        else:
            host = host.rstrip(".")
            ok = host == "localhost" or bool(_IPV4_RE.fullmatch(host)) or _valid_domain(host)
        if not ok:
            raise fail("not_a_url", value=value)
        netloc = f"[{host}]" if ":" in host else host
        if port is not None:
            netloc += f":{port}"
        return urlunsplit((parts.scheme.lower(), netloc, parts.path, parts.query, parts.fragment))

    def validate(self, field: Field, value: Any, ctx: FieldContext) -> None:
        check_length(value, field.max_length or 2048)
        check_pattern(field, value, ctx.locale)

    def check_config(self, field: Field, raw: dict) -> list[tuple[tuple, str]]:
        return config_pattern_issues(field)

    def demo_value(self, field: Field, faker: Any, ctx: FieldContext) -> Any:
        return faker.url()


# ------------------------------------------------------------------------------------------ wechat

# A WeChat ID is 6–20 letters, digits, '_' or '-' starting with a letter; many people give their
# mobile number (or an old QQ number) instead, so 5–15 digits are accepted too.
_WECHAT_ID_RE = re.compile(r"[A-Za-z][-_A-Za-z0-9]{5,19}", re.ASCII)
_WECHAT_NUM_RE = re.compile(r"\+?\d{5,15}", re.ASCII)


class WechatType(FieldType):
    """A WeChat ID (R21: a contact channel distinct from mobile and landline phone numbers)."""

    name = "wechat"
    operators = TEXT_OPERATORS
    search = "text"

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        return sa.String(64)

    def coerce(self, field: Field, value: Any, ctx: FieldContext) -> Any:
        if is_blank(value):
            return None
        if isinstance(value, bool):
            raise fail("not_a_wechat", value=str(value))
        s = halfwidth(str(value).strip())
        if _WECHAT_ID_RE.fullmatch(s):
            return s
        digits = re.sub(r"[\s-]", "", s)
        if _WECHAT_NUM_RE.fullmatch(digits):
            return digits
        raise fail("not_a_wechat", value=str(value))

    def validate(self, field: Field, value: Any, ctx: FieldContext) -> None:
        check_pattern(field, value, ctx.locale)

    def check_config(self, field: Field, raw: dict) -> list[tuple[tuple, str]]:
        return config_pattern_issues(field)

    def demo_value(self, field: Field, faker: Any, ctx: FieldContext) -> Any:
        letters = "abcdefghijklmnopqrstuvwxyz"
        return ("wx" + "".join(faker.random_element(letters) for _ in range(4))
                + str(faker.random_int(1000, 99999)))


# ------------------------------------------------------------------------------------ demo helpers

def _zh_address(faker: Any) -> str:
    """XX省XX市XX区XX路XX号 (R13) from a zh_CN faker."""
    street = faker.street_name()
    if not street.endswith(("路", "街", "道")):
        street += "路"
    city = faker.city_name() if hasattr(faker, "city_name") else faker.city()
    city = city if city.endswith("市") else city + "市"
    return f"{faker.province()}{city}{faker.district()}区{street}{faker.random_int(1, 999)}号"


def demo_matching(pattern: str, max_length: int | None) -> str | None:
    """A random string matching `pattern` (rstr's xeger), or None when the pattern defeats it."""
    import rstr

    for _ in range(10):
        try:
            candidate = rstr.xeger(pattern)
        except Exception:  # noqa: BLE001 - lookarounds and other constructs xeger cannot generate
            return None
        candidate = truncate(candidate, max_length)
        if candidate and fullmatches(pattern, candidate):
            return candidate
    return None


def demo_text(field: Field, faker: Any) -> str:
    """A realistic single-line value guided by the field's name and label (generic, no entity rules)."""
    name = field.name.lower()
    label = (field.label.get("zh") + " " + field.label.get("en")).lower() if field.label else ""
    entity = (field.entity.name.lower() if field.entity is not None else "")
    locales = [str(loc) for loc in getattr(faker, "locales", [])]
    zh = any(is_zh(loc) for loc in locales) if locales else False

    def has(*words: str) -> bool:
        return any(w in name or w in label for w in words)

    if has("email", "邮箱"):
        return faker.email()
    if has("company", "customer", "account", "vendor", "supplier", "competitor", "org", "公司",
           "客户", "企业", "单位", "竞争对手"):
        return faker.company()
    if has("address", "addr", "地址"):
        return _zh_address(faker) if zh else faker.address().replace("\n", ", ")
    if has("title", "position", "job", "职位", "职务", "岗位"):
        return faker.job()
    if has("province", "省"):
        return faker.province() if zh else faker.state()
    if has("city", "城市"):
        return faker.city()
    if has("wechat", "weixin", "微信"):
        return WechatType().demo_value(field, faker, None)
    if has("phone", "mobile", "tel", "电话", "手机"):
        return faker.phone_number()
    if name in ("name", "full_name", "title_name") and any(
            w in entity for w in ("company", "customer", "account", "vendor", "supplier", "competitor")):
        return faker.company()
    if has("name", "contact", "person", "姓名", "联系人", "负责人"):
        return faker.name()
    if has("code", "number", "编号", "代码"):
        return faker.bothify("??-####").upper()
    words = faker.words(nb=3)
    return ("" if zh else " ").join(words)
