"""The app secret never shows on Django's technical 500 page (DEBUG on), whose frames list their
local variables, nor in the repr of anything those frames hold.

A site's own view calls the backend and an error goes uncaught: a timeout, a cut connection, the
provider refusing the account, a configuration mistake. Django's SafeExceptionReporterFilter
hides nothing with DEBUG on (``sensitive_variables`` only works with DEBUG off), so the secret
must be in no frame's variables at all."""

from __future__ import annotations

import pprint
import sys
from types import TracebackType

import pytest
from django.test import Client
from django.urls import reverse

from django_zhenzi.backends import get_backend
from django_zhenzi.client import ZhenziClient
from tests.client.servers import APP_ID, APP_SECRET

pytestmark = pytest.mark.django_db

CLOSED_PORT_URL = "http://127.0.0.1:9"


def read_timeout(sandbox, settings):
    settings.ZHENZI = {**settings.ZHENZI, "TIMEOUT": 0.5}
    sandbox.fail_next("timeout")


def cut_connection(sandbox, settings):
    sandbox.fail_next("cut")


def http_500(sandbox, settings):
    sandbox.fail_next("http500")


def account_refused(sandbox, settings):
    sandbox.app_secret = "changed-in-the-console"


def provider_unreachable(sandbox, settings):
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": CLOSED_PORT_URL}


def no_app_id(sandbox, settings):
    settings.ZHENZI = {**settings.ZHENZI, "APP_ID": ""}


def api_url_not_a_string(sandbox, settings):
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": None}


def timeout_not_seconds(sandbox, settings):
    settings.ZHENZI = {**settings.ZHENZI, "TIMEOUT": "ten"}  # a ValueError in the transport


FAILURES = [
    read_timeout,
    cut_connection,
    http_500,
    account_refused,
    provider_unreachable,
    no_app_id,
    api_url_not_a_string,
    timeout_not_seconds,
]


@pytest.fixture
def zhenzi(settings, sandbox):
    settings.ZHENZI = {**settings.ZHENZI, "API_URL": sandbox.url}
    return sandbox


@pytest.mark.parametrize("view", ["provider:send", "provider:balance"])
@pytest.mark.parametrize("failure", FAILURES)
def test_the_debug_500_page_never_shows_the_app_secret(zhenzi, settings, failure, view):
    settings.DEBUG = True
    failure(zhenzi, settings)

    response = Client(raise_request_exception=False).get(reverse(view))

    assert response.status_code == 500
    page = response.content.decode()
    assert "Local vars" in page  # the technical page, with every frame's variables
    assert 'id="traceback"' in page
    assert APP_SECRET not in page


def shown(value: object) -> str:
    """``value`` as the debug page shows it (a repr that fails shows the error)."""
    try:
        return pprint.pformat(value)
    except Exception as error:
        return f"Error in formatting: {type(error).__name__}: {error}"


def frame_variables(error: BaseException) -> dict[str, str]:
    """Every local variable of every frame of ``error`` and of the errors it was raised from,
    pretty-printed as a debug page prints them."""
    seen: dict[str, str] = {}
    pending: list[BaseException | None] = [error]
    done: list[BaseException] = []
    while pending:
        current = pending.pop()
        if current is None or any(current is other for other in done):
            continue
        done.append(current)
        pending += [current.__cause__, current.__context__]
        traceback: TracebackType | None = current.__traceback__
        while traceback is not None:
            frame = traceback.tb_frame
            for name, value in frame.f_locals.items():
                seen[f"{frame.f_code.co_qualname}.{name}"] = shown(value)
            traceback = traceback.tb_next
    return seen


@pytest.mark.parametrize("failure", FAILURES)
def test_no_frame_of_an_error_holds_the_app_secret(zhenzi, settings, failure):
    failure(zhenzi, settings)

    with pytest.raises(Exception) as caught:  # each failure raises its own
        get_backend().balance()

    variables = frame_variables(caught.value)
    assert variables  # the frames are there, from the view's side down to the client
    assert [name for name, shown in variables.items() if APP_SECRET in shown] == []
    assert sys.exc_info() == (None, None, None)


def test_the_client_and_its_transport_keep_the_secret_out_of_their_repr(zhenzi):
    with ZhenziClient(zhenzi.url, APP_ID, APP_SECRET) as client:
        client.balance()
        shown = [repr(client), repr(client.transport), pprint.pformat(vars(client))]
        shown += [pprint.pformat(vars(client.transport))]
    assert not [text for text in shown if APP_SECRET in text]
    assert repr(client._app_secret) == "Secret('********')"
    assert client._app_secret.reveal() == APP_SECRET
