"""Running the commands in tests: their output, their failures, what the sandbox accepted."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from django_zhenzi.sandbox import Sandbox

TEXT = "【测试】您的订单已发货"


FIND_PATH = "/smslog/findSmsByMessageId.do"


def run(name: str, *args: str, **options) -> tuple[str, str]:
    """Run a command; return what it wrote to stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    call_command(name, *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def run_failing(name: str, *args: str, **options) -> tuple[str, str, str]:
    """Run a command that must fail; return stdout, stderr and the CommandError's text."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as failure:
        call_command(name, *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue(), str(failure.value)


def accepted_numbers(sandbox: Sandbox) -> list[str]:
    return [message["number"] for message in sandbox.messages]
