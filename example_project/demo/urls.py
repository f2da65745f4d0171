from django.conf import settings
from django.urls import path

from demo import views

app_name = "demo"
urlpatterns = [
    path("", views.RequestCode.as_view(), name="request_code"),
    path("verify/", views.CheckCode.as_view(), name="check_code"),
    path("welcome/", views.welcome, name="welcome"),
]
if getattr(settings, "DEMO_SIGN_IN", "codes") == "allauth":  # tests run demo pages without it
    urlpatterns.append(path("signed-in/", views.signed_in, name="signed_in"))
