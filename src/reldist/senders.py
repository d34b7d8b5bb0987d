"""Several senders working through one release together on a PostgreSQL ledger.

Each ``reldist send`` or ``dispatch`` process, on any machine, joins as a *sender*: a row in
``senders`` and a session-level advisory lock on its id, held by its ledger connection for as
long as it runs. That lock is how the others know it is alive: PostgreSQL releases it the moment
the process dies or its connection drops, and never while it is merely slow. So:

- rows are *claimed* (``deliveries.sender``) a few at a time with ``SELECT … FOR UPDATE SKIP
  LOCKED``: each recipient is claimed by exactly one sender, and nobody waits for another's claim;
- :func:`recover` turns ``sending`` rows into ``unknown`` only when their sender's lock is gone,
  and hands the unsent claims of a dead sender back to the pool;
- :func:`planned_by_others` tells the planner that the release is being sent already, so that
  it is planned once, not once per sender (``Ledger.plan`` asks under an advisory lock);
- :class:`SharedRateLimiter` grants the start of each message against the ``sends`` history of
  all senders, under an advisory lock, with the database's clock, so a relay's limit holds for
  all of them together;
- suppressions are checked by ``Ledger.mark_sending`` itself, in the statement that marks a
  row ``sending``, so a suppression recorded on another machine stops the message at once.

SQLite ledgers use none of this: there the workspace lock lets one process send at a time.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from .ledgerdb import LOCK_CLASS, PgConnection, pg_connect
from .ratelimit import HOLD_AFTER, Hold, RateHeld, next_step

if TYPE_CHECKING:
    from .ledger import Ledger
    from .ledgerrows import Row, Status
    from .settings import Rate

#: First key of each sender's session lock (the second is its id).
SENDER_CLASS = LOCK_CLASS + 1
#: Second key of the transaction lock that serialises rate-limit grants.
RATE_LOCK = 2

assert SENDER_CLASS == 1919706228  # written out in LIVE

#: The ids of the live senders: those whose session lock some session holds in this database.
LIVE = (
    "SELECT l.objid::bigint FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted "
    "AND l.classid::bigint = 1919706228 AND l.objsubid = 2 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def join(ledger: Ledger, release_id: str, command: str) -> int:
    """Register this process as a sender of ``release_id`` and take its lock; sets ``ledger.sender``."""
    found = ledger.db.execute(
        "INSERT INTO senders (release_id, command, host, pid, started_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
        (release_id, command, socket.gethostname(), os.getpid(), ledger._now()),
    ).fetchone()
    sender = int(found[0])
    ledger.db.execute("SELECT pg_advisory_lock(?, ?)", (SENDER_CLASS, sender))
    ledger.sender = sender
    return sender


def leave(ledger: Ledger) -> None:
    """Give back the claims this sender did not finish, and its lock."""
    sender = ledger.sender
    if sender is None:
        return
    ledger.db.execute(
        "UPDATE deliveries SET sender = NULL WHERE sender = ? AND status NOT IN ('sending', 'sent', 'unknown')",
        (sender,),
    )
    ledger.db.execute("SELECT pg_advisory_unlock(?, ?)", (SENDER_CLASS, sender))
    ledger.sender = None


def recover(ledger: Ledger, release_id: str) -> int:
    """Rows a dead sender left ``sending`` become ``unknown`` (returns how many); its other
    unfinished claims go back to the pool. The rows of live senders are left alone."""
    db = ledger.db
    now = ledger._now()
    db.execute("BEGIN")
    try:
        cursor = db.execute(
            "UPDATE deliveries SET status = 'unknown', updated_at = ?, smtp_reply = CASE WHEN smtp_reply = '' "  # noqa: S608
            "THEN 'the sender stopped while this message was being sent' ELSE smtp_reply END "
            f"WHERE release_id = ? AND status = 'sending' AND (sender IS NULL OR sender NOT IN ({LIVE}))",
            (now, release_id),
        )
        count = int(cursor.rowcount)
        db.execute(
            "UPDATE deliveries SET sender = NULL WHERE release_id = ? AND sender IS NOT NULL "  # noqa: S608
            f"AND status NOT IN ('sending', 'sent', 'unknown') AND sender NOT IN ({LIVE})",
            (release_id,),
        )
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return count


def held_elsewhere(ledger: Ledger, release_id: str) -> int:
    """Rows of ``release_id`` still to be finished that other live senders hold."""
    found = ledger.db.execute(
        "SELECT COUNT(*) FROM deliveries WHERE release_id = ? AND status IN ('queued', 'sending', 'deferred') "  # noqa: S608
        f"AND sender IS NOT NULL AND sender <> ? AND sender IN ({LIVE})",
        (release_id, ledger.sender if ledger.sender is not None else -1),
    ).fetchone()
    return int(found[0])


def planned_by_others(ledger: Ledger, release_id: str) -> int | None:
    """The plan another live sender of ``release_id`` is sending, or None when there is none."""
    found = ledger.db.execute(
        f"SELECT MAX(plan) FROM senders WHERE release_id = ? AND id <> ? AND plan IS NOT NULL AND id IN ({LIVE})",  # noqa: S608
        (release_id, ledger.sender if ledger.sender is not None else -1),
    ).fetchone()
    return None if found[0] is None else int(found[0])


def note_plan(ledger: Ledger, number: int) -> None:
    """Say which plan this sender sends (inside the planning transaction)."""
    if ledger.sender is not None:
        ledger.db.execute("UPDATE senders SET plan = ? WHERE id = ?", (number, ledger.sender))


def claim(
    ledger: Ledger, release_id: str, statuses: Sequence[Status], *, plan: int, count: int, after: int = 0
) -> list[Row]:
    """Claim up to ``count`` unclaimed rows of ``release_id`` in one of ``statuses`` for this
    sender, in row order; rows another sender is claiming at this instant are skipped, not
    waited for. The unsent claims of a sender that died are taken over. Only rows whose id is
    above ``after`` are looked at: the primary key is walked from there, not past every row
    already sent."""
    from .ledgerrows import _ROW_COLUMNS, Row

    if ledger.sender is None:
        raise RuntimeError("claim() needs a sender: join() first")
    marks = ", ".join("?" for _ in statuses)
    found = ledger.db.execute(
        f"UPDATE deliveries SET sender = ? WHERE id IN (SELECT id FROM deliveries "  # noqa: S608
        f"WHERE release_id = ? AND plan = ? AND status IN ({marks}) AND (sender IS NULL OR sender NOT IN ({LIVE})) "
        f"AND id > ? ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED) RETURNING {_ROW_COLUMNS}",
        (ledger.sender, release_id, plan, *statuses, after, count),
    ).fetchall()
    return sorted((Row(*row) for row in found), key=lambda row: row.id)


def claims(
    ledger: Ledger, release_id: str, statuses: Sequence[Status], *, plan: int, limit: int | None, batch: int
) -> Iterator[Row]:
    """Rows for this sender to send, claimed ``batch`` at a time as they are needed, until none
    is left unclaimed (or ``limit`` rows were claimed)."""
    taken = after = 0
    while limit is None or taken < limit:
        count = batch if limit is None else min(batch, limit - taken)
        rows = claim(ledger, release_id, statuses, plan=plan, count=count, after=after)
        if not rows and after:
            # Rows below the cursor may have come free since (a sender died): look once more
            # from the start before calling it done.
            after = 0
            continue
        if not rows:
            return
        taken += len(rows)
        after = rows[-1].id
        yield from rows


def rate_connection(ledger: Ledger) -> PgConnection:
    """A second connection to the ledger's database, for :class:`SharedRateLimiter`."""
    target = str(ledger.path)
    return PgConnection(pg_connect(target, application="reldist rate"), target)


class SharedRateLimiter:
    """A :class:`~reldist.ratelimit.RateLimiter` whose memory is the ``sends`` table: every sender's grants count.

    Each grant is one transaction under an advisory lock: read the latest grants, and either
    record this one (the database's clock) or learn how long to wait. ``db`` is a connection of
    its own (:func:`rate_connection`): the engine's ledger writes, single statements from other
    threads, must not fall inside these transactions. The rules are
    :class:`~reldist.ratelimit.RateLimiter`'s (sliding window, even pacing up to an hour, and
    :class:`~reldist.ratelimit.RateHeld` instead of a long wait for a rate over an hour).
    """

    def __init__(
        self,
        rates: Sequence[Rate],
        db: PgConnection,
        *,
        sleep: Callable[[float], Awaitable[None]],
        prune_every: int = 500,
        hold_after: float | None = HOLD_AFTER,
    ) -> None:
        self.rates = tuple(rates)
        self.hold_after = hold_after
        self.db = db
        self._sleep = sleep
        self._keep = max((rate.count for rate in self.rates), default=1)
        self._longest = max((rate.period for rate in self.rates), default=0.0)
        self._prune_every = prune_every
        self._granted = 0

    async def acquire(self) -> None:
        if not self.rates:
            return
        while (wait := self._try()) > 0:
            await self._sleep(wait)

    def _try(self) -> float:
        """Grant now (0.0) or say how many seconds until a grant may come; raises
        :class:`~reldist.ratelimit.RateHeld` when that is longer than ``hold_after`` for a rate
        over an hour."""
        db = self.db
        db.execute("BEGIN")
        try:
            db.execute("SELECT pg_advisory_xact_lock(?, ?)", (LOCK_CLASS, RATE_LOCK))
            now = float(db.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()[0])
            log = [
                float(r[0])
                for r in db.execute("SELECT at FROM sends ORDER BY at DESC LIMIT ?", (self._keep,))
            ]
            step = next_step(self.rates, sorted(log), now, hold_after=self.hold_after)
            if step:
                db.execute("ROLLBACK")
                if isinstance(step, Hold):
                    raise RateHeld(step)  # until: the database's clock, as the history's
                return step
            db.execute("INSERT INTO sends (at) VALUES (?)", (now,))
            self._granted += 1
            if self._granted % self._prune_every == 0:
                db.execute("DELETE FROM sends WHERE at < ?", (now - self._longest - 60.0,))
            db.execute("COMMIT")
            return 0.0
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
