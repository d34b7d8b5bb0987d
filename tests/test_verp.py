"""VERP: with ``[sender] bounce = "bounces+{token}@…"`` every message's envelope sender (MAIL
FROM, as a real aiosmtpd received it) names its delivery, and a bounce that quotes nothing of the
message and names an address we never sent to is matched by that token alone."""

from __future__ import annotations

import mailbox
import os
import re
import sqlite3
from pathlib import Path

from helpers import run
from reldist.tokens import load_keys, verify_verp
from smtpfixtures import SmtpServer
from test_send_smtp import office, send


def test_verp_envelope_senders_and_a_bounce_matched_by_them(tmp_path: Path, smtpd: SmtpServer) -> None:
    root = office(tmp_path, smtpd.port, recipients=6)
    toml = root / "reldist.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8").replace(
            'bounce = "bounces@ecomuseum.example"', 'bounce = "bounces+{token}@ecomuseum.example"'
        ),
        encoding="utf-8",
    )
    code, output = send(root)
    assert code == 0, output
    keys = load_keys(key_file=root / "unsubscribe.key", key_env=None, place="")
    assert keys is not None
    with sqlite3.connect(root / "reldist.db") as db:
        ids = dict(db.execute("SELECT address, id FROM deliveries"))
    senders = {}
    for message in smtpd.messages:
        (rcpt,) = message.rcpt_tos
        found = re.fullmatch(r"bounces\+([A-Za-z0-9_-]{20})@ecomuseum\.example", message.mail_from)
        assert found, message.mail_from
        assert len(message.mail_from.split("@")[0]) <= 64
        assert verify_verp(keys, found.group(1)) == ids[rcpt]  # names this very delivery
        assert rcpt not in message.mail_from
        senders[rcpt] = message.mail_from
    assert len(set(senders.values())) == len(senders) == 6

    # a forwarding address bounced: the DSN names only the final address, nothing of our message
    victim = sorted(senders)[2]
    bounce = (
        f"From: MAILER-DAEMON@relay.example.net\nTo: {senders[victim]}\nSubject: Undelivered Mail\n"
        "Message-ID: <verp.dsn.1@relay.example.net>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nNo such user.\n\n--b\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; relay.example.net\n\nFinal-Recipient: rfc822; forwarded-to@elsewhere.example\n"
        "Action: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 no such user\n\n--b--\n"
    ).encode()
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    box.add(bounce)
    old = os.getcwd()
    os.chdir(root)
    try:
        code, output = run("inbox", "--maildir", str(tmp_path / "Maildir"))
    finally:
        os.chdir(old)
    assert code == 0 and "1 bounced" in output, output
    with sqlite3.connect(root / "reldist.db") as db:
        assert db.execute("SELECT delivery_id, kind FROM events").fetchall() == [(ids[victim], "bounced")]
        assert db.execute("SELECT source FROM suppressions WHERE address = ?", (victim,)).fetchall() == [
            ("bounce",)
        ]


def test_a_verp_bounce_needs_the_token_before_the_at(office: Path) -> None:
    toml = office / "reldist.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8").replace(
            'reply_to = "', 'bounce = "bounces@{token}.example"\nreply_to = "', 1
        ),
        encoding="utf-8",
    )
    code, output = run("status")
    assert code == 1 and "bounces+{token}@example.org" in output
