"""Whole commands on a PostgreSQL ledger (a throwaway cluster): ``ledger info``, ``ledger copy``
there and back, ``status``/``report``/``schedule``/``check``/``preview`` saying the same as on
SQLite, a refused non-empty target, unknown schemes, and an unreachable database (exit 4)."""

from __future__ import annotations

import os
import re
import sqlite3
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from helpers import RELEASE_ID, run
from smtpfixtures import smtp_server
from test_send_smtp import office as send_office

RELEASE = f"releases/{RELEASE_ID}"


def use_ledger(root: Path, value: str) -> None:
    config = root / "reldist.toml"
    text = re.sub(r'(?m)^ledger = "[^"]*"', f'ledger = "{value}"', config.read_text(encoding="utf-8"))
    config.write_text(text, encoding="utf-8")


def tables(path: Path) -> dict[str, list[tuple[object, ...]]]:
    db = sqlite3.connect(path)
    names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    found = {name: sorted(db.execute(f"SELECT * FROM {name}").fetchall(), key=repr) for name in names}
    db.close()
    return found


def readable(root: Path) -> dict[str, str]:
    """What the reading commands print, with the workspace's folder taken out."""
    outputs = {}
    for args in (
        ("status",),
        ("status", RELEASE_ID),
        ("report", RELEASE_ID, "--format", "csv"),
        ("report", RELEASE_ID, "--format", "json"),
        ("schedule",),
        ("check", RELEASE),
        ("preview", RELEASE, "--out", "preview"),
    ):
        code, out = run(*args)
        outputs[" ".join(args)] = f"{code}\n{out.replace(str(root), 'ROOT')}"
    return outputs


def timeless(outputs: dict[str, str]) -> dict[str, str]:
    """Outputs with times and Message-IDs blanked: they differ between two sends."""
    times = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?([+-]\d\d:?\d\d|Z)?")
    ids = re.compile(r"<?[\w.-]+@ecomuseum\.example>?")
    return {key: ids.sub("ID", times.sub("TIME", text)) for key, text in outputs.items()}


def test_copy_into_postgresql_and_back_keeps_every_row(office: Path, pg_url: str) -> None:
    assert run("send", RELEASE, "--yes", "--limit", "9")[0] == 0  # the rest still queued, as asked
    assert run("suppress", "leaver@example.org", "--reason", "asked")[0] == 0
    before = tables(office / "reldist.db")
    assert len(before["deliveries"]) == 14 and len(before["runs"]) == 1
    on_sqlite = readable(office)

    code, out = run("ledger", "info")
    assert code == 0, out
    assert "Backend: SQLite" in out and "deliveries 14" in out and "suppressions 1" in out

    code, out = run("ledger", "copy", "--to", pg_url)
    assert code == 0, out
    assert "deliveries 14" in out and "suppressions 1" in out and "runs 1" in out
    code, out = run("ledger", "copy", "--to", pg_url)
    assert code == 1 and "not empty (deliveries 14" in out, out

    use_ledger(office, pg_url)
    code, out = run("ledger", "info")
    assert code == 0, out
    assert f"Backend: PostgreSQL ({pg_url})" in out and "deliveries 14" in out
    assert readable(office) == on_sqlite

    code, out = run("ledger", "copy", "--to", "back.db")
    assert code == 0, out
    assert tables(office / "back.db") == before  # every row, status, time and id, there and back

    # the copy goes on where the SQLite ledger stopped: the other 4 are sent, nobody twice
    code, out = run("send", RELEASE, "--yes")
    assert code == 0, out
    assert len(list((office / "outbox" / RELEASE_ID).glob("*.eml"))) == 13
    code, out = run("status", RELEASE_ID)
    assert "sent       13" in out and "suppressed 1" in out


def test_a_new_postgresql_ledger_sends_and_reads_like_sqlite(
    office: Path, pg_url: str, tmp_path: Path
) -> None:
    assert run("send", RELEASE, "--yes")[0] == 0
    on_sqlite = readable(office)
    assert "sent       13" in on_sqlite[f"status {RELEASE_ID}"]
    for eml in (office / "outbox").rglob("*.eml"):
        eml.unlink()
    use_ledger(office, pg_url)
    assert run("send", RELEASE, "--yes")[0] == 0
    assert len(list((office / "outbox" / RELEASE_ID).glob("*.eml"))) == 13
    assert timeless(readable(office)) == timeless(on_sqlite)


def test_unknown_database_scheme_is_an_error(office: Path) -> None:
    use_ledger(office, "mysql://reldist@db/reldist")
    code, out = run("status")
    assert code == 1
    assert "reldist.toml: 'ledger' 'mysql://reldist@db/reldist': unknown database 'mysql'" in out


def test_unreachable_database_exits_4_and_sends_nothing(office: Path, tmp_path: Path) -> None:
    use_ledger(office, f"postgresql://reldist@/reldist?host={tmp_path}/nowhere")
    code, out = run("send", RELEASE, "--yes")
    assert code == 4, out
    assert "cannot reach the ledger database" in out
    assert not list((office / "outbox").rglob("*.eml"))


@pytest.mark.slow
def test_a_copy_into_postgresql_keeps_todays_sends_for_a_daily_rate(tmp_path: Path, pg_url: str) -> None:
    """A SQLite ledger's rate history is its deliveries; PostgreSQL's is ``sends``. After the copy,
    a ``N/day`` limit still counts what was sent today (and the test copies): only what is left of
    the day's quota goes out, the rest waits."""
    with smtp_server() as server:
        root = send_office(tmp_path, server.port, recipients=20, connections=1, rate="50/day")
        assert run_in(root, "send", RELEASE, "--yes", "--limit", "10")[0] == 0
        assert run_in(root, "send", RELEASE, "--test", "desk@ecomuseum.example")[0] == 0
        today = len(server.messages)
        tests = today - 10
        assert tests >= 1

        code, out = run_in(root, "ledger", "copy", "--to", pg_url)
        assert code == 0, out
        assert f"sends {today}" in out, out
        with psycopg.connect(pg_url) as db:
            [(seeded,)] = db.execute("SELECT COUNT(*) FROM sends WHERE at > extract(epoch FROM now()) - 3600")
        assert seeded == today

        # The day's quota is what was sent plus one: one more message, then the sender waits.
        use_ledger(root, pg_url)
        config = root / "reldist.toml"
        config.write_text(
            config.read_text(encoding="utf-8").replace('rate = "50/day"', f'rate = "{today + 1}/day"'),
            encoding="utf-8",
        )
        code, out = run_in(root, "send", RELEASE, "--yes")
        assert code == 0, out
        assert f"9 recipients still queued: the rate {today + 1}/day allows the next message" in out, out
        assert len(server.messages) == today + 1  # without the copied history, all ten would have gone
    with psycopg.connect(pg_url) as db:
        statuses = Counter(status for (status,) in db.execute("SELECT status FROM deliveries"))
    assert statuses == Counter(sent=11, queued=9)


def run_in(root: Path, *args: str) -> tuple[int, str]:
    before = os.getcwd()
    os.chdir(root)
    try:
        return run(*args)
    finally:
        os.chdir(before)
