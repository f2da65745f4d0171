"""Error kinds as data (django_zhenzi/reasons.py): every kind renders in English and in Chinese
from the catalogue, whatever the stored English says; every kind the client and the services
write is in the catalogue, found by driving them; the English text is written from it."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from datetime import timedelta
from typing import Any

import pytest
from django.utils import translation

from django_zhenzi import send_sms, services
from django_zhenzi.backends import BaseSmsBackend, OutgoingSms
from django_zhenzi.client import ZhenziClient, ZhenziError, ZhenziInputError, normalize_number
from django_zhenzi.models import Message, Status
from django_zhenzi.reasons import TEMPLATES, ErrorKind, Reason, render_reason
from tests.client.servers import Recorder, recorder  # noqa: F401 (a fixture)

APP_SECRET = "test-secret-value"
CLOSED_PORT_URL = "http://127.0.0.1:9"  # the discard port: nothing listens on loopback

NEVER = {"kind": ErrorKind.NEVER_RECEIVED, "params": {}}
#: Parameters for each kind, as the client and the services store them.
SAMPLES: dict[str, dict[str, Any]] = {
    ErrorKind.CLAIM_EXPIRED: {},
    ErrorKind.NEVER_RECEIVED: {},
    ErrorKind.DUPLICATE_TAKEN_AS_SENT: {},
    ErrorKind.NO_LOOKUP: {},
    ErrorKind.MASKED_NOT_RESENT: {},
    ErrorKind.MASKED_AFTER_ERROR: {"reason": NEVER},
    ErrorKind.GAVE_UP: {"count": 5, "reason": NEVER},
    ErrorKind.LOOKUP_FAILED: {"reason": NEVER},
    ErrorKind.BAD_TEMPLATE_PARAMS: {"params": "{'code': 1}"},
    ErrorKind.NOT_SENT: {"url": "http://x.test/sms/send.do", "detail": "ConnectTimeout: slow"},
    ErrorKind.UNREACHABLE: {"url": "http://x.test/account/balance.do", "detail": "DNS: none"},
    ErrorKind.NO_ANSWER: {"url": "http://x.test/sms/send.do", "detail": "ReadTimeout: slow"},
    ErrorKind.HTTP_MAYBE_PROCESSED: {"status": 502, "path": "/sms/send.do"},
    ErrorKind.HTTP_REFUSED: {"status": 404, "path": "/sms/send.do"},
    ErrorKind.NO_CODE: {"path": "/sms/send.do"},
    ErrorKind.NOT_JSON: {"path": "/sms/send.do"},
    ErrorKind.UNEXPECTED_BALANCE: {"answer": "'lots'"},
    ErrorKind.UNEXPECTED_RECORD: {"type": "list"},
    ErrorKind.PROVIDER_ERROR: {"code": 108, "endpoint": "/sms/send.do", "answer": "'余额不足'"},
    ErrorKind.DUPLICATE_MESSAGE_ID: {
        "code": 100,
        "endpoint": "/sms/send.do",
        "answer": "'messageId重复'",
    },
    ErrorKind.NOT_MOBILE_NUMBER: {"number": "'12345'"},
    ErrorKind.SEVERAL_NUMBERS: {"number": "'13800138000,13900139000'"},
    ErrorKind.EMPTY_NUMBER: {},
}

#: Words a Chinese text may keep in Latin letters: API names, settings, formats.
IDENTIFIERS = (
    *("findSmsByMessageId", "messageId", "ZHENZI['API_URL']", "'code'", "HTTP", "JSON"),
    *("AppSecret", "appId"),  # in the provider's own Chinese meanings and hints
)
ENGLISH_WORDS = re.compile(r"[A-Za-z]{3,}")


def values_of(params: Mapping[str, Any]) -> Iterator[str]:
    for value in params.values():
        if isinstance(value, Mapping):
            yield from values_of(value.get("params", {}))
        else:
            yield str(value)


def english_words(chinese: str, params: Mapping[str, Any]) -> list[str]:
    """The English words of ``chinese`` outside its parameters' values and the identifiers."""
    for value in sorted(values_of(params), key=len, reverse=True):
        chinese = chinese.replace(value, "")
    for identifier in IDENTIFIERS:
        chinese = chinese.replace(identifier, "")
    return ENGLISH_WORDS.findall(chinese)


def assert_chinese(kind: str, params: Mapping[str, Any]) -> str:
    with translation.override("en"):
        english = render_reason(kind, params)
    with translation.override("zh-hans"):
        chinese = render_reason(kind, params)
    assert english and "%(" not in english, kind
    assert chinese != english, kind
    assert english_words(chinese, params) == [], (kind, chinese)
    return chinese


# --- The catalogue -------------------------------------------------------------------------------


def test_every_kind_has_a_text_and_a_label():
    assert set(SAMPLES) == set(TEMPLATES)
    assert set(TEMPLATES) == set(ErrorKind.values) - {ErrorKind.NONE, ErrorKind.OTHER}


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_every_kind_renders_in_english_and_in_chinese(kind):
    assert_chinese(kind, SAMPLES[kind])
    with translation.override("en"):
        english_label = str(ErrorKind(kind).label)
    with translation.override("zh-hans"):
        label = str(ErrorKind(kind).label)
    assert label != english_label
    assert english_words(label, {}) == [], label


def test_nested_reasons_are_rendered_at_every_level():
    masked = Reason.of(ErrorKind.MASKED_AFTER_ERROR, reason=Reason.of(ErrorKind.NEVER_RECEIVED))
    gave_up = Reason.of(ErrorKind.GAVE_UP, count=5, reason=masked)
    assert gave_up.text == (
        f"Gave up after 5 attempts: {services.MASKED_NOT_RESENT} (The provider never received it.)"
    )
    with translation.override("en"):
        assert gave_up.render() == gave_up.text  # the English is the catalogue's, at every level
    with translation.override("zh-hans"):
        assert gave_up.render() == (
            "已尝试 5 次，不再重试：未重新发送（服务商未收到这条短信。）："
            "短信中的验证码只保存在内存中，请重新获取验证码。"
        )


def test_a_stored_kind_renders_its_catalogue_text_whatever_its_english_says():
    """The proof that rewording a reason cannot lose its translation: the stored English is
    never read back, only the kind and its parameters."""
    older_wording = "Abandoned after 5 tries: the provider did not get it."
    message = Message(
        status=Status.FAILED,
        error_kind=ErrorKind.GAVE_UP,
        error_params={"count": 5, "reason": NEVER},
        error_text=older_wording,
    )
    with translation.override("zh-hans"):
        assert message.error_reason == "已尝试 5 次，不再重试：服务商未收到这条短信。"
    with translation.override("en"):
        assert message.error_reason == "Gave up after 5 attempts: The provider never received it."


def test_what_the_catalogue_cannot_render_is_shown_as_stored():
    with translation.override("zh-hans"):
        other = Message(error_kind=ErrorKind.OTHER, error_params={"text": "RuntimeError: boom"})
        assert other.error_reason == "RuntimeError: boom"
        later = Message(error_kind="from_a_later_version", error_text="Kept as is.")
        assert later.error_reason == "Kept as is."
        missing = Message(error_kind=ErrorKind.GAVE_UP, error_params={}, error_text="As stored.")
        assert missing.error_reason == "As stored."
        before_kinds = Message(error_text="Gave up after 5 attempts: x")  # no kind: as stored
        assert before_kinds.error_reason == "Gave up after 5 attempts: x"


# --- The client's errors -------------------------------------------------------------------------


def raised(call) -> ZhenziError:
    with pytest.raises(ZhenziError) as caught:
        call()
    return caught.value


def client_errors(sandbox, recorder, opened: ExitStack) -> dict[str, ZhenziError]:  # noqa: F811
    """One error of every shape the client raises, each raised by a real request (or a real
    number check)."""

    def client(url: str, secret: str = APP_SECRET) -> ZhenziClient:
        return opened.enter_context(ZhenziClient(url, "test-app", secret, timeout=2))

    def send(url: str) -> ZhenziError:
        return raised(lambda: client(url).send("13800138000", "【测试】通知", message_id="m-1"))

    errors = {
        "not sent": send(CLOSED_PORT_URL),
        "unreachable": raised(client(CLOSED_PORT_URL).balance),
        "refused": raised(client(sandbox.url, "changed-in-the-console").balance),
        "http 404": raised(client(sandbox.url + "/nowhere").balance),
    }
    for fault, name in [("cut", "no answer"), ("http500", "http 500"), ("non_json", "not json")]:
        sandbox.fail_next(fault)
        errors[name] = raised(client(sandbox.url).balance)
    client(sandbox.url).send("13800138000", "【测试】通知", message_id="m-1")
    errors["duplicate"] = send(sandbox.url)  # the same messageId again
    recorder.answer({"code": "0"})
    errors["no code"] = raised(client(recorder.url).balance)
    recorder.answer({"code": 0, "data": "lots"})
    errors["unexpected balance"] = raised(client(recorder.url).balance)
    recorder.answer({"code": 0, "data": [1]})
    errors["unexpected record"] = raised(lambda: client(recorder.url).find_message("m-1"))
    for number, name in [("12345", "not mobile"), ("13800138000,13900139000", "several")]:
        errors[name] = raised(lambda number=number: normalize_number(number))
    errors["empty"] = raised(lambda: normalize_number(" "))
    return errors


def test_every_kind_the_client_raises_is_in_the_catalogue(sandbox, recorder):  # noqa: F811
    with ExitStack() as opened:
        errors = client_errors(sandbox, recorder, opened)
    chinese = {}
    for name, error in errors.items():
        assert error.kind in TEMPLATES, (name, error.kind, error)
        chinese[name] = assert_chinese(error.kind, error.params)
    kinds = {name: error.kind for name, error in errors.items()}

    assert kinds["not sent"] == ErrorKind.NOT_SENT
    assert chinese["not sent"].startswith(f"无法连接 {CLOSED_PORT_URL}/sms/send.do，请求未发出（")
    # A balance read sends nothing: its kind does not say that nothing was sent.
    assert kinds["unreachable"] == ErrorKind.UNREACHABLE
    assert chinese["unreachable"].startswith(f"无法连接 {CLOSED_PORT_URL}/account/balance.do（")
    assert "请求未发出" not in chinese["unreachable"]
    assert "请求可能已被处理" in chinese["no answer"]
    assert chinese["http 500"] == "/account/balance.do 返回 HTTP 500：服务商可能已处理该请求"
    assert chinese["not json"] == "/account/balance.do 的应答不是 JSON"
    assert chinese["http 404"].startswith("/account/balance.do 返回 HTTP 404：请求在处理前即被拒绝")
    assert chinese["refused"].startswith("榛子云返回错误 110（/account/balance.do）：应用秘钥")
    assert chinese["refused"].endswith(
        "检查 AppSecret 是否输入错误，或是否已在用户中心进行了秘钥重置。"
    )
    assert "服务商返回：" in chinese["refused"]
    assert kinds["duplicate"] == ErrorKind.DUPLICATE_MESSAGE_ID
    assert "参数格式错误" not in chinese["duplicate"]
    assert chinese["not mobile"] == "'12345' 不是中国大陆手机号码（以 1[3-9] 开头的 11 位数字）。"
    assert chinese["several"].endswith(" 包含多个号码；榛子云每条短信只接受一个号码。")
    assert chinese["empty"] == "手机号码为空。"
    # The client's own English stays the error's text.
    assert str(errors["refused"]).startswith("Zhenzi error 110 on /account/balance.do: Wrong")


def test_an_error_without_a_shape_of_its_own_keeps_its_text():
    error = ZhenziInputError("The message is empty.", field="message")
    assert (error.kind, error.params) == ("other", {"text": "The message is empty."})
    assert Reason.from_error(error).render() == "The message is empty."


# --- The services --------------------------------------------------------------------------------


class StoredReasons:
    """Every reason stored on a row at each step: rows move on, their reasons with them."""

    def __init__(self) -> None:
        self.seen: dict[tuple, Message] = {}

    def take(self) -> None:
        for message in Message.objects.exclude(error_kind=""):
            key = (message.number, message.error_kind, message.error_text)
            self.seen[key] = message

    def kinds(self) -> set[str]:
        return set().union(*(kinds_in(message) for message in self.seen.values()))


def kinds_in(message: Message) -> set[str]:
    """The kind of a message's reason and of every reason inside it."""
    found: set[str] = set()

    def visit(kind: str, params: Mapping[str, Any]) -> None:
        found.add(kind)
        for value in params.values():
            if isinstance(value, Mapping) and "kind" in value:
                visit(value["kind"], value.get("params", {}))

    visit(message.error_kind, message.error_params)
    return found


#: The kinds the services write themselves: their English is the catalogue's. (The client's
#: errors keep their own English, which may say more, e.g. a provider code's Chinese meaning.)
SERVICE_KINDS = {
    ErrorKind.CLAIM_EXPIRED,
    ErrorKind.NEVER_RECEIVED,
    ErrorKind.DUPLICATE_TAKEN_AS_SENT,
    ErrorKind.NO_LOOKUP,
    ErrorKind.MASKED_NOT_RESENT,
    ErrorKind.MASKED_AFTER_ERROR,
    ErrorKind.GAVE_UP,
    ErrorKind.LOOKUP_FAILED,
    ErrorKind.BAD_TEMPLATE_PARAMS,
}


@pytest.mark.django_db(transaction=True)
def test_every_kind_the_services_store_is_in_the_catalogue(settings, sandbox, clock):
    """Drive the services through each outcome that stores a reason; every kind they store
    renders in Chinese from the catalogue, and the English they store is its English."""
    zhenzi = {**settings.ZHENZI, "API_URL": sandbox.url, "RETRY_DELAY": 1}
    settings.ZHENZI = {**zhenzi, "RECONCILE_DELAY": 1, "RECONCILE_SETTLE": 1, "MAX_ATTEMPTS": 2}
    sandbox.hang_seconds = 0

    def queued(number: str, **fields: Any) -> Message:
        return Message.objects.create(
            number=number, text="【测试】通知", next_attempt_at=clock.moment, **fields
        )

    stored = StoredReasons()

    def work(moves: int = 1) -> None:
        for _ in range(moves):
            services.run_workers()
            stored.take()
            clock.move(2)

    send_sms(["13800138000", "12345", "13800138000,13900139000", " "], "【测试】通知", queue=True)
    queued("13800000001", content_masked=True)  # masked_not_resent
    queued("13800000002", template_id="1001", template_params={"code": 1})  # bad params
    work()  # the first number is sent
    for fault, number in [("code1000", "13800000003"), ("http500", "13800000004")]:
        queued(number)
        sandbox.fail_next(fault)
        work()  # 1000: retried, then given up below; 500: unknown, never received below
    queued("13800000005")
    sandbox.fail_next("cut")
    work()
    sandbox.fail_next("http500")  # the look-up fails
    work()
    sandbox.fail_next("code1000")
    work(4)  # every other unsettled message settles or gives up
    duplicate = queued("13800000006")
    with ZhenziClient(sandbox.url, "test-app", APP_SECRET, timeout=2) as client:
        sandbox.late_seconds = 3600  # recorded long after the test
        sandbox.fail_next("late")
        with pytest.raises(ZhenziError):
            client.send(duplicate.number, duplicate.text, message_id=duplicate.message_id)
    work()  # refused repeat: duplicate_message_id
    duplicate.refresh_from_db()
    assert duplicate.error_kind == ErrorKind.DUPLICATE_MESSAGE_ID
    work(3)  # never shown: taken as sent
    stale = queued("13800000007", status=Status.SENDING, claimed_at=clock.moment - timedelta(1))
    services.expire_stale_claims()
    stored.take()
    stale.refresh_from_db()
    assert stale.error_kind == ErrorKind.CLAIM_EXPIRED
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": CLOSED_PORT_URL}
    send_sms("13800000008", "【测试】通知", queue=True)
    work()  # not sent
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": "django_zhenzi.backends.dummy.SmsBackend"}
    queued("13800000009", status=Status.UNKNOWN, status_changed_at=clock.moment)
    work()  # no look-up

    found = stored.kinds()
    assert found >= {
        ErrorKind.NOT_MOBILE_NUMBER,
        ErrorKind.SEVERAL_NUMBERS,
        ErrorKind.EMPTY_NUMBER,
        ErrorKind.MASKED_NOT_RESENT,
        ErrorKind.BAD_TEMPLATE_PARAMS,
        ErrorKind.PROVIDER_ERROR,
        ErrorKind.GAVE_UP,
        ErrorKind.NEVER_RECEIVED,
        ErrorKind.LOOKUP_FAILED,
        ErrorKind.DUPLICATE_TAKEN_AS_SENT,
        ErrorKind.CLAIM_EXPIRED,
        ErrorKind.NOT_SENT,
        ErrorKind.NO_LOOKUP,
    }, found
    for message in stored.seen.values():
        assert message.error_kind in TEMPLATES, (message.number, message.error_kind)
        assert_chinese(message.error_kind, message.error_params)
        with translation.override("en"):
            rendered = message.error_reason
        if kinds_in(message) <= SERVICE_KINDS:
            assert rendered == message.error_text, message.number  # the English is written


class FailingBackend(BaseSmsBackend):
    """A third party's backend raising its own kind of ZhenziError."""

    def __init__(self, *, error: ZhenziError, **options: Any) -> None:
        super().__init__(**options)
        self.error = error

    def send(self, sms: OutgoingSms) -> dict[str, Any]:
        raise self.error


@pytest.mark.parametrize(
    ("error", "params"),
    [
        (
            ZhenziError("Gateway says no", kind="x" * 40, params={"gateway": "g1"}),
            {"gateway": "g1", "text": "Gateway says no"},
        ),
        (ZhenziError("Gateway says no", kind="x"), {"text": "Gateway says no"}),
        (
            ZhenziError("Gateway says no", kind=ErrorKind.PROVIDER_ERROR, params={"at": object()}),
            {"text": "Gateway says no"},
        ),
        (
            ZhenziError("Gateway says no", kind="x", params={"rate": float("nan")}),
            {"text": "Gateway says no"},
        ),
    ],
    ids=["too-long-kind", "unknown-kind", "params-not-json", "nan"],
)
@pytest.mark.django_db(transaction=True)
def test_an_unknown_kind_or_params_from_a_backend_are_stored_as_other(error, params):
    with translation.override("zh-hans"):
        message = send_sms("13800138000", "【测试】你好", backend=FailingBackend(error=error))
    message.refresh_from_db()

    assert message.status == Status.FAILED
    assert (message.error_kind, message.error_params) == (ErrorKind.OTHER, params)
    assert message.error_text == "Gateway says no"
    assert message.error_reason == "Gateway says no"
