"""``path("zhenzi/", include("django_zhenzi.urls"))`` gives ``/zhenzi/callback/<token>/``.

Reverse it as ``reverse("django_zhenzi:callback", kwargs={"token": ...})``. Staff also get
``/zhenzi/metrics.json`` (``django_zhenzi:metrics``).
"""

from django.urls import path

from django_zhenzi import views
from django_zhenzi.webhooks import views as webhooks

app_name = "django_zhenzi"

urlpatterns = [
    path("callback/<str:token>/", webhooks.callback, name="callback"),
    # The same view without the trailing slash, so APPEND_SLASH never redirects a provider's POST
    # (a redirected POST loses its body), and without a token, to answer 403 rather than 404.
    path("callback/<str:token>", webhooks.callback),
    path("callback/", webhooks.callback),
    path("metrics.json", views.metrics, name="metrics"),
]
