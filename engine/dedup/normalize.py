"""Normalisers: turn a field value into the text duplicate rules compare.

A normaliser is ``fn(value: str, ctx: NormalizeContext) -> str`` (empty text means "no value: never
a duplicate"). The built-in ones are registered by ``plugins/dedup.py`` through the
``formwork_dedup_normalizers`` hook; a plugin may add more or replace one by name.

- ``company_name``: NFKC (full-width → half-width), case-folded; bracketed place names, (中国)/(China)
  and (集团) dropped; English legal forms (Co., Ltd., Inc., Corp., LLC, GmbH …) and Chinese ones
  (股份有限公司, 有限责任公司, 有限公司, 集团, 分公司 …) stripped from the end; a leading province
  and/or city (北京, 广东省深圳市 …) stripped when at least three characters remain; every
  character that is not a letter or digit removed; then each industry or business word (科技, 网络,
  房地产, 开发, trading, technology …) replaced by one symbol, so the 字号 decides the similarity.
  "北京星河科技有限公司", "星河科技(北京)有限公司" and "北京星河科技" all become "星河" + the 科技
  symbol.
- ``phone``: E.164 (+8613800138000) with the tenant's default region; digits only when unparseable.
- ``email``: NFKC, trimmed, case-folded.
- ``text``: NFKC, case-folded, whitespace collapsed and trimmed.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Callable

import phonenumbers

from .places import CITIES, CITY_SUFFIXES, MUNICIPALITIES, PROVINCE_SUFFIXES, PROVINCES


@dataclass(frozen=True)
class NormalizeContext:
    """What a normaliser may need to know about the tenant."""

    region: str = "CN"       # default phone region
    locale: str = "zh_CN"


Normalizer = Callable[[str, NormalizeContext], str]

# Strip at most this short a core: "北京银行" keeps its city, "北京星河科技" does not.
MIN_CORE = 3


def _alternation(words) -> str:
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


_PROVINCE_RE = re.compile(rf"(?P<name>{_alternation(('中国',) + MUNICIPALITIES + PROVINCES)})"
                          rf"(?:{_alternation(PROVINCE_SUFFIXES)})?")
_CITY_RE = re.compile(rf"(?P<name>{_alternation(CITIES)})(?:{_alternation(CITY_SUFFIXES)})?")

CN_LEGAL_FORMS = (
    "股份有限公司", "有限责任公司", "有限公司", "股份公司", "集团公司", "总公司", "公司", "集团", "控股",
    "有限合伙", "普通合伙", "合伙企业", "个体工商户",
)
_CN_SUFFIX_RE = re.compile(rf"(?:{_alternation(CN_LEGAL_FORMS)})$")
# A branch: 星河科技有限公司北京分公司 is the same company as 星河科技有限公司.
_BRANCH_RE = re.compile(rf"(?:{_PROVINCE_RE.pattern}|{_CITY_RE.pattern})?(?:分公司|分厂|办事处|分部|分店)$"
                        .replace("?P<name>", ""))
_TRAILING_CHINA_RE = re.compile(r"中国$")

EN_LEGAL_FORMS = ("co", "company", "corp", "corporation", "inc", "incorporated", "ltd", "limited", "llc",
                  "l.l.c", "llp", "plc", "gmbh", "ag", "s.a", "sa", "pte", "pty", "bv", "b.v", "nv", "n.v",
                  "group", "holdings", "holding")
_EN_SUFFIX_RE = re.compile(rf"(?:^|[\s,.&/-]+)(?:{_alternation(EN_LEGAL_FORMS)})\.?[\s,.]*$")
_EN_THE_RE = re.compile(r"^the\s+")

# Industry and business words carry little identity: each becomes one symbol (a private-use
# character), so similarity is decided by the 字号 — 星河网络科技 is close to 星河科技, while
# 雷四房地产开发 and 雷快木房地产开发 no longer look alike merely for sharing 房地产开发.
CN_INDUSTRY_WORDS = (
    "人力资源", "互联网", "房地产", "新能源", "新材料", "供应链", "进出口", "自动化", "科技", "技术", "网络",
    "信息", "电子", "软件", "数据", "智能", "数字", "通信", "通讯", "贸易", "商贸", "实业", "投资", "咨询", "管理",
    "服务", "文化", "传播", "传媒", "广告", "物流", "运输", "建筑", "工程", "装饰", "设计", "机械", "设备", "制造",
    "医疗", "器械", "医药", "生物", "健康", "环保", "环境", "能源", "餐饮", "酒店", "旅游", "教育", "培训", "电气",
    "电力", "材料", "化工", "食品", "服装", "家居", "汽车", "地产", "开发", "物业", "企业", "发展", "国际", "农业",
    "金融", "保险", "证券", "银行", "商务", "销售", "精密", "光电", "节能", "仪器", "印刷", "包装", "纺织", "矿业",
    "置业", "租赁", "影视", "娱乐", "体育", "五金", "电器", "系统", "集成", "控制", "资产", "检测", "研究",
)
EN_INDUSTRY_WORDS = (  # synonyms share a symbol
    ("technology", "technologies", "tech"), ("trading", "trade"), ("software",), ("network", "networks"),
    ("information", "info"), ("electronics", "electronic"), ("international", "intl"),
    ("industrial", "industries", "industry"), ("consulting", "consultancy"), ("services", "service"),
    ("solutions", "solution"), ("systems", "system"), ("logistics",), ("investment", "investments"),
    ("management",), ("development",), ("engineering",), ("manufacturing",),
    ("pharmaceutical", "pharmaceuticals", "pharma"), ("medical",), ("media",), ("digital",), ("energy",),
    ("foods", "food"), ("enterprise", "enterprises"),
)
TOKEN_BASE = 0xE000
_CN_TOKENS = {w: chr(TOKEN_BASE + i) for i, w in enumerate(CN_INDUSTRY_WORDS)}
_EN_TOKENS = {w: chr(TOKEN_BASE + 0x400 + i) for i, group in enumerate(EN_INDUSTRY_WORDS) for w in group}
_CN_TOKEN_RE = re.compile(_alternation(CN_INDUSTRY_WORDS))
_EN_TOKEN_RE = re.compile(rf"\b(?:{_alternation(_EN_TOKENS)})\b")


def is_token(ch: str) -> bool:
    return TOKEN_BASE <= ord(ch) < TOKEN_BASE + 0x800


_TOKEN_WORDS = {**{c: w for w, c in _CN_TOKENS.items()},
                **{chr(TOKEN_BASE + 0x400 + i): group[0] for i, group in enumerate(EN_INDUSTRY_WORDS)}}


def readable(value: str) -> str:
    """A normalised value with its industry symbols written out: 星河‹科技›."""
    return "".join(f"‹{_TOKEN_WORDS[ch]}›" if ch in _TOKEN_WORDS else ch for ch in value)
BRACKET_DROP = {"中国", "china", "集团", "控股", "group", "holdings", "holding"} | set(CN_LEGAL_FORMS)
_BRACKETS = str.maketrans({"【": "(", "】": ")", "〔": "(", "〕": ")", "[": "(", "]": ")", "{": "(", "}": ")",
                           "<": "(", ">": ")", "《": "(", "》": ")", "「": "(", "」": ")"})
_BRACKET_RE = re.compile(r"\(([^()]*)\)")
_SPACE_RE = re.compile(r"\s+")


def _is_place(text: str) -> bool:
    """Whether `text` is only place names: 北京, 北京市, 广东省深圳市, 深圳."""
    rest = text
    m = _PROVINCE_RE.match(rest)
    if m:
        rest = rest[m.end():]
    m = _CITY_RE.match(rest)
    if m:
        rest = rest[m.end():]
    return rest == "" and rest != text


def _bracket(match: re.Match) -> str:
    inner = "".join(ch for ch in match.group(1) if ch.isalnum() or ch == ".")
    if inner.strip(".") in BRACKET_DROP or _is_place(inner):
        return " "
    return " " + match.group(1) + " "


def _strip_suffixes(s: str) -> str:
    while True:
        before = s
        for pattern in (_BRANCH_RE, _CN_SUFFIX_RE):
            m = pattern.search(s)
            if m and m.start() > 0:
                s = s[:m.start()]
        m = _TRAILING_CHINA_RE.search(s)
        if m and m.start() >= MIN_CORE:
            s = s[:m.start()]
        if s == before:
            return s


def _strip_places(s: str) -> str:
    m = _PROVINCE_RE.match(s)
    if m and len(s) - m.end() >= MIN_CORE:
        rest = s[m.end():]
        if m.group("name") not in MUNICIPALITIES and m.group("name") != "中国":
            m2 = _CITY_RE.match(rest)
            if m2 and len(rest) - m2.end() >= MIN_CORE:
                rest = rest[m2.end():]
        return rest
    m = _CITY_RE.match(s)
    if m and len(s) - m.end() >= MIN_CORE:
        return s[m.end():]
    return s


def company_name(value: str, ctx: NormalizeContext | None = None) -> str:
    s = unicodedata.normalize("NFKC", str(value)).casefold().translate(_BRACKETS)
    for _ in range(3):  # nested brackets, innermost first
        s2 = _BRACKET_RE.sub(_bracket, s)
        if s2 == s:
            break
        s = s2
    s = _EN_THE_RE.sub("", s.strip())
    while True:
        m = _EN_SUFFIX_RE.search(s)
        if not m or m.start() == 0:
            break
        s = s[:m.start()]
    s = _EN_TOKEN_RE.sub(lambda m: _EN_TOKENS[m.group(0)], s)
    s = "".join(ch for ch in s if ch.isalnum() or is_token(ch))
    if not s:
        return ""
    s = _strip_places(_strip_suffixes(s))
    return _CN_TOKEN_RE.sub(lambda m: _CN_TOKENS[m.group(0)], s)


_E164_RE = re.compile(r"^\+[1-9]\d{5,14}$")


def phone(value: str, ctx: NormalizeContext | None = None) -> str:
    s = str(value).strip()
    if _E164_RE.match(s):
        return s
    s = unicodedata.normalize("NFKC", s)
    try:
        number = phonenumbers.parse(s, (ctx or NormalizeContext()).region)
        if phonenumbers.is_possible_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        pass
    return "".join(ch for ch in s if ch.isdigit())


def email(value: str, ctx: NormalizeContext | None = None) -> str:
    return unicodedata.normalize("NFKC", str(value)).strip().casefold()


def text(value: str, ctx: NormalizeContext | None = None) -> str:
    return _SPACE_RE.sub(" ", unicodedata.normalize("NFKC", str(value)).casefold()).strip()


BUILTIN_NORMALIZERS: dict[str, Normalizer] = {
    "company_name": company_name,
    "phone": phone,
    "email": email,
    "text": text,
}


def collect_normalizers(pm) -> dict[str, Normalizer]:
    """Every plugin's normalisers by name; a later plugin replaces an earlier one of the same name."""
    out: dict[str, Normalizer] = {}
    for batch in reversed(pm.hook.formwork_dedup_normalizers()):
        out.update(batch or {})
    return out
