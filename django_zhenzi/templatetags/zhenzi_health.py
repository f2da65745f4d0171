"""``{% zhenzi_health_problems request.user as problems %}``: the admin's health banner, from
the local checks of ``services.health`` (the database only, the balance as last recorded: no
provider call while a page renders)."""

from __future__ import annotations

from django import template
from django.contrib.auth.models import AnonymousUser, PermissionsMixin

from django_zhenzi.services.health import Problem, run_checks

register = template.Library()


@register.simple_tag
def zhenzi_health_problems(user: PermissionsMixin | AnonymousUser) -> list[Problem]:
    """The problems ``user`` may see: the balance only with the view-balance permission."""
    problems = run_checks(provider=False)
    if user.has_perm("django_zhenzi.view_balance"):
        return problems
    return [problem for problem in problems if problem.id != "balance_low"]
