"""The outcome policy (services.policy) and the status moves (services.transitions).

The errors are the client's own, raised by real requests to the sandbox wherever it can give the
answer; a code the sandbox never answers (111, an undocumented one) is built like the client
builds it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from django_zhenzi import send_sms, services
from django_zhenzi.backends import OperationNotSupported
from django_zhenzi.client import (
    ACCOUNT_ERROR_CODES,
    ERROR_CODES,
    ZhenziAPIError,
    ZhenziClient,
    ZhenziError,
    ZhenziMaybeSentError,
    ZhenziNotSentError,
)
from django_zhenzi.models import MaybeSent, Message, Status
from django_zhenzi.services import transitions
from django_zhenzi.services.policy import PROVIDER_CODES, Action, Decision, decide

APP_ID = "test-app"
APP_SECRET = "test-secret-value"
NUMBER = "13800138000"
TEXT = "【测试】您的订单已发货"
MESSAGE_ID = "policy-test-message-0001"
CLOSED_PORT_URL = "http://127.0.0.1:9"  # the discard port: nothing listens on loopback


@pytest.fixture
def client(sandbox) -> Iterator[ZhenziClient]:
    with ZhenziClient(sandbox.url, APP_ID, APP_SECRET, timeout=2) as zhenzi:
        yield zhenzi


def raised(call, *args, **kwargs) -> ZhenziError:
    with pytest.raises(ZhenziError) as caught:
        call(*args, **kwargs)
    return caught.value


# --- The table -----------------------------------------------------------------------------------


def test_every_documented_code_has_a_rule_and_no_other_code_has_one():
    assert set(PROVIDER_CODES) == set(ERROR_CODES)


def test_the_table_says_what_each_documented_code_does():
    assert PROVIDER_CODES == {
        100: Action.FAIL,
        101: Action.FAIL,
        105: Action.PAUSE,
        106: Action.PAUSE,
        107: Action.PAUSE,
        108: Action.PAUSE,
        109: Action.FAIL,
        110: Action.PAUSE,
        111: Action.PAUSE,
        117: Action.FAIL,
        1000: Action.RETRY,
    }
    assert {code for code, action in PROVIDER_CODES.items() if action is Action.PAUSE} == {
        *ACCOUNT_ERROR_CODES,
        108,
    }


# --- decide(), error class by error class --------------------------------------------------------


def test_a_request_that_never_reached_the_provider_is_retried():
    with ZhenziClient(CLOSED_PORT_URL, APP_ID, APP_SECRET, timeout=2) as nowhere:
        error = raised(nowhere.send, NUMBER, TEXT, message_id=MESSAGE_ID)
    assert isinstance(error, ZhenziNotSentError)
    assert decide(error) == Decision(Action.RETRY)


@pytest.mark.parametrize("fault", ["http500", "cut", "non_json"])
def test_an_answer_that_was_lost_is_reconciled_as_no_answer(client, sandbox, fault):
    sandbox.fail_next(fault)
    error = raised(client.send, NUMBER, TEXT, message_id=MESSAGE_ID)
    assert isinstance(error, ZhenziMaybeSentError)
    assert decide(error) == Decision(Action.RECONCILE, MaybeSent.NO_ANSWER)


def test_a_repeated_message_id_refused_by_the_provider_is_reconciled_as_duplicate(client, sandbox):
    client.send(NUMBER, TEXT, message_id=MESSAGE_ID)
    error = raised(client.send, NUMBER, TEXT, message_id=MESSAGE_ID)

    assert isinstance(error, ZhenziAPIError)
    assert (error.code, error.data) == (100, "messageId重复")
    assert error.duplicate_message_id is True
    assert decide(error) == Decision(Action.RECONCILE, MaybeSent.DUPLICATE)
    assert sandbox.accepted_count(MESSAGE_ID) == 1


def test_a_plain_parameter_error_is_not_a_duplicate_and_fails(client):
    # Template 1001 has two placeholders: one parameter is a malformed request.
    error = raised(client.send_template, NUMBER, "1001", ["9988"], message_id=MESSAGE_ID)

    assert isinstance(error, ZhenziAPIError)
    assert error.code == 100
    assert error.duplicate_message_id is False
    assert decide(error) == Decision(Action.FAIL)


@pytest.mark.parametrize(
    ("data", "duplicate"),
    [
        ("messageId重复", True),
        ("messageId repeated", True),
        ("参数格式错误", False),
        ("重复", False),  # a repeat, but not of the messageId
        ("messageId格式错误", False),  # the messageId, but no repeat
        (None, False),
    ],
)
def test_duplicate_message_id_needs_code_100_naming_the_message_id_and_a_repeat(data, duplicate):
    assert ZhenziAPIError(100, data, endpoint="/sms/send.do").duplicate_message_id is duplicate
    # The same words under another code are no proof that an earlier attempt arrived.
    assert ZhenziAPIError(1000, data, endpoint="/sms/send.do").duplicate_message_id is False


def test_no_balance_pauses(client, sandbox):
    sandbox.balance = 0
    error = raised(client.send, NUMBER, TEXT, message_id=MESSAGE_ID)
    assert (error.code, decide(error)) == (108, Decision(Action.PAUSE))


@pytest.mark.parametrize(
    ("attribute", "value", "code"),
    [
        ("app_id", "another-app", 105),  # the app was deleted: our appId is wrong
        ("disabled", True, 106),
        ("ip_whitelist", frozenset({"192.0.2.1"}), 107),
        ("app_secret", "reset-in-the-console", 110),
    ],
)
def test_a_refused_account_pauses(client, sandbox, attribute, value, code):
    setattr(sandbox, attribute, value)
    error = raised(client.send, NUMBER, TEXT, message_id=MESSAGE_ID)
    assert (error.code, decide(error)) == (code, Decision(Action.PAUSE))


def test_an_account_that_does_not_exist_pauses():
    # The sandbox has a single account: 111 is built as the client builds it.
    error = ZhenziAPIError(111, "账号不存在", endpoint="/sms/send.do")
    assert decide(error) == Decision(Action.PAUSE)


def test_an_unknown_system_error_is_retried(client, sandbox):
    sandbox.fail_next("code1000")
    error = raised(client.send, NUMBER, TEXT, message_id=MESSAGE_ID)
    assert (error.code, decide(error)) == (1000, Decision(Action.RETRY))


def test_a_wrong_template_fails(client):
    error = raised(client.send_template, NUMBER, "999999", [], message_id=MESSAGE_ID)
    assert (error.code, decide(error)) == (117, Decision(Action.FAIL))


def test_an_undocumented_code_fails():
    error = ZhenziAPIError(4242, "新的错误", endpoint="/sms/send.do")
    assert decide(error) == Decision(Action.FAIL)


def test_a_backend_that_cannot_do_it_fails():
    assert decide(OperationNotSupported("no look-ups")) == Decision(Action.FAIL)


def test_pauses_sending_is_true_for_the_account_codes_only():
    pausing = {code for code in (*ERROR_CODES, 4242) if services.policy.pauses_sending(code)}
    assert pausing == {*ACCOUNT_ERROR_CODES, 108}
    assert services.policy.pauses_sending(None) is False


# --- Status moves --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("from_status", "to_status"),
    [
        (Status.SENT, Status.QUEUED),
        (Status.QUEUED, Status.SENT),
        (Status.QUEUED, Status.FAILED),
        (Status.FAILED, Status.SENT),
        (Status.DELIVERED, Status.QUEUED),
        (Status.SENT, Status.UNKNOWN),
        (Status.QUEUED, Status.QUEUED),
    ],
)
def test_check_move_refuses_a_move_outside_the_message_life(from_status, to_status):
    with pytest.raises(ValueError, match=f"from {from_status} to {to_status}"):
        transitions.check_move(from_status, to_status)


def test_check_move_allows_every_move_of_the_message_life():
    for from_status, targets in transitions.MOVES.items():
        for to_status in targets:
            transitions.check_move(from_status, to_status)  # does not raise


@pytest.fixture
def locmem(settings):
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": "django_zhenzi.backends.locmem.SmsBackend"}


@pytest.mark.django_db
def test_move_refuses_an_illegal_move_before_touching_the_row(locmem):
    message = send_sms(NUMBER, TEXT, queue=True)
    with pytest.raises(ValueError):
        transitions.move(message, Status.SENT, expect=Status.QUEUED)
    message.refresh_from_db()
    assert message.status == Status.QUEUED


@pytest.mark.django_db
def test_move_changes_nothing_when_the_row_is_not_in_the_expected_status(locmem, received_signals):
    message = send_sms(NUMBER, TEXT, queue=True)
    token = services.new_claim_token()
    (claimed,) = services.claim_due(token, 10)
    Message.objects.filter(pk=message.pk).update(status=Status.UNKNOWN)  # moved meanwhile

    moved = transitions.move(
        claimed, Status.FAILED, expect=Status.SENDING, token=token, error_text="too late"
    )

    assert moved is False
    claimed.refresh_from_db()
    assert (claimed.status, claimed.error_text) == (Status.UNKNOWN, "")
    assert received_signals == []


@pytest.mark.django_db
def test_move_changes_nothing_when_the_row_is_under_another_claim(locmem, received_signals):
    send_sms(NUMBER, TEXT, queue=True)
    token = services.new_claim_token()
    (claimed,) = services.claim_due(token, 10)
    in_memory = Message.objects.get(pk=claimed.pk)

    moved = transitions.move(
        in_memory, Status.SENT, expect=Status.SENDING, token="someone-else", error_text="x"
    )

    assert moved is False
    assert in_memory.status == Status.SENDING  # nothing mirrored on the instance either
    claimed.refresh_from_db()
    assert (claimed.status, claimed.error_text) == (Status.SENDING, "")
    assert received_signals == []

    assert transitions.move(claimed, Status.SENT, expect=Status.SENDING, token=token) is True
    claimed.refresh_from_db()
    assert claimed.status == Status.SENT
    assert [name for name, _ in received_signals] == ["status_changed", "message_sent"]


@pytest.mark.django_db
def test_move_many_moves_only_the_rows_still_expected_and_claimed(locmem):
    send_sms([NUMBER, "13900139000", "13700137000"], TEXT, queue=True)
    token = services.new_claim_token()
    first, second, third = services.claim_due(token, 10)
    Message.objects.filter(pk=second.pk).update(status=Status.UNKNOWN)
    Message.objects.filter(pk=third.pk).update(claim_token="someone-else")

    moved = transitions.move_many(
        [first.pk, second.pk, third.pk], Status.FAILED, expect=Status.SENDING, token=token
    )

    assert moved == 1
    statuses = dict(Message.objects.values_list("pk", "status"))
    assert statuses == {
        first.pk: Status.FAILED,
        second.pk: Status.UNKNOWN,
        third.pk: Status.SENDING,
    }
