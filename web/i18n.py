"""UI chrome in Chinese and English: a small catalogue keyed by the English text."""
from __future__ import annotations

from types import MappingProxyType

from flask import current_app, g, request, session
from flask_login import current_user

LANGUAGES = MappingProxyType({"zh": "中文", "en": "English"})
# The records service and field display take full locales; chrome only needs the language.
LOCALES = MappingProxyType({"zh": "zh_CN", "en": "en_US"})

_ZH = {
    # layout and navigation
    "Home": "工作台",
    "Workbench": "工作台",
    "Search": "搜索",
    "Search customers, contacts, phone…": "搜索客户、联系人、电话…",
    "Menu": "菜单",
    "Close menu": "关闭菜单",
    "Records": "业务数据",
    "Signed in as": "当前用户",
    "Sign out": "退出登录",
    "Change password": "修改密码",
    "Language": "语言",
    "Skip to content": "跳到正文",
    "Administrator": "管理员",
    # login
    "Sign in": "登录",
    "Sign in to %(tenant)s": "登录 %(tenant)s",
    "Username": "用户名",
    "Password": "密码",
    "Invalid username or password.": "用户名或密码错误。",
    "Too many failed attempts. Try again in 15 minutes.": "失败次数过多，请 15 分钟后再试。",
    "Please sign in to continue.": "请先登录。",
    "You have been signed out.": "您已退出登录。",
    "Your session has ended. Please sign in again.": "会话已结束，请重新登录。",
    "Powered by Formwork": "由 Formwork 驱动",
    # password
    "Set a new password": "设置新密码",
    "Your initial password must be changed before you continue.":
        "首次登录需要修改初始密码后才能继续使用。",
    "Current password": "当前密码",
    "New password": "新密码",
    "Confirm new password": "确认新密码",
    "At least %(min)s characters.": "至少 %(min)s 个字符。",
    "The two passwords do not match.": "两次输入的密码不一致。",
    "Password changed.": "密码已修改。",
    "Save password": "保存密码",
    "Cancel": "取消",
    "password_too_short": "密码至少需要 %(min)s 个字符",
    "password_unchanged": "新密码不能与旧密码相同",
    "password_wrong": "当前密码不正确",
    "This field is required.": "此项必填。",
    "The form expired; please try again.": "表单已过期，请重试。",
    # workbench
    "Good morning": "早上好",
    "Good afternoon": "下午好",
    "Good evening": "晚上好",
    "Here is what needs your attention today.": "这是今天需要您关注的内容。",
    "New %(entity)s": "新建%(entity)s",
    "Log follow-up": "记录跟进",
    "My %(entity)s": "我的%(entity)s",
    "View all": "查看全部",
    "Nothing here yet.": "暂无数据。",
    "Records you own appear here.": "您负责的记录会显示在这里。",
    "Quick actions": "快捷操作",
    "records": "条",
    "Updated": "更新于",
    # search
    "Quick search": "快速搜索",
    "Results for “%(q)s”": "“%(q)s” 的搜索结果",
    "No results for “%(q)s”.": "没有找到与 “%(q)s” 匹配的结果。",
    "Type a company name, a person or a phone number.": "输入公司名称、联系人或电话号码。",
    "Search is not available yet.": "搜索暂不可用。",
    # errors and banners
    "Page not found": "页面不存在",
    "The page or record you asked for does not exist.": "您访问的页面或记录不存在。",
    "Back to workbench": "返回工作台",
    "Something went wrong": "出错了",
    "The request could not be completed.": "请求未能完成。",
    "Not available yet": "暂不可用",
    "This part of the application is still being built.": "该功能正在建设中。",
    "A configuration change is waiting to be applied; run `formwork plan` then `formwork migrate`.":
        "有待应用的配置变更；请运行 `formwork plan`，然后运行 `formwork migrate`。",
    "The configuration file has errors; run `formwork check`. The previous configuration stays in use.":
        "配置文件有错误，请运行 `formwork check`。当前仍使用之前的配置。",
    "Not allowed": "没有权限",
    # entity pages
    "%(n)s records": "共 %(n)s 条",
    "%(n)s rows": "%(n)s 行",
    "Add": "添加",
    "Add row": "添加一行",
    "Any": "全部",
    "Apply filters": "应用筛选",
    "Clear": "清除",
    "Clear filters": "清除筛选",
    "Create the first one to get started.": "新建第一条记录开始使用。",
    "Created": "创建",
    "Delete": "删除",
    "Delete %(entity)s “%(title)s”?": "确定删除%(entity)s“%(title)s”吗？",
    "Deleted %(entity)s “%(title)s”.": "已删除%(entity)s“%(title)s”。",
    "Department": "部门",
    "Details": "记录信息",
    "Edit": "编辑",
    "Edit %(entity)s": "编辑%(entity)s",
    "Filters": "筛选",
    "First page": "第一页",
    "History": "变更记录",
    "Next page": "下一页",
    "No %(entity)s match these filters.": "没有符合筛选条件的%(entity)s。",
    "No %(entity)s yet.": "还没有%(entity)s。",
    "No changes recorded.": "暂无变更记录。",
    "No matches": "无匹配结果",
    "None yet.": "暂无。",
    "Owner": "负责人",
    "Please correct the highlighted fields.": "请修改标出的字段。",
    "Reload": "重新加载",
    "Remove": "移除",
    "Remove row": "删除此行",
    "Save": "保存",
    "Save and new": "保存并新建",
    "Saved %(entity)s “%(title)s”.": "已保存%(entity)s“%(title)s”。",
    "Search %(entity)s…": "搜索%(entity)s…",
    "Showing %(n)s of %(total)s": "显示 %(n)s 条，共 %(total)s 条",
    "This cannot be undone. The record’s last state stays in the audit log.":
        "删除后无法恢复，记录删除前的内容会保留在操作日志中。",
    "Their changes:": "对方的修改：",
    "Try fewer filters or a different search.": "请减少筛选条件或换个关键词。",
    "Type to search…": "输入以搜索…",
    "Your input is kept below. Save again to overwrite their changes, or reload to start from the current version.":
        "您填写的内容已保留。再次保存将覆盖对方的修改，或重新加载以基于最新版本编辑。",
    "changed": "修改了",
    "created this record": "创建了此记录",
    "deleted this record": "删除了此记录",
    "imported this record": "导入了此记录",
    "merged other records into this one": "将其他记录合并到了此记录",
    "Merged into this record: %(records)s": "合并到此记录的：%(records)s",
    "Re-pointed to this record: %(items)s": "改为关联此记录的：%(items)s",
    "%(what)s: %(n)s": "%(what)s %(n)s 条",
    "from merged record %(record)s": "来自被合并的记录 %(record)s",
    "re-pointed by merging duplicates into %(entity)s #%(id)s": "因重复合并改为关联%(entity)s #%(id)s",
    "filtered": "已筛选",
    "from": "从",
    "to": "至",
    "— Select —": "— 请选择 —",
    # ownership, sharing and administration
    'Filter': '筛选条件',
    'Show': '查看',
    'User': '用户',
    'Access': '权限',
    'Accounts, organisation, permissions and the export log.': '账号、组织架构、权限与导出日志。',
    'Actions': '操作',
    'Active': '正常',
    'Add user': '添加用户',
    'Administration': '系统管理',
    'Can edit': '可编辑',
    'Can view': '可查看',
    'Channel': '渠道',
    'Choose': '选择',
    'Choose a user and an entity.': '请选择用户和业务对象。',
    'Choose a user or a department to share with.': '请选择要共享给的用户或部门。',
    'Choose records and who takes them over.': '请勾选记录并选择接收人。',
    'Choose who takes the record over.': '请选择接收人。',
    'Created user %(user)s.': '已创建用户 %(user)s。',
    'Departments': '部门',
    'Departments come from the configuration file; managers are the users who manage them.': '部门来自配置文件；部门负责人是被设置为管理该部门的用户。',
    'Disable': '停用',
    'Disable %(user)s': '停用 %(user)s',
    'Disable and hand over': '停用并移交',
    'Disabled': '已停用',
    'Disabled %(user)s; sessions and API tokens stopped.': '已停用 %(user)s，其会话与 API 令牌已失效。',
    'Display name': '显示名称',
    'Effective permissions': '有效权限',
    'Email': '邮箱',
    'Enable': '启用',
    'Enabled %(user)s.': '已启用 %(user)s。',
    'Entity': '业务对象',
    'Export CSV': '导出 CSV',
    'Export log': '导出日志',
    'Field': '字段',
    'Fields': '字段',
    'Hand records over to': '记录移交给',
    'Handed %(n)s records over to %(user)s.': '已将 %(n)s 条记录移交给 %(user)s。',
    'Initial password': '初始密码',
    'Initial password (shown once; it must be changed at first login): %(password)s': '初始密码（仅显示一次，首次登录须修改）：%(password)s',
    'Leave empty to generate one. It must be changed at first login.': '留空则自动生成，首次登录须修改。',
    'Managers': '负责人',
    'Manages': '管理部门',
    'Members': '成员',
    'Must change password': '待修改密码',
    'New password for %(user)s (shown once; it must be changed at next login): %(password)s': '%(user)s 的新密码（仅显示一次，下次登录须修改）：%(password)s',
    'No such user.': '用户不存在。',
    'No users yet.': '还没有用户。',
    'Not shared with anyone.': '尚未共享给任何人。',
    'Nothing has been exported yet.': '还没有导出记录。',
    'Nothing was transferred: %(reason)s': '未转移任何记录：%(reason)s',
    'Nothing was transferred: some of the chosen records are not available to you.': '未转移任何记录：所选记录中有您无权处理的记录。',
    'Only administrators may open this page.': '只有管理员可以打开此页面。',
    'Remove share': '取消共享',
    'Reset password': '重置密码',
    'Roles': '角色',
    'Roles and permissions': '角色与权限',
    'Roles come from the configuration file; change them there and review the difference with `formwork permissions`.': '角色来自配置文件；请在配置文件中修改，并用 `formwork permissions` 对比变化。',
    'Rows': '行数',
    'Share': '共享',
    'Share removed.': '已取消共享。',
    'Share with': '共享给',
    'Shared.': '已共享。',
    'Sharing': '共享',
    'Status': '状态',
    'The account stops at once: open sessions end and API tokens stop working. Every record it owns is handed over in one audited operation; the history keeps the original owner.': '账号立即停用：已登录的会话结束，API 令牌失效。其负责的全部记录在一次留痕操作中移交，变更记录保留原负责人。',
    'The configuration defines no departments.': '配置文件中没有定义部门。',
    'Their department has no manager: choose who takes over.': '该用户所在部门没有负责人，请选择接收人。',
    'Their manager: %(user)s': '其上级：%(user)s',
    'This user owns no records.': '该用户名下没有记录。',
    'Transfer': '转移',
    'Transfer the chosen records to': '将所选记录转移给',
    'Transfer to': '转移给',
    'Transferred %(n)s records to %(user)s.': '已将 %(n)s 条记录转移给 %(user)s。',
    'Transferred to %(user)s.': '已转移给 %(user)s。',
    'Users': '用户',
    'Users and permissions': '用户与权限',
    'When': '时间',
    'You cannot disable your own account.': '不能停用自己的账号。',
    'all records': '全部记录',
    'at most %(n)s rows': '最多 %(n)s 行',
    'department and below': '本部门及下级部门',
    'hidden': '不可见',
    'none': '无',
    'not allowed': '无权限',
    'own department': '本部门',
    'own records': '本人负责的记录',
    'read and write': '可读写',
    'read only': '只读',
    'where %(condition)s': '且满足 %(condition)s',
    'yes': '允许',
    'transferred this record': '转移了此记录',
    'shared this record': '共享了此记录',
    'stopped sharing this record': '取消了此记录的共享',
    'no_role': '用户至少需要一个角色',
    'unknown_role': '未知角色 %(role)s；已定义的角色：%(defined)s',
    'unknown_department': '未知部门 %(department)s；已定义的部门：%(defined)s',
    'user_exists': '用户名 %(username)s 已存在',
    'bad_username': '用户名须为 1–150 个字符且不含空格',
    # duplicates (R14, R20) and data quality (R18, R36)
    "This may already exist": "可能已存在",
    "Similar records were found. Open one to continue there, or save anyway if this is a different company.":
        "找到了相似的记录。可以打开它继续跟进；如果确实是另一家公司，请直接保存。",
    "Not a duplicate — save anyway": "不是重复，仍然保存",
    "Similarity": "相似度",
    "No follow-ups yet.": "暂无跟进记录。",
    "Data": "数据治理",
    "Duplicates": "重复数据",
    "Data quality": "数据质量",
    "%(n)s group(s) found.": "共找到 %(n)s 组疑似重复。",
    "Showing the first %(n)s.": "仅显示前 %(n)s 组。",
    "Groups of records that look like the same company, by the duplicate rules. Merge them so one company is one record.":
        "按查重规则找出的疑似同一公司的记录组。合并后，一家公司只保留一条记录。",
    "Every record looks like a different company under the current rules.": "按当前规则，没有疑似重复的记录。",
    "No likely duplicates.": "没有疑似重复",
    "Rules": "规则",
    "identical": "完全相同",
    "similar ≥ %(t)s%%": "相似度 ≥ %(t)s%%",
    "Similarity at least": "相似度不低于",
    "Scan": "扫描",
    "Merge…": "合并…",
    "Merge %(entity)s": "合并%(entity)s",
    "Merge records": "确认合并",
    "Merged %(n)s record(s) into “%(title)s”.": "已将 %(n)s 条记录合并到“%(title)s”。",
    "Choose at least two records to merge.": "请至少选择两条记录进行合并。",
    "Pick the record that stays and, for each field that differs, the value it keeps. Related records and history move to it; the others are deleted.":
        "选择保留的记录，并为每个不同的字段选择要保留的值。关联记录和历史会转到保留的记录上，其余记录将被删除。",
    "Surviving record": "保留的记录",
    "Values to keep": "保留的字段值",
    "You may not clean up duplicates of %(entity)s.": "您无权处理%(entity)s的重复数据。",
    "No entity has duplicate rules you may act on.": "没有您可以处理的查重规则。",
    "No entity has data-quality settings you may read.": "没有您可查看的数据质量设置。",
    "Live figures over the records you may see, against the targets in the configuration.":
        "基于您可见记录的实时数据，对照配置中的目标。",
    "Key fields complete": "关键信息完整率",
    "Followed up": "近期跟进率",
    "No active owner": "无有效负责人",
    "last %(n)s days": "近 %(n)s 天",
    "All targets met": "全部达标",
    "Below target": "未达标",
    "No targets": "未设目标",
    "Target": "目标",
    "Pass": "达标",
    "Fail": "未达标",
    "By field": "各字段",
    "By department": "按部门",
    "By user": "按人员",
}

# Message keys (from engine.users errors) need English text too; plain English keys do not.
_EN = {
    "password_too_short": "A password needs at least %(min)s characters",
    "password_unchanged": "The new password must differ from the old one",
    "password_wrong": "The current password is wrong",
    'no_role': 'A user needs at least one role',
    'unknown_role': 'Unknown role %(role)s; defined roles: %(defined)s',
    'unknown_department': 'Unknown department %(department)s; defined departments: %(defined)s',
    'user_exists': 'A user named %(username)s already exists',
    'bad_username': 'A username must be 1-150 characters without spaces',
}

CATALOGUE = MappingProxyType({"zh": MappingProxyType(_ZH), "en": MappingProxyType(_EN)})


def tenant_language() -> str:
    """The tenant's default chrome language."""
    locale = current_app.extensions["formwork"].tenant.model.tenant.locale or "zh_CN"
    return "zh" if locale.lower().startswith("zh") else "en"


def get_lang() -> str:
    """The caller's language: session choice, then the user's saved one, then the tenant default."""
    cached = g.get("fw_lang")
    if cached:
        return cached
    lang = session.get("lang")
    if lang not in LANGUAGES and request and getattr(current_user, "is_authenticated", False):
        saved = (current_user.locale or "")[:2].lower()
        lang = saved if saved in LANGUAGES else None
    if lang not in LANGUAGES:
        lang = tenant_language()
    g.fw_lang = lang
    return lang


def get_locale() -> str:
    """The full locale (zh_CN / en_US) for engine calls; the tenant's own when languages agree."""
    lang = get_lang()
    tenant_locale = current_app.extensions["formwork"].tenant.model.tenant.locale or "zh_CN"
    return tenant_locale if tenant_locale[:2].lower() == lang else LOCALES[lang]


def gettext(text: str, **params) -> str:
    """Translate chrome text into the caller's language; %(name)s placeholders take `params`."""
    translated = CATALOGUE.get(get_lang(), {}).get(text, text)
    if params:
        try:
            return translated % params
        except (KeyError, ValueError, TypeError):
            return translated
    return translated


def label(value, lang: str | None = None) -> str:
    """Text of a model Label (or plain string) in the caller's language."""
    if value is None:
        return ""
    if hasattr(value, "get") and not isinstance(value, dict):
        return value.get(LOCALES.get(lang or get_lang(), lang))
    return str(value)
