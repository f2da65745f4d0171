"""``path("phone/", include("django_zhenzi.verification.urls"))``: the code request page at
``phone/`` and the check page at ``phone/check/``, named ``zhenzi_verification:request`` and
``zhenzi_verification:check``. Include it twice (``namespace=``) for two flows."""

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
