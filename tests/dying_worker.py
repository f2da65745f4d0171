"""Worker-process bodies for ``--processes`` tests, in a module of their own: a spawned process
imports it before Django is set up, so it may import nothing of Django."""

import os
import time


def die_at_once(*args: object) -> None:
    """Crash as it starts."""
    os._exit(3)


def start_slowly(*args: object) -> None:
    """Still starting, with no signal handler yet, for as long as a test needs."""
    time.sleep(60)
