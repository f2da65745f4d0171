"""Engine worker processes for the tests: Celery workers on the machine's Redis and RabbitMQ,
and django-tasks-db's ``db_worker``. Each run uses queue names (and, on Redis, a key prefix) of
its own, and removes only those afterwards: the brokers are shared."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from celery import Celery

from tests.workers import REPO_ROOT, wait_until

REDIS_URL = "redis://127.0.0.1:6379/13"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"


@dataclass
class Broker:
    """One broker as a test run uses it: its URL, the run's queue and transport options."""

    name: str
    url: str
    queue: str
    transport_options: dict

    def app(self) -> Celery:
        """A Celery app on this broker, current in this process (``shared_task`` uses it)."""
        app = Celery(f"zhenzi-tests-{self.queue}", set_as_current=True)
        app.conf.update(
            broker_url=self.url,
            broker_transport_options=self.transport_options,
            broker_connection_retry_on_startup=False,
        )
        app.set_current()
        return app

    def remove_queue(self, app: Celery) -> None:
        with app.connection_for_write() as connection:
            channel = connection.default_channel
            channel.queue_delete(self.queue)
        if self.name == "redis":
            client = redis.Redis.from_url(self.url)
            for key in client.scan_iter(match=f"{self.transport_options['global_keyprefix']}*"):
                client.delete(key)
            client.close()


def make_broker(name: str) -> Broker:
    run = uuid.uuid4().hex[:10]
    if name == "redis":
        # Unacknowledged tasks of a killed worker come back after 5 s (the default is an hour).
        options = {"global_keyprefix": f"zhenzi-test-{run}:", "visibility_timeout": 5}
        return Broker(name, REDIS_URL, f"zhenzi-test-{run}", options)
    return Broker(name, RABBITMQ_URL, f"zhenzi-test-{run}", {})


@contextmanager
def celery_app(name: str) -> Iterator[tuple[Broker, Celery]]:
    """A broker of the run's own and a current Celery app on it; skips when the broker is down
    (``.ci/run`` makes sure both answer)."""
    broker = make_broker(name)
    app = broker.app()
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as error:
        pytest.skip(f"{name} does not answer at {broker.url}: {error}")
    try:
        yield broker, app
    finally:
        broker.remove_queue(app)


def queues_env(queue: str) -> str:
    """``ZHENZI_DISPATCH_QUEUES`` routing every priority to ``queue`` (django-environ's dict)."""
    return ",".join(f"{word}={queue}" for word in ("high", "normal", "bulk"))


@contextmanager
def engine_process(
    command: Sequence[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A process in a session of its own (so SIGKILL reaches its children), its output in
    ``log``; killed with its children on exit."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        kill_group(process)


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and every child of it, then reap it."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def celery_worker(
    broker: Broker, env: dict[str, str], log: Path, name: str, *, concurrency: int = 2
) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """A Celery worker process (prefork, ``concurrency`` children) on the run's queue."""
    env = {
        **env,
        "DJANGO_SETTINGS_MODULE": "tests.worker_settings",
        "CELERY_BROKER_URL": broker.url,
        "CELERY_BROKER_TRANSPORT_OPTIONS": json.dumps(broker.transport_options),
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tests.celery_app",
        "worker",
        "-Q",
        broker.queue,
        "-n",
        f"{name}@%h",
        "--concurrency",
        str(concurrency),
        "--pool",
        "prefork",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel",
        "INFO",
    ]
    return engine_process(command, env, log)


def wait_ready(process: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    """Wait for a Celery worker's "ready." line; fail with its log if it exits first."""

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"worker exited with {process.returncode}:\n{log.read_text()}")
        return "ready." in log.read_text(errors="replace")

    assert wait_until(ready, timeout, interval=0.2), f"worker not ready:\n{log.read_text()}"
