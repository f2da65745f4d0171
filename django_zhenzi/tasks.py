"""The Celery tasks, where ``app.autodiscover_tasks()`` looks for them (see engines/celery.py)."""

from django_zhenzi.engines.celery import send_queued, sweep

__all__ = ["send_queued", "sweep"]
