from django.urls import path

from demo import views

app_name = "demo"
urlpatterns = [
    path("", views.RequestCode.as_view(), name="request_code"),
    path("verify/", views.CheckCode.as_view(), name="check_code"),
    path("welcome/", views.welcome, name="welcome"),
]
