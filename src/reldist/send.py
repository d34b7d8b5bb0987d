"""Sending a release: plan it into the ledger, then deliver every pending recipient once.

Owns the per-recipient loop. :func:`send_release` takes the workspace lock, turns rows a dead run
left ``sending`` into ``unknown``, plans the recipients into the ledger, and runs
:func:`deliver`: one producer renders and builds messages one at a time, ``connections`` workers
each hold one transport connection. For every message a worker waits for the rate limiter,
commits ``sending``, hands the bytes to the transport and commits the outcome. A deferred message
is retried within the run after ``backoff``, ``2*backoff``, … seconds, up to ``attempts``; then it
stays ``deferred`` for a later run. If the server cannot be reached (after the same retries) the
run stops, leaving the rest as they were, and the result says so (exit code 4).

:func:`send_test` sends test copies (``send --test``): one journalist's message per template and
language combination, ``[TEST]`` in the subject, to a test address; they are recorded in the
ledger's ``test_sends`` and never touch the deliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from .config import Config
from .envelope import Outcome, Outgoing
from .errors import TransportError
from .ledger import Ledger, Row, Status
from .message import MessageBuilder
from .plan import Planner, Preflight, contact_from_json
from .ratelimit import RateLimiter
from .release import Release
from .render import Rendered, Renderer
from .settings import RetrySettings
from .transport.base import Connection, Transport
from .transport.outbox import OutboxTransport
from .workspace import Workspace

Sleep = Callable[[float], Awaitable[None]]
OnResult = Callable[[Row, Outcome], None]

#: What a plain ``send`` picks up, what ``--retry`` picks up, and what ``--resend-unknown`` adds.
RESUME: tuple[Status, ...] = ("queued", "deferred")
RETRY: tuple[Status, ...] = ("deferred", "failed")
UNKNOWN: tuple[Status, ...] = ("unknown",)


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

    @property
    def exit_code(self) -> int:
        """0 all delivered, 3 some failed/deferred/unknown, 4 the server could not be reached."""
        if self.unreachable:
            return 4
        if any(self.counts.get(s, 0) for s in ("deferred", "failed", "unknown", "queued", "sending")):
            return 3
        return 0


def check_transport(transport: Transport) -> None:
    """Make sure the transport can start: for SMTP, that its password or token can be had
    (no connection is made). Raises :class:`reldist.errors.ConfigError` naming the key."""
    check = getattr(transport, "check_credentials", None)
    if check is not None:
        asyncio.run(check())


def make_transport(config: Config, release_id: str) -> Transport:
    """The transport the config asks for: SMTP when ``[smtp]`` is present, else the outbox."""
    if config.smtp is not None:
        from .transport.smtp import SmtpTransport

        return SmtpTransport(config.smtp)
    return OutboxTransport(config.outbox_path / release_id)


@dataclass(frozen=True, slots=True)
class Planned:
    """A plan made before :func:`send_release` (:meth:`Job.preflight_and_plan`)."""

    number: int
    recovered: int  # rows a dead run had left 'sending', now 'unknown'


class Job:
    """One release about to be sent from one workspace: renderer, builder and planner built once."""

    def __init__(
        self,
        workspace: Workspace,
        release: Release,
        *,
        lists: Sequence[str] = (),
        where: Sequence[tuple[str, str]] = (),
        strict: bool = False,
        ledger: Ledger | None = None,
        now: dt.datetime | None = None,
    ) -> None:
        self.workspace = workspace
        self.release = release
        self.renderer = Renderer(workspace.config, release, now=now)
        signer = None
        if workspace.config.dkim is not None:  # dkimpy costs ~17 MB when imported: only if used
            from .dkim import signer_for

            signer = signer_for(workspace.config)
        self.builder = MessageBuilder(workspace.config, release, signer=signer)
        suppressed = None
        if ledger is not None:
            from .contacts import read_suppressed

            suppressed = {key: reason for key, (_, reason, _) in ledger.suppressions().items()}
            suppressed.update(read_suppressed(workspace.root))
        self.planner = Planner(
            workspace,
            release,
            self.renderer,
            self.builder,
            lists=lists,
            where=where,
            strict=strict,
            suppressed=suppressed,
        )

    def preflight(self) -> Preflight:
        return self.planner.preflight()

    def preflight_and_plan(self, ledger: Ledger) -> tuple[Preflight, Planned]:
        """The preflight and the planning in one pass over the lists (for ``send --yes`` and
        ``dispatch``, where nobody is asked in between), for :func:`send_release`. Rows a dead
        run left ``sending`` become ``unknown`` first, as :func:`send_release` does, so that the
        plan sees them as such (a newly suppressed one becomes ``suppressed``). Nothing is
        planned if the preflight raises."""
        recovered = ledger.recover_interrupted(self.release.id)
        report = Preflight(self.release)
        number = ledger.plan(self.release.id, self.planner.entries(report, build=True))
        return report, Planned(number, recovered)

    def outgoing(self, row: Row, *, message_id: str | None = None) -> Outgoing:
        """Render and build the message of one ledger row."""
        if row.contact is None:  # pragma: no cover - only queued rows are sent, and they carry one
            raise ValueError(f"row {row.id} has no contact")
        contact = contact_from_json(row.contact)
        rendered = self.renderer.render(contact)
        message_id = message_id or row.message_id or self.builder.new_message_id(row.id)
        data = self.builder.build(
            rendered,
            contact,
            message_id=message_id,
            date=dt.datetime.now(self.workspace.config.timezone),  # Date: in the sender's zone
        )
        return Outgoing(
            seq=row.id,
            address=contact.address,
            envelope=self.builder.envelope(contact),
            data=data,
            message_id=message_id,
            canonical=True,
        )


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
    ids = ledger.pending_ids(release_id, statuses, plan=number)
    if limit is not None:
        ids = ids[:limit]
    result.pending = len(ids)
    if on_start is not None:
        on_start(len(ids))
    run = ledger.start_run(release_id, "send")
    history = ledger.sent_times(dt.datetime.now(dt.UTC) - dt.timedelta(days=1)) if config.rates else ()
    limiter = RateLimiter(config.rates, clock=clock, sleep=sleep, history=history)
    try:
        if ids:
            asyncio.run(
                deliver(
                    _rows(ledger, ids),
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
        result.counts = ledger.counts(release_id)
        result.elapsed = time.monotonic() - started
        ledger.finish_run(run, _run_outcome(result))
    return result


def _run_outcome(result: SendResult) -> str:
    parts = [f"{status} {count}" for status, count in sorted(result.outcomes.items())]
    if result.unreachable:
        parts.append(f"stopped: {result.unreachable}")
    return ", ".join(parts) or "nothing to send"


def _rows(ledger: Ledger, ids: list[int], page: int = 500) -> Iterator[Row]:
    for start in range(0, len(ids), page):
        yield from ledger.fetch(ids[start : start + page])


@dataclass(slots=True)
class _Item:
    row: Row
    message: Outgoing
    attempt: int = 1


async def deliver(
    rows: Iterator[Row],
    *,
    make: Callable[[Row], Outgoing],
    ledger: Ledger,
    transport: Transport,
    limiter: RateLimiter,
    retry: RetrySettings,
    sleep: Sleep,
    result: SendResult,
    on_result: OnResult | None = None,
) -> None:
    """Send every row once over ``transport.connections`` connections, recording each outcome."""
    workers = max(1, transport.connections)
    queue: asyncio.Queue[_Item | None] = asyncio.Queue(maxsize=workers * 2)
    unfinished = 0  # produced items whose final outcome is not yet recorded
    producing = True
    all_done = asyncio.Event()
    abort = asyncio.Event()
    retries: set[asyncio.Task[None]] = set()

    def settle() -> None:
        nonlocal unfinished
        unfinished -= 1
        if not producing and unfinished == 0:
            all_done.set()

    async def again_later(item: _Item, delay: float) -> None:
        await sleep(delay)
        if not abort.is_set():
            await queue.put(item)

    def halt() -> None:
        abort.set()
        all_done.set()
        while not queue.empty():  # let a producer blocked on a full queue see the abort
            queue.get_nowait()

    def stop(reason: str) -> None:
        result.unreachable = reason
        halt()

    async def connect() -> Connection:
        for attempt in range(1, retry.attempts + 1):
            try:
                return await transport.connect()
            except TransportError as exc:
                if attempt >= retry.attempts or abort.is_set():
                    stop(str(exc))
                    raise
                await sleep(retry.backoff * 2 ** (attempt - 1))
        raise AssertionError("unreachable")  # pragma: no cover

    async def work() -> None:
        connection: Connection | None = None
        try:
            while not abort.is_set():
                item = await queue.get()
                if item is None or abort.is_set():
                    return
                if connection is None:
                    try:
                        connection = await connect()
                    except TransportError:
                        return
                await limiter.acquire()
                ledger.mark_sending(item.row.id, item.message.message_id)
                try:
                    outcome = await connection.send(item.message)
                except TransportError as exc:
                    # The connection could not be re-established: this message never left.
                    outcome = Outcome("deferred", None, str(exc))
                    ledger.record(item.row.id, outcome)
                    stop(str(exc))
                    return
                ledger.record(item.row.id, outcome)
                if outcome.status == "deferred" and item.attempt < retry.attempts:
                    item.attempt += 1
                    task = asyncio.create_task(again_later(item, retry.backoff * 2 ** (item.attempt - 2)))
                    retries.add(task)
                    task.add_done_callback(retries.discard)
                    continue
                result.outcomes[outcome.status] += 1
                if on_result is not None:
                    on_result(item.row, outcome)
                settle()
        finally:
            if connection is not None:
                await connection.close()

    async def guarded() -> None:
        # Anything unexpected in a worker (a ConfigError from a password that cannot be read,
        # a bug) stops the run and is raised below, instead of leaving the others waiting.
        try:
            await work()
        except BaseException as exc:
            failures.append(exc)
            halt()
            raise

    failures: list[BaseException] = []
    tasks = [asyncio.create_task(guarded()) for _ in range(workers)]
    try:
        for row in rows:
            if abort.is_set():
                break
            item = _Item(row, make(row))
            unfinished += 1
            await queue.put(item)
        producing = False
        if unfinished == 0:
            all_done.set()
        await all_done.wait()
    finally:
        abort.set()
        for task in retries:
            task.cancel()
        for _ in tasks:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        await asyncio.gather(*tasks, return_exceptions=True)
    if failures:
        raise failures[0]


# -- test copies ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Proof:
    """One test copy (a proof): whose message it is and what became of it."""

    as_recipient: str  # the journalist whose message this is
    source: str  # their contacts row
    template: str
    languages: tuple[str, ...]
    subject: str
    message_id: str
    outcome: Outcome


def proof_transport(config: Config, release_id: str) -> Transport:
    """Where test copies go: the configured SMTP server, or ``outbox/<release-id>/test/``."""
    if config.smtp is not None:
        return make_transport(config, release_id)
    return OutboxTransport(config.outbox_path / release_id / "test")


def send_test(
    job: Job,
    ledger: Ledger,
    address: str,
    *,
    as_recipient: str | None = None,
    transport: Transport | None = None,
    now: dt.datetime | None = None,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.time,
) -> list[Proof]:
    """Send test copies of ``job``'s release to ``address``; record them in the ledger as tests.

    By default one copy per template and language combination (the first recipient of each, from
    the preflight, which runs in full first); with ``as_recipient`` the copy of that recipient.
    Each copy is that journalist's message (language, template, greeting, fields) rendered in
    test mode (``[TEST]`` subject, the test notice) and addressed to ``address``, which also
    takes the place of the journalist's address in To and in the unsubscribe links, so that
    nothing in a test copy can unsubscribe the journalist. The deliveries table is not touched.
    """
    from email_validator import EmailNotValidError, validate_email

    from .contacts import Contact
    from .envelope import Envelope
    from .errors import ContactsError

    try:
        checked = validate_email(address.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ContactsError(f"--test {address}: not an email address: {exc}") from None
    target, target_ascii = checked.normalized, checked.ascii_email
    wanted = _address_key(as_recipient) if as_recipient else None
    report = Preflight(job.release)
    chosen: list[Contact] = []
    for entry in job.planner.entries(report, build=True):
        if wanted is None or entry.address_key != wanted:
            continue
        if entry.status != "queued" or entry.contact is None:
            raise ContactsError(
                f"--as {as_recipient}: {entry.source}: not a recipient of this release: {entry.reason}"
            )
        chosen.append(contact_from_json(entry.contact))
    if wanted is not None and not chosen:
        lists = ", ".join(job.planner.lists)
        raise ContactsError(f"--as {as_recipient}: no such recipient in the release's lists ({lists})")
    if wanted is None:
        chosen = list(report.samples.values())
    config = job.workspace.config
    release_id = job.release.id
    when = now or dt.datetime.now(dt.UTC)
    renderer = Renderer(config, job.release, now=when, test=True)
    builder = job.builder
    first_seq = len(ledger.test_sends(release_id)) + 1
    copies: list[tuple[Contact, Outgoing, Rendered]] = []
    for seq, journalist in enumerate(chosen, first_seq):
        contact = replace(journalist, address=target, ascii_address=target_ascii)
        rendered = renderer.render(contact)
        message_id = builder.new_message_id(0)
        data = builder.build(
            rendered,
            contact,
            message_id=message_id,
            date=when,
        )
        envelope = Envelope(
            sender=config.sender.envelope_sender,
            recipient=target_ascii or target,
            needs_smtputf8=target_ascii is None,
        )
        copies.append(
            (journalist, Outgoing(seq, target, envelope, data, message_id, canonical=True), rendered)
        )
    transport = transport or proof_transport(config, release_id)
    history = ledger.sent_times(dt.datetime.now(dt.UTC) - dt.timedelta(days=1)) if config.rates else ()
    limiter = RateLimiter(config.rates, clock=clock, sleep=sleep, history=history)
    outcomes = asyncio.run(_send_each(transport, [outgoing for _, outgoing, _ in copies], limiter))
    result = []
    for (journalist, outgoing, rendered), outcome in zip(copies, outcomes, strict=True):
        ledger.record_test(release_id, target, journalist.address, outgoing.message_id, outcome)
        result.append(
            Proof(
                as_recipient=journalist.address,
                source=journalist.source,
                template=rendered.template,
                languages=rendered.languages,
                subject=rendered.subject,
                message_id=outgoing.message_id,
                outcome=outcome,
            )
        )
    return result


async def _send_each(transport: Transport, messages: list[Outgoing], limiter: RateLimiter) -> list[Outcome]:
    """Send over one connection, one attempt each; :class:`TransportError` if it cannot connect."""
    connection = await transport.connect()
    outcomes = []
    try:
        for message in messages:
            await limiter.acquire()
            try:
                outcomes.append(await connection.send(message))
            except TransportError as exc:
                outcomes.append(Outcome("deferred", None, str(exc)))
    finally:
        await connection.close()
    return outcomes


def _address_key(text: str) -> str:
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(text.strip(), check_deliverability=False).normalized.casefold()
    except EmailNotValidError:
        return text.strip().casefold()
