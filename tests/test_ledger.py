"""The ledger on a real SQLite file and on a real PostgreSQL database (every test runs on both):
migrations, planning rules, durable marks, suppressions."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from reldist.envelope import Outcome
from reldist.errors import ConfigError, LedgerError
from reldist.ledger import ClaimError, Ledger, PlanEntry
from reldist.ledgerdb import parse_target
from reldist.migrations import MIGRATIONS, sql_for


def entry(address: str, status: str = "queued", **kw: str) -> PlanEntry:
    return PlanEntry(address_key=address.casefold(), address=address, status=status, contact="{}", **kw)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a test's ledger lives: a new SQLite file, or a new empty PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "r.db"
    url: str = request.getfixturevalue("pg_url")
    return url


def version(target: Path | str) -> int:
    with Ledger.open(target) as ledger:
        if ledger.dialect == "sqlite":
            return int(ledger.db.execute("PRAGMA user_version").fetchone()[0])
        return int(ledger.db.execute("SELECT version FROM reldist_schema").fetchone()[0])


def set_version(target: Path | str, number: int) -> None:
    if isinstance(target, Path):
        db = sqlite3.connect(target)
        db.execute(f"PRAGMA user_version = {number}")
        db.close()
        return
    import psycopg

    with psycopg.connect(target, autocommit=True) as db:
        db.execute("UPDATE reldist_schema SET version = %s", (number,))


def test_new_ledger_is_current(target: Path | str) -> None:
    assert version(target) == len(MIGRATIONS)


def test_new_sqlite_ledger_is_wal(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "r.db") as ledger:
        assert ledger.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_newer_ledger_is_refused(target: Path | str) -> None:
    Ledger.open(target).close()
    set_version(target, len(MIGRATIONS) + 1)
    with pytest.raises(LedgerError, match="newer than this reldist") as caught:
        Ledger.open(target)
    assert caught.value.place == str(target)  # the file or the database, as a field


def test_older_ledger_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    sqlite3.connect(path).close()  # an empty database: version 0
    assert version(path) == len(MIGRATIONS)


def test_a_version_1_ledger_with_rows_is_upgraded_and_keeps_them(target: Path | str) -> None:
    insert = (
        "INSERT INTO deliveries (release_id, address_key, address, status, attempts, last_attempt_at, "
        "created_at, updated_at) VALUES ('r1', 'a@example.org', 'a@example.org', 'sent', 1, "
        "'2026-11-27T10:00:00.000+00:00', 'x', 'x')"
    )
    if isinstance(target, Path):
        db = sqlite3.connect(target, isolation_level=None)
        db.executescript(f"BEGIN;\n{sql_for(MIGRATIONS[0], 'sqlite')};\nPRAGMA user_version = 1;\nCOMMIT;")
        db.execute(insert)
        db.close()
    else:
        import psycopg

        with psycopg.connect(target, autocommit=True) as pg:
            pg.execute(sql_for(MIGRATIONS[0], "postgresql"))
            pg.execute("CREATE TABLE reldist_schema (version INTEGER NOT NULL)")
            pg.execute("INSERT INTO reldist_schema VALUES (1)")
            pg.execute(insert)
    with Ledger.open(target) as ledger:
        assert ledger.counts("r1")["sent"] == 1
        since = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
        assert ledger.sent_times(since) == [dt.datetime(2026, 11, 27, 10, tzinfo=dt.UTC).timestamp()]
        if ledger.dialect == "postgresql":
            indexes = {
                r[0]
                for r in ledger.db.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'deliveries'")
            }
        else:
            indexes = {r[0] for r in ledger.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "deliveries_attempted" in indexes
        assert not indexes & {"deliveries_status", "deliveries_sent"}
        if ledger.dialect == "sqlite":
            plan = " ".join(
                str(r[-1])
                for r in ledger.db.execute(
                    "EXPLAIN QUERY PLAN SELECT last_attempt_at FROM deliveries WHERE last_attempt_at >= ? "
                    "AND status IN ('sent', 'sending', 'unknown') ORDER BY last_attempt_at",
                    ("2026",),
                )
            )
            assert "deliveries_attempted" in plan


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("reldist.db", "SQLITE"),
        ("data/ledger.sqlite", "SQLITE"),
        ("postgresql://reldist@db.office.local/reldist", "postgresql://reldist@db.office.local/reldist"),
        ("postgres://reldist@db/reldist?sslmode=require", "postgres://reldist@db/reldist?sslmode=require"),
        ("service=reldist", "service=reldist"),
        ("host=db.office.local dbname=reldist", "host=db.office.local dbname=reldist"),
    ],
)
def test_ledger_setting_chooses_the_engine(tmp_path: Path, value: str, expected: str) -> None:
    found = parse_target(value, tmp_path, "reldist.toml")
    assert found == (tmp_path / value if expected == "SQLITE" else expected)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("mysql://reldist@db/reldist", "unknown database 'mysql'"),
        ("sqlite:///reldist.db", "unknown database 'sqlite'"),
        ("postgresql://reldist:secret@db/reldist", "must not contain the password"),
        ("postgresql://reldist@db/reldist?password=secret", "must not contain the password"),
        ("service=reldist password=secret", "must not contain the password"),
    ],
)
def test_ledger_setting_refuses_unknown_engines_and_passwords(
    tmp_path: Path, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_target(value, tmp_path, "reldist.toml")
    assert "secret" not in str(caught.value)
    assert caught.value.place == "reldist.toml"
    assert caught.value.message.startswith("'ledger' ")


def test_plan_and_replan_never_resets_a_sent_row(target: Path | str) -> None:
    with Ledger.open(target) as ledger:
        ledger.plan("r1", [entry("a@example.org"), entry("b@example.org"), entry("c@example.org")])
        ids = ledger.pending_ids("r1", ["queued"])
        assert len(ids) == 3
        ledger.mark_sending(ids[0], "<m1@x>")
        ledger.record(ids[0], Outcome("sent", 250, "ok"))
        ledger.mark_sending(ids[1], "<m2@x>")
        ledger.record(ids[1], Outcome("failed", 550, "no such user"))
        # a new plan: b is now suppressed, c was removed from the list, d is new
        number = ledger.plan(
            "r1",
            [
                entry("A@example.org"),
                entry("b@example.org", "suppressed", reason="asked"),
                entry("d@example.org"),
            ],
        )
        rows = {
            r.address_key if hasattr(r, "address_key") else r.address.casefold(): r for r in ledger.rows("r1")
        }
        assert rows["a@example.org"].status == "sent" and rows["a@example.org"].message_id == "<m1@x>"
        assert rows["b@example.org"].status == "suppressed"
        # removed from the list: its row stays, skipped, and this plan does not send it
        assert rows["c@example.org"].status == "skipped" and "latest plan" in rows["c@example.org"].reason
        assert rows["d@example.org"].status == "queued"
        assert ledger.pending_ids("r1", ["queued", "deferred"], plan=number) == [rows["d@example.org"].id]


def test_plan_rolls_back_when_entries_fail(target: Path | str) -> None:
    def entries():  # type: ignore[no-untyped-def]
        yield entry("a@example.org")
        raise RuntimeError("template broke")

    with Ledger.open(target) as ledger:
        with pytest.raises(RuntimeError):
            ledger.plan("r1", entries())
        assert ledger.counts("r1")["queued"] == 0


def test_interrupted_rows_become_unknown(target: Path | str) -> None:
    with Ledger.open(target) as ledger:
        ledger.plan("r1", [entry("a@example.org")])
        (row_id,) = ledger.pending_ids("r1", ["queued"])
        ledger.mark_sending(row_id, "<m@x>")
    # another process (a new connection) finds it
    with Ledger.open(target) as ledger:
        assert ledger.get(row_id).status == "sending"
        assert ledger.recover_interrupted("r1") == 1
        row = ledger.get(row_id)
        assert row.status == "unknown" and row.attempts == 1 and row.message_id == "<m@x>"


def test_suppressions(target: Path | str) -> None:
    with Ledger.open(target) as ledger:
        assert ledger.suppress("Ivan@Example.org", reason="asked")
        assert not ledger.suppress("ivan@example.org")
        assert ledger.suppressions()["ivan@example.org"][1] == "asked"
        assert ledger.unsuppress("IVAN@example.org")
        assert ledger.suppressions() == {}


def test_migration_3_backfills_sent_at(target: Path | str) -> None:
    rows = (
        ("a@example.org", "sent", "'2026-11-27T10:00:00.000+00:00'"),
        ("b@example.org", "failed", "'2026-11-27T10:00:01.000+00:00'"),
        ("c@example.org", "queued", "NULL"),
    )
    inserts = [
        "INSERT INTO deliveries (release_id, address_key, address, status, attempts, last_attempt_at, "
        f"created_at, updated_at) VALUES ('r1', '{a}', '{a}', '{status}', 1, {attempt}, 'x', 'y')"
        for a, status, attempt in rows
    ]
    if isinstance(target, Path):
        db = sqlite3.connect(target, isolation_level=None)
        for number in range(2):
            script = sql_for(MIGRATIONS[number], "sqlite")
            db.executescript(f"BEGIN;\n{script};\nPRAGMA user_version = {number + 1};\nCOMMIT;")
        for insert in inserts:
            db.execute(insert)
        db.close()
    else:
        import psycopg

        with psycopg.connect(target, autocommit=True) as pg:
            for number in range(2):
                pg.execute(sql_for(MIGRATIONS[number], "postgresql"))
            pg.execute("CREATE TABLE reldist_schema (version INTEGER NOT NULL)")
            pg.execute("INSERT INTO reldist_schema VALUES (2)")
            for insert in inserts:
                pg.execute(insert)
    assert version(target) == len(MIGRATIONS)
    with Ledger.open(target) as ledger:
        sent_at = {row.address: row.sent_at for row in ledger.rows("r1")}
    assert sent_at == {
        "a@example.org": "2026-11-27T10:00:00.000+00:00",
        "b@example.org": None,
        "c@example.org": None,
    }


def test_mark_sending_is_a_compare_and_set(target: Path | str) -> None:
    """Two connections to one ledger (two processes): a row is claimed once; a sent row never again."""
    with Ledger.open(target) as one, Ledger.open(target) as other:
        one.plan("r1", [entry("a@example.org"), entry("b@example.org")])
        a, b = one.pending_ids("r1", ["queued"])
        one.mark_sending(a, "<1@x>")
        with pytest.raises(ClaimError, match="is sending"):
            other.mark_sending(a, "<2@x>")
        one.record(a, Outcome("sent", 250, "ok"))
        with pytest.raises(ClaimError, match="is sent"):
            other.mark_sending(a, "<3@x>")
        with pytest.raises(ClaimError, match="not deferred"):
            other.mark_sending(b, "<4@x>", expected=["deferred"])
        other.mark_sending(b, "<5@x>", expected=["queued"])
        row = one.get(a)
        assert (row.status, row.attempts, row.message_id) == ("sent", 1, "<1@x>")
        assert one.get(b).message_id == "<5@x>"
        other.record(b, Outcome("deferred", 451, "later"))
        assert one.get(b).sent_at is None  # only an accepted message has a sent_at
        assert one.get(a).sent_at is not None


def test_an_address_suppressed_after_the_plan_is_not_marked_sending(target: Path | str) -> None:
    from reldist.ledger import SuppressedError

    with Ledger.open(target) as ledger:
        ledger.plan("r1", [entry("a@example.org"), entry("b@example.org")])
        first, second = ledger.pending_ids("r1", ["queued"])
        ledger.suppress("B@example.org", reason="unsubscribed")
        ledger.mark_sending(first, "<m1@x>")
        with pytest.raises(SuppressedError, match="unsubscribed"):
            ledger.mark_sending(second, "<m2@x>")
        row = ledger.get(second)
        assert (row.status, row.reason, row.attempts) == ("suppressed", "unsubscribed", 0)
