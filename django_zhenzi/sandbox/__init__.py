"""A Zhenzi-compatible SMS server for tests, the example project and benchmarks (stdlib only).

Run it with ``python -m django_zhenzi.sandbox`` or ``manage.py zhenzi_sandbox``, or in-process::

    with Sandbox(app_id="test-app", app_secret="test-secret") as sandbox:
        ...  # point ZHENZI["API_URL"] at sandbox.url

See ``server.py`` for the rules it applies and the assumptions it makes.
"""

from .cli import add_arguments, sandbox_from_options
from .delivery import REPORT_FORMATS
from .faults import FAULT_KINDS
from .server import DEFAULT_TEMPLATES, Sandbox

__all__ = [
    "DEFAULT_TEMPLATES",
    "FAULT_KINDS",
    "REPORT_FORMATS",
    "Sandbox",
    "add_arguments",
    "sandbox_from_options",
]
