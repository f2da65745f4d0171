"""Where messages go, chosen by ``ZHENZI["BACKEND"]`` like Django's ``EMAIL_BACKEND``."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from django_zhenzi.backends.base import BaseSmsBackend, OperationNotSupported, OutgoingSms
from django_zhenzi.conf import zhenzi_settings

__all__ = ["BaseSmsBackend", "OperationNotSupported", "OutgoingSms", "get_backend"]

_per_thread = threading.local()


def get_backend(path: str | None = None, **options: Any) -> BaseSmsBackend:
    """A backend, like Django's ``get_connection(backend=None, **kwargs)``.

    ``path`` is a backend class's dotted path (default ``ZHENZI["BACKEND"]``); ``options`` go to
    its ``__init__`` (the Zhenzi backend takes ``app_id``, ``app_secret``, ``api_url`` and
    ``timeout``, each overriding its setting; an option a backend does not take raises
    TypeError). With either, the caller gets a new instance of its own, to close when done
    (``with get_backend(...) as backend:``). With neither, it gets this thread's shared
    instance for the current settings (made again when they change): one HTTP connection pool
    per worker thread, reused across messages; don't close it.

    Raises ImproperlyConfigured when the backend cannot be imported or a setting it needs is
    missing or empty; options are the caller's, so a bad one raises TypeError (an option the
    backend does not take) or ValueError (the Zhenzi backend's empty ``app_id``,
    ``app_secret`` or ``api_url``).
    """
    if path is not None or options:
        backend_class = _import(path or zhenzi_settings.BACKEND, named_by_setting=path is None)
        try:
            return backend_class(**options)
        finally:
            options.clear()  # may hold the app secret: out of this frame, should __init__ raise
    key = (
        zhenzi_settings.BACKEND,
        zhenzi_settings.API_URL,
        zhenzi_settings.APP_ID,
        # A digest: this frame's locals are on a debug page when building the backend fails.
        hashlib.sha256(str(zhenzi_settings.APP_SECRET).encode()).hexdigest(),
        zhenzi_settings.TIMEOUT,
    )
    cached = getattr(_per_thread, "backend", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    if cached is not None:
        cached[1].close()
    backend = _import(zhenzi_settings.BACKEND, named_by_setting=True)()
    _per_thread.backend = (key, backend)
    return backend


def _import(path: str, *, named_by_setting: bool) -> type[BaseSmsBackend]:
    try:
        return import_string(path)
    except ImportError as error:
        named = "ZHENZI['BACKEND'] = " if named_by_setting else "The SMS backend "
        raise ImproperlyConfigured(f"{named}{path!r} cannot be imported: {error}") from error
