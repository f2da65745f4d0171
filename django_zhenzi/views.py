"""For staff: the dashboards' figures, ``GET /zhenzi/metrics.json``."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET

from django_zhenzi.services.metrics import metrics as current_metrics


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """The per-status counts, queue, ``unknown`` count, latest reports and balance as JSON, for
    active staff users who may view messages, like the admin's list (others get 403); the
    balance only for those who may view it. docs/operations.rst ("Metrics") shows the shape."""
    user = request.user
    if not (user.is_active and user.is_staff and user.has_perm("django_zhenzi.view_message")):
        return JsonResponse({"detail": "Staff login required."}, status=403)
    figures = current_metrics(balance=user.has_perm("django_zhenzi.view_balance"))
    response = JsonResponse(figures)
    add_never_cache_headers(response)
    return response
