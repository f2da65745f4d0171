"""The Celery app of the tests' worker processes, wired as a site wires it: settings under the
CELERY_ namespace, the app's tasks found by ``autodiscover_tasks()``."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.worker_settings")

app = Celery("tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
