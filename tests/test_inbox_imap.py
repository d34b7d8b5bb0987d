"""``reldist inbox`` against a real Dovecot on 127.0.0.1 (TLS verified against the test CA): what
it records, what it moves on the server (processed messages to processed_folder, unmatched ones
left), running twice, and a run killed half-way then run again."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import corpus
from corpus import Original
from helpers import run
from imapfixtures import PASSWORD, USER, Dovecot
from test_inbox import events, suppressions

PROCESSED = "reldist/processed"


def configure(root: Path, server: Dovecot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELDIST_IMAP_PASSWORD", PASSWORD)
    toml = root / "reldist.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8")
        + f'\n[inbox]\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "tls"\nusername = "{USER}"\n'
        f'password_env = "RELDIST_IMAP_PASSWORD"\nca_file = "{server.ca_file}"\nprocessed_folder = "{PROCESSED}"\n',
        encoding="utf-8",
    )


def append(server: Dovecot, messages: list[bytes]) -> None:
    with server.mailbox() as box:
        for raw in messages:
            box.append(raw, "INBOX")


def test_imap_records_moves_processed_and_leaves_the_rest(
    office: Path, originals: dict[str, Original], dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(office, dovecot, monkeypatch)
    people = sorted(originals)
    before = suppressions(office)
    append(
        dovecot,
        [
            corpus.postfix_hard(originals[people[0]]),
            corpus.arf_complaint(originals[people[1]]),
            corpus.reply_quoted(originals[people[2]]),
            corpus.auto_reply_ru(originals[people[2]]),
            corpus.newsletter(),
            corpus.stranger_bounce(),
        ],
    )
    code, output = run("inbox", "--dry-run")
    assert code == 0, output
    assert dovecot.count("INBOX") == 6 and events(office) == set()  # a dry run moves nothing

    code, output = run("inbox")
    assert code == 0, output
    assert "4 moved" in output and "2 unmatched" in output
    assert events(office) == {
        (people[0], "bounced", "inbox"),
        (people[1], "complained", "inbox"),
        (people[2], "replied", "inbox"),
        (people[2], "auto-replied", "inbox"),
    }
    assert suppressions(office) - before == {(people[0], "bounce"), (people[1], "complaint")}
    assert dovecot.count("INBOX") == 2  # the newsletter and the stranger's bounce stay
    assert dovecot.count(PROCESSED) == 4  # moved, not deleted

    code, output = run("inbox")
    assert code == 0 and "2 unmatched" in output and "moved" not in output, output
    assert dovecot.count(PROCESSED) == 4 and len(events(office)) == 4


def test_a_wrong_password_is_a_clear_error(
    office: Path, originals: dict[str, Original], dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(office, dovecot, monkeypatch)
    monkeypatch.setenv("RELDIST_IMAP_PASSWORD", "wrong")
    code, output = run("inbox")
    assert code == 4 and "127.0.0.1" in output and "wrong" not in output.replace("wrong password", "")


@pytest.mark.slow
def test_killed_half_way_and_run_again_records_each_once_and_loses_none(
    office: Path, originals: dict[str, Original], dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(office, dovecot, monkeypatch)
    people = sorted(originals)
    total = 600
    replies = []
    for n in range(total):
        raw = corpus.reply_unquoted(originals[people[n % 5]])
        replies.append(raw.replace(b"<reply.plain.1@example.com>", f"<reply.{n}@example.com>".encode()))
    append(dovecot, replies)
    db = office / "reldist.db"

    def recorded() -> int:
        with sqlite3.connect(db) as connection:
            return int(connection.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    process = subprocess.Popen([sys.executable, "-m", "reldist", "inbox"], cwd=office)
    deadline = time.monotonic() + 60
    while recorded() < 50:
        assert process.poll() is None and time.monotonic() < deadline, "inbox ended before it could be killed"
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait()
    at_kill = recorded()
    assert 0 < at_kill < total
    assert dovecot.count("INBOX") > 0  # there is work left for the next run

    code, output = run("inbox")
    assert code == 0, output
    assert recorded() == total
    with sqlite3.connect(db) as connection:
        incoming = [r[0] for r in connection.execute("SELECT incoming FROM events")]
    assert sorted(incoming) == sorted(f"<reply.{n}@example.com>" for n in range(total))
    assert dovecot.count("INBOX") == 0 and dovecot.count(PROCESSED) == total


def test_dispatch_reads_the_inbox_first(
    office: Path, originals: dict[str, Original], dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(office, dovecot, monkeypatch)
    address = sorted(originals)[0]
    append(dovecot, [corpus.gmail_hard(originals[address])])
    code, output = run("dispatch", "-v")
    assert code == 0, output
    assert "1 bounced" in output
    assert (address, "bounced", "inbox") in events(office)
    assert (address, "bounce") in suppressions(office)
    assert dovecot.count(PROCESSED) == 1
