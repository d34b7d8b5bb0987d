"""The ledger on a real SQLite file: migrations, planning rules, durable marks, suppressions."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from reldist.envelope import Outcome
from reldist.errors import LedgerError
from reldist.ledger import Ledger, PlanEntry
from reldist.migrations import MIGRATIONS


def entry(address: str, status: str = "queued", **kw: str) -> PlanEntry:
    return PlanEntry(address_key=address.casefold(), address=address, status=status, contact="{}", **kw)  # type: ignore[arg-type]


def test_new_ledger_is_wal_and_current(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "r.db") as ledger:
        assert ledger.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert ledger.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_newer_ledger_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    Ledger.open(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(LedgerError, match="newer than this reldist"):
        Ledger.open(path)


def test_older_ledger_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    sqlite3.connect(path).close()  # an empty database: version 0
    with Ledger.open(path) as ledger:
        assert ledger.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_a_version_1_ledger_with_rows_is_upgraded_and_keeps_them(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(f"BEGIN;\n{MIGRATIONS[0]()};\nPRAGMA user_version = 1;\nCOMMIT;")
    db.execute(
        "INSERT INTO deliveries (release_id, address_key, address, status, attempts, last_attempt_at, "
        "created_at, updated_at) VALUES ('r1', 'a@example.org', 'a@example.org', 'sent', 1, "
        "'2026-11-27T10:00:00.000+00:00', 'x', 'x')"
    )
    db.close()
    with Ledger.open(path) as ledger:
        assert ledger.counts("r1")["sent"] == 1
        indexes = {r[0] for r in ledger.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "deliveries_attempted" in indexes
        assert not indexes & {"deliveries_status", "deliveries_sent"}
        since = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
        assert ledger.sent_times(since) == [dt.datetime(2026, 11, 27, 10, tzinfo=dt.UTC).timestamp()]
        plan = " ".join(
            str(r[-1])
            for r in ledger.db.execute(
                "EXPLAIN QUERY PLAN SELECT last_attempt_at FROM deliveries WHERE last_attempt_at >= ? "
                "AND status IN ('sent', 'sending', 'unknown') ORDER BY last_attempt_at",
                ("2026",),
            )
        )
        assert "deliveries_attempted" in plan


def test_plan_and_replan_never_resets_a_sent_row(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "r.db") as ledger:
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
        assert "c@example.org" not in rows
        assert rows["d@example.org"].status == "queued"
        assert ledger.pending_ids("r1", ["queued", "deferred"], plan=number) == [rows["d@example.org"].id]


def test_plan_rolls_back_when_entries_fail(tmp_path: Path) -> None:
    def entries():  # type: ignore[no-untyped-def]
        yield entry("a@example.org")
        raise RuntimeError("template broke")

    with Ledger.open(tmp_path / "r.db") as ledger:
        with pytest.raises(RuntimeError):
            ledger.plan("r1", entries())
        assert ledger.counts("r1")["queued"] == 0


def test_interrupted_rows_become_unknown(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "r.db") as ledger:
        ledger.plan("r1", [entry("a@example.org")])
        (row_id,) = ledger.pending_ids("r1", ["queued"])
        ledger.mark_sending(row_id, "<m@x>")
    # another process (a new connection) finds it
    with Ledger.open(tmp_path / "r.db") as ledger:
        assert ledger.get(row_id).status == "sending"
        assert ledger.recover_interrupted("r1") == 1
        row = ledger.get(row_id)
        assert row.status == "unknown" and row.attempts == 1 and row.message_id == "<m@x>"


def test_suppressions(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "r.db") as ledger:
        assert ledger.suppress("Ivan@Example.org", reason="asked")
        assert not ledger.suppress("ivan@example.org")
        assert ledger.suppressions()["ivan@example.org"][1] == "asked"
        assert ledger.unsuppress("IVAN@example.org")
        assert ledger.suppressions() == {}
