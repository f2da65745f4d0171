"""The send form."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.utils import translation

from django_zhenzi.admin.send_form import MAX_SEND_NOW, SendForm, split_numbers
from django_zhenzi.client import ZhenziInputError
from django_zhenzi.models import Message, Status
from tests.admin.pages import (
    MESSAGES_URL,
    SEND_URL,
    make_message,
    messages_of,
    send_form,
)

pytestmark = pytest.mark.django_db


# --- The send form -------------------------------------------------------------------------------


def test_split_numbers_accepts_lines_commas_and_spaces():
    text = "13800138000\n13900139000, 13700137000；13600136000\n138 0013 8001\n+86 13500135000 x"
    assert split_numbers(text) == [
        "13800138000",
        "13900139000",
        "13700137000",
        "13600136000",
        "138 0013 8001",
        "+86",
        "13500135000",
        "x",
    ]


def test_send_form_renders_with_the_live_counter(login_with):
    html = login_with("send_message").get(SEND_URL).content.decode()
    assert 'data-zhenzi-limit="1000"' in html
    assert "django_zhenzi/send_form.js" in html
    assert "<span data-zhenzi-count-value>0</span> of 1000 characters" in html


def test_send_form_choices_use_the_admins_radio_list(login_with):
    html = login_with("send_message").get(SEND_URL).content.decode()
    # The admin's forms.css gives labels inside "radiolist" their own width, not 160px.
    assert '<div id="id_mode" class="radiolist">' in html


def test_send_form_queues_valid_numbers_and_lists_the_invalid(login_with):
    client = login_with("send_message", "view_message")
    numbers = "13800138000\n12345, 13900139000\n13800138000 not-a-number"

    response = client.post(SEND_URL, send_form(numbers=numbers))

    rows = Message.objects.order_by("number")
    assert [(m.number, m.status) for m in rows] == [
        ("13800138000", Status.QUEUED),
        ("13900139000", Status.QUEUED),
    ]
    assert messages_of(response) == [
        "2 messages were queued; the workers will send them.",
        "2 numbers are not mainland China mobile numbers and were not sent to: 12345, not-a-number",
        "1 repeated number was sent to only once.",
    ]
    assert response.status_code == 302
    listed = client.get(response.url).context["cl"].result_list
    assert {m.pk for m in listed} == {m.pk for m in rows}


def test_send_form_result_links_only_to_the_new_messages(login_with):
    make_message(number="13700137000")
    client = login_with("send_message", "view_message")
    response = client.post(SEND_URL, send_form(numbers="13800138000"))
    query = parse_qs(urlsplit(response.url).query)
    assert set(query) == {"created_at__gte", "created_at__lt"}
    listed = client.get(response.url).context["cl"].result_list
    assert [m.number for m in listed] == ["13800138000"]


# "Send now" sends once the data is committed; these tests run without a wrapping transaction, as
# the send view does even under ATOMIC_REQUESTS, so the page can tell what happened.


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("atomic_requests", [False, True])
def test_send_form_sends_now_through_the_provider(zhenzi, login_with, monkeypatch, atomic_requests):
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", atomic_requests)
    client = login_with("send_message")
    response = client.post(SEND_URL, send_form(mode="now", numbers="13800138000 13900139000"))

    assert {m.status for m in Message.objects.all()} == {Status.SENT}
    assert sorted(m["number"] for m in zhenzi.messages) == ["13800138000", "13900139000"]
    assert messages_of(response) == ["2 of 2 messages were sent."]
    assert response.url == SEND_URL  # this user may not see the message list


def test_send_form_sends_a_template_with_parameters(
    zhenzi, admin_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            SEND_URL,
            send_form(
                mode="now",
                numbers="13800138000",
                message="",
                template_id="1001",
                template_params="9988\n\n15分钟\n",
            ),
        )
    (sent,) = zhenzi.messages
    assert sent["templateParams"] == ["9988", "15分钟"]
    assert Message.objects.get().template_params == ["9988", "15分钟"]


@pytest.mark.django_db(transaction=True)
def test_send_form_reports_failures_of_sending_now(zhenzi, admin_client):
    response = admin_client.post(
        SEND_URL, send_form(mode="now", numbers="13800138000", message="", template_id="9999")
    )
    assert Message.objects.get().status == Status.FAILED
    assert messages_of(response) == ["1 message failed; its last error says why."]


def test_send_form_keeps_line_breaks_as_one_character(admin_client):
    admin_client.post(SEND_URL, send_form(numbers="13800138000", message="【测试】一\r\n二"))
    assert Message.objects.get().text == "【测试】一\n二"


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"message": "【测试】" + "x" * 995 + "😀"}, "The text is 1001 characters long"),
        ({"numbers": "12345, abc"}, "None of these is a mainland China mobile number: 12345, abc"),
        ({"numbers": ""}, "This field is required."),
        ({"message": ""}, "Give a text to send, or a template ID."),
        ({"template_id": "1001"}, "Give either a text or a template ID, not both."),
        ({"template_params": "1"}, "Template parameters need a template ID."),
        (
            {"mode": "now", "numbers": " ".join(f"138{n:08d}" for n in range(MAX_SEND_NOW + 1))},
            f"Sending now is limited to {MAX_SEND_NOW} numbers",
        ),
    ],
)
def test_send_form_refuses_bad_input_and_stores_nothing(zhenzi, admin_client, fields, error):
    response = admin_client.post(SEND_URL, send_form(**{"numbers": "13800138000", **fields}))
    assert response.status_code == 200
    assert error in response.content.decode()
    assert Message.objects.count() == 0
    assert zhenzi.requests_total == 0


@pytest.mark.parametrize(
    ("language", "expected", "english"),
    [
        ("en", "“a b” is not a template ID: it must not hold spaces.", None),
        ("zh-hans", "“a b”不是有效的模板ID：模板ID不能包含空格。", "is not a template"),
    ],
)
def test_send_form_says_the_services_refusals_in_its_own_words(
    zhenzi, admin_client, language, expected, english
):
    response = admin_client.post(
        SEND_URL,
        send_form(numbers="13800138000", message="", template_id="a b"),
        headers={"accept-language": language},
    )
    html = response.content.decode()
    assert response.context["form"].errors == {"template_id": [expected]}
    assert expected in html
    assert english is None or english not in html
    assert "holds spaces" not in html  # the client's own English text
    assert Message.objects.count() == 0


@pytest.mark.parametrize(
    ("field", "fields", "where", "expected"),
    [
        ("message", {"template_id": "1001"}, "__all__", "请填写短信内容或模板ID，不能同时填写。"),
        ("message", {"message": ""}, "__all__", "请填写要发送的短信内容或模板ID。"),
        ("message", {}, "message", "短信内容长 6 字，榛子云最多接受 1000 字。"),
        ("template_id", {}, "template_params", "填写模板参数时必须同时填写模板ID。"),
        ("template_params", {"template_id": "1"}, "template_params", "请以文本形式填写模板参数"),
        ("number", {}, "numbers", "不是中国大陆手机号码：-"),
        ("client_ip", {}, "__all__", "输入无效，发送已被拒绝；未保存任何短信。"),
    ],
)
def test_send_form_puts_each_input_error_on_its_field_in_chinese(field, fields, where, expected):
    form = SendForm(
        {"numbers": "13800138000", "mode": "queue", "message": "【测试】通知", **fields}
    )
    form.is_valid()
    with translation.override("zh-hans"):
        form.add_input_error(ZhenziInputError("Some English reason.", field=field))
        errors = [str(error) for error in form.errors[where]]
    assert any(error.startswith(expected) for error in errors), errors
    assert not any("English" in error for error in errors)


@pytest.mark.django_db(transaction=True)
def test_send_form_says_when_a_rate_limit_refuses(zhenzi, settings, admin_client):
    settings.ZHENZI = {**settings.ZHENZI, "LIMIT_ALL_SENDS": True, "LIMIT_NUMBER_PER_HOUR": 1}
    admin_client.post(SEND_URL, send_form(numbers="13800138000"))
    response = admin_client.post(SEND_URL, send_form(numbers="13800138000"))
    assert response.status_code == 200
    assert "Refused by the limit on" in response.content.decode()
    assert Message.objects.count() == 1


def test_send_form_counts_what_was_typed_when_shown_again(admin_client):
    response = admin_client.post(SEND_URL, send_form(numbers="bad", message="【测试】😀"))
    assert response.context["message_length"] == 6  # the emoji counts two


def test_send_form_needs_the_send_permission_to_post(login_with):
    response = login_with("view_message").post(SEND_URL, send_form(numbers="13800138000"))
    assert response.status_code == 403
    assert Message.objects.count() == 0


def test_message_list_links_to_the_send_form_for_senders_only(login_with):
    assert SEND_URL in login_with("view_message", "send_message").get(MESSAGES_URL).content.decode()
    assert SEND_URL not in login_with("view_message").get(MESSAGES_URL).content.decode()
