"""``path("phone/", include("django_zhenzi.verification.urls"))``: the code request page at
``phone/`` and the check page at ``phone/check/``, named ``zhenzi_verification:request`` and
``zhenzi_verification:check``. One flow only: both pages use purpose "login" and the default
session keys, so including it twice would let a code from one copy pass the other. For a
second flow, wire the views with their own ``purpose`` and session keys (see
:mod:`django_zhenzi.verification.views` and the docs' verification page)."""

from django.urls import path

from django_zhenzi.verification.views import (
    CHECK_URL_NAME,
    REQUEST_URL_NAME,
    CheckCodeView,
    RequestCodeView,
)

app_name = "zhenzi_verification"

urlpatterns = [
    path("", RequestCodeView.as_view(), name=REQUEST_URL_NAME),
    path("check/", CheckCodeView.as_view(), name=CHECK_URL_NAME),
]
