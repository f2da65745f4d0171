"""The phone number of each user, for ``ZhenziAccountAdapter``'s phone hooks."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class UserPhone(models.Model):
    """A user's mobile number (one per user), normalised to its 11 digits.

    A number counts for signing in only once verified, and then belongs to one user alone
    (``verified_number``, the number once verified and NULL until then, is unique). An unverified
    number claims nothing: someone typing another person's number at sign-up cannot keep its
    owner from signing up with it. A unique column that is NULL until verified, rather than a
    conditional constraint, because MySQL and MariaDB have no conditional unique constraints.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        related_name="zhenzi_phone",
        on_delete=models.CASCADE,
    )
    number = models.CharField(_("number"), max_length=20)
    verified_number = models.CharField(
        _("verified number"), max_length=20, unique=True, null=True, blank=True, editable=False
    )
    changed_at = models.DateTimeField(_("changed at"), auto_now=True)

    class Meta:
        verbose_name = _("user phone")
        verbose_name_plural = _("user phones")
        indexes = [models.Index(fields=["number"], name="zhenzi_userphone_number_idx")]

    def __str__(self) -> str:
        return self.number

    @property
    def verified(self) -> bool:
        return self.verified_number is not None
