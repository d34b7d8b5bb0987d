"""What comes back, into a PostgreSQL ledger (a throwaway cluster): ``reldist inbox`` reading a
real Dovecot (a hard bounce, an unsubscribe mail, the same messages delivered again) and
``reldist serve`` under a real uvicorn (one-click POST, repeated, forged), each checked against
the rows in the database and what ``status``, ``report`` and ``suppressed`` print."""

from __future__ import annotations

import json
import mailbox
import threading
from pathlib import Path

import psycopg
import pytest

import corpus
from conftest import send_originals
from helpers import RELEASE_ID, run
from imapfixtures import Dovecot
from reldist.feedback.store import Feedback, unsubscribe
from reldist.ledger import Ledger
from reldist.ledgerdb import LOCK_CLASS
from reldist.tokens import load_keys
from test_inbox_imap import PROCESSED, append, configure
from test_pg_commands import use_ledger
from test_serve import serving


def pg_events(url: str) -> list[tuple[str, str, str, str | None]]:
    """(address, kind, source, incoming) of every event, sorted."""
    with psycopg.connect(url) as db:
        return sorted(
            db.execute(
                "SELECT d.address, e.kind, e.source, e.incoming FROM events e "
                "JOIN deliveries d ON d.id = e.delivery_id"
            )
        )


def pg_suppressions(url: str) -> set[tuple[str, str]]:
    with psycopg.connect(url) as db:
        return set(db.execute("SELECT address, source FROM suppressions"))


def test_inbox_records_into_postgresql_once(
    office: Path, pg_url: str, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_ledger(office, pg_url)
    originals = send_originals(office)
    assert not (office / "reldist.db").exists()  # the ledger is the database, not a file beside it
    configure(office, dovecot, monkeypatch)
    bounced, leaver = sorted(originals)[:2]
    keys = load_keys(key_file=office / "unsubscribe.key", key_env=None, place="")
    assert keys is not None
    messages = [
        corpus.postfix_hard(originals[bounced]),
        corpus.unsubscribe_mail(originals[leaver], keys.sign(RELEASE_ID, leaver)),
        corpus.newsletter(),
    ]
    before = pg_suppressions(pg_url)
    append(dovecot, messages)

    code, output = run("inbox")
    assert code == 0, output
    assert "1 bounced" in output and "1 unsubscribed" in output and "1 unmatched" in output, output
    assert "2 addresses suppressed" in output and "2 moved" in output, output
    recorded = pg_events(pg_url)
    assert [(a, k, s) for a, k, s, _ in recorded] == sorted(
        [(bounced, "bounced", "inbox"), (leaver, "unsubscribed", "unsubscribe-mail")]
    )
    assert pg_suppressions(pg_url) - before == {(bounced, "bounce"), (leaver, "unsubscribe-mail")}
    assert dovecot.count(PROCESSED) == 2 and dovecot.count("INBOX") == 1

    # The same two reports delivered again (a mail server's retry), and a second run: recorded once.
    append(dovecot, messages[:2])
    code, output = run("inbox")
    assert code == 0, output
    assert "2 duplicate" in output and "0 addresses suppressed" in output, output
    assert pg_events(pg_url) == recorded
    assert dovecot.count(PROCESSED) == 4 and dovecot.count("INBOX") == 1  # duplicates moved too

    code, output = run("status", RELEASE_ID)
    assert code == 0, output
    assert "bounced        1" in output and "unsubscribed   1" in output, output
    assert f"Hard bounces (suppressed):\n  {bounced} (" in output and "5.1.1" in output
    code, output = run("report", RELEASE_ID, "--format", "json")
    assert code == 0, output
    feedback = {row["address"]: row["feedback"] for row in json.loads(output)}
    assert feedback[bounced] == "bounced" and feedback[leaver] == "unsubscribed"
    assert sum(1 for kind in feedback.values() if kind) == 2
    code, output = run("suppressed", "--format", "json")
    assert code == 0, output
    sources = {entry["address"]: entry["source"] for entry in json.loads(output)}
    assert sources[bounced] == "bounce" and sources[leaver] == "unsubscribe-mail"


def test_serve_one_click_into_postgresql(office: Path, pg_url: str, tmp_path: Path) -> None:
    use_ledger(office, pg_url)
    originals = send_originals(office)
    keys = load_keys(key_file=office / "unsubscribe.key", key_env=None, place="")
    assert keys is not None
    reader, other = sorted(originals)[:2]
    token = keys.sign(RELEASE_ID, reader)
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    before = pg_suppressions(pg_url)
    one_click = b"List-Unsubscribe=One-Click"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    with serving(office, tmp_path / "serve.log") as server:
        assert server.request("GET", "/health")[0] == 200
        status, _, page = server.request("GET", f"/unsubscribe/{token}")
        assert status == 200 and "<form" in page
        assert pg_suppressions(pg_url) == before and pg_events(pg_url) == []  # a GET changes nothing
        for _ in range(2):  # a repeated POST is harmless
            status, _, body = server.request("POST", f"/unsubscribe/{token}", one_click, form)
            assert status == 200, body
        for bad in (forged, keys.sign(RELEASE_ID, "stranger@example.org")):
            status, _, page = server.request("POST", f"/unsubscribe/{bad}", one_click, form)
            assert status == 404 and "not valid" in page
    assert pg_suppressions(pg_url) - before == {(reader, "unsubscribe-link")}
    assert pg_events(pg_url) == [(reader, "unsubscribed", "unsubscribe-link", None)]
    assert other not in {a for a, _ in pg_suppressions(pg_url)}
    code, output = run("status", RELEASE_ID)
    assert code == 0 and "unsubscribed   1" in output, output


def test_two_clicks_at_once_record_one_event(office: Path, pg_url: str) -> None:
    """Two serve processes (two connections) take the same click at the same moment: the second
    waits for the first's transaction, then finds the event and records nothing."""
    use_ledger(office, pg_url)
    reader = sorted(send_originals(office))[0]
    first, second = Ledger.open(pg_url), Ledger.open(pg_url)
    try:
        one, two = Feedback(first), Feedback(second)
        row = next(r for r in first.rows(RELEASE_ID) if r.address == reader)
        results: list[bool] = []
        with one.transaction():  # the first click's transaction stays open a moment
            assert unsubscribe(one, row, source="unsubscribe-link")
            other = threading.Thread(
                target=lambda: results.append(unsubscribe(two, row, source="unsubscribe-link"))
            )
            other.start()
            other.join(0.5)
            assert other.is_alive(), "the second click did not wait for the first"
        other.join(10)
        assert results == [False]
    finally:
        first.close()
        second.close()
    assert pg_events(pg_url) == [(reader, "unsubscribed", "unsubscribe-link", None)]


def test_one_mailbox_reader_at_a_time_on_postgresql(office: Path, pg_url: str, tmp_path: Path) -> None:
    """Two machines' inbox runs on one database: the second is told another is reading (exit 75)."""
    use_ledger(office, pg_url)
    maildir = tmp_path / "Maildir"
    mailbox.Maildir(maildir, create=True).add(corpus.newsletter())
    with psycopg.connect(pg_url, autocommit=True) as other:  # the other reader's session
        other.execute("SELECT pg_advisory_lock(%s, hashtext('inbox'))", (LOCK_CLASS,))
        code, output = run("inbox", "--maildir", str(maildir))
        assert code == 75 and "another reldist is reading the mailbox" in output, output
    code, output = run("inbox", "--maildir", str(maildir))  # its session ended: the lock went with it
    assert code == 0 and "1 unmatched" in output, output


def test_serve_outlives_a_lost_database_connection(office: Path, pg_url: str, tmp_path: Path) -> None:
    """The database drops serve's connection (a restart, a failover): the next click is still
    recorded, on a new connection, instead of failing until serve is restarted."""
    use_ledger(office, pg_url)
    originals = send_originals(office)
    first, second, third = sorted(originals)[:3]
    keys = load_keys(key_file=office / "unsubscribe.key", key_env=None, place="")
    assert keys is not None
    one_click = b"List-Unsubscribe=One-Click"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    before = pg_suppressions(pg_url)
    with serving(office, tmp_path / "serve.log") as server:
        assert (
            server.request("POST", f"/unsubscribe/{keys.sign(RELEASE_ID, first)}", one_click, form)[0] == 200
        )
        with psycopg.connect(pg_url, autocommit=True) as admin:
            [(dropped,)] = admin.execute(
                "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'reldist' AND pid <> pg_backend_pid()"
            )
        assert dropped == 1
        status, _, body = server.request(
            "POST", f"/unsubscribe/{keys.sign(RELEASE_ID, second)}", one_click, form
        )
        assert status == 200, body
        assert server.request("GET", "/health")[0] == 200

        # While the database refuses connections: 503 (a sender retries), nothing half-recorded.
        with psycopg.connect(pg_url.replace("/reldist?", "/postgres?"), autocommit=True) as admin:
            admin.execute("ALTER DATABASE reldist ALLOW_CONNECTIONS false")
            try:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'reldist' AND pid <> pg_backend_pid()"
                )
                status, _, body = server.request(
                    "POST", f"/unsubscribe/{keys.sign(RELEASE_ID, third)}", one_click, form
                )
                assert status == 503 and "try again later" in body, body
                assert server.request("GET", "/health")[0] == 503
            finally:
                admin.execute("ALTER DATABASE reldist ALLOW_CONNECTIONS true")
        assert server.request("GET", "/health")[0] == 200
    text = (tmp_path / "serve.log").read_text(encoding="utf-8")
    assert "the ledger cannot be reached" in text and "POST <link> 503" in text
    assert pg_suppressions(pg_url) - before == {(first, "unsubscribe-link"), (second, "unsubscribe-link")}
    assert [(a, k) for a, k, _, _ in pg_events(pg_url)] == sorted(
        [(first, "unsubscribed"), (second, "unsubscribed")]
    )
