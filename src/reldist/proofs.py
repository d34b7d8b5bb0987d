"""Test copies (``reldist send --test``): a journalist's message, marked as a test, to a test address.

Owns :func:`send_test`: one copy per template and language combination (or the copy of one
recipient, ``--as``), ``[TEST]`` in the subject, the test address in place of the journalist's in
To and in the unsubscribe links, recorded in the ledger's ``test_sends`` and never in the
deliveries. One connection, one attempt each; the rate limits hold, and count the copies (a
daily cap that is used up leaves the rest unsent, ``deferred``, rather than wait for hours).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from .compose import Composer
from .contacts import Contact
from .describe import describe_time
from .engine import Limiter, Sleep
from .envelope import Envelope, Outcome, Outgoing
from .errors import ContactsError, TransportError
from .job import Job, rate_limiter
from .ledger import Ledger
from .plan import Preflight, contact_from_json
from .ratelimit import RateHeld
from .render import Rendered, Renderer
from .transport.base import Transport
from .transport.factory import proof_transport

__all__ = ["Proof", "send_test"]


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


def proof_target(address: str) -> tuple[str, str | None]:
    """The ``--test`` address checked: (normalised, ASCII form or None); :class:`ContactsError`
    when it is not an email address."""
    from email_validator import EmailNotValidError, validate_email

    try:
        checked = validate_email(address.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ContactsError(f"--test {address}: not an email address: {exc}") from None
    return checked.normalized, checked.ascii_email


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
    target, target_ascii = proof_target(address)
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
    composer = Composer(Renderer(config, job.release, now=when, test=True), job.builder)
    first_seq = len(ledger.test_sends(release_id)) + 1
    copies: list[tuple[Contact, Outgoing, Rendered]] = []
    for seq, journalist in enumerate(chosen, first_seq):
        contact = replace(journalist, address=target, ascii_address=target_ascii)
        built = composer.build(contact, message_id=job.builder.new_message_id(0), date=job.message_date(when))
        rendered, message_id, data = built.rendered, built.message_id, built.data
        envelope = Envelope(
            sender=config.sender.envelope_sender,
            recipient=target_ascii or target,
            needs_smtputf8=target_ascii is None,
        )
        copies.append(
            (journalist, Outgoing(seq, target, envelope, data, message_id, canonical=True), rendered)
        )
    transport = transport or proof_transport(config, release_id)
    messages = [outgoing for _, outgoing, _ in copies]
    with rate_limiter(ledger, config.rates, clock=clock, sleep=sleep) as limiter:
        outcomes = asyncio.run(_send_each(transport, messages, limiter, config.timezone))
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


async def _send_each(
    transport: Transport, messages: list[Outgoing], limiter: Limiter, tz: dt.tzinfo
) -> list[Outcome]:
    """Send over one connection, one attempt each; :class:`TransportError` if it cannot connect.
    When a daily cap is used up, the copies not sent yet are ``deferred``, saying until when."""
    connection = await transport.connect()
    outcomes: list[Outcome] = []
    try:
        for message in messages:
            try:
                await limiter.acquire()
            except RateHeld as held:
                until = describe_time(dt.datetime.fromtimestamp(held.hold.until, dt.UTC), tz)
                why = f"not sent: the rate {held.hold.rate.text} allows the next message at {until}"
                return outcomes + [Outcome("deferred", None, why)] * (len(messages) - len(outcomes))
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
