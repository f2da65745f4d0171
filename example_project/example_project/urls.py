from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

admin.site.site_header = _("django-zhenzi example")
admin.site.site_title = _("django-zhenzi example")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("zhenzi/", include("django_zhenzi.urls")),
    path("", include("demo.urls")),
]

if settings.DEMO_SIGN_IN == "allauth":
    urlpatterns.insert(-1, path("accounts/", include("allauth.urls")))
