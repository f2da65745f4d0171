"""The example project. Its Celery app loads with Django when Celery is installed (the standard
wiring), so that ``DEMO_DISPATCH=celery`` hands queued messages to it."""

from importlib.util import find_spec

if find_spec("celery") is not None:
    from example_project.celery import app as celery_app

    __all__ = ["celery_app"]
