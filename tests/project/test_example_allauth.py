"""The example project's DEMO_SIGN_IN switch (the browser test in tests/test_e2e_browser.py runs
the allauth sign-in itself)."""

from __future__ import annotations

import importlib.util

import pytest

from tests.project.example import manage


@pytest.mark.skipif(
    importlib.util.find_spec("allauth") is None, reason="django-allauth is not installed"
)
def test_demo_sign_in_allauth_passes_the_checks_and_routes_allauth(tmp_path):
    done = manage(tmp_path, "check", "--fail-level", "WARNING", DEMO_SIGN_IN="allauth")
    assert done.returncode == 0, done.stderr
    shown = manage(
        tmp_path,
        "shell",
        "-c",
        "from django.urls import reverse; print(reverse('account_signup'), "
        "reverse('demo:signed_in'))",
        DEMO_SIGN_IN="allauth",
    )
    assert shown.stdout.splitlines()[-1].split() == ["/accounts/signup/", "/signed-in/"], (
        shown.stderr
    )


def test_an_unknown_sign_in_is_refused(tmp_path):
    done = manage(tmp_path, "check", DEMO_SIGN_IN="django-two-factor")
    assert done.returncode != 0
    assert "DEMO_SIGN_IN is 'codes' or 'allauth', not 'django-two-factor'." in done.stderr
