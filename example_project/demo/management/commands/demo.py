"""Run the whole example: migrate, a demo admin login, the sandbox, a queue worker, the server."""

from __future__ import annotations

import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from django_zhenzi import services
from django_zhenzi.conf import zhenzi_settings
from django_zhenzi.sandbox import Sandbox

ADMIN_USERNAME = "admin"
SANDBOX_BALANCE = 1000
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 (only mapped to loopback)


class Command(BaseCommand):
    help = gettext_lazy(
        "Set up and run the example project: migrate, create the demo admin (its login is "
        "printed), start the bundled sandbox when no Zhenzi credentials are set, a queue worker, "
        "and the development server. Stop it with Ctrl-C."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.description = str(self.help)  # argparse formats only a str, not a lazy string
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--host", default="127.0.0.1", help=gettext_lazy("Address the site listens on.")
        )
        parser.add_argument(
            "--port", type=int, default=8000, help=gettext_lazy("Port the site listens on.")
        )
        parser.add_argument(
            "--admin-password",
            help=gettext_lazy(
                "Password of the demo admin (user 'admin'); a new random one by default."
            ),
        )
        parser.add_argument(
            "--report-delay",
            type=float,
            default=2.0,
            help=gettext_lazy("Sandbox only: seconds before it reports a delivery back."),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # A plain `kill` stops the demo as cleanly as Ctrl-C does.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        # Everything that can refuse comes before anything changes: a second demo started
        # beside a running one must not reset the running one's admin password.
        site = site_url(options["host"], options["port"])
        report_to = callback_url(site) if settings.USE_SANDBOX else None
        check_ports(options["host"], options["port"], sandboxed=report_to is not None)
        call_command("migrate", interactive=False, verbosity=0)
        password = options["admin_password"] or secrets.token_urlsafe(9)
        ensure_admin(password)
        sandbox = start_sandbox(report_to, options["report_delay"]) if report_to else None
        address = f"[{options['host']}]" if ":" in options["host"] else options["host"]
        stop_sending = start_sending()
        try:
            self.stdout.write(banner(site, password, sandbox is not None))
            call_command(
                "runserver",
                f"{address}:{options['port']}",
                use_reloader=False,
                insecure_serving=True,
            )
        finally:
            stop_sending()
            if sandbox is not None:
                sandbox.stop()


def check_ports(host: str, port: int, *, sandboxed: bool) -> None:
    """Raise CommandError naming the option or variable to change unless the site's port (and
    in sandbox mode the sandbox's) is free now."""
    problem = listen_problem(host, port)
    if problem is not None:
        raise CommandError(
            _(
                "The site cannot listen on %(host)s:%(port)s (%(error)s). Is the demo running "
                "already? Choose another port with --port."
            )
            % {"host": host, "port": port, "error": problem}
        )
    if not sandboxed:
        return
    address = urlsplit(zhenzi_settings.API_URL)
    problem = listen_problem(address.hostname or "127.0.0.1", address.port or 80)
    if problem is not None:
        raise sandbox_cannot_listen(problem)


def listen_problem(host: str, port: int) -> str | None:
    """Why a server cannot listen on ``host``:``port`` now, or None when it can. Bound as the
    servers bind, with SO_REUSEADDR, so a port left in TIME_WAIT counts as free."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return str(error.strerror or error)
    return None


def ensure_admin(password: str) -> None:
    """Create the demo superuser, or give the existing one ``password``."""
    user, _created = get_user_model().objects.get_or_create(username=ADMIN_USERNAME)
    user.is_staff = user.is_superuser = user.is_active = True
    user.set_password(password)
    user.save()


def site_url(host: str, port: int) -> str:
    """The site's base URL as this machine reaches it (loopback for a wildcard address)."""
    if host in WILDCARD_HOSTS:
        host = "::1" if ":" in host else "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def callback_url(site: str) -> str:
    """The delivery-report URL of ``site``, with the first configured callback token."""
    tokens = zhenzi_settings.callback_tokens
    if not tokens:
        raise CommandError(_("Set ZHENZI_CALLBACK_TOKEN: the sandbox needs it to report back."))
    return site + reverse("django_zhenzi:callback", kwargs={"token": tokens[0]})


def start_sandbox(report_to: str, report_delay: float) -> Sandbox:
    """Start the sandbox where ZHENZI['API_URL'] points, with the configured credentials, so its
    delivery reports come back to ``report_to`` (the site's real callback URL)."""
    address = urlsplit(zhenzi_settings.API_URL)
    sandbox = Sandbox(
        host=address.hostname or "127.0.0.1",
        port=address.port or 80,
        app_id=zhenzi_settings.APP_ID,
        app_secret=zhenzi_settings.APP_SECRET,
        balance=SANDBOX_BALANCE,
        callback_url=report_to,
        report_delay=report_delay,
    )
    try:
        return sandbox.start()
    except OSError as error:
        raise sandbox_cannot_listen(str(error.strerror or error)) from None


def sandbox_cannot_listen(problem: str) -> CommandError:
    return CommandError(
        _(
            "The sandbox cannot listen on %(url)s (%(error)s). Is the demo running already? "
            "Set SANDBOX_PORT to a free port."
        )
        % {"url": zhenzi_settings.API_URL, "error": problem}
    )


def start_sending() -> Callable[[], None]:
    """Start what sends queued messages (``DEMO_DISPATCH``): a worker thread, or a Celery worker
    with beat in a process of its own. Returns what stops it."""
    if getattr(settings, "DEMO_DISPATCH", "worker") == "celery":
        return start_celery()
    stop = threading.Event()
    worker = threading.Thread(target=work, args=(stop,), name="demo-worker")
    worker.start()

    def stop_worker() -> None:
        stop.set()
        worker.join(timeout=10)

    return stop_worker


def start_celery() -> Callable[[], None]:
    """A Celery worker with embedded beat (the sweep) on the project's app, once its broker
    answers; CommandError saying what to do when it does not."""
    from example_project.celery import app

    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as error:
        raise CommandError(
            _(
                "Celery's broker does not answer at %(url)s (%(error)s). Start Redis, or unset "
                "DEMO_DISPATCH to send with a worker thread."
            )
            % {"url": settings.CELERY_BROKER_URL, "error": error}
        ) from error
    schedule = Path(tempfile.mkdtemp(prefix="demo-celerybeat-")) / "schedule"
    command = [sys.executable, "-m", "celery", "-A", "example_project", "worker", "--beat"]
    command += ["--schedule", str(schedule), "--concurrency", "2", "--loglevel", "WARNING"]
    process = subprocess.Popen(command, cwd=settings.PROJECT_DIR)  # noqa: S603 (our own command)

    def stop_celery() -> None:
        process.terminate()  # a warm shutdown: the tasks in flight finish
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(schedule.parent, ignore_errors=True)

    return stop_celery


def work(stop: threading.Event) -> None:
    """Send queued messages and reconcile doubtful ones until ``stop`` is set (a failed pass,
    a database restart included, is retried by ``run_workers`` itself)."""
    try:
        services.run_workers(loop=True, idle_wait=0.5, account_wait=5, stop=stop)
    finally:
        connections.close_all()


def banner(site: str, password: str, sandboxed: bool) -> str:
    """What the demo prints before the server starts: where to go and how to log in."""
    if sandboxed:
        sms = _(
            "SMS: the bundled sandbox at %(url)s; nothing leaves this machine. Numbers ending "
            "in 4 are undeliverable."
        )
    else:
        sms = _("SMS: Zhenzi at %(url)s")
    lines = [
        _("Site: %(url)s") % {"url": f"{site}/"},
        _("Admin: %(url)s (user: %(user)s, password: %(password)s)")
        % {"url": f"{site}/admin/", "user": ADMIN_USERNAME, "password": password},
        sms % {"url": zhenzi_settings.API_URL},
    ]
    if getattr(settings, "DEMO_DISPATCH", "worker") == "celery":
        queue = _("Queue: a Celery worker with beat, on %(broker)s")
        lines.append(queue % {"broker": settings.CELERY_BROKER_URL})
    return "\n".join(["", _("django-zhenzi example"), *(f"  {line}" for line in lines), ""])
