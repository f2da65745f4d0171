"""Fixtures shared by the test suite."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.utils import translation
from pytest_django import DjangoDbBlocker

from django_zhenzi import services, signals
from django_zhenzi.sandbox import Sandbox
from tests.private_postgres import PostgresNotInstalled, PrivatePostgres

#: Fixtures that start a server or a process: a test using one belongs to the full suite, not to
#: the fast tier (``pytest -m "not slow"``: locmem and direct service calls only).
PROCESS_FIXTURES = frozenset({"sandbox", "live_server", "private_postgres"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if PROCESS_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def _mysql_time_zone_tables(django_db_blocker: DjangoDbBlocker) -> None:
    """On MySQL and MariaDB, stop at once unless the server has its time zone tables: Django
    needs them with USE_TZ (the admin's date navigation), and without them every such page
    fails with "Database returned an invalid datetime value"."""
    if connection.vendor != "mysql":
        return
    # A connection to the server, without a database: the test database may not exist yet.
    with django_db_blocker.unblock(), connection._nodb_cursor() as cursor:
        cursor.execute("SELECT CONVERT_TZ('2000-01-01 00:00:00', 'UTC', %s)", [settings.TIME_ZONE])
        (converted,) = cursor.fetchone()
    if converted is None:
        pytest.exit(
            f"The MySQL/MariaDB server has no time zone tables (CONVERT_TZ to "
            f"{settings.TIME_ZONE} gives NULL). Load them once: "
            "mariadb-tzinfo-to-sql /usr/share/zoneinfo | mariadb -u root mysql",
            returncode=1,
        )


@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    """Each test starts in the settings' language: a request in Chinese leaves zh-hans active
    in the thread (LocaleMiddleware activates it and never deactivates it)."""
    yield
    translation.deactivate()


@pytest.fixture
def clock() -> Iterator[services.clock.StoppedClock]:
    """The services' clock, stopped at the test's start; the test moves it with
    ``clock.move(seconds)`` or ``clock.at(seconds_from_start)``, or sets ``clock.moment``."""
    with services.clock.stopped() as stopped:
        yield stopped


@pytest.fixture
def login_with(django_user_model):
    """A client logged in as a staff user holding just the given django_zhenzi permissions."""

    def login(*codenames: str) -> Client:
        user = django_user_model.objects.create_user(
            f"staff-{uuid.uuid4().hex[:8]}", password="unused", is_staff=True
        )
        permissions = Permission.objects.filter(
            content_type__app_label="django_zhenzi", codename__in=codenames
        )
        assert permissions.count() == len(set(codenames))
        user.user_permissions.set(permissions)
        client = Client()
        client.force_login(user)
        return client

    return login


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A started sandbox serving the credentials of tests/settings.py; stopped after the test."""
    with Sandbox(port=0, app_id="test-app", app_secret="test-secret-value") as running:
        yield running


@pytest.fixture
def healthy_sandbox(settings, sandbox: Sandbox) -> Iterator[Sandbox]:
    """The app pointed at the sandbox, whose balance (5,000) is well above the threshold
    (100); the cache, where the health checks keep what they last saw, empty."""
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": sandbox.url, "LOW_BALANCE_THRESHOLD": 100}
    sandbox.balance = 5000
    cache.clear()
    yield sandbox
    cache.clear()


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A started PostgreSQL cluster of the test's own (tests/private_postgres.py), to stop and
    restart at will; stopped and removed afterwards. Skips when PostgreSQL is not installed."""
    try:
        cluster = PrivatePostgres()
    except PostgresNotInstalled as missing:
        pytest.skip(f"no private PostgreSQL cluster: {missing}")
    with cluster:
        yield cluster


@pytest.fixture
def received_signals() -> Iterator[list[tuple[str, dict]]]:
    """Every message_sent, message_failed and status_changed sent during the test, any thread."""
    seen: list[tuple[str, dict]] = []

    def recorder(name: str):
        def record(sender, **kwargs):
            seen.append((name, kwargs))

        return record

    receivers = {
        name: recorder(name) for name in ("message_sent", "message_failed", "status_changed")
    }
    for name, receiver in receivers.items():
        getattr(signals, name).connect(receiver)
    yield seen
    for name, receiver in receivers.items():
        getattr(signals, name).disconnect(receiver)
