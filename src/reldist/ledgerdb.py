"""Where the ledger lives: a SQLite file (the default) or a PostgreSQL database.

Owns telling the two apart (:func:`parse_target`), connecting, and running the numbered
migrations (``migrations``) on either engine, with the schema version kept where each engine
keeps it: SQLite's ``PRAGMA user_version``, PostgreSQL's one-row table ``reldist_schema``.
The ledger's queries (``ledger``) are written once with ``?`` placeholders; on PostgreSQL
:class:`PgConnection` turns them into psycopg's ``%s``. psycopg is imported only when a
PostgreSQL ledger is opened (``pip install 'reldist[postgresql]'``).

It does not know the ledger's tables; it knows only connections, versions and locks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, cast

from .errors import ConfigError, LedgerError, LedgerUnreachableError
from .migrations import MIGRATIONS, sql_for

if TYPE_CHECKING:  # config reads parse_target: importing sqlite3 or psycopg here would slow the CLI
    import sqlite3

    import psycopg

Dialect = Literal["sqlite", "postgresql"]
#: A SQLite file, or a PostgreSQL URL (``postgresql://…``) or conninfo (``service=…``).
Target = Path | str

#: The first key of every advisory lock reldist takes ("rlds"), so they never collide with
#: another application's locks in a shared database.
LOCK_CLASS = 0x726C6473
#: Second keys of the fixed advisory locks (others are hashes of a name).
MIGRATE_LOCK = 1

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_CONNINFO = re.compile(r"^\s*(service|host|hostaddr|dbname|user|port)\s*=")


def parse_target(value: str, root: Path, where: str) -> Target:
    """The ``ledger`` setting: a PostgreSQL URL or conninfo string as given, else a path under ``root``.

    Raises :class:`ConfigError` for a scheme reldist does not know and for a password written
    in the setting (it belongs in ``PGPASSWORD``, ``~/.pgpass`` or a service file).
    """
    scheme = _SCHEME.match(value)
    if scheme is None and not _CONNINFO.match(value):
        path = Path(value).expanduser()
        return path if path.is_absolute() else root / path
    if scheme is not None and scheme[1].lower() not in ("postgresql", "postgres"):
        raise ConfigError(
            f"'ledger' {value!r}: unknown database {scheme[1]!r}; use a SQLite file name "
            "(reldist.db) or a PostgreSQL URL (postgresql://user@host/dbname)",
            place=where,
        )
    if _has_password(value):
        raise ConfigError(
            "'ledger' must not contain the password; put it in PGPASSWORD, ~/.pgpass or a "
            "PostgreSQL service file",
            place=where,
        )
    return value


def _has_password(value: str) -> bool:
    if _SCHEME.match(value):
        netloc = value.split("://", 1)[1].split("/", 1)[0]
        if "@" in netloc and ":" in netloc.rsplit("@", 1)[0]:
            return True
        return re.search(r"[?&]password=", value) is not None
    return re.search(r"(^|\s)password\s*=", value) is not None


def is_postgresql(target: Target) -> bool:
    return isinstance(target, str)


def describe(target: Target) -> str:
    """The target as messages name it (never with a password: :func:`parse_target` refuses those)."""
    return str(target)


def psycopg_module() -> Any:
    """psycopg, or a :class:`LedgerError` saying how to install it."""
    try:
        import psycopg
    except ImportError:
        raise LedgerError("a PostgreSQL ledger needs psycopg: pip install 'reldist[postgresql]'") from None
    return psycopg


def pg_connect(target: str, *, application: str = "reldist") -> psycopg.Connection[Any]:
    """An autocommit psycopg connection; :class:`LedgerUnreachableError` when it cannot be made."""
    module = psycopg_module()
    try:
        conn = module.connect(target, autocommit=True, application_name=application[:63], connect_timeout=10)
    except module.OperationalError as exc:
        raise LedgerUnreachableError(
            f"cannot reach the ledger database: {str(exc).strip()}", place=target
        ) from None
    except module.ProgrammingError as exc:
        raise LedgerError(f"not a usable PostgreSQL connection string: {exc}", place=target) from None
    return cast("psycopg.Connection[Any]", conn)


class PgConnection:
    """A psycopg connection that runs the ledger's SQLite-style SQL (``?`` placeholders).

    Connection failures become :class:`LedgerUnreachableError` (exit code 4); since every
    change the ledger makes is one transaction, a failure leaves nothing half-recorded.
    """

    dialect: Dialect = "postgresql"

    def __init__(self, conn: psycopg.Connection[Any], target: str) -> None:
        self.conn = conn
        self.target = target
        self._psycopg = psycopg_module()
        self._sql: dict[str, str] = {}

    def _translate(self, sql: str) -> str:
        found = self._sql.get(sql)
        if found is None:
            found = self._sql[sql] = sql.replace("%", "%%").replace("?", "%s")
        return found

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        try:
            if params is None:
                return self.conn.execute(sql)  # no placeholders: may hold several statements
            return self.conn.execute(self._translate(sql), params)
        except self._psycopg.OperationalError as exc:
            raise self._unreachable(exc) from None

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            with self.conn.cursor() as cursor:
                cursor.executemany(self._translate(sql), rows)
        except self._psycopg.OperationalError as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, exc: Exception) -> LedgerUnreachableError:
        return LedgerUnreachableError(f"lost the ledger database: {str(exc).strip()}", place=self.target)

    @property
    def in_transaction(self) -> bool:
        return bool(self.conn.info.transaction_status != self._psycopg.pq.TransactionStatus.IDLE)

    def close(self) -> None:
        self.conn.close()


Connection: TypeAlias = "sqlite3.Connection | PgConnection"


def dialect_of(db: Connection) -> Dialect:
    return "postgresql" if isinstance(db, PgConnection) else "sqlite"


def connect(target: Target, *, create: bool = True, application: str = "reldist") -> Connection:
    """Open the ledger's database and bring its schema up to date; refuse a newer one."""
    if isinstance(target, str):
        return _open_postgresql(target, application=application)
    return _open_sqlite(target, create=create)


def _newer(where: Target, version: int) -> LedgerError:
    return LedgerError(
        f"the ledger is of version {version}, newer than this reldist understands "
        f"({len(MIGRATIONS)}); upgrade reldist",
        place=str(where),
    )


def _open_sqlite(path: Path, *, create: bool) -> sqlite3.Connection:
    import sqlite3

    if not create and not path.exists():
        raise LedgerError("no ledger yet (nothing has been sent from this workspace)", place=str(path))
    try:
        db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        version = db.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise LedgerError(f"cannot open the ledger: {exc}", place=str(path)) from None
    if version > len(MIGRATIONS):
        db.close()
        raise _newer(path, version)
    for number in range(version, len(MIGRATIONS)):
        script = sql_for(MIGRATIONS[number], "sqlite")
        try:
            db.executescript(f"BEGIN IMMEDIATE;\n{script};\nPRAGMA user_version = {number + 1};\nCOMMIT;")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    return db


def pg_version(db: PgConnection) -> int | None:
    """The schema version of a PostgreSQL ledger; None when the database has no ledger."""
    if db.execute("SELECT to_regclass('reldist_schema')").fetchone()[0] is None:
        return None
    found = db.execute("SELECT version FROM reldist_schema").fetchone()
    return 0 if found is None else int(found[0])


def _open_postgresql(target: str, *, application: str) -> PgConnection:
    # Unlike a SQLite file, which a mere 'status' should not leave behind, an empty database was
    # made for the ledger: its tables are created on first use, whatever the command.
    db = PgConnection(pg_connect(target, application=application), target)
    try:
        version = pg_version(db)
        if version is not None and version > len(MIGRATIONS):
            raise _newer(target, version)
        if version != len(MIGRATIONS):
            _migrate_postgresql(db)
    except BaseException:
        db.close()
        raise
    return db


def _migrate_postgresql(db: PgConnection) -> None:
    # Several senders may open a new ledger at once: the migrations run under an advisory lock,
    # and each reads the version again once it holds it. DDL is transactional in PostgreSQL.
    psycopg = psycopg_module()
    db.execute("BEGIN")
    try:
        db.execute("SELECT pg_advisory_xact_lock(?, ?)", (LOCK_CLASS, MIGRATE_LOCK))
        db.execute("CREATE TABLE IF NOT EXISTS reldist_schema (version INTEGER NOT NULL)")
        found = db.execute("SELECT version FROM reldist_schema").fetchone()
        if found is None:
            db.execute("INSERT INTO reldist_schema (version) VALUES (0)")
        version = 0 if found is None else int(found[0])
        if version > len(MIGRATIONS):
            raise _newer(db.target, version)
        for number in range(version, len(MIGRATIONS)):
            db.execute(sql_for(MIGRATIONS[number], "postgresql"))
        db.execute("UPDATE reldist_schema SET version = ?", (len(MIGRATIONS),))
        db.execute("COMMIT")
    except psycopg.errors.InsufficientPrivilege as exc:
        db.execute("ROLLBACK")
        raise LedgerError(
            "the ledger's schema needs an upgrade, and this database role may not "
            f"change it ({str(exc).strip()}); run reldist once as the role that owns the tables",
            place=db.target,
        ) from None
    except BaseException:
        if not db.conn.closed:
            db.execute("ROLLBACK")
        raise
