"""Sending a release: plan it into the ledger, then deliver every pending recipient once.

Owns a send run. :func:`send_release` turns rows a dead run left ``sending`` into ``unknown``,
plans the recipients into the ledger (or takes a plan made by
:meth:`~reldist.job.Job.preflight_and_plan`), picks the pending rows, paces them with the rate
limits (counting the messages and test copies the ledger recorded within the longest period)
and runs the delivery engine (:mod:`reldist.engine`), recording the run in the ledger (a run
that a daily cap stopped says so: ``held by the rate …``). The caller holds the workspace lock.
Test copies are :mod:`reldist.proofs`; the message of each row comes from :class:`~reldist.job.Job`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Iterator, Sequence

from .engine import OnResult, SendResult, Sleep, deliver
from .job import Job, Planned, rate_limiter
from .ledger import Ledger
from .ledgerrows import Row, Status
from .settings import HELD_MARK
from .transport.base import Transport
from .transport.factory import check_transport, make_transport

__all__ = ["RESUME", "RETRY", "UNKNOWN", "send_release"]

#: What a plain ``send`` picks up, what ``--retry`` picks up, and what ``--resend-unknown`` adds.
RESUME: tuple[Status, ...] = ("queued", "deferred")
RETRY: tuple[Status, ...] = ("deferred", "failed")
UNKNOWN: tuple[Status, ...] = ("unknown",)
#: With several senders, each claims this many rows a connection at a time: enough to keep its
#: connections busy between claims, few enough that the last rows are shared out evenly.
CLAIM_BATCH = 4


def send_release(
    job: Job,
    ledger: Ledger,
    *,
    statuses: Sequence[Status] = RESUME,
    limit: int | None = None,
    transport: Transport | None = None,
    on_result: OnResult | None = None,
    on_start: Callable[[int], None] | None = None,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.time,
    planned: Planned | None = None,
) -> SendResult:
    """Plan ``job``'s recipients into ``ledger`` and deliver the pending ones. Hold the lock first.
    ``planned`` is a plan made already (:meth:`Job.preflight_and_plan`)."""
    config = job.workspace.config
    release_id = job.release.id
    transport = transport or make_transport(config, release_id)
    check_transport(transport)
    result = SendResult(release_id=release_id, transport=getattr(transport, "name", "transport"))
    started = time.monotonic()
    if planned is None:
        result.recovered_unknown = ledger.recover_interrupted(release_id)  # before the plan sees them
        number = ledger.plan(release_id, job.planner.entries())
    else:
        result.recovered_unknown, number = planned.recovered, planned.number
    shared = ledger.dialect == "postgresql"  # perhaps one of several senders: claim rows as they go
    ids = ledger.pending_ids(release_id, statuses, plan=number)
    if limit is not None:
        result.limited = len(ids) > limit
        ids = ids[:limit]
    result.pending = len(ids)  # with several senders: at most this many (the others take some)
    if on_start is not None:
        on_start(len(ids))
    run = ledger.start_run(release_id, "send")
    if shared:
        from . import senders

        rows = senders.claims(
            ledger, release_id, statuses, plan=number, limit=limit, batch=CLAIM_BATCH * transport.connections
        )
    else:
        rows = _rows(ledger, ids)
    try:
        if ids:
            with rate_limiter(ledger, config.rates, clock=clock, sleep=sleep) as limiter:
                asyncio.run(
                    deliver(
                        rows,
                        make=job.outgoing,
                        ledger=ledger,
                        transport=transport,
                        limiter=limiter,
                        retry=config.retry,
                        sleep=sleep,
                        result=result,
                        on_result=on_result,
                    )
                )
    finally:
        if shared:
            from . import senders

            # What a sender that died meanwhile left 'sending' is reported now, as unknown.
            result.recovered_unknown += senders.recover(ledger, release_id)
            result.elsewhere = senders.held_elsewhere(ledger, release_id)
            senders.leave(ledger)
        result.counts = ledger.counts(release_id)
        result.elapsed = time.monotonic() - started
        ledger.finish_run(run, _run_outcome(result))
    return result


def _run_outcome(result: SendResult) -> str:
    parts = [f"{status} {count}" for status, count in sorted(result.outcomes.items())]
    if result.unreachable:
        parts.append(f"stopped: {result.unreachable}")
    elif result.held is not None:
        until = dt.datetime.fromtimestamp(result.held.until, dt.UTC).isoformat(timespec="seconds")
        parts.append(f"{HELD_MARK} {result.held.rate.text} until {until}")
    return ", ".join(parts) or "nothing to send"


def _rows(ledger: Ledger, ids: list[int], page: int = 500) -> Iterator[Row]:
    for start in range(0, len(ids), page):
        yield from ledger.fetch(ids[start : start + page])
