"""The admin's send form: one text or template to one number or many."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from django_zhenzi import services
from django_zhenzi.client import (
    MAX_MESSAGE_LENGTH,
    MAX_TEMPLATE_ID_LENGTH,
    ZhenziInputError,
    message_length,
    normalized_or_none,
)
from django_zhenzi.priority import Priority

#: Numbers one form may send to; bigger lists belong in code or a management command.
MAX_NUMBERS = 10_000
#: "Send now" sends inside the web request, one provider call per number: more than this many
#: numbers must be queued for the workers instead.
MAX_SEND_NOW = 20

#: How many rejected numbers a message lists before it says "and N more".
LISTED_NUMBERS = 50

_LIST_SEPARATORS = re.compile(r"[,;，；、]")
_LINE_BREAKS = re.compile(r"\r\n?")


def split_numbers(text: str) -> list[str]:
    """The numbers pasted in ``text``: one per line, or separated by commas, semicolons or
    spaces. A piece that is a valid number once its spaces are dropped ("138 0013 8000",
    "+86 13800138000") counts as one number."""
    pieces: list[str] = []
    for line in text.splitlines():
        for piece in _LIST_SEPARATORS.split(line):
            piece = piece.strip()
            if not piece:
                continue
            if normalized_or_none(piece) is None:
                pieces.extend(piece.split())
            else:
                pieces.append(piece)
    return pieces


def list_numbers(numbers: list[str]) -> str:
    """``numbers`` joined for a message, the first LISTED_NUMBERS of them."""
    shown = ", ".join(numbers[:LISTED_NUMBERS])
    left = len(numbers) - LISTED_NUMBERS
    if left <= 0:
        return shown
    return ngettext("%(numbers)s and %(count)d more", "%(numbers)s and %(count)d more", left) % {
        "numbers": shown,
        "count": left,
    }


#: The fields whose characters the client checks, named as the client names them.
CHARACTER_CHECKED_FIELDS = ("message", "template_id", "template_params")

BOTH_CONTENTS = _("Give either a text or a template ID, not both.")
NO_CONTENT = _("Give a text to send, or a template ID.")
PARAMS_WITHOUT_TEMPLATE = _("Template parameters need a template ID.")


def too_long(length: int) -> forms.ValidationError:
    """The error for a text of ``length`` characters, over the provider's limit."""
    return forms.ValidationError(
        ngettext(
            "The text is %(length)d character long; Zhenzi accepts at most %(limit)d.",
            "The text is %(length)d characters long; Zhenzi accepts at most %(limit)d.",
            length,
        ),
        code="too_long",
        params={"length": length, "limit": MAX_MESSAGE_LENGTH},
    )


def is_mobile(number: str) -> bool:
    return normalized_or_none(number) is not None


class SendForm(forms.Form):
    """Numbers, then either a text or a template with its parameters, then now or queued."""

    NOW = "now"
    QUEUE = "queue"

    numbers = forms.CharField(
        label=_("Phone numbers"),
        widget=forms.Textarea(attrs={"rows": 6, "cols": 40}),
        help_text=_(
            "Mainland China mobile numbers, one per line; commas, semicolons and spaces also "
            "separate them. A +86 prefix is allowed."
        ),
    )
    message = forms.CharField(
        label=_("Text"),
        required=False,
        widget=forms.Textarea(
            attrs={
                "rows": 5,
                "cols": 60,
                "data-zhenzi-limit": MAX_MESSAGE_LENGTH,
                "data-zhenzi-counter": "zhenzi-message-count",
            }
        ),
        help_text=_(
            "Free text, with its signature, e.g. 【签名】. Leave it empty to send a template."
        ),
    )
    template_id = forms.CharField(
        label=_("Template ID"),
        required=False,
        max_length=MAX_TEMPLATE_ID_LENGTH,
        help_text=_("An approved template from the Zhenzi console."),
    )
    template_params = forms.CharField(
        label=_("Template parameters"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 40}),
        help_text=_("One per line, in the template's order; blank lines are ignored."),
    )
    mode = forms.ChoiceField(
        label=_("When"),
        choices=[(NOW, _("Send now")), (QUEUE, _("Queue for the workers"))],
        initial=NOW,
        # The admin's own class: its options sit on their own lines, not in a label's width.
        widget=forms.RadioSelect(attrs={"class": "radiolist"}),
    )

    priority = forms.TypedChoiceField(
        label=_("Priority"),
        choices=[(word, Priority[word.upper()].label) for word in Priority.words()],
        initial=Priority.NORMAL.word,
        required=False,
        empty_value=Priority.NORMAL.word,
        help_text=_(
            "Due queued messages are sent by priority: a high one never waits behind a bulk send."
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["mode"].help_text = gettext(
            "Queued messages are sent by the workers (manage.py zhenzi_send_queued). Sending "
            "now is limited to %(limit)d numbers."
        ) % {"limit": MAX_SEND_NOW}
        self.invalid_numbers: list[str] = []
        self.duplicate_count = 0

    def clean_numbers(self) -> list[str]:
        """The valid numbers, normalized and without repeats; the others are kept aside in
        ``invalid_numbers`` so the valid ones can go."""
        pieces = split_numbers(self.cleaned_data["numbers"])
        if len(pieces) > MAX_NUMBERS:
            raise forms.ValidationError(
                _("At most %(limit)d numbers can be sent to at once; %(count)d were given."),
                code="too_many",
                params={"limit": MAX_NUMBERS, "count": len(pieces)},
            )
        recipients = services.sort_recipients(pieces)
        self.invalid_numbers = [pieces[position] for position in recipients.invalid]
        self.duplicate_count = len(recipients.repeats)
        if not recipients.numbers:
            raise forms.ValidationError(
                _("None of these is a mainland China mobile number: %(numbers)s"),
                code="no_valid_number",
                params={"numbers": list_numbers(self.invalid_numbers) or "-"},
            )
        return recipients.numbers

    def clean_message(self) -> str:
        # Browsers send line breaks as CRLF; the provider would count two characters for each.
        text = _LINE_BREAKS.sub("\n", self.cleaned_data["message"])
        length = message_length(text)
        if length > MAX_MESSAGE_LENGTH:
            raise too_long(length)
        return text

    def clean_template_params(self) -> list[str]:
        lines = self.cleaned_data["template_params"].splitlines()
        return [line.strip() for line in lines if line.strip()]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        text, template_id = data.get("message"), data.get("template_id")
        if "message" in data and "template_id" in data:
            if text and template_id:
                self.add_error(None, BOTH_CONTENTS)
            elif not text and not template_id:
                self.add_error(None, NO_CONTENT)
        if data.get("template_params") and not template_id:
            self.add_error("template_params", PARAMS_WITHOUT_TEMPLATE)
        numbers = data.get("numbers") or []
        if data.get("mode") == self.NOW and len(numbers) > MAX_SEND_NOW:
            self.add_error(
                "mode",
                forms.ValidationError(
                    _(
                        "Sending now is limited to %(limit)d numbers; queue bigger sends for "
                        "the workers."
                    ),
                    code="too_many_for_now",
                    params={"limit": MAX_SEND_NOW},
                ),
            )
        if not self.errors:
            self._check_content(data)
        return data

    def _check_content(self, data: dict[str, Any]) -> None:
        """The service's own checks, for anything the fields above let through."""
        try:
            services.validate_content(
                data["message"] or None, data["template_id"] or None, data["template_params"], None
            )
        except ZhenziInputError as error:
            self.add_input_error(error)

    def add_input_error(self, error: ZhenziInputError) -> None:
        """Show an input error of the client or the services in the form's own words, in the
        page's language, on the field it is about and naming what was refused (the error's own
        text is English, for code and logs)."""
        data = self.cleaned_data
        text, template_id = data.get("message") or "", data.get("template_id") or ""
        if error.character is not None and error.field in CHARACTER_CHECKED_FIELDS:
            self.add_error(
                error.field,
                forms.ValidationError(
                    _(
                        "Remove the character %(character)s: control characters and broken "
                        "Unicode cannot be sent."
                    ),
                    code="unsendable_character",
                    params={"character": f"U+{ord(error.character):04X}"},
                ),
            )
        elif error.field == "number":
            refused = [number for number in data.get("numbers") or () if not is_mobile(number)]
            self.add_error(
                "numbers",
                forms.ValidationError(
                    _("Not a mainland China mobile number: %(numbers)s"),
                    code="invalid_number",
                    params={"numbers": list_numbers(refused) or "-"},
                ),
            )
        elif error.field == "message" and text and template_id:
            self.add_error(None, BOTH_CONTENTS)
        elif error.field == "message" and text:
            self.add_error("message", too_long(message_length(text)))
        elif error.field == "message":
            self.add_error(None, NO_CONTENT)
        elif error.field == "template_id" and template_id:
            self.add_error(
                "template_id",
                forms.ValidationError(
                    _("“%(template_id)s” is not a template ID: it must not hold spaces."),
                    code="invalid_template_id",
                    params={"template_id": template_id},
                ),
            )
        elif error.field in ("template_id", "template_params") and not template_id:
            self.add_error("template_params", PARAMS_WITHOUT_TEMPLATE)
        elif error.field == "template_params":
            self.add_error(
                "template_params",
                _("Write the template parameters as text, one per line."),
            )
        else:
            self.add_error(None, _("This send was refused as invalid; nothing was stored."))

    @property
    def queue(self) -> bool:
        return self.cleaned_data["mode"] == self.QUEUE
