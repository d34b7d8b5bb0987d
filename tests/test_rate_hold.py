"""A daily cap (a rate over an hour) that is used up stops the run instead of sleeping for hours.

Real commands (``python -m reldist`` subprocesses) against a real aiosmtpd server, the ledger read
back (SQLite, and PostgreSQL for the shared limiter). Two runs across the cap: instead of waiting
a day, the history the first run left is moved a day back (the ledger's times on SQLite, the
shared ``sends`` on PostgreSQL), as if the day had passed. Test copies count against the cap too.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg

from reldist.ledger import Ledger
from reldist.ledgerrows import stamp
from smtpfixtures import SmtpServer
from test_pg_commands import use_ledger
from test_send_smtp import RELEASE, office

ALMATY = ZoneInfo("Asia/Almaty")  # the example workspace's zone
DAY = dt.timedelta(days=1)
HELD = re.compile(
    r"(\d+) recipients? still queued: the rate 3/day allows the next message at "
    r"(\d{4}-\d\d-\d\d \d\d:\d\d) \(UTC\+5\); run the same command again then\."
)


def reldist(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reldist", *args], cwd=root, capture_output=True, text=True, timeout=120
    )


def statuses(root: Path) -> Counter[str]:
    with sqlite3.connect(root / "reldist.db") as db:
        return Counter(status for (status,) in db.execute("SELECT status FROM deliveries"))


def attempts(root: Path) -> list[dt.datetime]:
    """When each message the ledger knows of was handed to the server, oldest first."""
    with sqlite3.connect(root / "reldist.db") as db:
        found = db.execute("SELECT last_attempt_at FROM deliveries WHERE last_attempt_at IS NOT NULL")
        return sorted(dt.datetime.fromisoformat(at) for (at,) in found)


def a_day_passes(root: Path) -> None:
    """Move every time the SQLite ledger's rate history reads a day back."""
    with sqlite3.connect(root / "reldist.db") as db:
        for table, key, column in (("deliveries", "id", "last_attempt_at"), ("test_sends", "id", "sent_at")):
            rows = db.execute(f"SELECT {key}, {column} FROM {table} WHERE {column} IS NOT NULL").fetchall()
            for key_value, at in rows:
                earlier = stamp(dt.datetime.fromisoformat(at) - DAY)
                db.execute(f"UPDATE {table} SET {column} = ? WHERE {key} = ?", (earlier, key_value))


def shown_time(output: str) -> tuple[int, dt.datetime]:
    found = HELD.search(output)
    assert found, output
    return int(found[1]), dt.datetime.strptime(found[2], "%Y-%m-%d %H:%M").replace(tzinfo=ALMATY)


def test_send_stops_at_a_daily_cap_exits_0_and_the_next_run_continues(
    tmp_path: Path, smtpd: SmtpServer
) -> None:
    root = office(tmp_path, smtpd.port, recipients=5, connections=2, rate="3/day")
    first = reldist(root, "send", RELEASE, "--yes")
    assert first.returncode == 0, first.stdout + first.stderr
    assert statuses(root) == {"sent": 3, "queued": 2}  # the messages in flight were recorded
    assert "This run: sent 3 in" in first.stdout
    left, at = shown_time(first.stdout)
    # the fourth may start when the first of the three is a day old (shown to the minute)
    assert left == 2 and dt.timedelta(0) <= attempts(root)[0] + DAY - at <= dt.timedelta(minutes=1)
    with sqlite3.connect(root / "reldist.db") as db:
        (outcome,) = db.execute("SELECT outcome FROM runs").fetchone()
    assert outcome.startswith("sent 3, held by the rate 3/day until "), outcome

    again = reldist(root, "send", RELEASE, "--yes")  # still within the day: nothing more leaves
    assert again.returncode == 0, again.stdout + again.stderr
    assert "This run: nothing sent." in again.stdout and shown_time(again.stdout)[0] == 2
    assert len(smtpd.messages) == 3

    a_day_passes(root)
    last = reldist(root, "send", RELEASE, "--yes")
    assert last.returncode == 0, last.stdout + last.stderr
    assert "This run: sent 2 in" in last.stdout and "still queued" not in last.stdout
    assert statuses(root) == {"sent": 5}
    received = Counter(rcpt for message in smtpd.messages for rcpt in message.rcpt_tos)
    assert sorted(received) == [f"j{n:04d}@example.org" for n in range(5)]
    assert set(received.values()) == {1}


def test_dispatch_stops_at_a_daily_cap_quietly_and_a_later_run_finishes_past_max_late(
    tmp_path: Path, smtpd: SmtpServer
) -> None:
    root = office(tmp_path, smtpd.port, recipients=5, connections=2, rate="3/day")
    toml = root / RELEASE / "release.toml"
    body = toml.read_text(encoding="utf-8")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    toml.write_text(f"send_at = {(now - dt.timedelta(minutes=5)).isoformat()}\n{body}", encoding="utf-8")
    with (root / "reldist.toml").open("a", encoding="utf-8") as handle:
        handle.write('\n[dispatch]\nlog_file = "dispatch.log"\n')

    first = reldist(root, "dispatch")
    assert (first.returncode, first.stdout, first.stderr) == (0, "", "")  # all went as planned
    assert statuses(root) == {"sent": 3, "queued": 2}
    (line, run) = (root / "dispatch.log").read_text(encoding="utf-8").splitlines()
    assert "action=held" in line and 'outcome="sent 3, held by the rate 3/day"' in line and "exit=0" in line
    assert "error=" not in line
    resume = dt.datetime.fromisoformat(re.search(r"resume=(\S+)", line)[1])  # type: ignore[index]
    assert resume.utcoffset() == dt.timedelta(hours=5)
    assert abs(resume - (attempts(root)[0] + DAY)) <= dt.timedelta(seconds=1)  # to the second
    assert "exit=0" in run

    told = reldist(root, "dispatch", "-v")  # still held: it says so when asked, exit 0
    assert told.returncode == 0 and told.stderr == "", told.stderr
    assert "sent 3" not in told.stdout and "held by the rate 3/day until " in told.stdout, told.stdout
    assert len(smtpd.messages) == 3

    # Two days later (more than max_late, 24 h, after send_at), the rate has room again: the
    # release is still in progress, not too late, and the run finishes it.
    toml.write_text(f"send_at = {(now - 2 * DAY).isoformat()}\n{body}", encoding="utf-8")
    a_day_passes(root)
    schedule = reldist(root, "schedule")
    assert "in progress: 3 of 5 sent, 2 to go; a daily rate holds back the rest" in schedule.stdout
    last = reldist(root, "dispatch", "-v")
    assert last.returncode == 0, last.stdout + last.stderr
    assert statuses(root) == {"sent": 5}
    assert "action=sent" in (root / "dispatch.log").read_text(encoding="utf-8").splitlines()[-2]
    assert len(smtpd.messages) == 5


def test_test_copies_count_against_the_cap(tmp_path: Path, smtpd: SmtpServer) -> None:
    root = office(tmp_path, smtpd.port, recipients=5, connections=1, rate="3/day")
    proofs = reldist(root, "send", RELEASE, "--test", "me@ecomuseum.example")
    assert proofs.returncode == 0, proofs.stdout + proofs.stderr
    assert proofs.stdout.count("  sent: ") == 3  # one copy each of ru, en and kk

    held = reldist(root, "send", RELEASE, "--yes")  # the three copies used up the day
    assert held.returncode == 0, held.stdout + held.stderr
    assert "This run: nothing sent." in held.stdout and shown_time(held.stdout)[0] == 5
    assert len(smtpd.messages) == 3

    more = reldist(root, "send", RELEASE, "--test", "me@ecomuseum.example")  # and no more copies
    assert more.returncode == 3
    assert (
        more.stdout.count("  deferred: ") == 3
        and "not sent: the rate 3/day allows the next message at" in more.stdout
    )
    assert len(smtpd.messages) == 3
    status = reldist(root, "status", RELEASE)  # the deferred copies are not said to be sent
    assert "Test copies sent: 3; not sent: deferred 3 (not counted as delivered)" in status.stdout


def test_the_history_holds_accepted_test_copies(tmp_path: Path) -> None:
    from reldist.envelope import Outcome

    now = dt.datetime(2026, 11, 28, 5, 0, tzinfo=dt.UTC)
    with Ledger.open(tmp_path / "reldist.db", clock=lambda: now) as ledger:
        ledger.record_test("r", "me@example.org", "a@example.org", "<1@x>", Outcome("sent", 250, "ok"))
        ledger.record_test("r", "me@example.org", "b@example.org", "<2@x>", Outcome("failed", 550, "no"))
        assert ledger.sent_times(now - DAY) == [now.timestamp()]  # the refused one never left
        assert ledger.sent_times(now + dt.timedelta(seconds=1)) == []


def test_a_shared_rate_on_postgresql_stops_at_the_cap_and_counts_test_copies(
    tmp_path: Path, smtpd: SmtpServer, pg_url: str
) -> None:
    root = office(tmp_path, smtpd.port, recipients=6, connections=2, rate="3/day")
    use_ledger(root, pg_url)
    proof = reldist(root, "send", RELEASE, "--test", "me@ecomuseum.example", "--as", "j0000@example.org")
    assert proof.returncode == 0, proof.stdout + proof.stderr
    first = reldist(root, "send", RELEASE, "--yes")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "This run: sent 2 in" in first.stdout  # the test copy took the third place of the day
    assert shown_time(first.stdout)[0] == 4

    with psycopg.connect(pg_url, autocommit=True) as db:
        found = dict(db.execute("SELECT status, COUNT(*) FROM deliveries GROUP BY status").fetchall())
        assert found == {"sent": 2, "queued": 4}
        assert db.execute("SELECT COUNT(*) FROM sends").fetchone() == (3,)
        db.execute("UPDATE sends SET at = at - 86400")  # a day passes for the shared history
    last = reldist(root, "send", RELEASE, "--yes")
    assert last.returncode == 0, last.stdout + last.stderr
    assert "This run: sent 3 in" in last.stdout and shown_time(last.stdout)[0] == 1
    assert len(smtpd.messages) == 6


def test_a_release_the_cap_kept_from_starting_is_not_too_late_later(
    tmp_path: Path, smtpd: SmtpServer
) -> None:
    root = office(tmp_path, smtpd.port, recipients=3, connections=1, rate="2/day")
    first = root / RELEASE
    second = root / "releases" / "second"
    shutil.copytree(first, second)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def due(minutes_ago: float) -> None:
        for n, folder in enumerate((first, second)):
            toml = folder / "release.toml"
            body = re.sub(r"(?m)^(send_at|id) = .*\n", "", toml.read_text(encoding="utf-8"))
            when = now - dt.timedelta(minutes=minutes_ago - n)  # the second one a minute later
            toml.write_text(f'id = "{folder.name}"\nsend_at = {when.isoformat()}\n{body}', encoding="utf-8")

    due(10)
    run = reldist(root, "dispatch", "-v")
    assert run.returncode == 0 and run.stderr == "", run.stdout + run.stderr
    assert "second: not tried until " in run.stdout, run.stdout
    with sqlite3.connect(root / "reldist.db") as db:
        outcomes = dict(db.execute("SELECT release_id, outcome FROM runs"))
    assert outcomes["second"].startswith("not tried: held by the rate 2/day until "), outcomes
    due(2 * 24 * 60)  # two days later: both are more than max_late after their send_at
    for _ in range(2):
        a_day_passes(root)
        run = reldist(root, "dispatch")
        assert (run.returncode, run.stderr) == (0, ""), run.stderr
    with sqlite3.connect(root / "reldist.db") as db:
        sent = dict(
            db.execute(
                "SELECT release_id, COUNT(*) FROM deliveries WHERE status = 'sent' GROUP BY release_id"
            )
        )
    assert sent == {first.name: 3, "second": 3}
    assert len(smtpd.messages) == 6
