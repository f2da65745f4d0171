"""Settings for worker processes started by the tests: tests.settings plus ZHENZI from the env.

A test hands its worker subprocess the sandbox's URL and short timeouts through variables named
``ZHENZI_<KEY>`` (``ZHENZI_API_URL``, ``ZHENZI_TIMEOUT``, ``ZHENZI_CLAIM_TIMEOUT``, ...) and the
test database through ``DATABASE_URL``; see tests/workers.py.
"""

import multiprocessing
import time

from tests.settings import *  # noqa: F403
from tests.settings import ZHENZI, env

# A worker process of ``--processes`` (multiprocessing's child) slow to set Django up, for the
# tests of a stop that comes meanwhile: these settings are what its setup imports.
if multiprocessing.parent_process() is not None:
    time.sleep(env.float("WORKER_PROCESS_SETUP_DELAY", default=0))

_CASTS = {
    "API_URL": str,
    "TIMEOUT": float,
    "CLAIM_TIMEOUT": float,
    "RECONCILE_DELAY": float,
    "RECONCILE_SETTLE": float,
    "RETRY_DELAY": float,
    "RETRY_MAX_DELAY": float,
    "MAX_ATTEMPTS": int,
    "DISPATCH": str,
    "DISPATCH_QUEUES": dict,
    "DISPATCH_BATCH_SIZE": int,
    "TASKS_BACKEND": str,
}

ZHENZI = {
    **ZHENZI,
    **{
        key: env(f"ZHENZI_{key}", cast=cast)
        for key, cast in _CASTS.items()
        if f"ZHENZI_{key}" in env
    },
}

# Celery workers (tests/celery_app.py): the broker, and a key prefix of the run's own on Redis.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="memory://")
CELERY_BROKER_TRANSPORT_OPTIONS = env.json("CELERY_BROKER_TRANSPORT_OPTIONS", default={})
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

if env.bool("SQLITE_AS_STARTPROJECT_MAKES_IT", default=False):
    # The database `startproject` gives: no transaction mode (DEFERRED), the default timeout.
    DATABASES["default"]["OPTIONS"] = {}  # noqa: F405
