"""Every piece of UI chrome has a Chinese text, and English pages carry no leftover Chinese chrome."""
from __future__ import annotations

import re
from pathlib import Path

import web
from web.i18n import CATALOGUE

WEB = Path(web.__file__).resolve().parent
CALL = re.compile(r"""(?<![\w.])_\(\s*(['"])(.+?)\1""")


def chrome_strings() -> set[str]:
    found = set()
    for path in [*WEB.glob("templates/**/*.html"), *WEB.glob("*.py")]:
        found.update(m.group(2) for m in CALL.finditer(path.read_text(encoding="utf-8")))
    return found


def test_every_chrome_string_has_a_chinese_translation():
    missing = sorted(s for s in chrome_strings() if s not in CATALOGUE["zh"])
    assert not missing, f"add these to web/i18n.py: {missing}"


def test_message_keys_have_english_text():
    keys = [k for k in CATALOGUE["zh"] if re.fullmatch(r"[a-z]+(_[a-z]+)+", k)]
    assert keys and all(k in CATALOGUE["en"] for k in keys)


def test_english_pages_have_no_chinese_chrome(signed_in, h):
    page = signed_in.get("/").get_data(as_text=True)
    signed_in.post("/language", data={"lang": "en", "next": "/", "csrf_token": h.csrf_from(page)})
    for path in ("/", "/e/customer/", "/e/customer/new", "/e/quote/new", "/search?q=x"):
        html = signed_in.get(path).get_data(as_text=True)
        # labels from the YAML are given in both languages in crm.yaml, so no Han character may remain
        # outside the tenant's name, the user's name and the language switch
        text = re.sub(r"<[^>]+>", " ", html)
        text = text.replace("艾克美科技", "").replace("李雷", "").replace("中文", "")
        text = re.sub(r"李雷|[“”]", "", text)
        han = re.findall(r"[\u4e00-\u9fff]+", text)
        allowed = {"制造业", "金融业", "教育业", "重点", "老客户", "渠道", "销售部", "华东组", "类", "公司全称",
                   "艾", "A类", "B类", "C类"}
        leftovers = [w for w in han if w not in allowed]
        assert not leftovers, (path, leftovers[:10])
