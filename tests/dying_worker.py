"""A worker-process body for ``--processes`` tests that crashes as it starts, in a module of its
own: a spawned process imports it before Django is set up, so it may import nothing of Django."""

import os


def die_at_once(*args: object) -> None:
    os._exit(3)
