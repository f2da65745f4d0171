"""Settings of the example project, read from the environment (and ``example_project/.env``).

Every variable is listed in ``.env.example``; an unset or empty one takes its default. With no
``ZHENZI_APP_ID``/``ZHENZI_APP_SECRET`` the project uses the bundled sandbox, which the ``demo``
command starts; with real credentials it talks to Zhenzi and nothing else changes.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

PROJECT_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
# Variables already in the environment win over the file.
environ.Env.read_env(PROJECT_DIR / ".env")


def given(name: str) -> bool:
    """Whether the variable ``name`` is set to something: empty means "use the default"."""
    return bool(env.str(name, default=""))


SECRET_KEY = env.str("SECRET_KEY") if given("SECRET_KEY") else "example-project-only-not-secret"
DEBUG = env.bool("DEBUG") if given("DEBUG") else True
ALLOWED_HOSTS = (
    env.list("ALLOWED_HOSTS") if given("ALLOWED_HOSTS") else ["127.0.0.1", "localhost", "[::1]"]
)

DATABASES = {
    "default": env.db_url_config(
        env.str("DATABASE_URL")
        if given("DATABASE_URL")
        else f"sqlite:///{PROJECT_DIR / 'db.sqlite3'}"
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web requests and the worker thread write at once: take the write lock up front.
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 30}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_zhenzi",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"
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

LANGUAGE_CODE = env.str("LANGUAGE_CODE") if given("LANGUAGE_CODE") else "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# No credentials: the bundled sandbox stands in for Zhenzi (the demo command starts it here).
# Only one of the two given is a mistake that the system checks name (E004/E005).
USE_SANDBOX = not (given("ZHENZI_APP_ID") or given("ZHENZI_APP_SECRET"))
SANDBOX_PORT = env.int("SANDBOX_PORT") if given("SANDBOX_PORT") else 8086
SANDBOX_APP_ID = "sandbox"
SANDBOX_APP_SECRET = "sandbox-secret"
SANDBOX_CALLBACK_TOKEN = "example-sandbox-callback-token"
SANDBOX_CODE_MESSAGE = "【榛子沙箱】您的验证码是{code}，{minutes}分钟内有效。"

if USE_SANDBOX:
    app_id, app_secret = SANDBOX_APP_ID, SANDBOX_APP_SECRET
    api_url = f"http://127.0.0.1:{SANDBOX_PORT}"
else:
    app_id = env.str("ZHENZI_APP_ID", default="")
    app_secret = env.str("ZHENZI_APP_SECRET", default="")
    api_url = (
        env.str("ZHENZI_API_URL")
        if given("ZHENZI_API_URL")
        else "https://sms_developer.zhenzikj.com"
    )

if given("ZHENZI_CALLBACK_TOKEN"):
    callback_token = env.str("ZHENZI_CALLBACK_TOKEN")
else:
    # With real credentials and no token the callback refuses every report (check W001 says so).
    callback_token = SANDBOX_CALLBACK_TOKEN if USE_SANDBOX else ""

# A code goes out with a console template when one is given, else as a text (with real
# credentials its signature in 【】 must be one approved for your account).
code_template_id = env.str("ZHENZI_CODE_TEMPLATE_ID") if given("ZHENZI_CODE_TEMPLATE_ID") else ""
if code_template_id:
    code_message = ""
elif given("ZHENZI_CODE_MESSAGE"):
    code_message = env.str("ZHENZI_CODE_MESSAGE")
else:
    code_message = SANDBOX_CODE_MESSAGE

ZHENZI = {
    "APP_ID": app_id,
    "APP_SECRET": app_secret,
    "API_URL": api_url,
    "CALLBACK_TOKEN": callback_token,
    "CODE_MESSAGE": code_message,
    "CODE_TEMPLATE_ID": code_template_id,
    # Seconds, short for the demo so every state is quick to see.
    "RECONCILE_DELAY": 2,
    "STATUS_SYNC_AFTER": 60,
    "BALANCE_CACHE_SECONDS": 5,
}

# --- Sign-in with django-allauth (DEMO_SIGN_IN=allauth) -----------------------------------------
# allauth's own phone sign-up and sign-in by code at /accounts/, its codes sent through
# django-zhenzi (django_zhenzi.contrib.allauth). Needs: pip install django-zhenzi[allauth]
DEMO_SIGN_IN = env.str("DEMO_SIGN_IN") if given("DEMO_SIGN_IN") else "codes"
if DEMO_SIGN_IN == "allauth":
    INSTALLED_APPS += ["allauth", "allauth.account", "django_zhenzi.contrib.allauth"]
    MIDDLEWARE += ["allauth.account.middleware.AccountMiddleware"]
    AUTHENTICATION_BACKENDS = [
        "django.contrib.auth.backends.ModelBackend",
        "allauth.account.auth_backends.AuthenticationBackend",
    ]
    ACCOUNT_ADAPTER = "django_zhenzi.contrib.allauth.adapter.ZhenziAccountAdapter"
    ACCOUNT_LOGIN_METHODS = {"phone"}
    ACCOUNT_SIGNUP_FIELDS = ["phone*"]
    ACCOUNT_LOGIN_BY_CODE_ENABLED = True
    ACCOUNT_PHONE_VERIFICATION_CODE_FORMAT = {"numeric": True, "length": 6, "dashed": False}
    ACCOUNT_EMAIL_VERIFICATION = "none"
    LOGIN_REDIRECT_URL = "demo:signed_in"
elif DEMO_SIGN_IN != "codes":
    raise ImproperlyConfigured(f"DEMO_SIGN_IN is 'codes' or 'allauth', not {DEMO_SIGN_IN!r}.")

# Who sends queued messages in the demo: "worker" (a worker thread in the demo's process) or
# "celery" (a Celery worker with beat, started by the demo, on Redis).
DEMO_DISPATCH = env.str("DEMO_DISPATCH") if given("DEMO_DISPATCH") else "worker"
if DEMO_DISPATCH == "celery":
    ZHENZI["DISPATCH"] = "celery"
    CELERY_BROKER_URL = (
        env.str("CELERY_BROKER_URL") if given("CELERY_BROKER_URL") else "redis://127.0.0.1:6379/0"
    )
    CELERY_BEAT_SCHEDULE = {"zhenzi-sweep": {"task": "django_zhenzi.sweep", "schedule": 30.0}}
    CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# The development server logs every request's path; the callback's path holds its secret token.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"hide_callback_token": {"()": "django_zhenzi.log.HideCallbackToken"}},
    "formatters": {
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        }
    },
    "handlers": {
        "django.server": {
            "level": "INFO",
            "class": "logging.StreamHandler",
            "formatter": "django.server",
            "filters": ["hide_callback_token"],
        }
    },
    "loggers": {
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False}
    },
}
