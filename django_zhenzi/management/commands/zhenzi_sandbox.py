"""``manage.py zhenzi_sandbox``: run the bundled Zhenzi-compatible sandbox for this project.

Takes the options of ``python -m django_zhenzi.sandbox``; those not given default to the
project's settings: the appId and appSecret from ``ZHENZI``, the host and port from
``ZHENZI["API_URL"]`` when it is an ``http://`` loopback URL (the sandbox the project talks to),
and the callback URL from ``--site-url`` and the first ``ZHENZI["CALLBACK_TOKEN"]``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.core.management.base import CommandError, CommandParser
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from django_zhenzi.conf import is_loopback, zhenzi_settings
from django_zhenzi.management.base import ZhenziCommand
from django_zhenzi.sandbox import Sandbox, add_arguments, sandbox_from_options
from django_zhenzi.sandbox.cli import run

DEFAULT_SITE_URL = "http://127.0.0.1:8000"
TOKEN_SHOWN_AS = "<CALLBACK_TOKEN>"  # noqa: S105 (a placeholder, shown instead of the token)


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


def callback_url_from_settings(site_url: str) -> tuple[str | None, str]:
    """The site's callback URL for the first ``CALLBACK_TOKEN`` under ``site_url``, or None and
    why there is none (no token, or the site's URLconf does not include ``django_zhenzi.urls``)."""
    tokens = zhenzi_settings.callback_tokens
    if not tokens:
        return None, _(
            "No --callback-url and no ZHENZI['CALLBACK_TOKEN']: the sandbox sends no status "
            "reports, so messages stay 'sent'."
        )
    try:
        path = reverse("django_zhenzi:callback", kwargs={"token": tokens[0]})
    except NoReverseMatch:
        return None, _(
            "No --callback-url, and the site's ROOT_URLCONF does not include django_zhenzi.urls "
            '(add path("zhenzi/", include("django_zhenzi.urls"))): the sandbox sends no '
            "status reports, so messages stay 'sent'."
        )
    return site_url.rstrip("/") + path, ""


def api_url_warning(sandbox_url: str) -> str:
    """A warning when ``ZHENZI["API_URL"]`` is not ``sandbox_url`` (the site would send
    elsewhere), else ``""``."""
    api_url = zhenzi_settings.API_URL
    if isinstance(api_url, str) and _same_server(api_url, sandbox_url):
        return ""
    return _(
        "ZHENZI['API_URL'] is {api_url}, not this sandbox: the site sends through that server. "
        "Set it to {sandbox_url} to use the sandbox."
    ).format(api_url=api_url, sandbox_url=sandbox_url)


def _same_server(url: str, other: str) -> bool:
    """Same scheme and port, and the same host (any two loopback names count as one: the
    sandbox's URL names the address it bound, ``localhost`` in the settings is fine)."""
    first, second = urlsplit(url), urlsplit(other)
    try:
        ports = (first.port or 80, second.port or 80)
    except ValueError:
        return False
    same_host = first.hostname == second.hostname or (
        is_loopback(first.hostname) and is_loopback(second.hostname)
    )
    return first.scheme == second.scheme and ports[0] == ports[1] and same_host


class Command(ZhenziCommand):
    help = gettext_lazy(
        "Run a local Zhenzi Cloud SMS compatible server (the sandbox) until Ctrl-C or SIGTERM. "
        "Credentials and address default to settings.ZHENZI."
    )
    requires_system_checks: list[str] = []  # the sandbox does not depend on the project's config

    def add_arguments(self, parser: CommandParser) -> None:
        defaults = defaults_from_settings()
        labels = {"callback_url": "--site-url + the callback path of ZHENZI['CALLBACK_TOKEN']"}
        if "app_secret" in defaults:  # a real secret, maybe: never show it
            labels["app_secret"] = "ZHENZI['APP_SECRET']"  # noqa: S105 (its name, not its value)
        add_arguments(parser, default_labels=labels)
        parser.set_defaults(**defaults)
        parser.add_argument(
            "--site-url",
            default=DEFAULT_SITE_URL,
            help=gettext_lazy(
                "base URL of this site (runserver), for the default --callback-url "
                "(default: %(default)s)"
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        shown_callback_url = None
        if options["callback_url"] is None:
            callback_url, problem = callback_url_from_settings(options["site_url"])
            if problem:
                self.stderr.write(problem)
            else:
                options["callback_url"] = callback_url
                token = zhenzi_settings.callback_tokens[0]
                shown_callback_url = callback_url.replace(token, TOKEN_SHOWN_AS)
        try:
            sandbox = sandbox_from_options(options)
        except ValueError as invalid:
            raise CommandError(str(invalid)) from invalid
        # A secret taken from the settings may be a real one: never print it.
        show_secret = options["app_secret"] != zhenzi_settings.APP_SECRET
        try:
            run(
                sandbox,
                self._write_line,
                show_secret=show_secret,
                shown_callback_url=shown_callback_url,
                started=self._warn_about_api_url,
            )
        except OSError as failure:
            raise CommandError(
                _("Cannot serve on {host}:{port}: {error}").format(
                    host=sandbox.host, port=sandbox.port, error=failure
                )
            ) from failure

    def _warn_about_api_url(self, sandbox: Sandbox) -> None:
        warning = api_url_warning(sandbox.url)
        if warning:
            self.stderr.write(warning)
            self.stderr.flush()

    def _write_line(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()
