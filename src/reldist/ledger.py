"""The delivery ledger: one SQLite file (WAL), or a PostgreSQL database shared by several senders,
that knows what became of every recipient.

Schema (see ``migrations``):

- ``deliveries``: one row per (release, recipient). ``status`` is one of ``queued`` (planned),
  ``sending`` (handed to the transport, outcome not yet recorded), ``sent``, ``deferred`` (4xx or
  a drop before the message was sent: retry later), ``failed`` (5xx: the server's words are in
  ``smtp_code``/``smtp_reply``), ``skipped`` (a bad contact row: ``reason``), ``suppressed``
  (do-not-contact) and ``unknown`` (was ``sending`` when a run died: may have been delivered).
  ``contact`` keeps the contact as JSON so a later run renders the same message.
- ``suppressions``: addresses no release may reach, with a reason and where it came from.
- ``test_sends``: test copies (``send --test``), never counted as delivery.
- ``runs``: one row per send/dispatch run of a release.

Durability: a row is marked ``sending`` in its own committed transaction before the message body
leaves, and its outcome is committed right after the reply. With WAL and ``synchronous=NORMAL``
a committed transaction survives the process being killed (not necessarily a power cut).

This module owns the SQL that writes: planning, claiming a row for sending, recording outcomes,
suppressions, test copies and runs. The rows, the statuses and the queries that read them are in
``ledgerrows`` (:class:`Ledger` extends its :class:`~reldist.ledgerrows.LedgerReader`). It knows
nothing of SMTP, templates or files other than the database.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from .envelope import Outcome
from .errors import LedgerError
from .ledgerdb import LOCK_CLASS, Connection, Target
from .ledgerrows import Clock, LedgerReader, Status, utcnow

#: The statuses a message may be sent from (``mark_sending`` claims only these).
SENDABLE: tuple[Status, ...] = ("queued", "deferred", "failed", "unknown")


#: A permanent refusal of the recipient's mailbox (5.1.0 other address status, 5.1.1 no such
#: user, 5.1.10 null MX / no such recipient) or its domain (5.1.2): RFC 3463 and RFC 7505.
#: Policy refusals (5.7.x) and everything else are the server's, not the address's, fault.
_BAD_MAILBOX = re.compile(r"^\s*5\.1\.(?:0|1|2|10)(?!\d)")


def bad_mailbox(code: int | None, reply: str) -> bool:
    """Whether a 5xx reply refuses the address itself, for good (see :data:`_BAD_MAILBOX`)."""
    return code is not None and 500 <= code < 600 and bool(_BAD_MAILBOX.match(reply))


class ClaimError(LedgerError):
    """A row could not be claimed for sending: another run has it, or it is done."""


class SuppressedError(ClaimError):
    """The row's address went on the do-not-contact list after the plan (perhaps on another
    machine): the row was recorded ``suppressed`` instead of being marked ``sending``."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PlanEntry:
    """A recipient as the planner sees it this run."""

    address_key: str
    address: str
    status: Literal["queued", "skipped", "suppressed"]
    name: str = ""
    language: str = ""
    template: str = ""
    source: str = ""
    contact: str | None = None
    reason: str = ""


class Ledger(LedgerReader):
    """An open ledger, for writing and reading (the queries are :class:`LedgerReader`'s). Use
    :meth:`open`; close it (or use ``with``) when done."""

    def __init__(self, db: Connection, path: Target, *, clock: Clock = utcnow) -> None:
        super().__init__(db, path, clock=clock)
        self.sender: int | None = None  # this process's id among several senders (``senders.join``)

    # -- planning --------------------------------------------------------------------------

    def plan(self, release_id: str, entries: Iterable[PlanEntry], *, batch: int = 2000) -> int:
        """Record this run's recipients in one transaction; returns the plan number.

        New recipients become rows. A recipient never attempted takes the new status (queued,
        skipped or suppressed); one already sent keeps its row as it is; a newly suppressed one
        that was deferred, failed or unknown becomes suppressed. No row is ever deleted: rows this
        plan does not contain keep their status, except never-attempted queued ones, which become
        skipped (not in the latest plan). ``updated_at`` moves only on a row that changed.
        Nothing is committed if ``entries`` raises.
        """
        db = self.db
        if self.dialect == "postgresql" and self.sender is None:
            from . import senders

            senders.join(self, release_id, "send")
        self._begin_exclusive(f"plan:{release_id}")
        if self.dialect == "postgresql":
            from . import senders

            joined = senders.planned_by_others(self, release_id)
            if joined is not None:
                # Another sender planned this release and is sending it: join its plan. The
                # entries are still read through, so that a preflight sees every recipient.
                try:
                    for _ in entries:
                        pass
                    senders.note_plan(self, joined)
                    db.execute("COMMIT")
                    return joined
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
        try:
            number = db.execute(
                "SELECT COALESCE(MAX(plan), 0) + 1 FROM deliveries WHERE release_id = ?",
                (release_id,),
            ).fetchone()[0]
            now = self._now()
            chunk: list[tuple[object, ...]] = []
            for entry in entries:
                chunk.append(
                    (
                        release_id,
                        entry.address_key,
                        entry.address,
                        entry.name,
                        entry.language,
                        entry.template,
                        entry.source,
                        entry.contact,
                        entry.status,
                        entry.reason,
                        number,
                        now,
                        now,
                    )
                )
                if len(chunk) >= batch:
                    self._upsert(chunk)
                    chunk = []
            self._upsert(chunk)
            # A row once in the ledger stays (its skipped or suppressed reason is part of the
            # record): a never-attempted row this plan leaves out (another --list, a contact taken
            # off a list) is not sent by this run, so a queued one says so instead of waiting.
            db.execute(
                "UPDATE deliveries SET status = 'skipped', reason = ?, updated_at = ? "
                "WHERE release_id = ? AND plan != ? AND attempts = 0 AND status = 'queued'",
                (f"not in the lists of the latest plan ({number})", now, release_id, number),
            )
            if self.sender is not None:
                from . import senders

                senders.note_plan(self, number)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return int(number)

    def _begin_exclusive(self, name: str) -> None:
        """Begin a transaction that no other writer of ``name`` runs beside: SQLite takes its
        write lock at once; PostgreSQL takes an advisory lock held until the transaction ends."""
        if self.dialect == "sqlite":
            self.db.execute("BEGIN IMMEDIATE")
            return
        self.db.execute("BEGIN")
        self.db.execute("SELECT pg_advisory_xact_lock(?, hashtext(?))", (LOCK_CLASS, name))

    def _upsert(self, rows: Sequence[tuple[object, ...]]) -> None:
        fresh = "deliveries.attempts = 0 AND deliveries.status IN ('queued', 'skipped', 'suppressed')"
        now_suppressed = (
            "excluded.status = 'suppressed' AND deliveries.status IN ('deferred', 'failed', 'unknown')"
        )
        status = f"CASE WHEN {fresh} THEN excluded.status WHEN {now_suppressed} THEN 'suppressed' ELSE deliveries.status END"
        reason = f"CASE WHEN {fresh} OR {now_suppressed} THEN excluded.reason ELSE deliveries.reason END"
        # NULL-safe "differs": SQLite has had IS NOT always, IS DISTINCT FROM only since 3.39
        # (Ubuntu 22.04 has 3.37); PostgreSQL's IS NOT is for booleans and NULL only.
        differs = "IS NOT" if self.dialect == "sqlite" else "IS DISTINCT FROM"
        described = " OR ".join(
            f"excluded.{c} {differs} deliveries.{c}"
            for c in ("address", "name", "language", "template", "source", "contact")
        )
        # "last change": a re-run that changes nothing in a row leaves its updated_at alone
        changed = (
            f"({status}) {differs} deliveries.status OR ({reason}) {differs} deliveries.reason "
            f"OR (deliveries.status != 'sent' AND ({described}))"
        )
        self.db.executemany(
            f"""
            INSERT INTO deliveries (release_id, address_key, address, name, language, template,
                                    source, contact, status, reason, plan, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (release_id, address_key) DO UPDATE SET
                plan = excluded.plan,
                address = CASE WHEN deliveries.status = 'sent' THEN deliveries.address ELSE excluded.address END,
                name = CASE WHEN deliveries.status = 'sent' THEN deliveries.name ELSE excluded.name END,
                language = CASE WHEN deliveries.status = 'sent' THEN deliveries.language ELSE excluded.language END,
                template = CASE WHEN deliveries.status = 'sent' THEN deliveries.template ELSE excluded.template END,
                source = CASE WHEN deliveries.status = 'sent' THEN deliveries.source ELSE excluded.source END,
                contact = CASE WHEN deliveries.status = 'sent' THEN deliveries.contact ELSE excluded.contact END,
                updated_at = CASE WHEN {changed} THEN excluded.updated_at ELSE deliveries.updated_at END,
                reason = {reason},
                status = {status}
            """,  # noqa: S608 - the f-string joins fixed SQL text only
            rows,
        )

    # -- sending ---------------------------------------------------------------------------

    def recover_interrupted(self, release_id: str) -> int:
        """Rows left ``sending`` by a run that died become ``unknown``; returns how many.

        On PostgreSQL only the rows of senders known to be gone (``senders.recover``)."""
        if self.dialect == "postgresql":
            from . import senders

            if self.sender is None:  # the first step of a run: join as one of its senders
                senders.join(self, release_id, "send")
            return senders.recover(self, release_id)
        cursor = self.db.execute(
            "UPDATE deliveries SET status = 'unknown', updated_at = ?, "
            "smtp_reply = CASE WHEN smtp_reply = '' THEN 'the run stopped while this message was being sent' "
            "ELSE smtp_reply END WHERE release_id = ? AND status = 'sending'",
            (self._now(), release_id),
        )
        return cursor.rowcount

    def mark_sending(self, row_id: int, message_id: str, *, expected: Sequence[Status] = SENDABLE) -> None:
        """Claim the row: durably note that its message is about to leave (its own transaction).

        A compare-and-set: the row changes only while its status is one of ``expected`` (by
        default any status a message may be sent from: never ``sending``, ``sent``, ``skipped``
        or ``suppressed``). When it is not, another run has claimed or finished it, and
        :class:`ClaimError` is raised, so that exactly-once does not rest on the workspace lock alone.
        An address suppressed since the plan (by ``reldist suppress``, an unsubscribe, another
        machine) is checked in the same statement: the row becomes ``suppressed`` and
        :class:`SuppressedError` is raised.
        """
        now = self._now()
        marks = ", ".join("?" for _ in expected)
        # One of several senders (``senders``) marks only its own claims, or rows nobody claimed.
        mine = "" if self.sender is None else ", sender = ?"
        claimed = "" if self.sender is None else " AND (sender = ? OR sender IS NULL)"
        who = () if self.sender is None else (self.sender,)
        cursor = self.db.execute(
            f"UPDATE deliveries SET status = 'sending', attempts = attempts + 1, message_id = ?{mine}, "  # noqa: S608
            "first_attempt_at = COALESCE(first_attempt_at, ?), last_attempt_at = ?, updated_at = ? "
            f"WHERE id = ? AND status IN ({marks}){claimed} AND NOT EXISTS "
            "(SELECT 1 FROM suppressions WHERE suppressions.address_key = deliveries.address_key)",
            (message_id, *who, now, now, now, row_id, *expected, *who),
        )
        if cursor.rowcount != 1:
            found = self.db.execute(
                "SELECT status, address_key FROM deliveries WHERE id = ?", (row_id,)
            ).fetchone()
            now_status = "gone" if found is None else found[0]
            if found is not None and now_status in expected:
                self._suppressed_meanwhile(row_id, found[1], expected)
            raise ClaimError(
                f"delivery row {row_id} is {now_status}, not {' or '.join(expected)}: "
                "another run has claimed it; this run stops rather than send it twice",
                place=str(self.path),
            )

    def _suppressed_meanwhile(self, row_id: int, address_key: str, expected: Sequence[Status]) -> None:
        """Raise :class:`SuppressedError` (having recorded the row ``suppressed``) when the
        address is on the do-not-contact list now; return otherwise."""
        found = self.db.execute(
            "SELECT reason FROM suppressions WHERE address_key = ?", (address_key,)
        ).fetchone()
        if found is None:
            return
        reason = str(found[0]) or "on the do-not-contact list"
        marks = ", ".join("?" for _ in expected)
        self.db.execute(
            f"UPDATE deliveries SET status = 'suppressed', reason = ?, updated_at = ? WHERE id = ? AND status IN ({marks})",  # noqa: S608
            (reason, self._now(), row_id, *expected),
        )
        raise SuppressedError(f"{address_key}: suppressed since the plan: {reason}", reason)

    def record(self, row_id: int, outcome: Outcome) -> None:
        """Durably record the server's answer for one message (and, when it is ``sent``, when).

        A permanent refusal of the mailbox or its domain (:func:`bad_mailbox`: 5.1.0, 5.1.1,
        5.1.10, 5.1.2) also suppresses the address, as a hard bounce read by ``inbox`` does
        (source ``bounce``, the server's words as the reason): it would fail on every release."""
        now = self._now()
        self.db.execute(
            "UPDATE deliveries SET status = ?, smtp_code = ?, smtp_reply = ?, updated_at = ?, "
            "sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE id = ?",
            (outcome.status, outcome.code, outcome.reply, now, outcome.status, now, row_id),
        )
        if outcome.status == "failed" and bad_mailbox(outcome.code, outcome.reply):
            found = self.db.execute(
                "SELECT address, release_id FROM deliveries WHERE id = ?", (row_id,)
            ).fetchone()
            if found is not None:
                reason = f"refused at send time ({found[1]}): {outcome.code} {outcome.reply}"[:300]
                self.suppress(str(found[0]), reason=reason, source="bounce")

    # -- suppressions ----------------------------------------------------------------------

    def suppress(self, address: str, *, reason: str = "", source: str = "cli") -> bool:
        """Add an address to the do-not-contact list; False if it was there already."""
        cursor = self.db.execute(
            "INSERT INTO suppressions (address_key, address, reason, source, created_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (address_key) DO NOTHING",
            (address.casefold(), address, reason, source, self._now()),
        )
        return cursor.rowcount > 0

    def unsuppress(self, address: str) -> bool:
        cursor = self.db.execute("DELETE FROM suppressions WHERE address_key = ?", (address.casefold(),))
        return cursor.rowcount > 0

    # -- tests and runs --------------------------------------------------------------------

    def record_test(
        self, release_id: str, address: str, as_recipient: str, message_id: str, outcome: Outcome
    ) -> None:
        self.db.execute(
            "INSERT INTO test_sends (release_id, address, as_recipient, status, smtp_code, smtp_reply, "
            "message_id, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                release_id,
                address,
                as_recipient,
                outcome.status,
                outcome.code,
                outcome.reply,
                message_id,
                self._now(),
            ),
        )

    def start_run(self, release_id: str, command: str) -> int:
        found = self.db.execute(
            "INSERT INTO runs (release_id, command, started_at) VALUES (?, ?, ?) RETURNING id",
            (release_id, command, self._now()),
        ).fetchone()
        return int(found[0])

    def finish_run(self, run_id: int, outcome: str) -> None:
        self.db.execute(
            "UPDATE runs SET finished_at = ?, outcome = ? WHERE id = ?",
            (self._now(), outcome, run_id),
        )
