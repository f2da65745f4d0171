"""``{% zhenzi_health_problems as problems %}``: the admin's health banner, from the local
checks of ``services.health`` (the database only, the balance as last recorded: no provider call
while a page renders)."""

from __future__ import annotations

from django import template

from django_zhenzi.services.health import Problem, run_checks

register = template.Library()


@register.simple_tag
def zhenzi_health_problems() -> list[Problem]:
    return run_checks(provider=False)
