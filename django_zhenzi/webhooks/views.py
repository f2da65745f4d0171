"""The delivery-report callback view: ``POST /zhenzi/callback/<token>/``.

Thin on purpose: check the token, read and parse the body (``webhooks.parser``), hand the reports to
``services.apply_reports`` (one transaction for all of them) and answer. No provider call happens
here, so it answers fast.

The token is a secret and sits in the URL, so no answer and no log line written here or by
Django's request logging for these answers contains the path.
"""

from __future__ import annotations

import json
import logging

from django.contrib.auth.decorators import login_not_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt

from django_zhenzi import services
from django_zhenzi.conf import zhenzi_settings
from django_zhenzi.models import StatusReport
from django_zhenzi.webhooks.parser import (
    RefusedBody,
    configured_secrets,
    parse_reports,
    read_body,
    token_is_valid,
)

logger = logging.getLogger("django_zhenzi")

SUCCESS = {"code": 0, "data": "success"}
"""The answer once every report is stored (the provider's own API answers in this shape)."""
SUCCESS_BODY = json.dumps(SUCCESS).encode()


def answer(status: int, reason: str | Promise = "") -> HttpResponse:
    """A short JSON answer, ``{"code": 0 | <HTTP status>, "data": ...}``.

    It is marked as logged, so Django's request logger does not log it with the path (the path
    holds the token).
    """
    if status == 200:  # the answer to nearly every request, built once
        response = HttpResponse(SUCCESS_BODY, content_type="application/json")
    else:
        response = JsonResponse({"code": status, "data": str(reason)}, status=status)
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


@csrf_exempt
@login_not_required
@transaction.non_atomic_requests  # the reports commit on their own (services.combined_writes)
def callback(request: HttpRequest, token: str = "") -> HttpResponse:
    """Store the delivery reports of one POST from the provider."""
    if request.method != "POST":
        response = answer(405, _("Only POST is allowed."))
        response["Allow"] = "POST"
        return response
    if not token_is_valid(token):
        logger.warning("Delivery report refused: the callback token is wrong or missing.")
        return answer(403, _("Forbidden."))
    try:
        body = read_body(request, int(zhenzi_settings.CALLBACK_MAX_BODY))
        parsed = parse_reports(
            body, request.META.get("CONTENT_TYPE", ""), secrets=configured_secrets()
        )
        services.apply_reports_combined(parsed.reports, source=StatusReport.Source.CALLBACK)
    except RefusedBody as refused:
        logger.warning("Delivery report refused (HTTP %s): %s", refused.status, refused)
        return answer(refused.status, refused.reason)
    except Exception:
        # Answered here rather than raised: Django's error page and log would show the path.
        logger.exception("A delivery-report request failed; the provider is expected to retry.")
        return answer(500, _("The reports could not be stored; please retry."))
    if parsed.skipped:
        logger.warning(
            "Stored %d delivery report(s); skipped %d without a usable messageId.",
            len(parsed.reports),
            parsed.skipped,
        )
    else:
        logger.debug("Stored %d delivery report(s).", len(parsed.reports))
    return answer(200)
