"""phone (R13, R21): stored as E.164, shown as ``+86-138-0013-8000``.

* Reads "+86 138-0013-8000", "13800138000", "+86-138-0013-8000", "0086 138…", "(021) 6234 5678",
  "021-62345678 转 123"; the default region is settings.region, else ``ctx.phone_region``.
* Stores E.164 ("+8613800138000"); an extension is kept RFC 3966 style: "+862162345678;ext=123".
* Refuses what ``phonenumbers.is_valid_number`` refuses (key not_a_phone).
* settings.kind: ``mobile`` | ``landline`` | ``any`` (default) keeps mobile and landline fields
  distinct (R21); landline means any valid non-mobile number (fixed line, 400/800 service numbers).
* Display: international format with dashes for every number: "+86-138-0013-8000",
  "+86-21-6234-5678", "+1-650-253-0000"; an extension is shown as " ext. 123". JSON/CSV: the stored E.164.
* Fast path: a Chinese mobile (the import benchmark's bulk) is checked against the phonenumbers CN
  mobile pattern with one regex, skipping the full parse; other numbers go through an lru_cache'd parse.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import phonenumbers
import sqlalchemy as sa
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from ..metadata.model import Field
from ._util import TEXT_OPERATORS, check_pattern, config_pattern_issues, halfwidth, is_blank
from .base import FieldContext, FieldType, fail

_CN_MOBILE_INPUT_RE = re.compile(r"(\+86|0086|86)?(1\d{10})", re.ASCII)
_CN_MOBILE_E164_RE = re.compile(r"\+861\d{10}", re.ASCII)
_CN_LANDLINE_INPUT_RE = re.compile(r"(?:(\+86|0086)0?|0)([1-9]\d{8,10})", re.ASCII)
_EXT_WORDS_RE = re.compile(r"\s*(?:转|分机|ext\.?|x|#)\s*(\d{1,6})\s*$", re.IGNORECASE)

MOBILE, LANDLINE, ANY = "mobile", "landline", "any"
_MOBILE_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
_LANDLINE_TYPES = (PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE,
                   PhoneNumberType.TOLL_FREE, PhoneNumberType.SHARED_COST, PhoneNumberType.VOIP,
                   PhoneNumberType.UAN, PhoneNumberType.PREMIUM_RATE, PhoneNumberType.PERSONAL_NUMBER)


@lru_cache(maxsize=1)
def _cn_mobile_pattern() -> re.Pattern:
    """The national-number pattern phonenumbers itself uses to accept a CN mobile number."""
    desc = phonenumbers.PhoneMetadata.metadata_for_region("CN").mobile
    return re.compile(desc.national_number_pattern)


@lru_cache(maxsize=1)
def _cn_descriptors() -> tuple:
    """(fixed-line desc, the other CN number descs) from phonenumbers' own metadata."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region("CN")
    others = [d for d in (meta.mobile, meta.toll_free, meta.premium_rate, meta.shared_cost, meta.voip,
                          meta.personal_number, meta.pager, meta.uan, meta.voicemail)
              if d is not None and d.national_number_pattern]
    return _compiled(meta.fixed_line), tuple(_compiled(d) for d in others)


def _compiled(desc) -> tuple[tuple, re.Pattern]:
    return tuple(desc.possible_length or ()), re.compile(desc.national_number_pattern)


def _matches(desc: tuple[tuple, re.Pattern], national: str) -> bool:
    lengths, pattern = desc
    return (not lengths or len(national) in lengths) and pattern.fullmatch(national) is not None


def fast_cn_landline(raw: str, region: str) -> str | None:
    """"+862162345678" when `raw` is plainly a Chinese fixed-line number, else None (not decided).

    Uses phonenumbers' own CN fixed-line pattern and possible lengths, and leaves to the full parse
    any number another CN number type would also claim, so the result equals the full parse. Pure.
    """
    m = _CN_LANDLINE_INPUT_RE.fullmatch(raw.translate(_DROP_SEPARATORS))
    if m is None or not (region == "CN" or m.group(1)):
        return None
    national = m.group(2)
    fixed, others = _cn_descriptors()
    if not _matches(fixed, national) or any(_matches(d, national) for d in others):
        return None
    return "+86" + national


_DROP_SEPARATORS = str.maketrans("", "", " -().\t\u00a0\u3000")


def fast_cn_mobile(raw: str, region: str) -> str | None:
    """"+8613800138000" when `raw` is plainly a valid Chinese mobile number, else None (not decided).

    Checks exactly what phonenumbers checks for a CN mobile (its own national-number pattern), so the
    result equals the full parse; everything else goes to normalize_phone. Pure.
    """
    m = _CN_MOBILE_INPUT_RE.fullmatch(raw.translate(_DROP_SEPARATORS))
    if m is None or not (region == "CN" or m.group(1) in ("+86", "0086")):
        return None
    national = m.group(2)
    return "+86" + national if _cn_mobile_pattern().fullmatch(national) else None


@lru_cache(maxsize=8192)
def normalize_phone(raw: str, region: str) -> tuple[str, int] | None:
    """(stored E.164[;ext=N], phonenumbers number type) for a valid number, else None. Pure."""
    text = halfwidth(raw.strip())
    fast = fast_cn_mobile(text, region)
    if fast is not None:
        return fast, PhoneNumberType.MOBILE
    fast = fast_cn_landline(text, region)
    if fast is not None:
        return fast, PhoneNumberType.FIXED_LINE
    ext = None
    m = _EXT_WORDS_RE.search(text)
    if m and len(re.sub(r"\D", "", text[:m.start()])) >= 7:
        ext, text = m.group(1), text[:m.start()]
    try:
        num = phonenumbers.parse(text, region or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(num):
        return None
    stored = phonenumbers.format_number(num, PhoneNumberFormat.E164)
    ext = ext or num.extension
    if ext:
        stored += f";ext={ext}"
    return stored, phonenumbers.number_type(num)


@lru_cache(maxsize=8192)
def format_phone(stored: str) -> str:
    """+86-138-0013-8000 for a stored E.164 value (unparseable stored text is shown as is). Pure."""
    if _CN_MOBILE_E164_RE.fullmatch(stored):
        return f"+86-{stored[3:6]}-{stored[6:10]}-{stored[10:]}"
    number, _, ext = stored.partition(";ext=")
    try:
        num = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return stored
    text = phonenumbers.format_number(num, PhoneNumberFormat.INTERNATIONAL)
    text = re.sub(r"[\s]+", "-", text.strip())
    return f"{text} ext. {ext}" if ext else text


def phone_number_type(stored: str) -> int | None:
    """The phonenumbers number type of a stored value (CN mobiles without parsing); None if invalid."""
    if _CN_MOBILE_E164_RE.fullmatch(stored) and _cn_mobile_pattern().fullmatch(stored[3:]):
        return PhoneNumberType.MOBILE
    if stored.startswith("+86") and stored.isascii() and fast_cn_landline(stored, "") is not None:
        return PhoneNumberType.FIXED_LINE
    got = normalize_phone(stored, "")
    return None if got is None else got[1]


class PhoneType(FieldType):
    name = "phone"
    operators = TEXT_OPERATORS
    search = "phone"
    widget = "tel"
    settings_schema = {
        "kind": {"enum": [ANY, MOBILE, LANDLINE],
                 "description": "mobile or landline keeps contact channels distinct (default any)."},
        "region": {"type": "string", "pattern": "^[A-Z]{2}$",
                   "description": "Region for numbers written without +country code (default: tenant's)."},
    }

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        return sa.String(40)

    def coerce(self, field: Field, value: Any, ctx: FieldContext) -> Any:
        """Read and normalise a number; `kind` is checked here, where its number type is known."""
        if is_blank(value):
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise fail("not_a_phone", value=str(value))
        raw = value if isinstance(value, str) else str(value)
        region = field.settings.get("region") or ctx.phone_region or ""
        got = None
        if raw.isascii():  # the bulk of imports and API writes: no cache churn, no full parse
            fast = fast_cn_mobile(raw, region)
            if fast is not None:
                got = (fast, PhoneNumberType.MOBILE)
            else:
                fast = fast_cn_landline(raw, region)
                got = (fast, PhoneNumberType.FIXED_LINE) if fast is not None else None
        if got is None:
            got = normalize_phone(raw, region)
        if got is None:
            raise fail("not_a_phone", value=raw)
        self._check_kind(field, got[1], got[0])
        return got[0]

    def _check_kind(self, field: Field, ntype: int | None, value: str) -> None:
        wanted = field.settings.get("kind") or ANY
        if wanted == ANY:
            return
        if ntype is None:
            raise fail("not_a_phone", value=value)
        if wanted == MOBILE and ntype not in _MOBILE_TYPES:
            raise fail("not_a_mobile", value=value)
        if wanted == LANDLINE and ntype not in _LANDLINE_TYPES:
            raise fail("not_a_landline", value=value)

    def validate(self, field: Field, value: Any, ctx: FieldContext) -> None:
        if (field.settings.get("kind") or ANY) != ANY and not isinstance(value, str):
            raise fail("not_a_phone", value=str(value))
        check_pattern(field, value, ctx.locale)

    def to_text(self, field: Field, value: Any, ctx: FieldContext) -> str:
        return "" if value is None else format_phone(value)

    def check_config(self, field: Field, raw: dict) -> list[tuple[tuple, str]]:
        issues = config_pattern_issues(field)
        kind = field.settings.get("kind")
        if kind is not None and kind not in (ANY, MOBILE, LANDLINE):
            issues.append((("kind",), "kind must be mobile, landline or any"))
        region = field.settings.get("region")
        if region is not None and region not in phonenumbers.SUPPORTED_REGIONS:
            issues.append((("region",), f"unknown phone region {region!r}"))
        return issues

    def demo_value(self, field: Field, faker: Any, ctx: FieldContext) -> Any:
        region = field.settings.get("region") or ctx.phone_region or "CN"
        kind = field.settings.get("kind") or ANY
        if region == "CN":
            if kind == LANDLINE:
                area = faker.random_element(["10", "21", "20", "755", "571", "28", "27", "25"])
                digits = 8 if len(area) == 2 else faker.random_element([7, 8])
                first = str(faker.random_int(2, 8))
                candidate = f"+86{area}{first}{faker.numerify('#' * (digits - 1))}"
            else:
                prefix = faker.random_element(["134", "135", "136", "137", "138", "139", "150",
                                               "151", "152", "157", "158", "159", "182", "183",
                                               "186", "187", "188", "130", "131", "132", "155",
                                               "156", "185", "133", "153", "180", "181", "189",
                                               "177", "199"])
                candidate = f"+86{prefix}{faker.numerify('########')}"
            got = normalize_phone(candidate, "CN")
            if got is not None:
                return got[0]
        for _ in range(5):
            got = normalize_phone(faker.phone_number(), region)
            if got is not None and (kind == ANY or got[1] in (_MOBILE_TYPES if kind == MOBILE
                                                              else _LANDLINE_TYPES)):
                return got[0]
        example = phonenumbers.example_number_for_type(
            region, PhoneNumberType.MOBILE if kind != LANDLINE else PhoneNumberType.FIXED_LINE)
        return phonenumbers.format_number(example, PhoneNumberFormat.E164) if example else None
