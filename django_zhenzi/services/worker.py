"""The queue worker: passes over the queue, in threads, that outlive a database restart and wait
out a refused account instead of burning the queue."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable

from django.db import connections

from django_zhenzi.backends import OperationNotSupported, get_backend
from django_zhenzi.client import ZhenziError
from django_zhenzi.services.balance import read_balance
from django_zhenzi.services.claims import (
    claim_due,
    claim_unknown,
    count_due,
    expire_stale_claims,
    look_at_queue,
    new_claim_token,
)
from django_zhenzi.services.dispatch import PassResult, send_batch
from django_zhenzi.services.reconcile import reconcile

logger = logging.getLogger("django_zhenzi")

#: Seconds a ``--loop`` worker waits between balance checks while the provider refuses the
#: account (no balance, wrong appSecret, app disabled, IP not whitelisted...).
ACCOUNT_ERROR_PAUSE = 60.0

#: The longest wait between two passes while passes keep failing (the database is down).
MAX_FAILURE_WAIT = 30.0


def fair_share(batch_size: int, peers: int, due: int | None = None) -> int:
    """How many due messages one of ``peers`` worker threads claims: ``batch_size``, or less
    once the due messages would not give every thread a full batch.

    A thread sends its batch one message after another, so a short queue taken in full batches
    by a few threads would leave the others idle while those few send the tail (2,000 messages
    in batches of 100 for 16 threads: 12 batches sent in parallel, then 4 more, alone).
    ``due`` is the count of due messages when the caller has it (up to ``batch_size * peers``).
    """
    if peers <= 1:
        return batch_size
    if due is None:
        due = count_due(batch_size * peers)
    return max(1, min(batch_size, math.ceil(due / peers)))


def work_batch(
    *, batch_size: int = 100, stop: threading.Event | None = None, peers: int = 1
) -> PassResult:
    """One step of one worker: expire stale claims, reconcile a batch of ``unknown`` messages,
    then claim and send a batch of due ones (its ``fair_share`` among ``peers`` threads). One
    look at the queue first says which of these there is something to do for."""
    get_backend()  # a broken BACKEND setting raises here, before anything is claimed
    look = look_at_queue(batch_size * max(peers, 1))
    result = PassResult(expired_claims=expire_stale_claims() if look.stale_claims else 0)
    token = new_claim_token()
    if look.unknown_due or result.expired_claims:
        for message in claim_unknown(token, batch_size):
            if stop is not None and stop.is_set():
                break
            reconcile(message, token)
            result.reconciled += 1
    if not look.due and not result.reconciled:
        return result
    # Counted again if the queue looked empty: reconciliation may have queued messages again.
    share = fair_share(batch_size, peers, look.due or None)
    sending = send_batch(claim_due(token, share), token, stop=stop)
    result.add(sending)
    result.paused = sending.paused
    return result


def account_works() -> bool:
    """Whether the provider accepts the account again: its balance can be read and is not 0.
    Asking costs no message."""
    try:
        balance = read_balance(record=False)  # a low balance alerts ADMINS once
    except OperationNotSupported:
        return True  # a backend without an account has nothing to wait for
    except ZhenziError as error:
        logger.warning("Sending is still paused: %s", error)
        return False
    if balance <= 0:
        logger.warning("Sending is still paused: the balance is %s", balance)
        return False
    logger.warning("The account works again (balance %s): sending resumes", balance)
    return True


def drop_unusable_connections() -> None:
    """Close this thread's database connections that a failure left broken (the server
    restarted, the network dropped), so the next pass opens new ones."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


def run_workers(
    *,
    concurrency: int = 1,
    batch_size: int = 100,
    limit: int | None = None,
    loop: bool = False,
    idle_wait: float = 1.0,
    account_wait: float = ACCOUNT_ERROR_PAUSE,
    stop: threading.Event | None = None,
    on_batch: Callable[[PassResult], None] | None = None,
    peers: int | None = None,
) -> PassResult:
    """Send due messages with ``concurrency`` threads, each with its own database connection.

    Without ``loop`` it returns once nothing is due (or ``limit`` messages were claimed, or the
    account was refused); with it, it waits ``idle_wait`` seconds when idle and runs until
    ``stop`` is set: a failed pass (the database went away) is logged, its broken connections
    closed, and the next one tried after a growing wait (up to MAX_FAILURE_WAIT); a refused
    account pauses sending, checking the balance every ``account_wait`` seconds until it works.
    The total's ``paused`` is set only if sending was still paused when the run ended.
    With a concurrency of 1 the work runs in the caller's thread (and transaction).
    ``peers`` counts the threads that share the queue with these (default ``concurrency``;
    more when other processes of one command run beside this one), for ``fair_share``.
    """
    peers = peers or concurrency
    stop = stop or threading.Event()
    total = PassResult()
    lock = threading.Lock()
    budget = [limit]

    def take(wanted: int) -> int:
        with lock:
            if budget[0] is None:
                return wanted
            granted = min(wanted, budget[0])
            budget[0] -= granted
            return granted

    def give_back(room: int) -> None:
        with lock:
            if budget[0] is not None:
                budget[0] += room

    errors: list[BaseException] = []

    def work() -> None:
        failures = 0
        while not stop.is_set():
            room = take(batch_size)
            if room <= 0:
                return
            try:
                result = work_batch(batch_size=room, stop=stop, peers=peers)
            except Exception as error:
                give_back(room)
                if not loop:
                    raise
                failures += 1
                wait = min(idle_wait * 2 ** (failures - 1), MAX_FAILURE_WAIT)
                if failures == 1:
                    logger.exception("A worker pass failed; trying again in %.1f s", wait)
                else:
                    logger.error(
                        "A worker pass failed again (%d in a row): %s; trying again in %.1f s",
                        failures,
                        error,
                        wait,
                    )
                drop_unusable_connections()
                stop.wait(wait)
                continue
            if failures:
                logger.warning("Worker passes succeed again after %d failures", failures)
                failures = 0
            with lock:
                total.add(result)
                if budget[0] is not None:
                    budget[0] += room - result.claimed
            if on_batch is not None:
                on_batch(result)
            if result.paused:
                logger.error("Sending paused, the provider refused the account: %s", result.paused)
                with lock:
                    total.paused = result.paused
                if not loop:
                    return
                while not stop.wait(account_wait):
                    if account_works():
                        with lock:
                            total.paused = ""  # sending resumed: the run no longer stops paused
                        break
            elif result.claimed == 0 and result.reconciled == 0:
                if not loop:
                    return
                stop.wait(idle_wait)

    def work_in_thread() -> None:
        try:
            work()
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()  # this thread's connections only

    if concurrency <= 1:
        work()
        return total
    threads = [
        threading.Thread(target=work_in_thread, name=f"zhenzi-worker-{n}")
        for n in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return total
