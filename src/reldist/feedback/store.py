"""Feedback in the ledger: the ``events`` table (migration ``m004_feedback``) and suppressions
with their sources.

An event is one incoming report (a bounce, a complaint, an unsubscribe, a reply, an auto-reply)
tied to the delivery it is about. It never changes the delivery row: ``sent`` stays ``sent``.
:class:`Feedback` wraps an open :class:`~reldist.ledger.Ledger` and owns the SQL of events; it
also finds the delivery a report is about (by our Message-ID, by a signed token, by the address
among recent deliveries). It knows nothing of IMAP, HTTP or MIME.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from ..ledger import Ledger
from ..ledgerdb import LOCK_CLASS
from ..ledgerrows import Row, stamp
from ..tokens import Keys

__all__ = ["FEEDBACK", "Event", "Feedback", "Kind", "Suppression", "unsubscribe"]

Kind = Literal[
    "bounced", "soft-bounced", "policy-bounced", "complained", "unsubscribed", "replied", "auto-replied"
]
FEEDBACK: tuple[Kind, ...] = (
    "bounced",
    "soft-bounced",
    "policy-bounced",
    "complained",
    "unsubscribed",
    "replied",
    "auto-replied",
)
# Suppression sources written by feedback (the CLI writes 'cli', contacts 'contacts/suppressed.csv').
SOURCES = ("bounce", "complaint", "unsubscribe-link", "unsubscribe-mail")

_ROW = ", ".join(Row.__slots__)
# Our Message-IDs are <slug.ROWID.random@domain> (message.MessageBuilder.new_message_id): the
# row id is read from it, then checked against the row's stored Message-ID.
_OURS = re.compile(r"<?[^<>@\s]*?\.(\d+)\.[0-9a-z]+@[^<>\s]+>?", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Event:
    """One feedback event as recorded."""

    delivery_id: int | None
    release_id: str
    address: str
    kind: Kind
    happened_at: str
    source: str
    detail: str


@dataclass(frozen=True, slots=True)
class Suppression:
    """One address on the do-not-contact list."""

    address: str
    reason: str
    source: str
    created_at: str


class Feedback:
    """Events and suppressions of one open ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.db = ledger.db
        self._tokens: dict[tuple[str, int], dict[bytes, int]] = {}

    @contextmanager
    def transaction(self, lock: str | None = None) -> Iterator[None]:
        """One report is recorded whole or not at all (its event and its suppression). Inside
        an open transaction (a batch of reports), it is part of that one.

        ``lock`` names what no other writer may record at the same time (a delivery's
        unsubscribe): SQLite's ``BEGIN IMMEDIATE`` already lets one writer in at a time; on
        PostgreSQL, where several ``serve`` or ``inbox`` processes may write at once, it is an
        advisory lock held until the transaction ends."""
        postgresql = self.ledger.dialect == "postgresql"
        if self.db.in_transaction:
            if lock is not None and postgresql:
                self.db.execute("SELECT pg_advisory_xact_lock(?, hashtext(?))", (LOCK_CLASS, lock))
            yield
            return
        self.db.execute("BEGIN" if postgresql else "BEGIN IMMEDIATE")
        try:
            if lock is not None and postgresql:
                self.db.execute("SELECT pg_advisory_xact_lock(?, hashtext(?))", (LOCK_CLASS, lock))
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- finding the delivery --------------------------------------------------------------

    def by_message_id(self, message_id: str) -> Row | None:
        """The delivery that went out with this Message-ID (ours), or None."""
        match = _OURS.fullmatch(message_id.strip())
        if match is None:
            return None
        found = self.db.execute(
            f"SELECT {_ROW} FROM deliveries WHERE id = ? AND message_id = ?",  # noqa: S608
            (int(match.group(1)), "<" + message_id.strip().strip("<>") + ">"),
        ).fetchone()
        return None if found is None else Row(*found)

    def by_token(self, keys: Keys, token: str) -> Row | None:
        """The delivery a signed unsubscribe token names, or None (forged, or nothing sent)."""
        verified = keys.verify(token)
        if verified is None:
            return None
        # The digest names the address only under the key: hash the release's addresses once
        # (a release has thousands) and look up; a miss rebuilds once for rows added since.
        slot = (verified.release_id, verified.key)
        index = self._tokens.get(slot)
        if index is not None and verified.digest in index:
            return self.ledger.get(index[verified.digest])
        index = self._tokens[slot] = {
            keys.digest(address_key, verified.key): row_id
            for row_id, address_key in self.db.execute(
                "SELECT id, address_key FROM deliveries WHERE release_id = ?", (verified.release_id,)
            )
        }
        row_id = index.get(verified.digest)
        return None if row_id is None else self.ledger.get(row_id)

    def by_id(self, row_id: int) -> Row | None:
        found = self.db.execute(f"SELECT {_ROW} FROM deliveries WHERE id = ?", (row_id,)).fetchone()  # noqa: S608
        return None if found is None else Row(*found)

    def by_address(self, address: str, *, days: float = 60.0) -> Row | None:
        """The latest delivery sent to ``address`` within ``days``, or None."""
        since = (self.ledger.clock() - dt.timedelta(days=days)).astimezone(dt.UTC).isoformat()
        found = self.db.execute(
            f"SELECT {_ROW} FROM deliveries WHERE address_key = ? AND status IN ('sent', 'unknown') "  # noqa: S608
            "AND last_attempt_at >= ? ORDER BY last_attempt_at DESC LIMIT 1",
            (address.strip().casefold(), since),
        ).fetchone()
        return None if found is None else Row(*found)

    # -- recording -------------------------------------------------------------------------

    def seen(self, incoming: str) -> bool:
        """Whether the incoming report with this key has been recorded already."""
        return self.db.execute("SELECT 1 FROM events WHERE incoming = ?", (incoming,)).fetchone() is not None

    def record(
        self,
        row: Row | None,
        kind: Kind,
        *,
        source: str,
        detail: str = "",
        address: str = "",
        happened_at: dt.datetime | None = None,
        incoming: str | None = None,
    ) -> bool:
        """Add one event; False when ``incoming`` was recorded before (nothing added)."""
        now = self.ledger.clock()
        cursor = self.db.execute(
            "INSERT INTO events (delivery_id, release_id, address_key, kind, happened_at, recorded_at, "
            "source, detail, incoming) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (incoming) DO NOTHING",
            (
                None if row is None else row.id,
                "" if row is None else row.release_id,
                (row.address if row is not None else address).casefold(),
                kind,
                stamp(happened_at or now),
                stamp(now),
                source,
                detail,
                incoming,
            ),
        )
        return cursor.rowcount > 0

    def has(self, row: Row, kind: Kind) -> bool:
        found = self.db.execute("SELECT 1 FROM events WHERE delivery_id = ? AND kind = ?", (row.id, kind))
        return found.fetchone() is not None

    def suppress(self, address: str, *, reason: str, source: str) -> bool:
        return self.ledger.suppress(address, reason=reason, source=source)

    def soft_bounces(self, address: str) -> int:
        """Soft bounces of ``address`` across every release."""
        found = self.db.execute(
            "SELECT COUNT(*) FROM events WHERE address_key = ? AND kind = 'soft-bounced'",
            (address.casefold(),),
        )
        return int(found.fetchone()[0])

    # -- reading ---------------------------------------------------------------------------

    def latest(self, release_id: str) -> dict[int, tuple[Kind, str, str]]:
        """{delivery id: (kind, happened_at, detail)} of each delivery's most recent event."""
        latest: dict[int, tuple[Kind, str, str]] = {}
        for delivery_id, kind, happened_at, detail in self.db.execute(
            "SELECT delivery_id, kind, happened_at, detail FROM events WHERE release_id = ? "
            "AND delivery_id IS NOT NULL ORDER BY happened_at, id",
            (release_id,),
        ):
            latest[delivery_id] = (kind, happened_at, detail)
        return latest

    def counts(self, release_id: str) -> dict[Kind, int]:
        """How many of the release's deliveries had each kind of feedback."""
        counts: dict[Kind, int] = dict.fromkeys(FEEDBACK, 0)
        for kind, number in self.db.execute(
            "SELECT kind, COUNT(DISTINCT delivery_id) FROM events WHERE release_id = ? GROUP BY kind",
            (release_id,),
        ):
            counts[kind] = number
        return counts

    def events(self, release_id: str, kinds: tuple[Kind, ...] = FEEDBACK) -> list[Event]:
        marks = ", ".join("?" for _ in kinds)
        return [
            Event(*found)
            for found in self.db.execute(
                "SELECT e.delivery_id, e.release_id, COALESCE(d.address, e.address_key), e.kind, "  # noqa: S608
                "e.happened_at, e.source, e.detail FROM events e LEFT JOIN deliveries d ON d.id = e.delivery_id "
                f"WHERE e.release_id = ? AND e.kind IN ({marks}) ORDER BY e.happened_at, e.id",
                (release_id, *kinds),
            )
        ]

    def suppressions(self) -> list[Suppression]:
        return [
            Suppression(*found)
            for found in self.db.execute(
                "SELECT address, reason, source, created_at FROM suppressions ORDER BY created_at, address_key"
            )
        ]


def unsubscribe(
    feedback: Feedback, row: Row, *, source: str, incoming: str | None = None, detail: str = ""
) -> bool:
    """Suppress ``row``'s recipient and record the ``unsubscribed`` event, in one transaction.

    Returns False when it was recorded before (a repeated click, a mail read twice): nothing changes.
    """
    # Two clicks at once (a mail provider's one-click POST and the reader's own, on two serve
    # processes) must not both find no event and record two: one waits for the other.
    with feedback.transaction(lock=f"unsubscribe:{row.id}"):
        if incoming is None and feedback.has(row, "unsubscribed"):
            feedback.suppress(row.address, reason=f"unsubscribed ({row.release_id})", source=source)
            return False
        added = feedback.record(row, "unsubscribed", source=source, incoming=incoming, detail=detail)
        if added:
            feedback.suppress(row.address, reason=f"unsubscribed ({row.release_id})", source=source)
    return added
