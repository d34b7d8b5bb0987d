"""``reldist inbox`` while ``reldist send`` is sending from the same SQLite ledger (real processes,
a real aiosmtpd): inbox takes no workspace lock, both finish, every row is right, and an
unsubscribe read mid-send stops that recipient's message; and one mailbox reader at a time
(the second is told so, exit 75)."""

from __future__ import annotations

import fcntl
import mailbox
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

import corpus
from corpus import Original
from helpers import RELEASE_ID, run
from reldist.cli import main
from reldist.tokens import load_keys
from smtpfixtures import smtp_server
from test_send_smtp import office

RELEASE = f"releases/{RELEASE_ID}"


def reldist(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "reldist", *args],
        cwd=root,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def sent_rows(root: Path) -> dict[str, tuple[str, str | None]]:
    """{address: (status, message_id)}"""
    with sqlite3.connect(root / "reldist.db") as db:
        return {a: (s, m) for a, s, m in db.execute("SELECT address, status, message_id FROM deliveries")}


@pytest.mark.slow
def test_inbox_runs_while_a_send_is_in_progress(tmp_path: Path) -> None:
    total, first, replies = 160, 40, 800
    with smtp_server(slow_data=set(range(1, 5000)), delay=0.05) as server:
        root = office(tmp_path, server.port, recipients=total, connections=1)
        sender = reldist(root, "send", RELEASE, "--yes", "--limit", str(first))
        assert sender.wait(timeout=120) == 0, sender.communicate()[0]
        rows = sent_rows(root)
        done = sorted(a for a, (status, _) in rows.items() if status == "sent")
        assert len(done) == first
        waiting = sorted(a for a, (status, _) in rows.items() if status == "queued")
        leaver = waiting[-1]  # sent last, seconds after the inbox has run
        keys = load_keys(key_file=root / "unsubscribe.key", key_env=None, place="")
        assert keys is not None

        maildir = tmp_path / "Maildir"
        box = mailbox.Maildir(maildir, create=True)
        originals = {a: Original(a, str(rows[a][1]), "Release", f"Message-ID: {rows[a][1]}\n") for a in done}
        for n in range(replies):
            raw = corpus.reply_unquoted(originals[done[n % first]])
            box.add(raw.replace(b"<reply.plain.1@example.com>", f"<reply.{n}@example.com>".encode()))
        bounced = done[:5]
        for n, address in enumerate(bounced):
            box.add(corpus.postfix_hard(originals[address]).replace(b"B1A2C3D4@", f"B{n}@".encode()))
        box.add(corpus.unsubscribe_mail(Original(leaver, "", "", ""), keys.sign(RELEASE_ID, leaver)))

        before = len(server.messages)
        sender = reldist(root, "send", RELEASE, "--yes")
        deadline = time.monotonic() + 60
        while len(server.messages) < before + 5:
            assert sender.poll() is None and time.monotonic() < deadline, "the send ended too soon"
            time.sleep(0.01)
        reader = reldist(root, "inbox", "--maildir", str(maildir))
        inbox_output = reader.communicate(timeout=120)[0]
        still_sending = sender.poll() is None
        send_output = sender.communicate(timeout=120)[0]
        received = Counter(rcpt for message in server.messages for rcpt in message.rcpt_tos)

    assert reader.returncode == 0, inbox_output
    assert still_sending, "the inbox did not run while the send was in progress"
    assert sender.returncode == 0, send_output
    assert f"{replies} replied" in inbox_output and "5 bounced" in inbox_output, inbox_output
    assert "1 unsubscribed" in inbox_output and "6 addresses suppressed" in inbox_output, inbox_output
    final = sent_rows(root)
    assert final[leaver][0] == "suppressed" and received[leaver] == 0
    assert {a for a, (status, _) in final.items() if status == "sent"} == set(final) - {leaver}
    assert set(received) == set(final) - {leaver} and set(received.values()) == {1}
    with sqlite3.connect(root / "reldist.db") as db:
        kinds = Counter(kind for (kind,) in db.execute("SELECT kind FROM events"))
        suppressed = dict(db.execute("SELECT address, source FROM suppressions"))
    assert kinds == {"replied": replies, "bounced": 5, "unsubscribed": 1}
    assert suppressed == {**dict.fromkeys(bounced, "bounce"), leaver: "unsubscribe-mail"}


def test_one_mailbox_reader_at_a_time(office: Path, tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    mailbox.Maildir(maildir, create=True).add(corpus.newsletter())
    assert run("inbox", "--maildir", str(maildir))[0] == 0  # makes the ledger
    with (office / "reldist.db.inbox.lock").open("a+") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # another reader, as far as inbox knows
        code, output = run("inbox", "--maildir", str(maildir))
        assert code == 75 and "another reldist is reading the mailbox" in output, output
        code, output = run("inbox", "--maildir", str(maildir), "--dry-run")  # records nothing: no lock
        assert code == 0, output
    code, output = run("inbox", "--maildir", str(maildir))
    assert code == 0 and "1 unmatched" in output, output


def test_dispatch_leaves_the_mailbox_to_the_reader_that_has_it(
    office: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two dispatchers sharing a ledger both read [inbox] first: the one that finds the mailbox
    being read goes on quietly (cron mails nothing); one that cannot reach it still warns."""
    monkeypatch.setenv("RELDIST_IMAP_PASSWORD", "secret")
    toml = office / "reldist.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8") + '\n[inbox]\nhost = "127.0.0.1"\nport = 9\nsecurity = "none"\n'
        'username = "press"\npassword_env = "RELDIST_IMAP_PASSWORD"\n',
        encoding="utf-8",
    )
    assert run("status")[0] == 0
    with (office / "reldist.db.inbox.lock").open("a+") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = CliRunner().invoke(main, ["dispatch"], catch_exceptions=False)
        assert result.exit_code == 0 and result.stderr == "" and result.stdout == "", result.output
        result = CliRunner().invoke(main, ["dispatch", "-v"], catch_exceptions=False)
        assert "another reldist is reading the mailbox now" in result.stdout, result.output
    result = CliRunner().invoke(main, ["dispatch"], catch_exceptions=False)
    assert result.exit_code == 0 and "warning: inbox: [inbox] 127.0.0.1:9" in result.stderr, result.output
