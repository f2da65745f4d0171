"""Settings for benchmarks/bench_send_queued.py and the worker processes it starts.

``DATABASE_URL`` names the database server (PostgreSQL by default); the benchmark creates and drops
``test_<name>`` on it, as the test runner does. ``ZHENZI_API_URL``, ``ZHENZI_APP_ID`` and
``ZHENZI_APP_SECRET`` point the app at the benchmark's sandbox.
"""

import os
from pathlib import Path

import environ

env = environ.Env()

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/zhenzi_bench"

SECRET_KEY = "benchmarks-only-not-secret"  # noqa: S105
DEBUG = False
USE_TZ = True
TIME_ZONE = "Asia/Shanghai"

INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "django_zhenzi"]

DATABASES = {"default": env.db("DATABASE_URL", default=DEFAULT_DATABASE_URL)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, so the worker process can open it; IMMEDIATE keeps concurrent writers from
    # deadlocking (SQLite serializes them: expect far lower figures than on PostgreSQL).
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(__file__).resolve().parent / f".bench-db-{os.getpid()}.sqlite3")
    }
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 30}

ZHENZI = {
    "APP_ID": env("ZHENZI_APP_ID", default="bench-app"),
    "APP_SECRET": env("ZHENZI_APP_SECRET", default="bench-secret-value"),
    "API_URL": env("ZHENZI_API_URL", default="http://127.0.0.1:9"),
    "CALLBACK_TOKEN": "bench-callback-token-0123456789",
    # benchmarks/bench_dispatch.py: the Celery workers it starts hand retries back to Celery.
    "DISPATCH": env("ZHENZI_DISPATCH", default="worker"),
    "DISPATCH_QUEUES": env("ZHENZI_DISPATCH_QUEUES", cast=dict, default={}),
}

# benchmarks/bench_dispatch.py's Celery workers (benchmarks/celery_app.py).
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="memory://")
CELERY_BROKER_TRANSPORT_OPTIONS = env.json("CELERY_BROKER_TRANSPORT_OPTIONS", default={})
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
