"""``reldist send RELEASE --test ADDRESS [--as RECIPIENT]``: test copies, never deliveries.

Through the outbox (the .eml files parsed back) and through a real aiosmtpd server on 127.0.0.1
(what it received), with the ledger read from the real SQLite file: ``test_sends`` gets a row per
copy and ``deliveries`` never changes.
"""

from __future__ import annotations

import base64
import socket
import sqlite3
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from helpers import RELEASE_ID, parse, parts, run
from reldist.tokens import load_keys
from smtpfixtures import SmtpServer

RELEASE = f"releases/{RELEASE_ID}"
TESTER = "tester@ecomuseum.example"


def ledger_tests(root: Path) -> list[tuple[str, str, str, int | None]]:
    db = sqlite3.connect(root / "reldist.db")
    return db.execute(
        "SELECT address, as_recipient, status, smtp_code FROM test_sends ORDER BY id"
    ).fetchall()


def deliveries(root: Path) -> list[tuple[object, ...]]:
    db = sqlite3.connect(root / "reldist.db")
    return db.execute("SELECT * FROM deliveries ORDER BY id").fetchall()


def use_smtp(root: Path, server: SmtpServer) -> None:
    config = root / "reldist.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        + f'\n[smtp]\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "none"\ntimeout = 5.0\n',
        encoding="utf-8",
    )


def test_one_copy_per_language_and_template_to_the_outbox(office: Path) -> None:
    code, out = run("send", RELEASE, "--test", TESTER)
    assert code == 0, out
    files = sorted((office / "outbox" / RELEASE_ID / "test").glob("*.eml"))
    # The example list has five combinations: ru+en+kk, en+ru+kk and kk+ru+en (release), ru only, en wire.
    assert len(files) == 5, out
    assert not list((office / "outbox" / RELEASE_ID).glob("*.eml"))  # no journalist's file
    lines = (office / "contacts" / "example.csv").read_text(encoding="utf-8").splitlines()[1:]
    journalists = [line.split(",")[0] for line in lines]
    keys = load_keys(key_file=office / "unsubscribe.key", key_env=None, place="")
    assert keys is not None
    for path in files:
        message = parse(path.read_bytes())
        (to,) = message["To"].addresses
        assert to.addr_spec == TESTER
        assert str(message["Subject"]).startswith("[TEST] ")
        text, html = parts(message)
        assert "ТЕСТ" in text or "TEST —" in text or "СЫНАҚ —" in text
        assert "ТЕСТ" in html or "TEST —" in html or "СЫНАҚ —" in html
        # the copy is addressed to the tester throughout: nothing in it can unsubscribe a journalist
        token = str(message["List-Unsubscribe"]).split("unsubscribe%20", 1)[1].split(">", 1)[0]
        verified = keys.verify(token)
        assert verified is not None and verified.digest == keys.digest(TESTER)
        headers = "\n".join(str(value) for value in message.values())
        for journalist in journalists:
            assert journalist not in headers and journalist not in text and journalist not in html
    assert {str(parse(p.read_bytes())["Content-Language"]) for p in files} == {
        "ru, en, kk",
        "en, ru, kk",
        "kk, ru, en",
        "ru",
        "en",
    }
    rows = ledger_tests(office)
    assert len(rows) == 5
    assert {r[0] for r in rows} == {TESTER}
    assert {r[2] for r in rows} == {"sent"}
    assert deliveries(office) == []
    assert "no journalist was sent anything" in out


def test_as_picks_one_recipient_and_uses_their_language_and_greeting(office: Path) -> None:
    code, out = run("send", RELEASE, "--test", TESTER, "--as", "R.Walsh@Example.org")
    assert code == 0, out
    (path,) = (office / "outbox" / RELEASE_ID / "test").glob("*.eml")
    message = parse(path.read_bytes())
    assert message["Content-Language"] == "en, ru, kk"
    assert message["To"].addresses[0].display_name == "Rachel Walsh"
    assert str(message["Subject"]) == "[TEST] EU project supports Karaganda region in tackling climate change"
    text, _ = parts(message)
    assert "Dear Ms Walsh," in text  # the salutation column of that row
    assert ledger_tests(office) == [(TESTER, "r.walsh@example.org", "sent", 250)]


def test_as_an_address_that_gets_nothing_is_an_error(office: Path) -> None:
    code, out = run("send", RELEASE, "--test", TESTER, "--as", "nobody@example.org")
    assert code == 1
    assert "--as nobody@example.org: no such recipient" in out
    code, out = run("send", RELEASE, "--test", TESTER, "--as", "old.newsdesk@example.net")
    assert code == 1
    assert "do-not-contact" in out
    assert not (office / "outbox" / RELEASE_ID / "test").exists() or not list(
        (office / "outbox" / RELEASE_ID / "test").glob("*.eml")
    )


def test_options_that_make_no_sense_with_test(office: Path) -> None:
    assert run("send", RELEASE, "--test", TESTER, "--dry-run")[0] == 2
    assert run("send", RELEASE, "--test", TESTER, "--retry")[0] == 2
    assert run("send", RELEASE, "--as", "r.walsh@example.org")[0] == 2
    code, out = run("send", RELEASE, "--test", "not-an-address")
    assert code == 1 and "--test not-an-address: not an email address" in out


def test_test_copies_never_change_the_deliveries(office: Path) -> None:
    code, out = run("send", RELEASE, "--yes", "--limit", "3")
    assert code == 0, out  # the rest are still queued, as --limit asked
    before = deliveries(office)
    assert [row for row in before if "sent" in row]
    code, out = run("send", RELEASE, "--test", TESTER)
    assert code == 0, out
    assert deliveries(office) == before
    code, out = run("status", RELEASE)
    assert "Test copies sent: 5 (not counted as delivered)" in out
    code, out = run("send", RELEASE, "--yes")  # the journalists still get theirs, once
    assert code == 0, out
    assert len(list((office / "outbox" / RELEASE_ID).glob("*.eml"))) == sum(
        1 for row in deliveries(office) if "sent" in row
    )


def test_over_smtp_signed_and_recorded(office: Path, smtpd: SmtpServer) -> None:
    use_smtp(office, smtpd)
    key = ed25519.Ed25519PrivateKey.generate()
    (office / "dkim.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    record = f"v=DKIM1; k=ed25519; p={base64.b64encode(public).decode()}".encode()
    config = office / "reldist.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        + '\n[dkim]\ndomain = "ecomuseum.example"\nselector = "s1"\nkey_file = "dkim.pem"\n',
        encoding="utf-8",
    )
    code, out = run("send", RELEASE, "--test", TESTER)
    assert code == 0, out
    assert len(smtpd.messages) == 5
    for received in smtpd.messages:
        assert received.rcpt_tos == [TESTER]
        assert received.mail_from == "press@ecomuseum.example"
        assert str(received.message["Subject"]).startswith("[TEST] ")
        assert dkim.verify(received.content, dnsfunc=lambda name, timeout=5: record)
    assert [row[2:] for row in ledger_tests(office)] == [("sent", 250)] * 5
    assert deliveries(office) == []
    assert not (office / "outbox" / RELEASE_ID).exists()


def test_a_refused_test_copy_is_recorded_as_failed(office: Path, smtpd: SmtpServer) -> None:
    use_smtp(office, smtpd)
    smtpd.faults.rcpt = {TESTER: "550 5.1.1 No such user"}
    code, out = run("send", RELEASE, "--test", TESTER, "--as", "laura.d@example.org")
    assert code == 3, out
    assert "failed" in out and "No such user" in out
    assert ledger_tests(office) == [(TESTER, "laura.d@example.org", "failed", 550)]
    assert deliveries(office) == []


def test_an_unreachable_server_exits_4(office: Path, smtpd: SmtpServer) -> None:
    use_smtp(office, smtpd)
    port = smtpd.port
    config = office / "reldist.toml"
    # a port nothing listens on: bind one, note it, close it
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    config.write_text(
        config.read_text(encoding="utf-8").replace(f"port = {port}", f"port = {free}"), encoding="utf-8"
    )
    code, out = run("send", RELEASE, "--test", TESTER)
    assert code == 4, out
    assert ledger_tests(office) == []
