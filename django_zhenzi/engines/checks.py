"""System checks of the dispatch settings (``DISPATCH``, ``DISPATCH_QUEUES``,
``TASKS_BACKEND``): E120-E124, registered from ``apps.py``."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from django_zhenzi.checks import TAG
from django_zhenzi.conf import SETTINGS
from django_zhenzi.priority import Priority
from django_zhenzi.services.handoff import DISPATCH_CHOICES

#: Where Django's Tasks framework puts a task when no queue is named.
DEFAULT_QUEUE = "default"


def _setting(config: dict[str, Any], name: str) -> Any:
    """The value of ``name`` (its default when absent), or None when its type is wrong (E003)."""
    value = config.get(name, SETTINGS[name].default)
    return value if SETTINGS[name].accepts(value) else None


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # the parent package is missing
        return False


@register(TAG)
def check_dispatch(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    config = getattr(settings, "ZHENZI", {})
    if not isinstance(config, dict):
        return []  # E001
    errors = _check_engine(_setting(config, "DISPATCH"))
    errors += _check_queues(_setting(config, "DISPATCH_QUEUES"))
    if _setting(config, "DISPATCH") == "tasks" and not errors:
        errors += _check_tasks_backend(config)
    return errors


def _check_engine(dispatch: str | None) -> list[CheckMessage]:
    if dispatch is None:
        return []
    if dispatch not in DISPATCH_CHOICES:
        return [
            Error(
                format_lazy(_("ZHENZI['DISPATCH'] is {value!r}."), value=dispatch),
                hint=format_lazy(
                    _("Use one of: {choices}."), choices=", ".join(map(repr, DISPATCH_CHOICES))
                ),
                id="django_zhenzi.E120",
            )
        ]
    if dispatch == "celery" and not _installed("celery"):
        return [
            Error(
                _("ZHENZI['DISPATCH'] is 'celery' but Celery is not installed."),
                hint=_("pip install 'django-zhenzi[celery]', or use another DISPATCH."),
                id="django_zhenzi.E121",
            )
        ]
    if dispatch == "tasks" and not (_installed("django.tasks") or _installed("django_tasks")):
        return [
            Error(
                _(
                    "ZHENZI['DISPATCH'] is 'tasks' but Django's Tasks framework is missing "
                    "(Django 6 has it; on Django 5.2 it is the django-tasks backport)."
                ),
                hint=_("pip install 'django-zhenzi[tasks]', or use another DISPATCH."),
                id="django_zhenzi.E122",
            )
        ]
    return []


def _check_queues(queues: dict[Any, Any] | None) -> list[CheckMessage]:
    wrong = [
        key
        for key, value in (queues or {}).items()
        if key not in Priority.words() or not isinstance(value, str) or not value
    ]
    return [
        Error(
            format_lazy(_("ZHENZI['DISPATCH_QUEUES'] has a wrong entry for {key!r}."), key=key),
            hint=format_lazy(
                _("Map priorities ({priorities}) to queue names (non-empty strings)."),
                priorities=", ".join(Priority.words()),
            ),
            id="django_zhenzi.E123",
        )
        for key in wrong
    ]


def _check_tasks_backend(config: dict[str, Any]) -> list[CheckMessage]:
    """E124: the Tasks backend is not in settings.TASKS, or refuses one of the queues."""
    alias = _setting(config, "TASKS_BACKEND")
    if alias is None:
        return []
    try:
        from django.tasks import task_backends
    except ImportError:
        from django_tasks import task_backends
    if alias not in task_backends.settings:
        return [
            Error(
                format_lazy(
                    _("ZHENZI['TASKS_BACKEND'] is {alias!r}, which settings.TASKS lacks."),
                    alias=alias,
                ),
                hint=_("Name a backend of settings.TASKS."),
                id="django_zhenzi.E124",
            )
        ]
    accepted = set(task_backends[alias].queues)
    named = _setting(config, "DISPATCH_QUEUES") or {}
    queues = {named.get(word) or DEFAULT_QUEUE for word in Priority.words()}
    missing = sorted(queues - accepted) if accepted else []
    return [
        Error(
            format_lazy(
                _("The Tasks backend {alias!r} does not accept the queue {queue!r}."),
                alias=alias,
                queue=queue,
            ),
            hint=_("Add it to the backend's QUEUES in settings.TASKS."),
            id="django_zhenzi.E124",
        )
        for queue in missing
    ]
