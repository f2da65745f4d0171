"""Django settings for building the documentation: enough to import the app, its commands and
its admin for autodoc and the generated pages. No database is touched."""

SECRET_KEY = "docs-only-not-secret"  # noqa: S105
USE_TZ = True
TIME_ZONE = "Asia/Shanghai"
LANGUAGE_CODE = "en-us"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_zhenzi",
]
ROOT_URLCONF = "django_zhenzi.urls"
# What a project would have; the sandbox command's --help shows these as its defaults.
ZHENZI = {
    "APP_ID": "your-app-id",
    "APP_SECRET": "your-app-secret",
    "API_URL": "http://127.0.0.1:8086",
    "CALLBACK_TOKEN": "your-callback-token-0123456789",
}
