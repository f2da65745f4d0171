"""``manage.py zhenzi_sandbox``: run the bundled Zhenzi-compatible sandbox for this project.

Takes the options of ``python -m django_zhenzi.sandbox``; those not given default to the
project's settings: the appId and appSecret from ``ZHENZI``, and the host and port from
``ZHENZI["API_URL"]`` when it is an ``http://`` loopback URL (the sandbox the project talks to).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.core.management.base import CommandError, CommandParser
from django.utils.translation import gettext_lazy as _

from django_zhenzi.conf import is_loopback, zhenzi_settings
from django_zhenzi.management.base import ZhenziCommand
from django_zhenzi.sandbox import add_arguments, sandbox_from_options
from django_zhenzi.sandbox.cli import run


def defaults_from_settings() -> dict[str, Any]:
    """Option defaults taken from ``settings.ZHENZI`` (only the keys it provides)."""
    defaults: dict[str, Any] = {}
    for setting, option in (("APP_ID", "app_id"), ("APP_SECRET", "app_secret")):
        value = getattr(zhenzi_settings, setting)
        if isinstance(value, str) and value:
            defaults[option] = value
    api_url = zhenzi_settings.API_URL
    if isinstance(api_url, str):
        url = urlsplit(api_url)
        try:
            port = url.port
        except ValueError:
            return defaults
        if url.scheme == "http" and is_loopback(url.hostname):
            defaults["host"] = url.hostname
            defaults["port"] = port or 80
    return defaults


class Command(ZhenziCommand):
    help = _(
        "Run a local Zhenzi Cloud SMS compatible server (the sandbox) until Ctrl-C or SIGTERM. "
        "Credentials and address default to settings.ZHENZI."
    )
    requires_system_checks: list[str] = []  # the sandbox does not depend on the project's config

    def add_arguments(self, parser: CommandParser) -> None:
        add_arguments(parser)
        parser.set_defaults(**defaults_from_settings())

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            sandbox = sandbox_from_options(options)
        except ValueError as invalid:
            raise CommandError(str(invalid)) from invalid
        # A secret taken from the settings may be a real one: never print it.
        show_secret = options["app_secret"] != zhenzi_settings.APP_SECRET
        try:
            run(sandbox, self._write_line, show_secret=show_secret)
        except OSError as failure:
            raise CommandError(
                _("Cannot serve on {host}:{port}: {error}").format(
                    host=sandbox.host, port=sandbox.port, error=failure
                )
            ) from failure

    def _write_line(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()
