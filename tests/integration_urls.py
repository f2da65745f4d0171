"""The test URLs plus django-allauth's and django-two-factor-auth's own (for the integration
tests: tests/test_contrib_allauth.py, tests/test_contrib_two_factor.py)."""

import importlib.util

from django.urls import include, path

from tests.urls import urlpatterns as test_urlpatterns

urlpatterns = [*test_urlpatterns]
if importlib.util.find_spec("allauth") is not None:
    urlpatterns.append(path("accounts/", include("allauth.urls")))
if importlib.util.find_spec("two_factor") is not None:
    from two_factor.urls import urlpatterns as two_factor_urlpatterns

    urlpatterns.append(path("", include(two_factor_urlpatterns)))
