"""The example project's URLs for tests that run its pages in this process (see the
``example_site`` fixture in tests/test_example_project.py), without its ``urls.py``, which
renames the admin site for the whole process. Needs ``example_project/`` on ``sys.path``."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("zhenzi/", include("django_zhenzi.urls")),
    path("", include("demo.urls")),
]
