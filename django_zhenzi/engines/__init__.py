"""Task engines that send queued messages instead of ``zhenzi_send_queued``: Celery
(``celery.py``; ``django_zhenzi/tasks.py`` exposes its tasks to ``autodiscover_tasks()``) and
Django's Tasks framework (``django_tasks.py``). Each task is a thin entry into
``services.handoff``; ``ZHENZI["DISPATCH"]`` picks the engine."""
