"""How urgent a queued message is: senders claim due messages by priority, then by the time
they became due, and the engines route each priority to a queue of its own."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Priority(models.IntegerChoices):
    """Stored as a number so that the claim's ``ORDER BY`` puts the most urgent first."""

    HIGH = 1, _("high")
    NORMAL = 2, _("normal")
    BULK = 3, _("bulk")

    @property
    def word(self) -> str:
        """The name callers use: ``send_sms(..., priority="high")``."""
        return self.name.lower()

    @classmethod
    def words(cls) -> list[str]:
        return [member.word for member in cls]

    @classmethod
    def parse(cls, value: str | int | Priority) -> Priority:
        """``"high"``, ``"normal"`` or ``"bulk"`` (or a member); ValueError for anything else."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str) and value.upper() in cls.__members__:
            return cls[value.upper()]
        raise ValueError(f"priority must be one of {', '.join(cls.words())}, not {value!r}")
