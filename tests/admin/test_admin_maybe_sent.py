"""The admin and failed messages that may have been sent: marked in the list, filtered, held back
by the plain resend, and resent only by their own action, after a confirmation page, under their
own permission. Through the Django test client against the real admin."""

from __future__ import annotations

import re

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from django_zhenzi.models import MaybeSent, Message, Status

pytestmark = pytest.mark.django_db

MESSAGES_URL = "/admin/django_zhenzi/message/"
CONFIRM_TEMPLATE = "django_zhenzi/admin/confirm_resend_maybe_sent.html"
MARK = '<div class="zhenzi-maybe-sent"'


@pytest.fixture
def senders(login_with) -> Client:
    """Staff who may see and send messages, but not resend doubtful ones."""
    return login_with("view_message", "send_message")


@pytest.fixture
def confirmers(login_with) -> Client:
    """Staff who may also resend messages that may have been sent."""
    return login_with("view_message", "send_message", "resend_maybe_sent")


def make_message(number: str = "13800138000", **fields) -> Message:
    return Message.objects.create(number=number, text="【测试】您的订单已发货", **fields)


def doubtful(number: str = "13800138001", reason: str = MaybeSent.NO_ANSWER) -> Message:
    return make_message(number, status=Status.FAILED, maybe_sent=reason, attempts=1)


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def run_action(client: Client, action: str, messages: list[Message], **extra):
    return client.post(
        MESSAGES_URL,
        {"action": action, "_selected_action": [m.pk for m in messages], **extra},
        follow=True,
    )


def state(message: Message) -> tuple[str, str]:
    message.refresh_from_db()
    return message.status, message.maybe_sent


# --- The plain resend holds them back ------------------------------------------------------------


def test_resend_failed_leaves_messages_that_may_have_been_sent_and_warns(senders):
    maybe = doubtful()
    plain = make_message(status=Status.FAILED, error_code=117)

    response = run_action(senders, "resend_failed", [maybe, plain])

    assert state(maybe) == (Status.FAILED, MaybeSent.NO_ANSWER)
    assert state(plain) == (Status.QUEUED, MaybeSent.NO)
    assert messages_of(response) == [
        "1 failed message was queued to be sent again.",
        "1 failed message was not resent: it may have been sent (its outcome was never "
        "settled). Resend it only with the action 'Resend failed messages even if they may "
        "have been sent'.",
    ]


# --- Its own action, under its own permission ----------------------------------------------------


def test_the_action_is_not_offered_without_its_permission(senders):
    maybe = doubtful()

    page = senders.get(MESSAGES_URL).content.decode()
    response = run_action(senders, "resend_maybe_sent", [maybe], confirm="yes")

    assert 'value="resend_failed"' in page
    assert 'value="resend_maybe_sent"' not in page
    assert messages_of(response) == ["No action selected."]
    assert state(maybe) == (Status.FAILED, MaybeSent.NO_ANSWER)


def test_the_action_is_offered_with_its_permission(confirmers):
    page = confirmers.get(MESSAGES_URL).content.decode()
    assert 'value="resend_maybe_sent"' in page
    assert "Resend failed messages even if they may have been sent" in page


def test_choosing_the_action_asks_for_confirmation_listing_the_doubtful_messages(confirmers):
    no_answer = doubtful("13800138001", MaybeSent.NO_ANSWER)
    expired = doubtful("13800138002", MaybeSent.CLAIM_EXPIRED)
    plain = make_message("13800138003", status=Status.FAILED)

    response = run_action(confirmers, "resend_maybe_sent", [no_answer, expired, plain])

    assert response.status_code == 200
    assert response.templates[0].name == CONFIRM_TEMPLATE
    html = response.content.decode()
    assert "Resend messages that may have been sent?" in html
    assert "These 2 failed messages may have been sent" in html
    assert f"<li>13800138001 {no_answer.message_id}: the provider&#x27;s answer was lost</li>" in (
        html
    )
    assert f"<li>13800138002 {expired.message_id}: its sender stopped before recording" in html
    assert f"<li>13800138003 {plain.message_id}" not in html  # not doubtful: not listed
    for message in (no_answer, expired, plain):  # all three go back with the confirmation
        assert f'name="_selected_action" value="{message.pk}"' in html
    assert 'name="confirm" value="yes"' in html
    # Nothing changed yet.
    assert state(no_answer) == (Status.FAILED, MaybeSent.NO_ANSWER)
    assert state(expired) == (Status.FAILED, MaybeSent.CLAIM_EXPIRED)
    assert state(plain) == (Status.FAILED, MaybeSent.NO)


def test_posting_the_confirmation_requeues_them_and_clears_the_doubt(confirmers):
    no_answer = doubtful("13800138001", MaybeSent.NO_ANSWER)
    duplicate = doubtful("13800138002", MaybeSent.DUPLICATE)
    plain = make_message("13800138003", status=Status.FAILED)
    sent = make_message("13800138004", status=Status.SENT)

    response = run_action(
        confirmers, "resend_maybe_sent", [no_answer, duplicate, plain, sent], confirm="yes"
    )

    assert messages_of(response) == [
        "3 failed messages were queued to be sent again.",
        "1 message was skipped: only failed messages can be resent.",
    ]
    for message, attempts in ((no_answer, 1), (duplicate, 1), (plain, 0)):
        assert state(message) == (Status.QUEUED, MaybeSent.NO)
        assert message.attempts == attempts  # history kept
    assert state(sent) == (Status.SENT, MaybeSent.NO)


def hidden_fields(html: str) -> dict[str, list[str]]:
    """The hidden inputs of the confirmation page's form, as the browser would post them."""
    fields: dict[str, list[str]] = {}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html):
        fields.setdefault(name, []).append(value)
    return fields


def test_the_confirmation_page_form_posted_as_it_is_requeues(confirmers):
    maybe = doubtful("13800138001")
    plain = make_message("13800138002", status=Status.FAILED)
    page = run_action(confirmers, "resend_maybe_sent", [maybe, plain])

    fields = hidden_fields(page.content.decode())
    response = confirmers.post(MESSAGES_URL, fields, follow=True)

    assert fields["confirm"] == ["yes"]
    assert response.redirect_chain == [(MESSAGES_URL, 302)]
    assert messages_of(response) == ["2 failed messages were queued to be sent again."]
    assert state(maybe) == (Status.QUEUED, MaybeSent.NO)
    assert state(plain) == (Status.QUEUED, MaybeSent.NO)


def test_a_verification_code_message_is_never_resent_even_when_confirmed(confirmers):
    code_message = doubtful()
    Message.objects.filter(pk=code_message.pk).update(content_masked=True)

    page = run_action(confirmers, "resend_maybe_sent", [code_message])
    response = run_action(confirmers, "resend_maybe_sent", [code_message], confirm="yes")

    assert code_message.message_id not in page.content.decode()
    assert messages_of(response) == ["1 message was skipped: only failed messages can be resent."]
    assert state(code_message) == (Status.FAILED, MaybeSent.NO_ANSWER)


# --- The list ------------------------------------------------------------------------------------


def test_the_list_marks_the_messages_that_may_have_been_sent(senders):
    failed = doubtful("13800138001", MaybeSent.NO_ANSWER)
    unknown = make_message("13800138002", status=Status.UNKNOWN, maybe_sent=MaybeSent.DUPLICATE)
    make_message("13800138003", status=Status.FAILED)
    make_message("13800138004", status=Status.SENT)

    html = senders.get(MESSAGES_URL).content.decode()

    assert html.count(MARK) == 2
    assert f'{MARK} title="the provider&#x27;s answer was lost">may have been sent</div>' in html
    assert (
        f'{MARK} title="the provider refused its messageId as already used">'
        "may have been sent</div>" in html
    )
    assert failed.number in html
    assert unknown.number in html


def test_the_list_filters_by_why_a_message_may_have_been_sent(senders):
    no_answer = doubtful("13800138001", MaybeSent.NO_ANSWER)
    duplicate = make_message("13800138002", status=Status.UNKNOWN, maybe_sent=MaybeSent.DUPLICATE)
    plain = make_message("13800138003", status=Status.FAILED)

    def numbers(query: str) -> set[str]:
        response = senders.get(f"{MESSAGES_URL}?{query}")
        assert response.status_code == 200
        return {message.number for message in response.context["cl"].result_list}

    page = senders.get(MESSAGES_URL).content.decode()
    assert "By may have been sent" in page
    assert "?maybe_sent__exact=no_answer" in page
    assert numbers("maybe_sent__exact=no_answer") == {no_answer.number}
    assert numbers("maybe_sent__exact=duplicate") == {duplicate.number}
    assert numbers("maybe_sent__exact=") == {plain.number}


# --- In Chinese ----------------------------------------------------------------------------------


@pytest.fixture
def chinese_admin(settings, admin_client):
    """A superuser's client on a site that speaks Simplified Chinese."""
    settings.LANGUAGE_CODE = "zh-hans"
    return admin_client


def test_the_list_marks_filters_and_offers_the_action_in_chinese(chinese_admin):
    doubtful()

    response = chinese_admin.get(MESSAGES_URL)

    assert response["Content-Language"] == "zh-hans"
    html = response.content.decode()
    assert f'{MARK} title="服务商的应答丢失了">可能已发送</div>' in html
    assert "重新发送失败的短信（即使可能已发送）" in html
    assert "may have been sent" not in html
    assert "Resend failed messages even if" not in html


def test_the_confirmation_and_the_warning_in_chinese(chinese_admin):
    maybe = doubtful()

    warned = run_action(chinese_admin, "resend_failed", [maybe])
    page = run_action(chinese_admin, "resend_maybe_sent", [maybe])
    done = run_action(chinese_admin, "resend_maybe_sent", [maybe], confirm="yes")

    assert messages_of(warned) == [
        "1 条失败的短信未重新发送：它们可能已发送（结果始终未能确认）。"
        "如确需重发，请使用操作“重新发送失败的短信（即使可能已发送）”。"
    ]
    html = page.content.decode()
    assert "重新发送可能已发送的短信？" in html
    assert "这 1 条失败的短信可能已发送" in html
    assert f"{maybe.message_id}: 服务商的应答丢失了" in html
    assert "是的，重新发送" in html
    assert "不，返回" in html
    assert "may have been sent" not in html
    assert messages_of(done) == ["已将 1 条发送失败的短信重新加入发送队列。"]
    assert state(maybe) == (Status.QUEUED, MaybeSent.NO)


# --- Every doubtful message at once ------------------------------------------------------------


def test_confirming_a_selection_across_pages_posts_no_field_per_message(confirmers, settings):
    """'Select all N' then the action: the confirmation must come back within Django's limit on
    form fields (DATA_UPLOAD_MAX_NUMBER_FIELDS, 1000 by default; 20 here), however many
    messages it covers."""
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 20
    Message.objects.bulk_create(
        Message(
            number=f"138001380{n:02d}",
            text="【测试】通知",
            status=Status.FAILED,
            maybe_sent=MaybeSent.NO_ANSWER,
        )
        for n in range(30)
    )
    one = Message.objects.first()
    page = confirmers.post(
        MESSAGES_URL,
        {
            "action": "resend_maybe_sent",
            "select_across": "1",
            "index": "0",
            "_selected_action": [one.pk],
        },
    )
    assert page.status_code == 200
    assert "These 30 failed messages may have been sent" in page.content.decode()

    response = confirmers.post(MESSAGES_URL, hidden_fields(page.content.decode()), follow=True)

    assert response.status_code == 200
    assert messages_of(response) == ["30 failed messages were queued to be sent again."]
    assert set(Message.objects.values_list("status", "maybe_sent")) == {
        (Status.QUEUED, MaybeSent.NO)
    }


def test_confirming_a_selection_across_pages_keeps_the_lists_filter(confirmers):
    kept = [doubtful(f"1380013800{n}") for n in range(3)]
    other = doubtful("13900139000")
    query = "?q=13800138"
    page = confirmers.post(
        MESSAGES_URL + query,
        {
            "action": "resend_maybe_sent",
            "select_across": "1",
            "index": "0",
            "_selected_action": [kept[0].pk],
        },
    )
    assert "These 3 failed messages may have been sent" in page.content.decode()

    confirmers.post(MESSAGES_URL + query, hidden_fields(page.content.decode()), follow=True)

    for message in kept:
        assert state(message) == (Status.QUEUED, MaybeSent.NO)
    assert state(other) == (Status.FAILED, MaybeSent.NO_ANSWER)
