"""Numbered schema migrations of the ledger.

``MIGRATIONS`` is a plain list filled by the :func:`migration` decorator, in order; the ledger's
``PRAGMA user_version`` says how many have run. Opening an older ledger runs the rest; a ledger
whose version is newer than this reldist knows is refused (``ledger.Ledger.open``).
Never edit a migration that has shipped: add a new one.
"""

from __future__ import annotations

from collections.abc import Callable

#: A migration returns the SQL script that takes the schema one version up. The ledger runs it
#: in one transaction together with the version bump (``executescript`` would otherwise commit).
Migration = Callable[[], str]
MIGRATIONS: list[Migration] = []


def migration(func: Migration) -> Migration:
    MIGRATIONS.append(func)
    return func


@migration
def m001_initial() -> str:
    return """
        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            release_id TEXT NOT NULL,
            address_key TEXT NOT NULL,          -- casefolded address (or the row's place when none)
            address TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            language TEXT NOT NULL DEFAULT '',  -- the message's languages in order: 'ru,en'
            template TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL DEFAULT '',    -- contacts/regional.csv:17
            contact TEXT,                       -- JSON of the contact, to render it again
            status TEXT NOT NULL CHECK (status IN
                ('queued','sending','sent','deferred','failed','skipped','suppressed','unknown')),
            reason TEXT NOT NULL DEFAULT '',    -- why skipped / suppressed
            attempts INTEGER NOT NULL DEFAULT 0,
            smtp_code INTEGER,
            smtp_reply TEXT NOT NULL DEFAULT '',
            message_id TEXT,
            plan INTEGER NOT NULL DEFAULT 0,    -- the planning run that last saw this recipient
            created_at TEXT NOT NULL,
            first_attempt_at TEXT,
            last_attempt_at TEXT,
            updated_at TEXT NOT NULL,
            UNIQUE (release_id, address_key)
        );
        CREATE INDEX deliveries_status ON deliveries (release_id, status);
        CREATE INDEX deliveries_sent ON deliveries (status, last_attempt_at);

        CREATE TABLE suppressions (
            address_key TEXT PRIMARY KEY,
            address TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL DEFAULT '',    -- 'cli', 'contacts/suppressed.csv', 'bounce'
            created_at TEXT NOT NULL
        );

        CREATE TABLE test_sends (
            id INTEGER PRIMARY KEY,
            release_id TEXT NOT NULL,
            address TEXT NOT NULL,
            as_recipient TEXT NOT NULL,
            status TEXT NOT NULL,
            smtp_code INTEGER,
            smtp_reply TEXT NOT NULL DEFAULT '',
            message_id TEXT,
            sent_at TEXT NOT NULL
        );

        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            release_id TEXT NOT NULL,
            command TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            outcome TEXT NOT NULL DEFAULT ''
        );
        """


@migration
def m002_lighter_indexes() -> str:
    # Every message changes its row's status twice (sending, then the outcome). The two indexes
    # on status cost ~30 us a message in page writes; the queries that used them (counts and
    # pending rows of one release) find the release's rows through UNIQUE (release_id,
    # address_key) quickly enough, and the daily-rate history needs only last_attempt_at.
    return """
        DROP INDEX deliveries_status;
        DROP INDEX deliveries_sent;
        CREATE INDEX deliveries_attempted ON deliveries (last_attempt_at);
        """
