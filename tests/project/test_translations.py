"""The Simplified Chinese translation: complete, compiled, and what the admin actually shows."""

from __future__ import annotations

import ast
import gettext
import io
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from django.apps import apps
from django.core import checks
from django.core.management import call_command, load_command_class
from django.utils import translation

from django_zhenzi.admin.send_form import MAX_SEND_NOW
from django_zhenzi.models import (
    BalanceSnapshot,
    Message,
    RateCounter,
    RateLimit,
    RateLimitRefusal,
    Status,
    StatusReport,
    VerificationCode,
)
from django_zhenzi.reasons import ErrorKind, Reason
from tests.paths import REPO

PACKAGE = REPO / "django_zhenzi"
CATALOG = PACKAGE / "locale" / "zh_Hans" / "LC_MESSAGES"
PO_FILE = CATALOG / "django.po"
MO_FILE = CATALOG / "django.mo"

MESSAGES_URL = "/admin/django_zhenzi/message/"
REPORTS_URL = "/admin/django_zhenzi/statusreport/"
BALANCE_URL = "/admin/django_zhenzi/balancesnapshot/"
SEND_URL = "/admin/django_zhenzi/message/send/"

_KEYWORD = re.compile(r"^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?) (\".*\")$")


def read_po(path: Path) -> list[dict]:
    """The entries of a .po file: msgctxt, msgid, msgid_plural, msgstr ({index: text}), flags."""
    entries = []
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        entry: dict = {"msgctxt": None, "msgid_plural": None, "msgstr": {}, "flags": set()}
        target: list | None = None
        for line in block.strip().splitlines():
            if line.startswith("#,"):
                entry["flags"].update(flag.strip() for flag in line[2:].split(","))
            elif line.startswith("#"):
                continue
            elif match := _KEYWORD.match(line):
                keyword, index, text = match.groups()
                target = [ast.literal_eval(text)]
                if keyword.startswith("msgstr"):
                    entry["msgstr"][int(index or 0)] = target
                else:
                    entry[keyword] = target
            else:  # a continuation line of the last keyword
                assert line.startswith('"'), f"unexpected line in {path.name}: {line!r}"
                target.append(ast.literal_eval(line))
        if "msgid" not in entry:
            continue
        for key in ("msgctxt", "msgid", "msgid_plural"):
            if entry[key] is not None:
                entry[key] = "".join(entry[key])
        entry["msgstr"] = {index: "".join(parts) for index, parts in entry["msgstr"].items()}
        entries.append(entry)
    return entries


def expected_catalog(entries: list[dict]) -> dict:
    """What ``gettext.GNUTranslations`` loads from a .mo compiled from ``entries``: msgfmt
    leaves out fuzzy and untranslated entries."""
    catalog: dict = {}
    for entry in entries:
        if "fuzzy" in entry["flags"] or not all(entry["msgstr"].values()):
            continue
        key = entry["msgid"]
        if entry["msgctxt"] is not None:
            key = f"{entry['msgctxt']}\x04{key}"
        if entry["msgid_plural"] is None:
            catalog[key] = entry["msgstr"][0]
        else:
            catalog.update({(key, index): text for index, text in entry["msgstr"].items()})
    return without_creation_date(catalog)


def without_creation_date(catalog: dict) -> dict:
    """``catalog`` without the header's POT-Creation-Date, which newer msgfmt leave out of .mo
    files (for reproducible builds)."""
    header = re.sub(r"^POT-Creation-Date: .*\n", "", catalog.get("", ""), flags=re.MULTILINE)
    return {**catalog, "": header}


def load_mo(path: Path) -> dict:
    with path.open("rb") as stream:
        return without_creation_date(gettext.GNUTranslations(stream)._catalog)


@pytest.fixture(scope="module")
def entries() -> list[dict]:
    return read_po(PO_FILE)


# --- The catalog ---------------------------------------------------------------------------------


def test_header_declares_simplified_chinese_utf8_and_one_plural_form(entries):
    header = entries[0]
    assert header["msgid"] == ""
    assert "fuzzy" not in header["flags"]
    fields = dict(line.split(": ", 1) for line in header["msgstr"][0].splitlines())
    assert fields["Language"] == "zh_Hans"
    assert fields["Plural-Forms"] == "nplurals=1; plural=0;"
    assert fields["Content-Type"] == "text/plain; charset=UTF-8"
    assert "@" not in header["msgstr"][0]  # no personal e-mail addresses


def test_every_entry_is_translated_and_none_is_fuzzy(entries):
    messages = entries[1:]
    assert len(messages) > 200
    untranslated = [entry["msgid"] for entry in messages if not all(entry["msgstr"].values())]
    fuzzy = [entry["msgid"] for entry in messages if "fuzzy" in entry["flags"]]
    assert untranslated == []
    assert fuzzy == []
    # One plural form in Chinese: exactly msgstr[0].
    assert all(
        set(entry["msgstr"]) == {0} for entry in messages if entry["msgid_plural"] is not None
    )


def placeholders(text: str, flags: set[str]) -> set[str]:
    if "python-format" in flags:
        return set(re.findall(r"%\(\w+\)[sd]", text))
    if "python-brace-format" in flags:
        return set(re.findall(r"\{\w*(?:![rsa])?\}", text.replace("{{", "").replace("}}", "")))
    return set()


def test_translations_keep_every_placeholder_and_html_tag(entries):
    for entry in entries[1:]:
        for text in entry["msgstr"].values():
            source = entry["msgid_plural"] or entry["msgid"]
            assert placeholders(text, entry["flags"]) == placeholders(source, entry["flags"]), (
                entry["msgid"]
            )
            assert re.findall(r"<[^>]+>", text) == re.findall(r"<[^>]+>", entry["msgid"])


def test_compiled_catalog_matches_the_po_file(entries):
    assert load_mo(MO_FILE) == expected_catalog(entries)


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="GNU gettext's msgfmt is not installed")
def test_msgfmt_checks_pass_and_compile_the_same_catalog(tmp_path, entries):
    compiled = tmp_path / "django.mo"
    subprocess.run(
        ["msgfmt", "--check", "-o", str(compiled), str(PO_FILE)],
        check=True,
        capture_output=True,
    )
    assert load_mo(compiled) == load_mo(MO_FILE) == expected_catalog(entries)


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="GNU gettext's xgettext is missing")
def test_po_file_holds_exactly_the_strings_of_the_code(tmp_path, entries):
    """A fresh ``makemessages`` over a copy of the package finds no string the .po lacks
    (a new string must be translated) and none it no longer needs."""
    copy = tmp_path / "django_zhenzi"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "locale"))
    (copy / "locale").mkdir()
    environment = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
    }
    subprocess.run(
        [sys.executable, "-m", "django", "makemessages", "-l", "zh_Hans", "--no-obsolete"],
        cwd=copy,
        env=environment,
        check=True,
        capture_output=True,
    )
    fresh = read_po(copy / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po")

    def keys(found: list[dict]) -> set[tuple]:
        return {(entry["msgctxt"], entry["msgid"], entry["msgid_plural"]) for entry in found[1:]}

    assert sorted(keys(fresh) - keys(entries), key=str) == []  # strings to add and translate
    assert sorted(keys(entries) - keys(fresh), key=str) == []  # strings gone from the code


# --- Our strings in Chinese ----------------------------------------------------------------------


def test_model_and_app_names_are_chinese():
    with translation.override("zh-hans"):
        assert str(apps.get_app_config("django_zhenzi").verbose_name) == "榛子云短信"
        assert str(Message._meta.verbose_name) == "短信"
        assert str(StatusReport._meta.verbose_name_plural) == "状态报告"
        assert str(BalanceSnapshot._meta.verbose_name) == "余额快照"
        assert str(Message._meta.get_field("attempts").verbose_name) == "尝试次数"
        assert str(Status.DELIVERED.label) == "已送达"
        assert str(Status.UNDELIVERED.label) == "未送达"
    with translation.override("en"):
        assert str(Message._meta.verbose_name) == "message"


def test_model_strings_name_choices_by_their_label():
    """Page titles, breadcrumbs and links show ``str(obj)``: its status, state or limit in the
    page's language, not the stored value."""
    message = Message(number="13800138000", message_id="abc", status=Status.FAILED)
    report = StatusReport(reported_message_id="abc", status=Status.UNDELIVERED)
    code = VerificationCode(number="13800138000", purpose="login", state="superseded")
    refusal = RateLimitRefusal(
        limit=RateLimit.NUMBER_HOUR,
        subject="13800138000",
        count=3,
        hour=datetime(2026, 5, 1, 16, tzinfo=timezone.utc),
    )
    counter = RateCounter(limit=RateLimit.SITE_DAY, subject="", count=9)
    with translation.override("zh-hans"):
        assert str(message) == "13800138000 abc（发送失败）"
        assert str(report) == "abc：未送达"
        assert str(code) == "13800138000 login（已被新验证码取代）"
        assert str(refusal) == "每个号码每小时短信数 13800138000: 3 @ 2026-05-02 00:00"
        assert str(counter) == "全站每天短信数: 9"
    with translation.override("en"):
        assert str(message) == "13800138000 abc (failed)"
        assert str(report) == "abc: undelivered"
        assert str(code) == "13800138000 login (superseded by a newer code)"
        assert str(refusal).startswith("messages per number per hour 13800138000: 3 @ ")
    report.raw_status = "UNDELIV"
    assert str(report) == "abc: UNDELIV"  # the provider's own word, as it came


def test_check_messages_are_chinese(settings):
    settings.ZHENZI = {**settings.ZHENZI, "TIMEOUTS": 5}
    [problem] = [
        message
        for message in checks.run_checks(tags=["django_zhenzi"])
        if message.id == "django_zhenzi.E002"
    ]
    with translation.override("zh-hans"):
        assert str(problem.msg) == "ZHENZI['TIMEOUTS'] 不是已知的设置项。"
        assert str(problem.hint) == "您是否想写 ZHENZI['TIMEOUT']？"


def test_command_help_is_chinese():
    with translation.override("zh-hans"):
        command = load_command_class("django_zhenzi", "zhenzi_send_queued")
        text = command.create_parser("manage.py", "zhenzi_send_queued").format_help()
    assert "发送到期的短信" in text
    assert "持续运行并等待新短信" in text  # an option's help
    assert "Send the messages that are due" not in text


@pytest.mark.django_db
def test_command_output_is_chinese(settings, sandbox):
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": sandbox.url}
    out = io.StringIO()
    with translation.override("zh-hans"):
        call_command("zhenzi_balance", stdout=out)
    assert out.getvalue().startswith("余额：剩余 ")


# --- The admin with LANGUAGE_CODE = "zh-hans" ----------------------------------------------------


@pytest.fixture
def chinese_admin(settings, sandbox, admin_client):
    """A superuser's client; the site speaks Simplified Chinese and sends to the sandbox."""
    settings.LANGUAGE_CODE = "zh-hans"
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": sandbox.url}
    return admin_client


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Language"] == "zh-hans"
    return response.content.decode()


def assert_chinese(html: str, *, present: list[str], absent: list[str]) -> None:
    assert [text for text in present if text not in html] == []
    assert [text for text in absent if text in html] == []


@pytest.mark.django_db
def test_message_list_is_chinese(chinese_admin):
    Message.objects.create(number="13800138000", text="【测试】您的订单已发货", status="failed")
    Message.objects.create(
        number="13900139000", text="【测试】余额提醒", status="failed", error_code=108
    )
    Message.objects.create(
        number="13700137000",
        text="【测试】通知",
        status="queued",
        **Reason.of(ErrorKind.LOOKUP_FAILED, reason=Reason.of(ErrorKind.NEVER_RECEIVED)).fields(),
    )
    html = page(chinese_admin, MESSAGES_URL)
    assert_chinese(
        html,
        present=[
            "榛子云短信",  # the app
            "发送短信",  # the send link
            "各状态短信数（按创建时间）",
            "最近 24 小时",
            "发送失败",  # a status badge
            "内容或模板",
            "最近错误",
            "108 短信余额不足",  # the provider's own Chinese meaning (client/errors.py)
            "核对失败，稍后将再次查询：服务商未收到这条短信。",  # a stored reason, translated
            "重新发送所选的发送失败短信",  # an action
            "从榛子云刷新状态",
            "自定义文本",  # the template filter
            "按手机号码、完整的 messageId 或短信内容搜索。",
        ],
        absent=[
            "Send messages",
            "Messages per status",
            "Last 24 hours",
            "text or template",
            "last error",
            "Resend the selected",
            "Refresh the status",
            "free text",
            "Search by phone number",
            "Reconciliation failed",
            "never received",
        ],
    )


@pytest.mark.django_db
def test_resend_action_reports_in_chinese(chinese_admin):
    failed = Message.objects.create(number="13800138000", text="【测试】通知", status="failed")
    response = chinese_admin.post(
        MESSAGES_URL,
        {"action": "resend_failed", "_selected_action": [failed.pk]},
        follow=True,
    )
    assert "已将 1 条发送失败的短信重新加入发送队列。" in response.content.decode()


@pytest.mark.django_db
def test_message_page_is_chinese(chinese_admin):
    message = Message.objects.create(
        number="13800138000", text="【测试】通知", status="failed", error_code=108
    )
    StatusReport.objects.create(message=message, reported_message_id=message.message_id)
    html = page(chinese_admin, f"{MESSAGES_URL}{message.pk}/change/")
    assert_chinese(
        html,
        present=[
            "短信ID",
            "手机号码",
            "发送情况",
            "尝试次数",
            "下次尝试时间",
            "错误与应答",
            "错误码说明",
            "短信余额不足",
            "服务商应答",
            "状态报告",  # the inline
            "接收时间",
        ],
        absent=[
            "Errors and answers",
            "what the error code means",
            "Provider&#x27;s answer",
            "Next attempt at",
            "Status reports",
            "Received at",
        ],
    )


@pytest.mark.django_db
def test_report_list_is_chinese(chinese_admin):
    StatusReport.objects.create(reported_message_id="nobody", raw_status="DELIVRD")
    html = page(chinese_admin, REPORTS_URL)
    assert_chinese(
        html,
        present=["状态报告", '<span class="zhenzi-orphan">孤立报告</span>', "来源", "回调"],
        absent=["Orphan", "Provider&#x27;s status", "Source", ">callback<"],
    )


@pytest.mark.django_db
def test_balance_page_is_chinese(chinese_admin):
    html = page(chinese_admin, BALANCE_URL)
    assert_chinese(
        html,
        present=["余额", "条短信", "刚刚从榛子云读取", "余额历史", "最近读数", "立即重新读取余额"],
        absent=[
            "messages left",
            "Read from Zhenzi",
            "Balance history",
            "Latest readings",
            "Read the balance again now",
        ],
    )


@pytest.mark.django_db
def test_balance_page_explains_an_unreachable_provider_in_chinese(chinese_admin, settings):
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": "http://127.0.0.1:9"}  # nothing listens
    html = page(chinese_admin, BALANCE_URL)
    assert_chinese(
        html,
        present=[
            "无法从榛子云读取余额。<br>",
            "无法连接榛子云 http://127.0.0.1:9/account/balance.do（",
            "请检查 ZHENZI[&#x27;API_URL&#x27;]：",
            "尚未记录过余额。",
        ],
        absent=["Could not reach", "nothing was sent", "请求未发出"],
    )


@pytest.mark.django_db
def test_send_form_is_chinese(chinese_admin):
    html = page(chinese_admin, SEND_URL)
    assert_chinese(
        html,
        present=[
            "手机号码",
            "短信内容",
            "模板ID",
            "模板参数",
            "发送时机",
            "立即发送",
            "加入队列，由后台工作进程发送",
            f"立即发送最多 {MAX_SEND_NOW} 个号码",
            "一个表情符号计为两个字",
            'value="发送"',
        ],
        absent=[
            "Phone numbers",
            "Template parameters",
            "Send now",
            "Queue for the workers",
            "characters (counted as Zhenzi",
            'value="Send"',
        ],
    )


# Sending now happens once the rows are committed: no wrapping test transaction here.
@pytest.mark.django_db(transaction=True)
def test_send_form_errors_and_outcome_are_chinese(chinese_admin, sandbox):
    refused = chinese_admin.post(
        SEND_URL,
        {"numbers": "13800138000", "message": "【测试】通知", "template_id": "1", "mode": "now"},
    ).content.decode()
    assert "请更正以下错误。" in refused
    assert "请填写短信内容或模板ID，不能同时填写。" in refused

    bad_template = chinese_admin.post(
        SEND_URL,
        {"numbers": "13800138000", "message": "", "template_id": "a b", "mode": "now"},
    ).content.decode()
    assert "“a b”不是有效的模板ID：模板ID不能包含空格。" in bad_template
    assert "is not a template id" not in bad_template

    sent = chinese_admin.post(
        SEND_URL,
        {"numbers": "13800138000\n12345", "message": "【测试】您的订单已发货", "mode": "now"},
        follow=True,
    ).content.decode()
    assert "1 条短信中已发送 1 条。" in sent
    assert "1 个号码不是中国大陆手机号码，未向其发送：12345" in sent
    assert [message["number"] for message in sandbox.messages] == ["13800138000"]
