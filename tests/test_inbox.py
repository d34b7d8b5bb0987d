"""``reldist inbox`` over the corpus (tests/corpus.py) in a Maildir and an mbox: each report's
classification and the ledger rows it leaves (events, suppressions with their sources), dry runs,
running twice, and the soft-bounce threshold."""

from __future__ import annotations

import mailbox
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

import corpus
from corpus import Original
from helpers import RELEASE_ID, run
from reldist.tokens import load_keys


def events(root: Path) -> set[tuple[str, str, str]]:
    with sqlite3.connect(root / "reldist.db") as db:
        return set(
            db.execute(
                "SELECT d.address, e.kind, e.source FROM events e JOIN deliveries d ON d.id = e.delivery_id"
            )
        )


def details(root: Path) -> dict[tuple[str, str], str]:
    with sqlite3.connect(root / "reldist.db") as db:
        return {
            (a, k): d
            for a, k, d in db.execute(
                "SELECT d.address, e.kind, e.detail FROM events e JOIN deliveries d ON d.id = e.delivery_id"
            )
        }


def suppressions(root: Path) -> set[tuple[str, str]]:
    with sqlite3.connect(root / "reldist.db") as db:
        return set(db.execute("SELECT address, source FROM suppressions"))


def test_the_corpus_is_classified_matched_and_recorded_once(
    office: Path, originals: dict[str, Original], tmp_path: Path
) -> None:
    people = sorted(originals)
    assert len(people) >= 12
    keys = load_keys(key_file=office / "unsubscribe.key", key_env=None, place="")
    assert keys is not None
    r = people
    o = originals
    reports: list[tuple[bytes, tuple[str, str, str] | None]] = [
        (corpus.postfix_hard(o[r[0]]), (r[0], "bounced", "inbox")),
        (corpus.exchange_hard(o[r[1]]), (r[1], "bounced", "inbox")),
        (corpus.gmail_hard(o[r[2]]), (r[2], "bounced", "inbox")),
        (corpus.exim_text(o[r[3]]), (r[3], "bounced", "inbox")),
        (corpus.qmail_text(o[r[4]]), (r[4], "bounced", "inbox")),
        (corpus.no_original_dsn(r[5]), (r[5], "bounced", "inbox")),
        (corpus.arf_complaint(o[r[6]]), (r[6], "complained", "inbox")),
        (
            corpus.unsubscribe_mail(o[r[7]], keys.sign(RELEASE_ID, r[7])),
            (r[7], "unsubscribed", "unsubscribe-mail"),
        ),
        (corpus.reply_unsubscribe(o[r[8]]), (r[8], "unsubscribed", "unsubscribe-mail")),
        (corpus.yandex_soft(o[r[9]]), (r[9], "soft-bounced", "inbox")),
        (corpus.mailru_policy(o[r[10]]), (r[10], "policy-bounced", "inbox")),
        (corpus.auto_reply_en(o[r[11]]), (r[11], "auto-replied", "inbox")),
        (corpus.auto_reply_ru(o[r[9]]), (r[9], "auto-replied", "inbox")),
        (corpus.auto_reply_kk(o[r[10]]), (r[10], "auto-replied", "inbox")),
        (corpus.reply_quoted(o[r[11]]), (r[11], "replied", "inbox")),
        (corpus.reply_ru_quoted(o[r[9]]), (r[9], "replied", "inbox")),
        (corpus.reply_unquoted(o[r[10]]), (r[10], "replied", "inbox")),
        (corpus.stranger_bounce(), None),
        (corpus.newsletter(), None),
    ]
    maildir = tmp_path / "Maildir"
    box = mailbox.Maildir(maildir, create=True)
    for raw, _ in reports:
        box.add(raw)
    before = suppressions(office)

    code, output = run("inbox", "--maildir", str(maildir), "--dry-run")
    assert code == 0, output
    assert "dry run" in output and f"{len(reports)} messages read" in output
    assert events(office) == set() and suppressions(office) == before

    code, output = run("inbox", "--maildir", str(maildir))
    assert code == 0, output
    expected = {e for _, e in reports if e is not None}
    assert events(office) == expected
    assert "2 unmatched" in output and "7 bounced" not in output
    assert suppressions(office) - before == {
        *((r[i], "bounce") for i in range(6)),
        (r[6], "complaint"),
        (r[7], "unsubscribe-mail"),
        (r[8], "unsubscribe-mail"),
    }
    # soft, policy, replies and auto-replies suppress nobody
    assert not {a for a, _ in suppressions(office) - before} & {r[9], r[10], r[11]}
    found = details(office)
    assert found[(r[0], "bounced")].startswith("5.1.1 550 5.1.1")
    assert "RecipientNotFound" in found[(r[1], "bounced")]
    assert found[(r[10], "policy-bounced")].startswith("5.7.1")
    assert found[(r[11], "replied")] == (
        "Thank you, we will run the story on Monday. / Could you send a photo of the signing?"
    )
    assert found[(r[9], "replied")] == "Добрый день! Опубликуем завтра."

    # the same mailbox again, and as an mbox: nothing is recorded twice
    code, output = run("inbox", "--maildir", str(maildir))
    assert code == 0 and f"{len(expected)} duplicate" in output, output
    mbox = mailbox.mbox(tmp_path / "replies.mbox", create=True)
    for raw, _ in reports:
        mbox.add(raw)
    mbox.close()
    code, output = run("inbox", "--mbox", str(tmp_path / "replies.mbox"))
    assert code == 0 and f"{len(expected)} duplicate" in output, output
    assert events(office) == expected


def test_soft_bounces_suppress_at_the_threshold(
    office: Path, originals: dict[str, Original], tmp_path: Path
) -> None:
    address = sorted(originals)[0]
    maildir = tmp_path / "Maildir"
    box = mailbox.Maildir(maildir, create=True)
    soft: Callable[[int], bytes] = lambda n: corpus.yandex_soft(originals[address]).replace(  # noqa: E731
        b"<yandex.delay.1@", f"<yandex.delay.{n}@".encode()
    )
    box.add(soft(1))
    box.add(soft(2))
    assert run("inbox", "--maildir", str(maildir))[0] == 0
    assert (address, "bounce") not in suppressions(office)
    box.add(soft(3))
    assert run("inbox", "--maildir", str(maildir))[0] == 0
    assert (address, "bounce") in suppressions(office)


def test_inbox_without_a_source_says_what_to_do(office: Path) -> None:
    code, output = run("inbox")
    assert code == 1 and "[inbox]" in output and "--maildir" in output


def test_a_missing_mailbox_is_named_as_the_place(office: Path) -> None:
    from reldist.errors import ConfigError
    from reldist.feedback.inbox import maildir_source, mbox_source

    for source, path, message in [
        (maildir_source, office / "no-such-maildir", "not a Maildir (no cur/ or new/ folder)"),
        (mbox_source, office / "no-such.mbox", "no such mbox file"),
    ]:
        with pytest.raises(ConfigError) as caught:
            next(source(path))
        assert (caught.value.place, caught.value.message) == (str(path), message)
    code, output = run("inbox", "--maildir", "no-such-maildir")
    assert code == 1 and "no-such-maildir: not a Maildir" in output


SAMPLE = Original(
    "ivan@example.org",
    "<2026-11-eu-karaganda.5.ab12cd34ef561@ecomuseum.example>",
    "EU project supports Karaganda region",
    "From: =?utf-8?b?0K3QutC+0JzRg9C30LXQuQ==?= <press@ecomuseum.example>\nTo: ivan@example.org\n"
    "Message-ID: <2026-11-eu-karaganda.5.ab12cd34ef561@ecomuseum.example>\nSubject: EU project\n",
)


@pytest.mark.parametrize(
    ("maker", "kind", "severity", "status"),
    [
        (corpus.postfix_hard, "bounce", "hard", "5.1.1"),
        (corpus.exchange_hard, "bounce", "hard", "5.1.10"),
        (corpus.gmail_hard, "bounce", "hard", "5.1.1"),
        (corpus.yandex_soft, "bounce", "soft", "4.2.2"),
        (corpus.mailru_policy, "bounce", "policy", "5.7.1"),
        (corpus.exim_text, "bounce", "hard", "5.1.1"),
        (corpus.qmail_text, "bounce", "hard", "5.1.1"),
        (corpus.arf_complaint, "complaint", "", ""),
        (corpus.auto_reply_en, "auto-reply", "", ""),
        (corpus.auto_reply_ru, "auto-reply", "", ""),
        (corpus.auto_reply_kk, "auto-reply", "", ""),
        (corpus.reply_quoted, "reply", "", ""),
        (corpus.reply_unquoted, "reply", "", ""),
        (corpus.reply_unsubscribe, "unsubscribe", "", ""),
    ],
)
def test_each_format_is_classified_and_names_our_message(
    maker: Callable[[Original], bytes], kind: str, severity: str, status: str
) -> None:
    from reldist.feedback.classify import classify
    from reldist.feedback.incoming import parse as parse_raw

    raw = maker(SAMPLE)
    report = classify(parse_raw(raw), raw)
    assert (report.kind, report.severity, report.status) == (kind, severity, status)
    assert SAMPLE.message_id in report.message_ids
    if kind in ("bounce", "complaint"):
        assert SAMPLE.address in report.recipients


def test_status_report_and_suppressed_show_the_feedback(
    office: Path, originals: dict[str, Original], tmp_path: Path
) -> None:
    import csv
    import io
    import json

    r = sorted(originals)
    maildir = tmp_path / "Maildir"
    box = mailbox.Maildir(maildir, create=True)
    for raw in (
        corpus.postfix_hard(originals[r[0]]),
        corpus.auto_reply_en(originals[r[1]]).replace(b"09:00:00", b"08:00:00"),
        corpus.reply_quoted(originals[r[1]]),  # an hour after the auto-reply: the latest feedback
        corpus.yandex_soft(originals[r[2]]),
    ):
        box.add(raw)
    assert run("inbox", "--maildir", str(maildir))[0] == 0
    assert run("suppress", "someone@example.org")[0] == 0

    code, output = run("status", RELEASE_ID)
    assert code == 0, output
    assert (
        "  bounced        1" in output and "  replied        1" in output and "  soft-bounced   1" in output
    )
    assert "Hard bounces (suppressed):" in output
    assert f"  {r[0]} (" in output and "5.1.1 550 5.1.1" in output

    code, output = run("report", RELEASE_ID, "--format", "json")
    assert code == 0
    rows = {row["address"]: row for row in json.loads(output)}
    assert rows[r[0]]["feedback"] == "bounced" and rows[r[0]]["feedback_detail"].startswith("5.1.1")
    assert rows[r[0]]["status"] == "sent"  # what the server said at send time stays
    assert rows[r[1]]["feedback"] == "replied" and rows[r[1]]["feedback_at"].startswith("2026-11-27T09:00:00")
    assert rows[r[2]]["feedback"] == "soft-bounced"
    assert rows[r[3]]["feedback"] == "" and rows[r[3]]["feedback_at"] is None
    code, output = run("report", RELEASE_ID, "--format", "csv")
    table = list(csv.DictReader(io.StringIO(output.lstrip("\ufeff"))))
    assert {row["address"]: row["feedback"] for row in table}[r[1]] == "replied"
    code, output = run("report", RELEASE_ID)
    assert "feedback" in output.splitlines()[0] and "bounced" in output

    code, output = run("suppressed", "--format", "json")
    assert code == 0
    listed = json.loads(output)
    assert all(set(item) == {"address", "reason", "source", "created_at"} for item in listed)
    sources = {item["address"]: item["source"] for item in listed}
    assert sources[r[0]] == "bounce" and sources["someone@example.org"] == "cli"
    assert r[2] not in sources  # one soft bounce suppresses nobody
    assert (office / "contacts" / "suppressed.csv").exists()
    assert "contacts/suppressed.csv" in sources.values()  # the file's entries are listed too
    code, output = run("suppressed")
    assert code == 0 and r[0] in output and "bounce" in output
    code, output = run("suppressed", "--format", "csv")
    assert output.lstrip("\ufeff").startswith("address,reason,source,created_at")


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        (
            'password_env = "RELDIST_TEST_UNSET_IMAP_PASSWORD"',
            "reldist.toml: [inbox] password_env: environment variable RELDIST_TEST_UNSET_IMAP_PASSWORD is not set",
        ),
        (
            'password_command = "false"',
            "reldist.toml: [inbox] password_command: 'false' exited with status 1",
        ),
        ('password_command = "true"', "reldist.toml: [inbox] password_command: 'true' printed nothing"),
        (
            'token_command = "/nonexistent/get-token"',
            "reldist.toml: [inbox] token_command: cannot run '/nonexistent/get-token'",
        ),
    ],
)
def test_a_missing_inbox_secret_names_the_inbox_table(
    office: Path, monkeypatch: pytest.MonkeyPatch, secret: str, expected: str
) -> None:
    """The IMAP login's secret comes from [inbox], not [smtp]: its errors say where to look."""
    monkeypatch.delenv("RELDIST_TEST_UNSET_IMAP_PASSWORD", raising=False)
    toml = office / "reldist.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8")
        + f'\n[inbox]\nhost = "127.0.0.1"\nport = 9\nsecurity = "none"\nusername = "press"\n{secret}\n',
        encoding="utf-8",
    )
    code, output = run("inbox")
    assert code == 1, output
    assert expected in output and "[smtp]" not in output, output
