"""End to end in a real browser: the example project run by its demo command, with the bundled
sandbox, driven by headless Chromium through Playwright.

Needs Debian's ``chromium`` package (/usr/bin/chromium) and the ``playwright`` Python package;
Playwright's own browser download is never used. Without either the test is skipped. On a
failure a screenshot and the demo's output land in ``test-artifacts/``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_example_project import REPO, DemoServer, running_demo

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / "test-artifacts"
TEXT = "【榛子沙箱】您的订单已发货，请注意查收。"
#: Seconds to wait for the sandbox's delivery report to show in the admin.
DELIVERY_TIMEOUT = 30.0
#: Milliseconds Playwright waits for an element or a navigation.
STEP_TIMEOUT_MS = 20_000

if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(
        f"{CHROMIUM} is missing: install Debian's chromium package to run the browser test",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is missing: pip install playwright"
)

pytestmark = pytest.mark.slow


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoServer]:
    with running_demo(tmp_path) as server:
        yield server


@pytest.fixture
def page(demo: DemoServer, request: pytest.FixtureRequest) -> Iterator[sync_api.Page]:
    """A fresh English page in headless Chromium; screenshot and demo output saved on failure."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
            opened = context.new_page()
            opened.set_default_timeout(STEP_TIMEOUT_MS)
            failed_before = request.session.testsfailed
            try:
                yield opened
            finally:
                # The test's report is counted before its fixtures are torn down.
                if request.session.testsfailed > failed_before:
                    save_artifacts(request.node.name, opened, demo)
                context.close()
        finally:
            browser.close()


def save_artifacts(name: str, page: sync_api.Page, demo: DemoServer) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)
    (ARTIFACTS / f"{name}.html").write_text(page.content(), encoding="utf-8")
    (ARTIFACTS / f"{name}-demo-output.txt").write_text(demo.log(), encoding="utf-8")


def log_in(page: sync_api.Page, demo: DemoServer) -> None:
    page.goto(demo.url + "/admin/login/?next=/admin/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", demo.admin_password)
    page.click("input[type=submit]")
    sync_api.expect(page.locator("#user-tools")).to_contain_text("admin")


def test_admin_sends_an_sms_sees_it_delivered_and_the_balance_go_down(page, demo):
    log_in(page, demo)
    page.goto(demo.url + "/admin/django_zhenzi/message/")
    page.click(".object-tools a[href$='/send/']")
    page.fill("#id_numbers", "13800138000")
    page.fill("#id_message", TEXT)
    page.click("input[type=submit].default")
    sync_api.expect(page.locator(".messagelist .success")).to_be_visible()
    sync_api.expect(page.locator("#result_list tbody tr")).to_have_count(1)
    sync_api.expect(page.locator("#result_list")).to_contain_text("13800138000")

    delivered = page.locator("#result_list .zhenzi-badge.zhenzi-status-delivered")
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while delivered.count() == 0 and time.monotonic() < deadline:
        time.sleep(0.5)
        page.reload()
    sync_api.expect(delivered).to_have_count(1)

    page.goto(demo.url + "/admin/django_zhenzi/balancesnapshot/")
    sync_api.expect(page.locator(".zhenzi-balance-figure")).to_contain_text("999")


def test_a_visitor_signs_in_with_the_code_from_the_sandbox_phone(page, demo):
    page.goto(demo.url + "/")
    page.fill("#id_number", "13900139000")
    page.get_by_role("button", name="Send me a code").click()
    page.wait_for_url(demo.url + "/verify/")
    sms = page.locator("[data-sandbox-sms]").inner_text()
    code = re.search(r"验证码是(\d{6})", sms)
    assert code, sms
    page.fill("#id_code", code.group(1))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(demo.url + "/welcome/")
    sync_api.expect(page.locator("[data-verified]")).to_have_text("13900139000 is verified.")
