"""Options shared by ``python -m django_zhenzi.sandbox`` and ``manage.py zhenzi_sandbox``."""

from __future__ import annotations

import argparse
import inspect
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .delivery import REPORT_FORMATS
from .faults import FAULT_KINDS, check_fault_kind
from .server import Sandbox

DEFAULT_PORT = 8086
SIGNAL_POLL_SECONDS = 0.1
SANDBOX_DEFAULTS = {
    name: parameter.default for name, parameter in inspect.signature(Sandbox).parameters.items()
}
# Options handed to Sandbox under their own name. "port" has a command-line default of its own,
# "fault" becomes fault_rates.
SANDBOX_OPTIONS = (
    "host",
    "app_id",
    "app_secret",
    "balance",
    "callback_url",
    "report_delay",
    "report_format",
    "report_retry_delay",
    "undeliverable_suffixes",
    "daily_cap",
    "latency",
    "hang_seconds",
    "late_seconds",
    "seed",
    "disabled",
    "verbose",
)


def parse_fault(text: str) -> tuple[str, float]:
    """``KIND=RATE`` from ``--fault``."""
    kind, separator, rate = text.partition("=")
    if not separator:
        raise argparse.ArgumentTypeError(f"expected KIND=RATE, got {text!r}")
    try:
        return check_fault_kind(kind), float(rate)
    except ValueError as invalid:
        raise argparse.ArgumentTypeError(str(invalid)) from None


def add_arguments(
    parser: argparse.ArgumentParser, default_labels: Mapping[str, str] | None = None
) -> None:
    """Define the sandbox's options on ``parser`` (argparse's, or Django's CommandParser).

    ``default_labels`` maps option names to what their help shows as the default instead of the
    value (a default that comes from settings may be a secret, like the appSecret).
    """
    labels = default_labels or {}

    def option(flag: str, text: str, **kwargs: Any) -> None:
        name = flag.removeprefix("--").replace("-", "_")
        if name in SANDBOX_DEFAULTS and "default" not in kwargs and "action" not in kwargs:
            kwargs["default"] = SANDBOX_DEFAULTS[name]
        if name in labels:
            text += " (default: {})".format(labels[name].replace("%", "%%"))
        elif kwargs.get("default") is not None:
            text += " (default: %(default)s)"
        parser.add_argument(flag, help=text, **kwargs)

    option("--host", "address to listen on")
    option("--port", "port to listen on, 0 for any free one", type=int, default=DEFAULT_PORT)
    option("--app-id", "the appId clients must send")
    option("--app-secret", "the appSecret clients must send")
    option("--balance", "SMS left on the account", type=int)
    option("--callback-url", "where to POST status reports for messages sent with a messageId")
    option("--report-delay", "seconds from acceptance to the status report", type=float)
    option("--report-format", "body of a status report", choices=REPORT_FORMATS)
    option("--report-retry-delay", "seconds between report delivery attempts", type=float)
    option(
        "--undeliverable-suffixes",
        "numbers ending in one of these digits are undeliverable",
        metavar="DIGITS",
    )
    option("--daily-cap", "messages per number per day, 0 for no cap", type=int)
    option(
        "--ip-whitelist",
        "allowed client address (repeatable); none allows every address",
        action="append",
        metavar="IP",
    )
    option("--latency", "seconds added before every API answer", type=float)
    option(
        "--fault",
        f"inject a fault at a rate in 0..1 (repeatable); kinds: {', '.join(FAULT_KINDS)}",
        action="append",
        type=parse_fault,
        metavar="KIND=RATE",
    )
    option("--hang-seconds", 'how long a "timeout" or "late" fault holds a request', type=float)
    option(
        "--late-seconds",
        'how long after a "late" request arrives the provider records its message',
        type=float,
    )
    option("--seed", "seed of the fault rolls, for repeatable runs", type=int)
    option("--disabled", "answer every API call with 106 (app disabled)", action="store_true")
    option("--verbose", "log one line per request to stderr", action="store_true")


def sandbox_from_options(options: Mapping[str, Any]) -> Sandbox:
    """A Sandbox (not started) built from parsed options; absent or None ones take defaults.

    Raises ValueError for invalid values.
    """
    kwargs = {name: options[name] for name in SANDBOX_OPTIONS if options.get(name) is not None}
    port = options.get("port")
    return Sandbox(
        port=DEFAULT_PORT if port is None else port,
        ip_whitelist=tuple(options.get("ip_whitelist") or ()),
        fault_rates=dict(options.get("fault") or ()),
        **kwargs,
    )


def describe(
    sandbox: Sandbox, show_secret: bool = True, shown_callback_url: str | None = None
) -> list[str]:
    """What a started sandbox serves, for the console.

    ``shown_callback_url`` replaces the callback URL in the text (one whose token is a secret).
    """
    secret = sandbox.app_secret if show_secret else "(from settings, not shown)"
    lines = [
        f"Zhenzi sandbox serving on {sandbox.url}  appId={sandbox.app_id}  appSecret={secret}",
        f"Balance {sandbox.balance} SMS; numbers ending in "
        f"{' or '.join(sandbox.undeliverable_suffixes) or '(none)'} are undeliverable.",
    ]
    if sandbox.callback_url:
        lines.append(
            f"Status reports: POST {sandbox.report_format} to "
            f"{shown_callback_url or sandbox.callback_url}, "
            f"{sandbox.report_delay:g} s after acceptance."
        )
    else:
        lines.append("Status reports: off (no --callback-url).")
    faults = sandbox.faults
    rates = ", ".join(f"{kind}={rate:g}" for kind, rate in faults["rates"].items())
    lines.append(f"Faults: latency {faults['latency']:g} s; rates: {rates or 'none'}.")
    if sandbox.disabled:
        lines.append("The app is disabled: every API call answers 106.")
    lines.append("Stop with Ctrl-C or SIGTERM.")
    return lines


def run(
    sandbox: Sandbox,
    write: Callable[[str], None],
    show_secret: bool = True,
    shown_callback_url: str | None = None,
    started: Callable[[Sandbox], None] | None = None,
) -> None:
    """Start ``sandbox``, describe it with ``write``, serve until SIGINT or SIGTERM, stop it.

    ``started`` is called once the sandbox listens (its ``url`` is known). Raises OSError when
    the address cannot be bound.
    """
    received: list[int] = []
    previous = {
        signum: signal.signal(signum, lambda signum, _frame: received.append(signum))
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        with sandbox:
            for line in describe(sandbox, show_secret, shown_callback_url):
                write(line)
            if started is not None:
                started(sandbox)
            while not received:
                time.sleep(SIGNAL_POLL_SECONDS)  # the handler only sets a flag: nothing to deadlock
    finally:
        for signum, handler in previous.items():
            if handler is not None:
                signal.signal(signum, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox from the command line; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m django_zhenzi.sandbox",
        description="A local Zhenzi Cloud SMS (榛子云短信) compatible server.",
    )
    add_arguments(parser)
    options = vars(parser.parse_args(argv))
    try:
        sandbox = sandbox_from_options(options)
    except ValueError as invalid:
        parser.error(str(invalid))
    try:
        run(sandbox, lambda line: print(line, flush=True))
    except OSError as failure:
        print(f"Cannot serve on {sandbox.host}:{sandbox.port}: {failure}", file=sys.stderr)
        return 1
    return 0
