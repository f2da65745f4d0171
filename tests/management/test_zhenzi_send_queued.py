"""zhenzi_send_queued, run with call_command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from urllib.parse import urlsplit

import pytest
from django.db import connection

from django_zhenzi import send_sms
from django_zhenzi.models import (
    Message,
    Status,
)
from tests.management.run_commands import (
    TEXT,
    accepted_numbers,
    run,
)
from tests.paths import REPO
from tests.workers import wait_until

pytestmark = pytest.mark.django_db


# --- zhenzi_send_queued --------------------------------------------------------------------------


def test_send_queued_respects_the_limit(zhenzi):
    send_sms([f"1380013800{n}" for n in range(5)], TEXT, queue=True)

    out, _ = run("zhenzi_send_queued", limit=2)

    assert len(zhenzi.messages) == 2
    assert Message.objects.filter(status=Status.SENT).count() == 2
    assert Message.objects.filter(status=Status.QUEUED).count() == 3
    assert out.startswith("sent 2, failed 0,")


def database_url_for_subprocess() -> str:
    """DATABASE_URL of the test database this test runs on."""
    name = connection.settings_dict["NAME"]
    if connection.vendor == "sqlite":
        return f"sqlite:///{name}"
    return urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{name}").geturl()


@pytest.mark.django_db(transaction=True)
def test_loop_worker_sends_while_running_and_stops_on_sigterm(sandbox, tmp_path):
    # tests.settings, pointed at this test's sandbox.
    (tmp_path / "worker_settings.py").write_text(
        "from tests.settings import *  # noqa: F403\n"
        f"ZHENZI = {{**ZHENZI, 'API_URL': {sandbox.url!r}}}  # noqa: F405\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]),
        "DATABASE_URL": database_url_for_subprocess(),
    }
    command = [
        sys.executable,
        *("-m", "django", "zhenzi_send_queued", "--loop", "--idle-wait", "0.1"),
        "--settings=worker_settings",
    ]
    with open(tmp_path / "out", "w") as out, open(tmp_path / "err", "w") as err:
        worker = subprocess.Popen(command, env=env, stdout=out, stderr=err, cwd=tmp_path)

    def sent(message: Message) -> bool:
        return Message.objects.filter(pk=message.pk, status=Status.SENT).exists()

    try:
        first = send_sms("13800138000", TEXT, queue=True)
        assert wait_until(lambda: sent(first), timeout=30), (tmp_path / "err").read_text()
        second = send_sms("13900139000", TEXT, queue=True)  # queued while the worker runs
        assert wait_until(lambda: sent(second), timeout=10)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=10) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert accepted_numbers(sandbox) == ["13800138000", "13900139000"]
    assert (tmp_path / "out").read_text().startswith("sent 2, failed 0,")
    assert "Stopping: finishing the messages in flight..." in (tmp_path / "err").read_text()
