"""The public Python API."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django_zhenzi import services
from django_zhenzi.backends import BaseSmsBackend
from django_zhenzi.client import ZhenziInputError
from django_zhenzi.conf import zhenzi_settings
from django_zhenzi.models import Message
from django_zhenzi.priority import Priority
from django_zhenzi.services import limits


def send_sms(
    numbers: str | int | Iterable[str | int],
    message: str | None = None,
    *,
    template_id: str | int | None = None,
    template_params: Sequence[str] | None = None,
    queue: bool = False,
    client_ip: str | None = None,
    priority: str = "normal",
    backend: BaseSmsBackend | None = None,
) -> Message | list[Message]:
    """Send a text, or a console template with its parameters, to one number or many.

    Returns the Message row for one number, a list of rows for several (one per number, in
    order; a bad number among several gets a ``failed`` row and the others go on).

    ``queue=False`` sends at once and the rows carry the outcome; inside a transaction the send
    waits for the commit, so a rollback sends nothing. ``queue=True`` returns at once and leaves
    the sending to ``manage.py zhenzi_send_queued`` workers, or to the task engine of
    ``ZHENZI["DISPATCH"]``. ``priority`` ("high", "normal" or "bulk") orders the queue: a due
    message is sent before any of lower priority.

    ``backend`` (from ``get_backend(path, **options)``, e.g. another app's credentials) sends
    instead of the settings' backend; immediate sends only, since the workers send queued
    messages through the settings' backend. An outcome that would hand a message to the workers
    (a retry, a pause of the account, a reconciliation) fails it instead, ``maybe_sent`` marking
    one that may have gone out. The caller closes the backend once the send is done.

    Raises ZhenziInputError (a ValueError) before storing anything when the content is invalid
    (empty, over 1000 characters, parameters that are not strings, control characters, broken
    Unicode) or a single number is bad, and when any number holds a control character or a lone
    surrogate (it could not be stored even on a failed row).
    With ``ZHENZI["LIMIT_ALL_SENDS"]``, raises RateLimited, storing and sending nothing, when
    an abuse limit (per number, per client IP, site-wide) refuses. Raises ValueError for
    ``queue=True`` with a ``backend``, TypeError for a ``backend`` that is not one.
    """
    if backend is not None:
        if not isinstance(backend, BaseSmsBackend):
            raise TypeError(
                f"backend must be a BaseSmsBackend, such as get_backend(path, **options) "
                f"returns, not {type(backend).__name__}."
            )
        if queue:
            raise ValueError(
                "send_sms(queue=True) takes no backend: the workers send queued messages "
                "through the settings' backend."
            )
    content = services.validate_content(message, template_id, template_params, client_ip)
    try:
        rank = Priority.parse(priority)
    except ValueError as error:
        raise ZhenziInputError(str(error), field="priority") from None
    if not isinstance(numbers, (str, int)):
        numbers = list(numbers)  # read more than once: limited, then made rows
    if zhenzi_settings.LIMIT_ALL_SENDS:
        limits.check_send(numbers, content.client_ip)
    rows = services.create_messages(numbers, content, queue=queue, priority=rank, backend=backend)
    if not queue:
        refreshed = {
            m.message_id: m
            for m in Message.objects.filter(message_id__in=[row.message_id for row in rows])
        }
        rows = [refreshed.get(row.message_id, row) for row in rows]
    single = isinstance(numbers, (str, int))
    return rows[0] if single else rows
