"""Engine messages in the tenant's languages (zh, en); the web layer has its own catalogue for chrome."""
from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "required": {"zh": "必填", "en": "This field is required"},
    "not_a_number": {"zh": "不是有效的数字", "en": "Not a valid number"},
    "not_an_integer": {"zh": "不是有效的整数", "en": "Not a valid whole number"},
    "not_a_date": {"zh": "不是有效的日期（YYYY-MM-DD）", "en": "Not a valid date (YYYY-MM-DD)"},
    "not_a_datetime": {"zh": "不是有效的日期时间", "en": "Not a valid date and time"},
    "not_a_boolean": {"zh": "不是有效的是/否值", "en": "Not a valid yes/no value"},
    "not_a_phone": {"zh": "不是有效的电话号码", "en": "Not a valid phone number"},
    "not_an_email": {"zh": "不是有效的邮箱地址", "en": "Not a valid email address"},
    "not_a_url": {"zh": "不是有效的网址", "en": "Not a valid URL"},
    "not_an_option": {"zh": "“{value}”不在可选项中", "en": "“{value}” is not one of the options"},
    "not_a_list": {"zh": "应为列表", "en": "Expected a list"},
    "too_long": {"zh": "不能超过 {max_length} 个字符", "en": "At most {max_length} characters"},
    "too_small": {"zh": "不能小于 {min}", "en": "Must be at least {min}"},
    "too_large": {"zh": "不能大于 {max}", "en": "Must be at most {max}"},
    "pattern": {"zh": "格式不正确", "en": "Wrong format"},
    "unique": {"zh": "已存在相同的值", "en": "Another record already has this value"},
    "no_such_record": {"zh": "引用的记录不存在：{value}", "en": "No such record: {value}"},
    "ambiguous_record": {"zh": "“{value}”匹配到多条记录", "en": "“{value}” matches several records"},
    "no_such_user": {"zh": "用户不存在：{value}", "en": "No such user: {value}"},
    "no_such_department": {"zh": "部门不存在：{value}", "en": "No such department: {value}"},
    "read_only": {"zh": "该字段只读", "en": "This field is read-only"},
    "unknown_field": {"zh": "未知字段", "en": "Unknown field"},
    "file_too_large": {"zh": "文件不能超过 {max_size} 字节", "en": "The file must be at most {max_size} bytes"},
    "file_type": {"zh": "不允许的文件类型：{value}", "en": "File type not allowed: {value}"},
    "not_a_file": {"zh": "不是有效的文件", "en": "Not a valid file"},
    "expression_failed": {"zh": "计算失败：{detail}", "en": "Could not be computed: {detail}"},
    "referenced": {"zh": "该记录仍被 {where} 引用，不能删除", "en": "Still referenced by {where}; cannot delete"},
    "conflict": {"zh": "该记录已被 {who} 于 {when} 修改，请刷新后重试",
                 "en": "This record was changed by {who} at {when}; reload and try again"},
    "not_found": {"zh": "记录不存在", "en": "Record not found"},
    "forbidden_action": {"zh": "您没有{entity}的“{action}”权限", "en": "You may not {action} {entity} records"},
    "forbidden_record": {"zh": "您没有对该记录执行“{action}”的权限", "en": "You may not {action} this record"},
    "forbidden_placement": {"zh": "不能把记录放到您的权限范围之外", "en": "You cannot place a record outside your scope"},
    "forbidden_department": {"zh": "不能把记录放到部门“{value}”（超出您的权限范围）",
                             "en": "You cannot place records in department {value}"},
    "forbidden_transfer": {"zh": "您无权转移该记录的负责人或部门", "en": "You may not transfer this record to another owner"},
    "export_limit": {"zh": "每次最多导出 {limit} 条记录（当前 {count} 条），请缩小筛选范围",
                     "en": "At most {limit} records per export ({count} match); narrow the filter"},
    "row_too_many_columns": {"zh": "列数多于表头", "en": "More cells than header columns"},
    "not_text": {"zh": "不是有效的文本", "en": "Not valid text"},
    "not_a_mobile": {"zh": "不是有效的手机号码", "en": "Not a valid mobile number"},
    "not_a_landline": {"zh": "不是有效的固定电话号码", "en": "Not a valid landline number"},
    "not_a_wechat": {"zh": "不是有效的微信号", "en": "Not a valid WeChat ID"},
    "too_few_rows": {"zh": "至少需要 {min} 行", "en": "At least {min} rows are required"},
    "too_many_rows": {"zh": "不能超过 {max} 行", "en": "At most {max} rows"},
}


def language(locale: str | None) -> str:
    """Map a locale such as zh_CN or en_US to the message language."""
    return "zh" if (locale or "zh").lower().startswith("zh") else "en"


def message(key: str, locale: str | None, **params) -> str:
    """A message in the locale's language, falling back to the key itself for unknown keys."""
    return catalogue_text(MESSAGES, key, locale, **params)


def catalogue_text(catalogue: dict[str, dict[str, str]], key: str, locale: str | None, **params) -> str:
    """`key` of a {key: {zh: …, en: …}} catalogue (a feature's own messages) in the locale's language,
    formatted with `params`; English when the language is missing, the key itself when unknown."""
    texts = catalogue.get(key)
    if texts is None:
        return key.format(**params) if params else key
    text = texts.get(language(locale)) or texts.get("en") or key
    try:
        return text.format(**params)
    except (KeyError, IndexError):
        return text
