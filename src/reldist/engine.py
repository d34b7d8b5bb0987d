"""The delivery engine: every pending row sent once over a few connections, each outcome recorded.

Owns :class:`Delivery` and :func:`deliver`. One producer renders and builds messages one at a
time (``make``) into a short queue; ``connections`` workers each hold one transport connection.
For every message a worker waits for the rate limiter, commits ``sending``, hands the bytes to the
transport and commits the outcome. A deferred message is retried within the run after
``backoff``, ``2*backoff``, … seconds, up to ``attempts``; then it stays ``deferred`` for a later
run. If the server cannot be reached (after the same retries) the run stops, leaving the rest as
they were, and :attr:`SendResult.unreachable` says why. When a rate over an hour is used up
(:class:`~reldist.ratelimit.RateHeld`), the run stops the same way, gently: the messages in
flight finish, and :attr:`SendResult.held` says when the next may start. It does not plan, pick the rows or choose
the transport: ``send`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from .envelope import Outcome, Outgoing
from .errors import ServerSetupError, TransportError
from .ledger import Ledger, SuppressedError
from .ledgerrows import Row, Status
from .ratelimit import Hold, RateHeld
from .settings import RetrySettings
from .transport.base import Connection, Transport

__all__ = ["Delivery", "Limiter", "OnResult", "SendResult", "Sleep", "deliver"]

Sleep = Callable[[float], Awaitable[None]]
OnResult = Callable[[Row, Outcome], None]


class Limiter(Protocol):
    """Paces the start of each message (:class:`~reldist.ratelimit.RateLimiter`, or
    :class:`~reldist.senders.SharedRateLimiter` for several senders)."""

    async def acquire(self) -> None:
        """Wait until one more message may start; raise :class:`~reldist.ratelimit.RateHeld`
        when that would take too long (a daily cap is used up)."""
        ...


@dataclass(slots=True)
class SendResult:
    """What one send run did, and what the ledger says now."""

    release_id: str
    transport: str
    outcomes: Counter[str] = field(default_factory=Counter)  # this run's final outcomes
    counts: dict[Status, int] = field(default_factory=dict)  # the ledger after the run
    recovered_unknown: int = 0  # rows a dead run had left 'sending'
    unreachable: str | None = None  # why the run stopped early, if it did
    stop_code: int = 4  # the exit code of that stop: 4 unreachable, 1 the server refuses our setup
    limited: bool = False  # --limit left recipients queued for a later run
    held: Hold | None = None  # a rate over an hour (a daily cap) stopped the run: until when
    interrupted: int = 0  # the signal (SIGINT, SIGTERM) that stopped the run, after its messages in flight
    pending: int = 0  # recipients this run set out to send
    elapsed: float = 0.0
    elsewhere: int = 0  # queued/sending/deferred rows other live senders hold (several senders)

    @property
    def exit_code(self) -> int:
        """0 all delivered (or being sent by other live senders, or left queued by --limit or a
        daily cap), 3 some failed/deferred/unknown, 4 the server could not be reached, 1 it
        refuses our settings."""
        if self.interrupted:
            return 128 + self.interrupted  # 130 for SIGINT (Ctrl-C), 143 for SIGTERM (kill, systemd)
        if self.unreachable:
            return self.stop_code
        if any(self.counts.get(s, 0) for s in ("failed", "unknown")):
            return 3
        # Rows --limit or a daily cap left queued are not a problem: a cron batch sends them next time.
        waiting: tuple[Status, ...] = (
            ("deferred", "sending") if self.limited or self.held else ("deferred", "queued", "sending")
        )
        if sum(self.counts.get(s, 0) for s in waiting) > self.elsewhere:
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
    ) -> None:
        self.make = make
        self.ledger = ledger
        # A PostgreSQL ledger answers over the network: its writes run in a thread, so that the
        # other connections go on meanwhile (psycopg serialises statements on the connection;
        # each of these is one statement, committed on its own). SQLite's take microseconds.
        self.threaded = ledger.dialect == "postgresql"
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
        self._tasks: list[asyncio.Task[None]] = []

    async def run(self, rows: Iterator[Row]) -> None:
        """Produce a message for every row and wait until each has its final outcome.

        Ctrl-C (SIGINT) and SIGTERM stop the run gently: no new message is started, the ones in
        flight are finished and their outcomes recorded (none is left ``sending``), the rest stay
        as they were; :attr:`SendResult.interrupted` names the signal.
        """
        tasks = self._tasks = [asyncio.create_task(self._guarded()) for _ in range(self.workers)]
        with self._signals():
            await self._run(rows, tasks)

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(signum, self._interrupt, signum)
                    installed.append(signum)
        try:
            yield
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)

    def _interrupt(self, signum: signal.Signals) -> None:
        if self.result.interrupted:
            # A second signal: stop now, without waiting for the replies (those rows stay
            # 'sending', and the next run reports them as unknown).
            for task in self._tasks:
                task.cancel()
            return
        self.result.interrupted = int(signum)
        self._halt()

    async def _run(self, rows: Iterator[Row], tasks: list[asyncio.Task[None]]) -> None:
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
            if self.result.interrupted and isinstance(self.failures[0], asyncio.CancelledError):
                raise KeyboardInterrupt  # a second Ctrl-C: the CLI says so and exits 130
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

    def _stop(self, exc: TransportError) -> None:
        self.result.unreachable = str(exc)
        self.result.stop_code = exc.exit_code
        self._halt()

    async def _connect(self) -> Connection:
        retry = self.retry
        for attempt in range(1, retry.attempts + 1):
            try:
                return await self.transport.connect()
            except TransportError as exc:
                # A server that refuses our settings (a wrong password) is not asked again:
                # each failed login counts towards a lockout.
                if attempt >= retry.attempts or self.abort.is_set() or isinstance(exc, ServerSetupError):
                    self._stop(exc)
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
                try:
                    await self.limiter.acquire()
                except RateHeld as held:  # not started: the row stays as it was, for the next run
                    if self.result.held is None:
                        self.result.held = held.hold
                    self._halt()
                    return
                if self.abort.is_set():  # stopped while waiting for the rate limit: not started
                    return
                try:
                    await self._ledger(ledger.mark_sending, item.row.id, item.message.message_id)
                except SuppressedError as exc:  # suppressed since the plan: it does not leave
                    self._final(item, Outcome("suppressed", None, exc.reason))
                    continue
                try:
                    outcome = await connection.send(item.message)
                except TransportError as exc:
                    # The connection could not be re-established: this message never left.
                    outcome = Outcome("deferred", None, str(exc))
                    await self._ledger(ledger.record, item.row.id, outcome)
                    self._stop(exc)
                    return
                await self._ledger(ledger.record, item.row.id, outcome)
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

    async def _ledger(self, call: Callable[..., None], *args: object) -> None:
        if self.threaded:
            await asyncio.to_thread(call, *args)
        else:
            call(*args)

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
) -> None:
    """Send every row once over ``transport.connections`` connections, recording each outcome."""
    delivery = Delivery(
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
