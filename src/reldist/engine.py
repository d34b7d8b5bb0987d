"""The delivery engine: every pending row sent once over a few connections, each outcome recorded.

Owns :class:`Delivery` and :func:`deliver`. One producer renders and builds messages one at a
time (``make``) into a short queue; ``connections`` workers each hold one transport connection.
For every message a worker waits for the rate limiter, commits ``sending``, hands the bytes to the
transport and commits the outcome. A deferred message is retried within the run after
``backoff``, ``2*backoff``, … seconds, up to ``attempts``; then it stays ``deferred`` for a later
run. If the server cannot be reached (after the same retries) the run stops, leaving the rest as
they were, and :attr:`SendResult.unreachable` says why. It does not plan, pick the rows or choose
the transport: ``send`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from .envelope import Outcome, Outgoing
from .errors import TransportError
from .ledger import Ledger, Row, Status
from .settings import RetrySettings
from .transport.base import Connection, Transport

__all__ = ["Delivery", "Hold", "Limiter", "OnResult", "SendResult", "Sleep", "deliver"]

Sleep = Callable[[float], Awaitable[None]]
OnResult = Callable[[Row, Outcome], None]
#: Asked just before a message leaves: the outcome to record instead of sending it (a suppression
#: made meanwhile, perhaps on another machine), already recorded; None to send it.
Hold = Callable[[Row], Outcome | None]


class Limiter(Protocol):
    """Paces the start of each message (:class:`~reldist.ratelimit.RateLimiter`, or
    :class:`~reldist.senders.SharedRateLimiter` for several senders)."""

    async def acquire(self) -> None: ...


@dataclass(slots=True)
class SendResult:
    """What one send run did, and what the ledger says now."""

    release_id: str
    transport: str
    outcomes: Counter[str] = field(default_factory=Counter)  # this run's final outcomes
    counts: dict[Status, int] = field(default_factory=dict)  # the ledger after the run
    recovered_unknown: int = 0  # rows a dead run had left 'sending'
    unreachable: str | None = None  # why the run stopped early, if it did
    pending: int = 0  # recipients this run set out to send
    elapsed: float = 0.0
    elsewhere: int = 0  # queued/sending/deferred rows other live senders hold (several senders)

    @property
    def exit_code(self) -> int:
        """0 all delivered (or being sent by other live senders), 3 some failed/deferred/unknown,
        4 the server could not be reached."""
        if self.unreachable:
            return 4
        if any(self.counts.get(s, 0) for s in ("failed", "unknown")):
            return 3
        if sum(self.counts.get(s, 0) for s in ("deferred", "queued", "sending")) > self.elsewhere:
            return 3
        return 0


@dataclass(slots=True)
class _Item:
    row: Row
    message: Outgoing
    attempt: int = 1


class Delivery:
    """One run of the engine. Its state, readable at any moment:

    * :attr:`unfinished`: messages produced whose final outcome is not recorded yet;
    * :attr:`producing`: the producer is still reading rows;
    * :attr:`done`: set when every produced message has its final outcome, or the run stopped;
    * :attr:`abort`: set when the run stops (server unreachable, an unexpected error, or the end);
    * :attr:`retries`: the deferred messages waiting for their next attempt;
    * :attr:`failures`: unexpected errors in workers, the first of which :meth:`run` raises.
    """

    def __init__(
        self,
        *,
        make: Callable[[Row], Outgoing],
        ledger: Ledger,
        transport: Transport,
        limiter: Limiter,
        retry: RetrySettings,
        sleep: Sleep,
        result: SendResult,
        on_result: OnResult | None = None,
        hold: Hold | None = None,
    ) -> None:
        self.make = make
        self.hold = hold
        self.ledger = ledger
        self.transport = transport
        self.limiter = limiter
        self.retry = retry
        self.sleep = sleep
        self.result = result
        self.on_result = on_result
        self.workers = max(1, transport.connections)
        self.queue: asyncio.Queue[_Item | None] = asyncio.Queue(maxsize=self.workers * 2)
        self.unfinished = 0
        self.producing = True
        self.done = asyncio.Event()
        self.abort = asyncio.Event()
        self.retries: set[asyncio.Task[None]] = set()
        self.failures: list[BaseException] = []

    async def run(self, rows: Iterator[Row]) -> None:
        """Produce a message for every row and wait until each has its final outcome."""
        tasks = [asyncio.create_task(self._guarded()) for _ in range(self.workers)]
        try:
            for row in rows:
                if self.abort.is_set():
                    break
                item = _Item(row, self.make(row))
                self.unfinished += 1
                await self.queue.put(item)
            self.producing = False
            if self.unfinished == 0:
                self.done.set()
            await self.done.wait()
        finally:
            self.abort.set()
            for task in self.retries:
                task.cancel()
            for _ in tasks:
                with contextlib.suppress(asyncio.QueueFull):
                    self.queue.put_nowait(None)
            await asyncio.gather(*tasks, return_exceptions=True)
        if self.failures:
            raise self.failures[0]

    def _settle(self) -> None:
        """One message has its final outcome."""
        self.unfinished -= 1
        if not self.producing and self.unfinished == 0:
            self.done.set()

    async def _again_later(self, item: _Item, delay: float) -> None:
        await self.sleep(delay)
        if not self.abort.is_set():
            await self.queue.put(item)

    def _halt(self) -> None:
        self.abort.set()
        self.done.set()
        while not self.queue.empty():  # let a producer blocked on a full queue see the abort
            self.queue.get_nowait()

    def _stop(self, reason: str) -> None:
        self.result.unreachable = reason
        self._halt()

    async def _connect(self) -> Connection:
        retry = self.retry
        for attempt in range(1, retry.attempts + 1):
            try:
                return await self.transport.connect()
            except TransportError as exc:
                if attempt >= retry.attempts or self.abort.is_set():
                    self._stop(str(exc))
                    raise
                await self.sleep(retry.backoff * 2 ** (attempt - 1))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _work(self) -> None:
        connection: Connection | None = None
        ledger, retry = self.ledger, self.retry
        try:
            while not self.abort.is_set():
                item = await self.queue.get()
                if item is None or self.abort.is_set():
                    return
                if connection is None:
                    try:
                        connection = await self._connect()
                    except TransportError:
                        return
                await self.limiter.acquire()
                held = None if self.hold is None else self.hold(item.row)
                if held is not None:
                    self._final(item, held)
                    continue
                ledger.mark_sending(item.row.id, item.message.message_id)
                try:
                    outcome = await connection.send(item.message)
                except TransportError as exc:
                    # The connection could not be re-established: this message never left.
                    outcome = Outcome("deferred", None, str(exc))
                    ledger.record(item.row.id, outcome)
                    self._stop(str(exc))
                    return
                ledger.record(item.row.id, outcome)
                if outcome.status == "deferred" and item.attempt < retry.attempts:
                    item.attempt += 1
                    delay = retry.backoff * 2 ** (item.attempt - 2)
                    task = asyncio.create_task(self._again_later(item, delay))
                    self.retries.add(task)
                    task.add_done_callback(self.retries.discard)
                    continue
                self._final(item, outcome)
        finally:
            if connection is not None:
                await connection.close()

    def _final(self, item: _Item, outcome: Outcome) -> None:
        """A message has its final outcome in this run."""
        self.result.outcomes[outcome.status] += 1
        if self.on_result is not None:
            self.on_result(item.row, outcome)
        self._settle()

    async def _guarded(self) -> None:
        # Anything unexpected in a worker (a ConfigError from a password that cannot be read,
        # a bug) stops the run and is raised by run(), instead of leaving the others waiting.
        try:
            await self._work()
        except BaseException as exc:
            self.failures.append(exc)
            self._halt()
            raise


async def deliver(
    rows: Iterator[Row],
    *,
    make: Callable[[Row], Outgoing],
    ledger: Ledger,
    transport: Transport,
    limiter: Limiter,
    retry: RetrySettings,
    sleep: Sleep,
    result: SendResult,
    on_result: OnResult | None = None,
    hold: Hold | None = None,
) -> None:
    """Send every row once over ``transport.connections`` connections, recording each outcome."""
    delivery = Delivery(
        hold=hold,
        make=make,
        ledger=ledger,
        transport=transport,
        limiter=limiter,
        retry=retry,
        sleep=sleep,
        result=result,
        on_result=on_result,
    )
    await delivery.run(rows)
