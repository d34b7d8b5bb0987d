"""The ledger as a whole: what it is (``reldist ledger info``) and copying it into another,
empty ledger (``reldist ledger copy``), e.g. from a SQLite file into PostgreSQL.

A copy takes every table the schema has (whatever migrations added them), every row and every
column as stored — statuses, attempts, times and ids included — in one transaction on the target,
so a failed copy leaves the target as empty as it was. Both ledgers are first brought to this
reldist's schema version, so their tables match.

A SQLite ledger keeps its rate history in the deliveries themselves (``sent_times``); several
senders on PostgreSQL keep theirs in ``sends`` (``senders.SharedRateLimiter``), which a SQLite
ledger leaves empty. Copied as it is, a ``N/day`` limit would forget today's sends: so a copy from
SQLite into PostgreSQL fills ``sends`` with the start of every message of the last
``history`` seconds — deliveries and test copies alike, as the relay counted both — and a copy
into SQLite leaves ``sends`` out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from .errors import LedgerError
from .ledger import Ledger
from .ledgerdb import Target, describe
from .migrations import MIGRATIONS

#: Copied first, in this order; any other table follows in name order.
_FIRST = ("deliveries", "suppressions", "test_sends", "runs")
#: Rate history seeded into ``sends`` at least this far back (seconds): a ``N/day`` limit added
#: to reldist.toml after the copy still sees today's sends.
HISTORY = 86400.0


@dataclass(frozen=True, slots=True)
class LedgerInfo:
    """Which engine, where, the schema version, and the rows in each table."""

    backend: str  # "SQLite" or "PostgreSQL"
    where: str
    version: int
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def supported(self) -> int:
        return len(MIGRATIONS)


def tables(ledger: Ledger) -> list[str]:
    """The ledger's tables (not the schema-version bookkeeping), in copy order."""
    if ledger.dialect == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    else:
        sql = (
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
            "AND table_type = 'BASE TABLE' AND table_name <> 'reldist_schema'"
        )
    names = {str(row[0]) for row in ledger.db.execute(sql)}
    return [n for n in _FIRST if n in names] + sorted(names - set(_FIRST))


def row_counts(ledger: Ledger) -> dict[str, int]:
    return {
        name: int(ledger.db.execute(f"SELECT COUNT(*) FROM {name}").fetchone()[0])  # noqa: S608 - our own table names
        for name in tables(ledger)
    }


def schema_version(ledger: Ledger) -> int:
    if ledger.dialect == "sqlite":
        return int(ledger.db.execute("PRAGMA user_version").fetchone()[0])
    return int(ledger.db.execute("SELECT version FROM reldist_schema").fetchone()[0])


def info(ledger: Ledger) -> LedgerInfo:
    return LedgerInfo(
        backend="SQLite" if ledger.dialect == "sqlite" else "PostgreSQL",
        where=describe(ledger.path),
        version=schema_version(ledger),
        rows=row_counts(ledger),
    )


def _columns(ledger: Ledger, table: str) -> list[str]:
    cursor = ledger.db.execute(f"SELECT * FROM {table} LIMIT 0")  # noqa: S608 - our own table names
    return [str(column[0]) for column in cursor.description]


def copy_ledger(
    source: Ledger, target: Target, *, batch: int = 2000, history: float = HISTORY
) -> dict[str, int]:
    """Copy every row of ``source`` into the empty ledger at ``target``; returns rows per table.

    Refuses a target that has any row, and a target that is the source itself. From SQLite into
    PostgreSQL, ``sends`` gets the rate history of the last ``history`` seconds (at least a day).
    """
    if describe(target) == describe(source.path):
        raise LedgerError("that is the ledger being copied", place=describe(target))
    with Ledger.open(target) as destination:
        held = {name: n for name, n in row_counts(destination).items() if n}
        if held:
            shown = ", ".join(f"{name} {n}" for name, n in held.items())
            raise LedgerError(
                f"not empty ({shown} rows); reldist copies a ledger only into an "
                "empty one, so that nothing is merged or overwritten",
                place=describe(target),
            )
        wanted = set(tables(destination))
        copied: dict[str, int] = {}
        db = destination.db
        db.execute("BEGIN IMMEDIATE" if destination.dialect == "sqlite" else "BEGIN")
        try:
            for table in tables(source):
                if table not in wanted:
                    raise LedgerError(f"has no table {table!r} to copy into", place=describe(target))
                if table == "sends" and destination.dialect == "sqlite":
                    continue  # PostgreSQL's shared rate history: SQLite reads its own from the deliveries
                columns = _columns(source, table)
                names = ", ".join(columns)
                insert = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' for _ in columns)})"  # noqa: S608
                cursor = source.db.execute(f"SELECT {names} FROM {table}")  # noqa: S608
                count = 0
                while chunk := cursor.fetchmany(batch):
                    rows: list[Any] = [tuple(row) for row in chunk]
                    db.executemany(insert, rows)
                    count += len(rows)
                copied[table] = count
                if destination.dialect == "postgresql" and "id" in columns:
                    # Rows keep their ids; the identity goes on from the largest.
                    db.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                        f"COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM {table}"
                    )
            if source.dialect == "sqlite" and destination.dialect == "postgresql" and "sends" in wanted:
                since = source.clock() - dt.timedelta(seconds=max(history, HISTORY))
                copied["sends"] = copied.get("sends", 0) + seed_rate_history(destination, since)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    return copied


def seed_rate_history(ledger: Ledger, since: dt.datetime) -> int:
    """Add to ``sends`` the start of every message since ``since``: the attempts the SQLite
    limiter counts (rows ``sent``, ``sending`` or ``unknown``, at their last attempt) and the
    test copies; returns how many. Runs inside the caller's transaction, in the database."""
    stamp = since.astimezone(dt.UTC).isoformat(timespec="milliseconds")
    cursor = ledger.db.execute(
        "INSERT INTO sends (at) SELECT extract(epoch FROM t::timestamptz)::float8 FROM ("
        "SELECT last_attempt_at AS t FROM deliveries WHERE status IN ('sent', 'sending', 'unknown') "
        "AND last_attempt_at IS NOT NULL "
        "UNION ALL SELECT sent_at FROM test_sends WHERE status IN ('sent', 'unknown')"
        ") attempts WHERE t::timestamptz >= ?::timestamptz",
        (stamp,),
    )
    return int(cursor.rowcount)
