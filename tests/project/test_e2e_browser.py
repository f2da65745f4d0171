"""End to end in a real browser: the example project run by its demo command, with the bundled
sandbox, driven by headless Chromium through Playwright.

Needs Debian's ``chromium`` package (/usr/bin/chromium) and the ``playwright`` Python package;
Playwright's own browser download is never used. Without either the test is skipped. On a
failure a screenshot and the demo's output land in ``test-artifacts/``. With
``ZHENZI_DOCS_SCREENSHOTS=docs/_static/screenshots`` the admin pages the documentation shows are
saved there on the way, in English and in Chinese (``NAME.png``, ``NAME.zh_CN.png``).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.project.example import MANAGE, REPO, DemoServer, example_env, running_demo

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
#: The demo's ZHENZI["CODE_MAX_TRIES"] (the default).
CODE_MAX_TRIES = 5
ALLAUTH_INSTALLED = importlib.util.find_spec("allauth") is not None
#: Where to save the documentation's screenshots of the admin; unset: none are taken.
DOCS_SCREENSHOTS = os.environ.get("ZHENZI_DOCS_SCREENSHOTS", "")

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
def demo(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[DemoServer]:
    """The demo; a test parametrizes it (indirect) with variables of its own environment."""
    with running_demo(tmp_path, getattr(request, "param", None)) as server:
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


def screenshot_for_docs(page: sync_api.Page, demo: DemoServer, name: str) -> None:
    """The page as it is now, and the same URL for a Chinese browser, into DOCS_SCREENSHOTS."""
    if not DOCS_SCREENSHOTS:
        return
    directory = Path(DOCS_SCREENSHOTS)
    directory.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=directory / f"{name}.png")
    context = page.context.browser.new_context(locale="zh-CN", viewport=page.viewport_size)
    try:
        chinese = context.new_page()
        chinese.set_default_timeout(STEP_TIMEOUT_MS)
        log_in(chinese, demo)
        chinese.goto(page.url)
        chinese.screenshot(path=directory / f"{name}.zh_CN.png")
    finally:
        context.close()


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
    screenshot_for_docs(page, demo, "admin-send")
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
    screenshot_for_docs(page, demo, "admin-messages")

    page.click("#result_list a[href*='/change/']")
    reports_in_chinese_keep_their_words_whole(page, demo)

    page.goto(demo.url + "/admin/django_zhenzi/balancesnapshot/")
    sync_api.expect(page.locator(".zhenzi-balance-figure")).to_contain_text("999")
    balance_chart_is_readable(page)
    screenshot_for_docs(page, demo, "admin-balance")


def lines_of(page: sync_api.Page, selector: str) -> dict[str, int]:
    """The text of each element ``selector`` finds, with how many lines the browser laid it on."""
    return page.evaluate(
        """selector => Object.fromEntries(
            Array.from(document.querySelectorAll(selector)).filter(
                element => element.textContent.trim()
            ).map(element => {
                const range = document.createRange();
                range.selectNodeContents(element);
                const tops = Array.from(range.getClientRects()).map(rect => Math.round(rect.top));
                return [element.textContent.trim(), new Set(tops).size];
            }))""",
        selector,
    )


def reports_in_chinese_keep_their_words_whole(page: sync_api.Page, demo: DemoServer) -> None:
    """The reports on the message's page, in Chinese on a narrow window: no word breaks."""
    context = page.context.browser.new_context(
        locale="zh-CN", viewport={"width": 1024, "height": 900}
    )
    try:
        chinese = context.new_page()
        chinese.set_default_timeout(STEP_TIMEOUT_MS)
        log_in(chinese, demo)
        chinese.goto(page.url)
        source = chinese.locator(".inline-group .tabular td.field-source")
        sync_api.expect(source).to_have_text("回调")
        cells = ", ".join(
            f".inline-group .tabular td.field-{name} p"
            for name in ("received_at_column", "source", "status", "raw_status", "number")
        )
        words = lines_of(chinese, cells) | lines_of(chinese, ".inline-group .tabular thead th")
        assert "来源" in words and "已送达" in words, words
        assert all(count == 1 for count in words.values()), words
    finally:
        context.close()


def balance_chart_is_readable(page: sync_api.Page) -> None:
    """The chart: drawn, its balance axis from zero past the low-balance line, no time label
    twice."""
    chart = page.locator("svg.zhenzi-chart")
    sync_api.expect(chart).to_be_visible()
    threshold = chart.locator("line.zhenzi-chart-threshold")
    sync_api.expect(threshold).to_have_count(1)
    sync_api.expect(chart.locator(".zhenzi-chart-threshold-label")).to_contain_text("100")
    box, line = chart.bounding_box(), threshold.bounding_box()
    assert box["y"] < line["y"] < box["y"] + box["height"]
    values = chart.locator("text.zhenzi-chart-label[text-anchor='end']").all_text_contents()
    assert values[0] == "0" and int(values[-1]) >= 1000, values
    times = [
        text.text_content()
        for text in chart.locator("text.zhenzi-chart-label").all()
        if text.locator("tspan").count()
    ]
    assert times and len(set(times)) == len(times), times


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

    # Another visitor guesses until the code is spent; the admin's code list tells them apart.
    page.goto(demo.url + "/")
    page.fill("#id_number", "13700137000")
    page.get_by_role("button", name="Send me a code").click()
    page.wait_for_url(demo.url + "/verify/")
    real = re.search(r"验证码是(\d{6})", page.locator("[data-sandbox-sms]").inner_text()).group(1)
    wrong = "123456" if real != "123456" else "654321"
    for _try in range(CODE_MAX_TRIES):
        page.fill("#id_code", wrong)
        page.get_by_role("button", name="Verify").click()
        page.wait_for_load_state()
    log_in(page, demo)
    page.goto(demo.url + "/admin/django_zhenzi/verificationcode/")
    rows = page.locator("#result_list tbody tr")
    sync_api.expect(rows).to_have_count(2)
    used = rows.filter(has_text="13900139000").locator(".zhenzi-badge")
    sync_api.expect(used).to_have_text("used")
    spent = rows.filter(has_text="13700137000").locator(".zhenzi-badge")
    sync_api.expect(spent).to_have_text("out of tries")
    page.click("#changelist-filter a[href*='state=out_of_tries']")
    sync_api.expect(rows).to_have_count(1)
    sync_api.expect(rows).to_contain_text("13700137000")


# --- django-allauth's sign-in (DEMO_SIGN_IN=allauth) ----------------------------------------------

ALLAUTH_SHELL = """
from django.contrib.auth import get_user_model
from allauth.account.adapter import get_adapter
user = get_user_model().objects.create_user("returning")
get_adapter().set_phone_verified(user, "13700137000")
"""


def add_allauth_user(demo: DemoServer) -> None:
    """A user who signed up before, with 13700137000 verified, in the demo's own database."""
    done = subprocess.run(
        [sys.executable, str(MANAGE), "shell", "-c", ALLAUTH_SHELL],
        cwd=demo.database.parent,
        env=example_env(DATABASE_URL=f"sqlite:///{demo.database}", DEMO_SIGN_IN="allauth"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def code_on_sandbox_phone(page: sync_api.Page) -> str:
    sms = page.locator("[data-sandbox-sms]").inner_text()
    code = re.search(r"验证码是(\d{6})", sms)
    assert code, sms
    return code.group(1)


@pytest.mark.skipif(not ALLAUTH_INSTALLED, reason="django-allauth is not installed")
@pytest.mark.parametrize("demo", [{"DEMO_SIGN_IN": "allauth"}], indirect=True)
def test_allauth_sign_up_and_sign_in_by_code_with_the_sandbox_phone(page, demo):
    # Sign up with a phone number on allauth's page; the code page shows the sandbox phone.
    page.goto(demo.url + "/accounts/signup/")
    page.fill("input[name=phone]", "+86 139 0013 9000")
    page.get_by_role("button", name="Sign Up").click()
    page.wait_for_url(demo.url + "/accounts/phone/verify/")
    page.fill("input[name=code]", code_on_sandbox_phone(page))
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(demo.url + "/signed-in/")
    signed_in = page.locator("[data-signed-in]")
    sync_api.expect(signed_in).to_have_text("You are signed in with 13900139000.")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(demo.url + "/")

    # A sign-in code at once to the same number: the cooldown refuses it in allauth's form.
    page.goto(demo.url + "/accounts/login/code/")
    page.fill("input[name=phone]", "13900139000")
    page.get_by_role("button", name="Request Code").click()
    sync_api.expect(page.locator(".errorlist")).to_contain_text(
        re.compile(r"Too many code requests\. Try again in \d+ seconds\.")
    )

    # A returning user signs in by code.
    add_allauth_user(demo)
    page.fill("input[name=phone]", "137 0013 7000")
    page.get_by_role("button", name="Request Code").click()
    page.wait_for_url(demo.url + "/accounts/login/code/confirm/")
    page.fill("input[name=code]", code_on_sandbox_phone(page))
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(demo.url + "/signed-in/")
    sync_api.expect(signed_in).to_have_text("You are signed in with 13700137000.")
