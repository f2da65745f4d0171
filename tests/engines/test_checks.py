"""The system checks of the dispatch settings: one test per id (E120-E124)."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from django.core.checks import run_checks
from django.test import override_settings

from django_zhenzi.engines.checks import check_dispatch


def ids_for(tasks: dict[str, Any] | None = None, **zhenzi: Any) -> list[str]:
    overrides: dict[str, Any] = {"ZHENZI": {"APP_ID": "a", "APP_SECRET": "b", **zhenzi}}
    if tasks is not None:
        overrides["TASKS"] = tasks
    with override_settings(**overrides):
        return sorted(message.id for message in check_dispatch())


@pytest.mark.parametrize("dispatch", ["worker", "celery", "tasks"])
def test_each_engine_is_accepted(dispatch):
    assert ids_for(DISPATCH=dispatch) == []


def test_the_dispatch_check_runs_with_the_others():
    with override_settings(ZHENZI={"DISPATCH": "rq"}):
        assert "django_zhenzi.E120" in [message.id for message in run_checks()]


def test_e120_an_unknown_engine():
    assert ids_for(DISPATCH="rq") == ["django_zhenzi.E120"]
    assert ids_for(DISPATCH=5) == []  # E003 reports the type


def test_e121_celery_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "celery", None)  # what an import of a missing package meets
    assert ids_for(DISPATCH="celery") == ["django_zhenzi.E121"]


def test_e122_no_tasks_framework(monkeypatch):
    monkeypatch.setitem(sys.modules, "django.tasks", None)
    monkeypatch.setitem(sys.modules, "django_tasks", None)
    assert ids_for(DISPATCH="tasks") == ["django_zhenzi.E122"]


@pytest.mark.parametrize(
    "queues", [{"urgent": "sms"}, {"high": ""}, {"high": 5}, {"high": "sms", "low": "x"}]
)
def test_e123_a_queue_for_something_that_is_not_a_priority(queues):
    assert ids_for(DISPATCH="celery", DISPATCH_QUEUES=queues) == ["django_zhenzi.E123"]


def test_e124_a_tasks_backend_that_settings_tasks_lacks():
    assert ids_for(DISPATCH="tasks", TASKS_BACKEND="nowhere") == ["django_zhenzi.E124"]


def test_e124_a_queue_the_tasks_backend_refuses(settings):
    backend = settings.TASKS["default"]["BACKEND"]
    tasks = {"default": {"BACKEND": backend, "QUEUES": ["default", "sms-high"]}}
    assert ids_for(tasks, DISPATCH="tasks", DISPATCH_QUEUES={"high": "sms-high"}) == []
    assert ids_for(tasks, DISPATCH="tasks", DISPATCH_QUEUES={"bulk": "sms-bulk"}) == [
        "django_zhenzi.E124"
    ]
