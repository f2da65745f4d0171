"""The callback URL and its token: only the right token, only POST, behind
LoginRequiredMiddleware."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from django_zhenzi.models import StatusReport
from django_zhenzi.status import Status
from tests.webhooks.callback_requests import (
    FORM,
    NEW_TOKEN,
    OLD_TOKEN,
    TOKEN,
    callback_url,
    make_message,
    post_form,
    sandbox_report,
    status_changes,
)

pytestmark = pytest.mark.django_db


# --- The URL and the token ------------------------------------------------------------------------


def test_the_url_and_its_name():
    assert callback_url("abc") == "/zhenzi/callback/abc/"
    assert callback_url(None) == "/zhenzi/callback/"


@pytest.mark.parametrize(
    ("configured", "used", "accepted"),
    [
        pytest.param(TOKEN, None, False, id="missing"),
        pytest.param(TOKEN, "wrong-callback-token-ccccccccc", False, id="wrong"),
        pytest.param(TOKEN, TOKEN[:-1], False, id="prefix-of-current"),
        pytest.param(TOKEN, TOKEN + "0", False, id="current-plus-a-character"),
        pytest.param(TOKEN.upper(), TOKEN, False, id="other-case"),
        pytest.param(TOKEN, TOKEN, True, id="current"),
        pytest.param([OLD_TOKEN, NEW_TOKEN], OLD_TOKEN, True, id="old-while-rotating"),
        pytest.param([OLD_TOKEN, NEW_TOKEN], NEW_TOKEN, True, id="new-while-rotating"),
        pytest.param((OLD_TOKEN, NEW_TOKEN), NEW_TOKEN, True, id="tuple-of-tokens"),
        pytest.param([NEW_TOKEN], OLD_TOKEN, False, id="removed-after-rotation"),
        pytest.param(NEW_TOKEN, OLD_TOKEN, False, id="replaced-single-token"),
        pytest.param("", TOKEN, False, id="none-configured"),
        pytest.param("", None, False, id="none-configured-none-given"),
        pytest.param([], TOKEN, False, id="empty-list-configured"),
    ],
)
def test_token_matrix(settings, csrf_client, received_signals, configured, used, accepted):
    settings.ZHENZI = {**settings.ZHENZI, "CALLBACK_TOKEN": configured}
    message = make_message()

    response = post_form(csrf_client, sandbox_report(message.message_id), token=used)

    message.refresh_from_db()
    if accepted:
        assert response.status_code == 200
        assert response.json() == {"code": 0, "data": "success"}
        assert StatusReport.objects.get().message == message
        assert message.status == Status.DELIVERED
        assert status_changes(received_signals) == [(Status.SENT, Status.DELIVERED)]
    else:
        assert response.status_code == 403
        assert StatusReport.objects.count() == 0
        assert received_signals == []
        assert message.status == Status.SENT


@pytest.mark.parametrize("token", [TOKEN, "wrong-callback-token-ccccccccc"])
def test_url_without_trailing_slash_is_not_redirected(csrf_client, token):
    message = make_message()
    url = callback_url(token).removesuffix("/")
    response = csrf_client.post(url, urlencode(sandbox_report(message.message_id)), FORM)

    assert response.status_code == (200 if token == TOKEN else 403)
    assert StatusReport.objects.count() == (1 if token == TOKEN else 0)


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
def test_only_post(csrf_client, received_signals, method):
    message = make_message()
    response = csrf_client.generic(
        method.upper(), callback_url(), urlencode(sandbox_report(message.message_id)), FORM
    )
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert StatusReport.objects.count() == 0
    assert received_signals == []


def test_works_behind_login_required_middleware(settings, csrf_client):
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE,
        "django.contrib.auth.middleware.LoginRequiredMiddleware",
    ]
    message = make_message()
    response = post_form(csrf_client, sandbox_report(message.message_id))
    assert response.status_code == 200
    assert StatusReport.objects.count() == 1
