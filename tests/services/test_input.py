"""Input that must be refused before anything is stored or sent: numbers that are not ASCII
digits, lone surrogates, control characters, over-long template ids. Checked through the
public API against the sandbox over real HTTP, the client, the forms and the limits."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

import django_zhenzi
from django_zhenzi import send_sms
from django_zhenzi.admin.send_form import SendForm
from django_zhenzi.client import (
    MAX_TEMPLATE_ID_LENGTH,
    ZhenziClient,
    ZhenziInputError,
    ZhenziTransportError,
    normalize_number,
    normalized_or_none,
    validate_client_ip,
    validate_message,
    validate_template_id,
    validate_template_params,
)
from django_zhenzi.models import Message, RateCounter, VerificationCode
from django_zhenzi.services import sort_recipients
from django_zhenzi.services.limits import RateLimited
from django_zhenzi.verification import send_code
from django_zhenzi.verification.forms import PhoneNumberField
from tests.client.servers import APP_ID, APP_SECRET, recorder  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

NUMBER = "13800138000"
LOCMEM = "django_zhenzi.backends.locmem.SmsBackend"


@pytest.fixture
def zhenzi(settings, sandbox):
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": sandbox.url}
    return sandbox


def refused(function, *args, **kwargs) -> ZhenziInputError:
    with pytest.raises(ZhenziInputError) as caught:
        function(*args, **kwargs)
    return caught.value


# --- Numbers are ASCII digits --------------------------------------------------------------------

NON_ASCII_DIGITS = [
    "13８00138000",  # one full-width digit
    "138００１３８０００",  # full-width from the third
    "１３８００１３８０００",  # all full-width
    "13٨00138000",  # Arabic-Indic
    "13۸00138000",  # Extended Arabic-Indic (Persian)
    "13८00138000",  # Devanagari
    "+8613８00138000",
    "0086 13８0013 8000",
]


@pytest.mark.parametrize("number", NON_ASCII_DIGITS)
def test_a_number_is_ascii_digits_only(number):
    assert refused(normalize_number, number).field == "number"


@pytest.mark.parametrize(
    "number",
    [
        "13800138000",
        13800138000,
        "+86 138-0013-8000",
        "0086 (138) 0013 8000",
        "8613800138000",
        "138\t0013\t8000",
        "138\u30000013\u30008000",  # ideographic spaces, as pasted from Chinese text
    ],
)
def test_the_documented_normalisation_still_holds(number):
    assert normalize_number(number) == NUMBER


@pytest.mark.parametrize("number", NON_ASCII_DIGITS[:3])
def test_a_non_ascii_number_is_refused_everywhere(
    zhenzi, number, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert refused(send_sms, number, "【测试】通知").field == "number"
        rows = send_sms([NUMBER, number], "【测试】通知")
    assert [row.status for row in Message.objects.order_by("id")] == ["sent", "failed"]
    assert rows[1].error_text.endswith(
        "is not a mainland China mobile number (11 digits starting with 1[3-9])."
    )
    assert [message["number"] for message in zhenzi.messages] == [NUMBER]
    field = PhoneNumberField()
    with pytest.raises(ValidationError, match="Enter a mainland China mobile number"):
        field.clean(number)
    form = SendForm({"numbers": f"{NUMBER}\n{number}", "mode": "queue", "message": "【测试】通知"})
    assert form.is_valid()
    assert (form.cleaned_data["numbers"], form.invalid_numbers) == ([NUMBER], [number])


def test_a_non_ascii_number_cannot_slip_past_a_per_number_limit(
    settings, django_capture_on_commit_callbacks
):
    settings.ZHENZI = {
        **settings.ZHENZI,
        "BACKEND": LOCMEM,
        "CODE_MESSAGE": "【测试】您的验证码是{code}，{minutes}分钟内有效。",
        "LIMIT_ALL_SENDS": True,
        "LIMIT_NUMBER_PER_HOUR": 1,
    }
    with django_capture_on_commit_callbacks(execute=True):
        send_code(NUMBER)
        assert refused(send_code, "13８00138000").field == "number"
        assert refused(send_sms, "１３８００１３８０００", "【测试】通知").field == "number"
        with pytest.raises(RateLimited):  # the same number written otherwise: the same counter
            send_sms("+86 138-0013-8000", "【测试】通知")
    assert [sms.number for sms in django_zhenzi.outbox] == [NUMBER]
    assert set(RateCounter.objects.values_list("subject", flat=True)) == {NUMBER, ""}
    assert VerificationCode.objects.count() == 1


@pytest.mark.parametrize("balance", ["²", "١٢٣", "１２３", "-5", "12 "])
def test_a_balance_is_ascii_digits_only(recorder, balance):  # noqa: F811 (the fixture)
    recorder.answer({"code": 0, "data": balance})
    with ZhenziClient(recorder.url, APP_ID, APP_SECRET) as client:
        with pytest.raises(ZhenziTransportError, match="Unexpected balance"):
            client.balance()


# --- Lone surrogates and control characters ------------------------------------------------------

SURROGATE = "\ud800"

#: (send_sms arguments, the field refused) for each input a character can spoil.
SPOILED = {
    "text": (lambda bad: ([NUMBER], {"message": f"【测试】{bad}"}), "message"),
    "template parameter": (
        lambda bad: ([NUMBER], {"template_id": "1001", "template_params": [f"99{bad}88", "5"]}),
        "template_params",
    ),
    "template id": (lambda bad: ([NUMBER], {"template_id": f"10{bad}01"}), "template_id"),
    "client ip": (
        lambda bad: ([NUMBER], {"message": "【测试】通知", "client_ip": f"fe80::1%e{bad}th"}),
        "client_ip",
    ),
    "one number": (lambda bad: (f"138{bad}00138000", {"message": "【测试】通知"}), "number"),
    "a number of a batch": (
        lambda bad: ([NUMBER, f"139{bad}00139000"], {"message": "【测试】通知"}),
        "number",
    ),
}


@pytest.mark.parametrize("bad", [SURROGATE, "\udfff", "\x00", "\x1b", "\x7f", "\x9f"])
@pytest.mark.parametrize("where", SPOILED)
def test_a_bad_character_is_refused_before_anything_is_stored(
    zhenzi, where, bad, django_capture_on_commit_callbacks
):
    make_arguments, field = SPOILED[where]
    numbers, options = make_arguments(bad)

    with django_capture_on_commit_callbacks(execute=True):
        error = refused(send_sms, numbers, **options)

    assert error.field == field
    assert error.character == bad
    assert repr(bad) in str(error)
    str(error).encode("utf-8")  # the error itself is valid text, fit for any log
    assert Message.objects.count() == 0
    assert zhenzi.requests_total == 0


@pytest.mark.parametrize("bad", [SURROGATE, "\x00"])
def test_a_bad_character_never_reaches_the_provider_from_the_client(zhenzi, bad):
    with ZhenziClient(zhenzi.url, APP_ID, APP_SECRET) as client:
        assert refused(client.send, NUMBER, f"【测试】{bad}").field == "message"
        assert refused(client.send_template, NUMBER, "1001", [bad, "5"]).field == "template_params"
        assert refused(client.send_template, NUMBER, bad, ["1", "5"]).field == "template_id"
        error = refused(client.send, NUMBER, "【测试】通知", client_ip=f"fe80::1%{bad}")
        assert error.field == "client_ip"
        assert refused(client.send, f"138{bad}00138000", "【测试】通知").field == "number"
    assert zhenzi.requests_total == 0


@pytest.mark.parametrize("bad", [SURROGATE, "\x00"])
def test_a_code_request_with_a_bad_character_stores_nothing(settings, bad):
    settings.ZHENZI = {**settings.ZHENZI, "BACKEND": LOCMEM}
    assert refused(send_code, NUMBER, message=f"【测试】{bad}{{code}}").field == "message"
    assert refused(send_code, NUMBER, template_id=f"1{bad}").field == "template_id"
    ip = f"fe80::1%{bad}"
    assert refused(send_code, NUMBER, message="【测试】{code}", client_ip=ip).field == "client_ip"
    assert VerificationCode.objects.count() == Message.objects.count() == 0
    assert not RateCounter.objects.exists()


def test_a_text_may_hold_line_breaks_and_tabs(zhenzi, django_capture_on_commit_callbacks):
    text = "【测试】第一行\n第二行\r\n第三行\t完"
    with django_capture_on_commit_callbacks(execute=True):
        message = send_sms(NUMBER, text)
    assert Message.objects.get(pk=message.pk).text == text
    assert zhenzi.messages[0]["message"] == text


@pytest.mark.parametrize("control", ["\n", "\r", "\t", "\x0b"])
def test_a_template_parameter_may_hold_no_control_character(control):
    error = refused(validate_template_params, ["9988", f"15{control}分钟"])
    assert (error.field, error.character) == ("template_params", control)
    assert (
        str(error) == f"Template parameter 1 holds the control character {control!r} at position 2."
    )


def test_the_refusals_say_what_and_where():
    assert str(refused(validate_message, "【测试】a\x00b")) == (
        "The message holds the control character '\\x00' at position 5."
    )
    assert str(refused(validate_template_id, "1\ud83d")) == (
        "The template id holds a lone surrogate ('\\ud83d'), which is not valid Unicode text, "
        "at position 1."
    )
    assert refused(validate_client_ip, "192.0.2.1\x00").field == "client_ip"
    assert refused(validate_message, "【测试】\x85").character == "\x85"  # C1: NEL
    assert validate_message("【测试】😀") == "【测试】😀"  # a pair of surrogates is one character


# --- Template ids fit their column ---------------------------------------------------------------


def test_a_template_id_longer_than_its_column_is_refused(zhenzi):
    assert validate_template_id("7" * MAX_TEMPLATE_ID_LENGTH) == "7" * MAX_TEMPLATE_ID_LENGTH
    error = refused(send_sms, NUMBER, template_id="7" * (MAX_TEMPLATE_ID_LENGTH + 1))
    assert error.field == "template_id"
    assert str(error) == "The template id is 65 characters long; a template id has at most 64."
    assert Message.objects.count() == 0


def test_the_template_id_limit_is_the_columns_and_the_forms():
    assert Message._meta.get_field("template_id").max_length == MAX_TEMPLATE_ID_LENGTH
    assert SendForm().fields["template_id"].max_length == MAX_TEMPLATE_ID_LENGTH


# --- The admin's send form says it in its own words ----------------------------------------------


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"message": "【测试】通知\x0b下一行"}, "message"),
        ({"message": "", "template_id": "1001", "template_params": "99\t88"}, "template_params"),
        ({"message": "", "template_id": "10\x0101"}, "template_id"),
    ],
)
def test_the_send_form_names_the_character_it_refuses(fields, where):
    data = {"numbers": NUMBER, "mode": "queue", "message": "【测试】通知", **fields}
    form = SendForm(data)
    assert not form.is_valid()
    code_point = next(f"U+{ord(c):04X}" for c in "".join(fields.values()) if ord(c) < 0x20)
    assert form.errors == {
        where: [
            f"Remove the character {code_point}: control characters and broken Unicode cannot "
            "be sent."
        ]
    }
    with translation.override("zh-hans"):
        form = SendForm(data)
        form.is_valid()
        assert form.errors[where] == [
            f"请删除字符 {code_point}：控制字符和无效的 Unicode 字符无法发送。"
        ]
    assert Message.objects.count() == 0


def test_normalized_or_none_skips_what_normalize_number_refuses():
    assert normalized_or_none("+86 138-0013-8000") == "13800138000"
    assert normalized_or_none(13800138000) == "13800138000"
    for refused in (
        "1380013",
        "１３８００１３８０００",
        "13800138000,13800138001",
        None,
        True,
        1.5,
    ):
        assert normalized_or_none(refused) is None


def test_sort_recipients_keeps_each_valid_number_once_and_says_where_the_others_were():
    recipients = sort_recipients(["138 0013 8000", "12345", "13900139000", "+8613800138000", ""])
    assert recipients.numbers == ["13800138000", "13900139000"]
    assert sorted(recipients.invalid) == [1, 4]
    assert "not a mainland China mobile number" in str(recipients.invalid[1])
    assert recipients.repeats == {3: 0}
