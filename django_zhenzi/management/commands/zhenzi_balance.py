"""``manage.py zhenzi_balance``: print the account's balance and record it as a snapshot."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from django_zhenzi import services
from django_zhenzi.backends import OperationNotSupported
from django_zhenzi.client import ZhenziError
from django_zhenzi.management.base import ZhenziCommand


class Command(ZhenziCommand):
    help = gettext_lazy(
        "Print how many SMS are left on the Zhenzi account and record the figure (a balance "
        "snapshot, shown in the admin)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            balance = services.read_balance()
        except OperationNotSupported as unsupported:
            raise CommandError(
                _("The configured backend has no account balance: {error}").format(
                    error=unsupported
                )
            ) from unsupported
        except ZhenziError as error:
            # ZhenziAPIError's text holds the code, its meaning and the hint, never the secret.
            raise CommandError(
                _("Could not read the balance: {error}").format(error=error)
            ) from error
        self.stdout.write(_("Balance: {balance} SMS left.").format(balance=balance))
