"""The example project's switch to Celery (``DEMO_DISPATCH=celery``): its settings, and the demo
run as a user runs it, a queued message sent by its Celery worker on the machine's Redis."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

import pytest
import redis
import requests

from django_zhenzi.models import Status
from tests.project.example import (
    TEXT,
    load_settings,
    message_statuses,
    post_form,
    running_demo,
)

pytestmark = pytest.mark.slow

#: A Redis database of these tests' own: the demo's queue lives there, emptied afterwards.
DEMO_BROKER = "redis://127.0.0.1:6379/14"


def sender_pid(database: Path) -> int:
    """The process id in the claim token of the demo's one message (host:pid:random)."""
    with contextlib.closing(sqlite3.connect(database, timeout=10)) as connection:
        (token,) = connection.execute("SELECT claim_token FROM django_zhenzi_message").fetchone()
    return int(token.split(":")[1])


def test_the_switch_hands_queued_messages_to_celery_on_redis(tmp_path):
    assert load_settings(tmp_path)["ZHENZI"].get("DISPATCH") is None  # the worker thread
    zhenzi = load_settings(tmp_path, DEMO_DISPATCH="celery")["ZHENZI"]
    assert zhenzi["DISPATCH"] == "celery"


@pytest.fixture
def demo_broker() -> str:
    client = redis.Redis.from_url(DEMO_BROKER)
    try:
        client.ping()
    except redis.ConnectionError as error:
        pytest.skip(f"Redis does not answer: {error}")
    yield DEMO_BROKER
    client.flushdb()  # database 14 is these tests' own
    client.close()


def test_the_demo_sends_a_queued_message_through_its_celery_worker(tmp_path, demo_broker):
    variables = {"DEMO_DISPATCH": "celery", "CELERY_BROKER_URL": demo_broker}
    with running_demo(tmp_path, variables) as demo, requests.Session() as session:
        session.headers["Accept-Language"] = "en"
        post_form(
            session,
            demo.url + "/admin/login/?next=/admin/",
            {"username": "admin", "password": demo.admin_password},
        ).close()
        form = {"numbers": "13800138000", "message": TEXT, "mode": "queue", "priority": "high"}
        with post_form(session, demo.url + "/admin/django_zhenzi/message/send/", form) as sent:
            assert sent.status_code == 200, sent.text

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if message_statuses(demo.database) == [("13800138000", Status.DELIVERED)]:
                break
            time.sleep(0.2)
        assert message_statuses(demo.database) == [("13800138000", Status.DELIVERED)], demo.log()
        assert sender_pid(demo.database) != demo.process.pid  # a Celery worker's, not a thread's
    log = demo.log()
    assert "队列：Celery 工作进程（含 beat），代理为 redis://127.0.0.1:6379/14" in log
    assert "Traceback" not in log
