"""Settings for the test suite. DATABASE_URL picks the database (SQLite by default)."""

import importlib.util
import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent
env = environ.Env()

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "Asia/Shanghai"
LANGUAGE_CODE = "en-us"
ALLOWED_HOSTS = ["*"]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'test.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so worker processes started by tests can open the test database; one
    # per test run, so runs side by side do not collide. IMMEDIATE transactions take the write
    # lock up front, which keeps concurrent SQLite writers from deadlocking.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / f".test-db-{os.getpid()}.sqlite3")}
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 30}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
    # MySQL / MariaDB: utf8mb4 everywhere, for Chinese text and emoji (utf8 is 3 bytes a character
    # there). The test database is created with it whatever the server's default.
    DATABASES["default"]["OPTIONS"] = {"charset": "utf8mb4"}
    DATABASES["default"]["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_zhenzi",
    "django_tasks_db",  # the database backend of Django's Tasks framework (tests/engines)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "tests.urls"
STATIC_URL = "static/"  # the live_server fixture's static-files handler needs one

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# Django 6.1 replaces EMAIL_BACKEND with MAILERS (and warns without it); the test runner swaps
# every mailer for the in-memory one. Django 5.2 ignores the setting.
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}

# Tests point the app at a sandbox started per test (see conftest.py); these are placeholders.
ZHENZI = {
    "APP_ID": "test-app",
    "APP_SECRET": "test-secret-value",
    "API_URL": "http://127.0.0.1:9",
    "TIMEOUT": 5,
    "CALLBACK_TOKEN": "test-callback-token-0123456789",
}

# Django's Tasks framework (built in from Django 6, the django-tasks backport before): the
# immediate backend for the fast tier, the database one for the db_worker tests.
TASKS_PACKAGE = "django.tasks" if importlib.util.find_spec("django.tasks") else "django_tasks"
TASKS = {
    "default": {"BACKEND": f"{TASKS_PACKAGE}.backends.immediate.ImmediateBackend", "QUEUES": []},
    "database": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": []},
}
# --- The integrations (django_zhenzi.contrib), when their packages are installed ----------------
# tests/test_contrib_allauth.py and tests/test_contrib_two_factor.py drive their real views; they
# set ACCOUNT_ADAPTER and TWO_FACTOR_SMS_GATEWAY themselves, with ZHENZI's code text (without one
# the checks E101 and E111 would refuse these settings).
if importlib.util.find_spec("allauth") is not None:
    INSTALLED_APPS += ["allauth", "allauth.account", "django_zhenzi.contrib.allauth"]
    MIDDLEWARE += ["allauth.account.middleware.AccountMiddleware"]
    AUTHENTICATION_BACKENDS = [
        "django.contrib.auth.backends.ModelBackend",
        "allauth.account.auth_backends.AuthenticationBackend",
    ]
    ACCOUNT_LOGIN_METHODS = {"phone"}
    ACCOUNT_SIGNUP_FIELDS = ["phone*"]
    ACCOUNT_LOGIN_BY_CODE_ENABLED = True
    ACCOUNT_PHONE_VERIFICATION_CODE_FORMAT = {"numeric": True, "length": 6, "dashed": False}
    ACCOUNT_EMAIL_VERIFICATION = "none"

if importlib.util.find_spec("two_factor") is not None:
    INSTALLED_APPS += [
        "django_otp",
        "django_otp.plugins.otp_static",
        "django_otp.plugins.otp_totp",
        "two_factor",
        "two_factor.plugins.phonenumber",
    ]
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
        "django_otp.middleware.OTPMiddleware",
    )
