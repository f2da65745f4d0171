"""Where messages go, chosen by ``ZHENZI["BACKEND"]`` like Django's ``EMAIL_BACKEND``."""

from __future__ import annotations

import hashlib
import threading

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from django_zhenzi.backends.base import BaseSmsBackend, OperationNotSupported, OutgoingSms
from django_zhenzi.conf import zhenzi_settings

__all__ = ["BaseSmsBackend", "OperationNotSupported", "OutgoingSms", "get_backend"]

_per_thread = threading.local()


def get_backend() -> BaseSmsBackend:
    """This thread's backend for the current settings (made again when they change).

    Raises ImproperlyConfigured when the backend cannot be imported or configured.

    One instance per thread keeps one HTTP connection pool per worker thread, reused across
    messages.
    """
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
    try:
        backend_class = import_string(zhenzi_settings.BACKEND)
    except ImportError as error:
        raise ImproperlyConfigured(
            f"ZHENZI['BACKEND'] = {zhenzi_settings.BACKEND!r} cannot be imported: {error}"
        ) from error
    backend = backend_class()
    _per_thread.backend = (key, backend)
    return backend
