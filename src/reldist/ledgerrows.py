"""What the ledger holds and how it is read: the statuses, :class:`Row` (one recipient of one
release), and :class:`LedgerReader`, the open connection with the queries that ``report``,
``status``, the progress line and the schedule use.

The write path (planning, claiming a row for sending, recording outcomes, suppressions, runs)
is :class:`~reldist.ledger.Ledger`, which extends the reader; the schema and the durability
rules are described there. This module reads; it changes no row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Self

from .errors import LedgerError
from .ledgerdb import Connection, Target, connect, dialect_of

Status = Literal["queued", "sending", "sent", "deferred", "failed", "skipped", "suppressed", "unknown"]
STATUSES: tuple[Status, ...] = (
    "queued",
    "sending",
    "sent",
    "deferred",
    "failed",
    "skipped",
    "suppressed",
    "unknown",
)
Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def stamp(when: dt.datetime) -> str:
    """How the ledger writes a time: UTC ISO 8601 to the millisecond (text sorts as time)."""
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class Row:
    """One recipient of one release, as the ledger knows it."""

    id: int
    release_id: str
    address: str
    name: str
    language: str
    template: str
    source: str
    contact: str | None
    status: Status
    reason: str
    attempts: int
    smtp_code: int | None
    smtp_reply: str
    message_id: str | None
    created_at: str
    first_attempt_at: str | None
    last_attempt_at: str | None
    updated_at: str
    sent_at: str | None = None  # when the server accepted it (migration 3)


_ROW_COLUMNS = ", ".join(Row.__slots__)


class LedgerReader:
    """An open ledger, for reading. Use :meth:`open`; close it (or use ``with``) when done."""

    def __init__(self, db: Connection, path: Target, *, clock: Clock = utcnow) -> None:
        self.db = db
        self.path = path  # the SQLite file or the PostgreSQL URL, as messages name it
        self.clock = clock
        self.dialect = dialect_of(db)

    @classmethod
    def open(cls, path: Target, *, clock: Clock = utcnow, create: bool = True) -> Self:
        """Open (creating and migrating as needed) a SQLite file, or a PostgreSQL database when
        ``path`` is a URL or conninfo string. A ledger newer than this reldist is refused."""
        return cls(connect(path, create=create), path, clock=clock)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def _now(self) -> str:
        return stamp(self.clock())

    # -- the rows to send ------------------------------------------------------------------

    def pending_ids(
        self, release_id: str, statuses: Sequence[Status], *, plan: int | None = None
    ) -> list[int]:
        """Ids of the rows to send, in row order (the order the lists gave)."""
        marks = ", ".join("?" for _ in statuses)
        sql = f"SELECT id FROM deliveries WHERE release_id = ? AND status IN ({marks})"  # noqa: S608
        params: list[object] = [release_id, *statuses]
        if plan is not None:
            sql += " AND plan = ?"
            params.append(plan)
        return [row[0] for row in self.db.execute(sql + " ORDER BY id", params)]

    def get(self, row_id: int) -> Row:
        found = self.db.execute(f"SELECT {_ROW_COLUMNS} FROM deliveries WHERE id = ?", (row_id,)).fetchone()  # noqa: S608
        if found is None:
            raise LedgerError(f"no delivery row {row_id}", place=str(self.path))
        return Row(*found)

    def fetch(self, ids: Sequence[int]) -> list[Row]:
        marks = ", ".join("?" for _ in ids)
        sql = f"SELECT {_ROW_COLUMNS} FROM deliveries WHERE id IN ({marks}) ORDER BY id"  # noqa: S608
        found = self.db.execute(sql, list(ids))
        return [Row(*row) for row in found]

    # -- what became of a release -----------------------------------------------------------

    def counts(self, release_id: str) -> dict[Status, int]:
        counts: dict[Status, int] = dict.fromkeys(STATUSES, 0)
        for status, number in self.db.execute(
            "SELECT status, COUNT(*) FROM deliveries WHERE release_id = ? GROUP BY status",
            (release_id,),
        ):
            counts[status] = number
        return counts

    def rows(self, release_id: str, statuses: Sequence[Status] = ()) -> Iterator[Row]:
        sql = f"SELECT {_ROW_COLUMNS} FROM deliveries WHERE release_id = ?"  # noqa: S608
        params: list[object] = [release_id]
        if statuses:
            sql += f" AND status IN ({', '.join('?' for _ in statuses)})"
            params.extend(statuses)
        for row in self.db.execute(sql + " ORDER BY id", params):
            yield Row(*row)

    def releases(self) -> list[str]:
        return [
            r[0] for r in self.db.execute("SELECT DISTINCT release_id FROM deliveries ORDER BY release_id")
        ]

    def sent_times(self, since: dt.datetime) -> list[float]:
        """POSIX times of messages handed to the server since ``since`` (any release): the
        history a daily rate limit needs. Test copies the server accepted count too: the
        provider counts them like any message."""
        after = stamp(since)
        return [
            dt.datetime.fromisoformat(r[0]).timestamp()
            for r in self.db.execute(
                "SELECT at FROM (SELECT last_attempt_at AS at FROM deliveries WHERE last_attempt_at >= ? "
                "AND status IN ('sent', 'sending', 'unknown') "
                "UNION ALL SELECT sent_at FROM test_sends WHERE sent_at >= ? AND status = 'sent') AS history "
                "ORDER BY at",
                (after, after),
            )
        ]

    # -- suppressions, test copies and runs -------------------------------------------------

    def suppressions(self) -> dict[str, tuple[str, str, str]]:
        """{casefolded address: (address, reason, source)}."""
        return {
            key: (address, reason, source)
            for key, address, reason, source in self.db.execute(
                "SELECT address_key, address, reason, source FROM suppressions ORDER BY address_key"
            )
        }

    def test_sends(self, release_id: str) -> list[tuple[str, str, str, str]]:
        """(address, as_recipient, status, sent_at) of every test copy of a release."""
        return list(
            self.db.execute(
                "SELECT address, as_recipient, status, sent_at FROM test_sends WHERE release_id = ? ORDER BY id",
                (release_id,),
            )
        )

    def last_run(self, release_id: str) -> tuple[str, str | None, str] | None:
        """(started_at, finished_at, outcome) of the release's latest run."""
        found = self.db.execute(
            "SELECT started_at, finished_at, outcome FROM runs WHERE release_id = ? ORDER BY id DESC LIMIT 1",
            (release_id,),
        ).fetchone()
        return None if found is None else (found[0], found[1], found[2])

    def runs(self, release_id: str, command: str | None = None) -> list[tuple[str, str, str | None, str]]:
        """(command, started_at, finished_at, outcome) of the release's runs, oldest first."""
        sql = "SELECT command, started_at, finished_at, outcome FROM runs WHERE release_id = ?"
        params: list[object] = [release_id]
        if command is not None:
            sql += " AND command = ?"
            params.append(command)
        return [(r[0], r[1], r[2], r[3]) for r in self.db.execute(sql + " ORDER BY id", params)]
