"""What the verification tests share: the code text, the sandbox phone's codes, threads."""

from __future__ import annotations

import re
import threading

from django.db import connections

import django_zhenzi
import django_zhenzi.verification.codes
from tests.workers import run_to_the_end

LOCMEM = "django_zhenzi.backends.locmem.SmsBackend"


CODE_MESSAGE = "【测试】您的验证码是{code}，{minutes}分钟内有效。"


NUMBER = "13800138000"


def sent_code(index: int = -1) -> str:
    """The code in a message the locmem backend received."""
    sms = django_zhenzi.outbox[index]
    text = sms.text or " ".join(sms.template_params)
    return re.search(r"\d{6}", text).group()


def run_in_threads(count: int, work) -> list:
    """Run ``work()`` in ``count`` threads released at once; their results, or errors."""
    start = threading.Barrier(count)
    results: list = []
    lock = threading.Lock()

    def run() -> None:
        try:
            start.wait(timeout=30)
            outcome = work()
        except Exception as error:  # the test inspects every outcome
            outcome = error
        finally:
            connections.close_all()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run) for _ in range(count)]
    run_to_the_end(threads)
    return results
