"""Helpers for tests that run ``zhenzi_send_queued`` in worker processes, and queue messages fast.

A worker process reads the test database from ``DATABASE_URL`` and its ZHENZI settings from
``ZHENZI_<KEY>`` variables (tests/worker_settings.py). The test must use
``@pytest.mark.django_db(transaction=True)`` so the rows it creates are committed and visible to
the worker.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.db import connection, connections

from django_zhenzi import services
from django_zhenzi.models import Message

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKER_SETTINGS = "tests.worker_settings"
TEXT = "【测试】您的订单已发货"


def database_url() -> str:
    """A DATABASE_URL for the database the tests run on (the test database, not the real one)."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(settings['NAME']).resolve()}"
    schemes = {"postgresql": "postgres", "mysql": "mysql"}
    if connection.vendor not in schemes:
        raise NotImplementedError(f"no worker DATABASE_URL for {connection.vendor}")
    user = quote(settings["USER"] or "", safe="")
    password = quote(settings["PASSWORD"] or "", safe="")
    credentials = f"{user}:{password}@" if password else f"{user}@" if user else ""
    port = f":{settings['PORT']}" if settings["PORT"] else ""
    scheme = schemes[connection.vendor]
    return f"{scheme}://{credentials}{settings['HOST'] or ''}{port}/{quote(settings['NAME'])}"


def worker_env(api_url: str, **zhenzi: float | int | str) -> dict[str, str]:
    """The environment of a worker process: this database, this sandbox, these ZHENZI values."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "DATABASE_URL": database_url(),
        "ZHENZI_API_URL": api_url,
    }
    env.update({f"ZHENZI_{key}": str(value) for key, value in zhenzi.items()})
    return env


@contextmanager
def command_process(
    command: str, options: Sequence[str], env: dict[str, str]
) -> Iterator[subprocess.Popen[str]]:
    """A running ``manage.py COMMAND`` process with the worker settings; killed and reaped on
    exit if still running."""
    process = subprocess.Popen(
        [sys.executable, "-m", "django", command, f"--settings={WORKER_SETTINGS}", *options],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            process.communicate(timeout=30)


def worker_process(
    options: Sequence[str], env: dict[str, str]
) -> contextlib.AbstractContextManager[subprocess.Popen[str]]:
    """A running ``zhenzi_send_queued`` process (see ``command_process``)."""
    return command_process("zhenzi_send_queued", options, env)


def finish(process: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    """Wait for a worker process to exit; its (stdout, stderr). Fails the test on a bad exit."""
    stdout, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"worker exited with {process.returncode}:\n{stderr}"
    return stdout, stderr


def wait_while_running(
    process: subprocess.Popen[str], condition: Callable[[], Any], timeout: float
) -> bool:
    """``wait_until(condition)``, failing the test at once with its stderr if the worker exits."""

    def running_and_done() -> Any:
        if process.poll() is not None:
            _, stderr = process.communicate()
            raise AssertionError(f"worker exited early with {process.returncode}:\n{stderr}")
        return condition()

    return wait_until(running_and_done, timeout)


def sent_count(summary: str) -> int:
    """How many messages a worker's closing summary line says it sent."""
    found = re.findall(r"sent (\d+), failed \d+", summary)
    assert found, f"no summary in the worker's output: {summary!r}"
    return int(found[-1])


def run_to_the_end(threads: Sequence[threading.Thread], timeout: float = 120) -> None:
    """Start ``threads``, wait for each (at most ``timeout`` seconds), and fail if one is still
    running."""
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads)


def wait_until(condition: Callable[[], Any], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``condition`` until it is true or ``timeout`` seconds passed; its last verdict."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


def queue_messages(count: int, *, first_number: int = 13800000000) -> list[Message]:
    """``count`` queued free-text messages, due now, to consecutive numbers (one bulk insert)."""
    moment = services.clock.now()
    rows = [
        Message(
            number=str(first_number + index),
            text=TEXT,
            created_at=moment,
            next_attempt_at=moment,
            status_changed_at=moment,
        )
        for index in range(count)
    ]
    return Message.objects.bulk_create(rows, batch_size=500)


@contextmanager
def worker_thread(**options: Any) -> Iterator[list[services.PassResult]]:
    """``services.run_workers(loop=True, **options)`` in a thread of this process: yields the
    list that receives its total. On exit it is stopped and joined; it must have ended, without
    an error (raised here, in the test)."""
    stop = threading.Event()
    totals: list[services.PassResult] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            totals.append(services.run_workers(loop=True, stop=stop, **options))
        except BaseException as error:  # surfaced by the test's thread
            errors.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=work)
    thread.start()
    try:
        yield totals
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert errors == []
