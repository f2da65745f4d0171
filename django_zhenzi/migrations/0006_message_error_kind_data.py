"""Give every stored failure its error kind and parameters, read once from its English text.

The patterns below are frozen copies of the wordings the services and the client wrote before
error kinds existed (up to 0005): history, never to be kept in step with today's wording. A text
none of them matches becomes kind "other", shown as it was stored. Backwards nothing is lost:
``error_text`` is untouched, and 0005's reversal drops the kind columns.
"""

import re

from django.db import migrations

MASKED = (
    "Not sent again: the verification code it carried was kept only in memory; request a new code."
)
SEND_PATHS = ("/sms/send.do", "/sms/v2/send.do")

EXACT = {
    "The claim expired before an answer was recorded.": "claim_expired",
    "The provider never received it.": "never_received",
    "Taken as sent: the provider refused its messageId as already used, though "
    "findSmsByMessageId never showed it.": "duplicate_taken_as_sent",
    "The backend cannot look messages up.": "no_lookup",
    MASKED: "masked_not_resent",
    "The phone number is empty.": "empty_number",
}

# (kind, pattern, names of the groups holding another reason)
SHAPES = [
    ("masked_after_error", re.escape(MASKED) + r" \((?P<reason>.+)\)", ("reason",)),
    ("gave_up", r"Gave up after (?P<count>\d+) attempts: (?P<reason>.+)", ("reason",)),
    ("lookup_failed", r"Reconciliation failed, will ask again: (?P<reason>.+)", ("reason",)),
    (
        "bad_template_params",
        r"Stored template parameters are not a list of strings: (?P<params>.+)",
        (),
    ),
    ("not_sent", r"Could not reach (?P<url>\S+), nothing was sent \((?P<detail>.+)\)", ()),
    (
        "no_answer",
        r"No answer from (?P<url>\S+); the request may have been processed \((?P<detail>.+)\)",
        (),
    ),
    (
        "http_maybe_processed",
        r"HTTP (?P<status>\d+) from (?P<path>\S+): the provider may have processed the request",
        (),
    ),
    (
        "http_refused",
        r"HTTP (?P<status>\d+) from (?P<path>\S+): the request was refused before processing "
        r"\(check ZHENZI\['API_URL'\]\)",
        (),
    ),
    ("no_code", r"The answer from (?P<path>\S+) has no integer 'code'", ()),
    ("not_json", r"The answer from (?P<path>\S+) is not JSON", ()),
    ("unexpected_balance", r"Unexpected balance in the answer: (?P<answer>.+)", ()),
    ("unexpected_record", r"Unexpected record in the answer: (?P<type>\w+)", ()),
    (
        "not_mobile_number",
        r"(?P<number>.+) is not a mainland China mobile number \(11 digits starting with "
        r"1\[3-9\]\)\.",
        (),
    ),
    (
        "several_numbers",
        r"(?P<number>.+) holds several numbers; Zhenzi takes exactly one number per message\.",
        (),
    ),
    # "<meaning> (<meaning in Chinese>; provider said: <answer>). <hint>": hints hold no brackets.
    (
        "provider_error",
        r"Zhenzi error (?P<code>-?\d+) on (?P<endpoint>\S+): [^;]*; provider said: "
        r"(?P<answer>.*)\)\. [^()]*",
        (),
    ),
]
COMPILED = [(kind, re.compile(pattern, re.DOTALL), nested) for kind, pattern, nested in SHAPES]
INTEGERS = ("count", "status", "code")


def kind_of(text):
    """The (kind, params) of a stored English text."""
    if text in EXACT:
        return EXACT[text], {}
    for kind, pattern, nested in COMPILED:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        params = {}
        for name, value in match.groupdict().items():
            if name in nested:
                inner_kind, inner_params = kind_of(value)
                params[name] = {"kind": inner_kind, "params": inner_params}
            else:
                params[name] = int(value) if name in INTEGERS else value
        if kind == "not_sent" and not params["url"].endswith(SEND_PATHS):
            kind = "unreachable"
        if kind == "provider_error" and duplicate_message_id(params):
            kind = "duplicate_message_id"
        return kind, params
    return "other", {"text": text}


def duplicate_message_id(params):
    answer = params["answer"].lower()
    return (
        params["code"] == 100
        and "messageid" in answer
        and any(word in answer for word in ("重复", "repeat", "duplicate", "exist"))
    )


#: Rows read and written at a time.
CHUNK = 500


def map_error_texts(apps, schema_editor):
    """Each chunk's pks are listed first (by pk, after the last chunk's), then those rows are
    read and updated by pk: no query reads the rows while they are being written."""
    Message = apps.get_model("django_zhenzi", "Message")
    messages = Message.objects.using(schema_editor.connection.alias)
    pending = messages.filter(error_kind="").exclude(error_text="").order_by("pk")
    last = None
    while True:
        after = pending if last is None else pending.filter(pk__gt=last)
        pks = list(after.values_list("pk", flat=True)[:CHUNK])
        if not pks:
            return
        last = pks[-1]
        batch = list(messages.filter(pk__in=pks).only("pk", "error_text"))
        for message in batch:
            message.error_kind, message.error_params = kind_of(message.error_text)
        messages.bulk_update(batch, ["error_kind", "error_params"])


class Migration(migrations.Migration):
    dependencies = [
        ("django_zhenzi", "0005_message_error_kind"),
    ]

    operations = [
        migrations.RunPython(map_error_texts, migrations.RunPython.noop, elidable=True),
    ]
