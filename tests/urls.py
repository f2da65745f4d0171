from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("zhenzi/", include("django_zhenzi.urls")),
    path("codes/", include("django_zhenzi.verification.urls", namespace="codes")),
    path("provider/", include("tests.provider_views")),
]
