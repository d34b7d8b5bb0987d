"""The record keeps what it learnt, on SQLite and on PostgreSQL: a second list does not delete the
first list's skipped and suppressed rows, a re-run that sends nothing leaves ``updated_at`` alone,
and a 5.1.x refusal of the mailbox at send time suppresses the address (never a 5.7.x one).

Real commands (CliRunner) against a real aiosmtpd server on 127.0.0.1; the rows are read back with
``report --format json`` (the same on both engines) and the do-not-contact list with ``suppressed``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from helpers import RELEASE_ID, make_workspace, run, write_contacts
from smtpfixtures import SmtpServer

RELEASE = f"releases/{RELEASE_ID}"


@pytest.fixture(params=["sqlite", "postgresql"])
def office(
    request: pytest.FixtureRequest, tmp_path: Path, smtpd: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The example workspace over SMTP, its ledger in SQLite or in a fresh PostgreSQL schema."""
    root = make_workspace(tmp_path / "office")
    config = root / "reldist.toml"
    text = config.read_text(encoding="utf-8")
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
        text = re.sub(r'(?m)^ledger = "[^"]*"', f'ledger = "{url}"', text)
    config.write_text(
        text
        + f'\n[smtp]\nhost = "127.0.0.1"\nport = {smtpd.port}\nsecurity = "none"\ntimeout = 5.0\nretries = 1\n',
        encoding="utf-8",
    )
    write_contacts(
        root,
        "first",
        [
            "a.one@example.org,A One,en,,,,,,,",
            "ivan@@mail.kz,Иван,ru,,,,,,,",
            "old.newsdesk@example.net,Павел Громов,ru,,,,,,,",  # in contacts/suppressed.csv
            "b.two@example.org,B Two,ru,,,,,,,",
        ],
    )
    write_contacts(
        root, "second", ["c.three@example.org,C Three,en,,,,,,,", "d.four@example.org,D Four,ru,,,,,,,"]
    )
    monkeypatch.chdir(root)
    return root


def rows() -> dict[str, dict[str, object]]:
    code, out = run("report", RELEASE_ID, "--format", "json")
    assert code == 0, out
    return {str(row["address"] or row["source"]): row for row in json.loads(out)}


def test_a_second_list_keeps_the_first_lists_rows_and_a_no_op_run_changes_nothing(
    office: Path, smtpd: SmtpServer
) -> None:
    code, out = run("send", RELEASE, "--list", "first", "--yes")
    assert code == 0, out
    assert "This run: sent 2" in out
    first = rows()
    assert {k: v["status"] for k, v in first.items()} == {
        "a.one@example.org": "sent",
        "b.two@example.org": "sent",
        "ivan@@mail.kz": "skipped",
        "old.newsdesk@example.net": "suppressed",
    }

    code, out = run("send", RELEASE, "--list", "first", "--yes")  # sends nothing
    assert code == 0, out
    assert "This run: nothing to send" in out
    assert rows() == first  # updated_at ("last change") included: nothing changed

    code, out = run("send", RELEASE, "--list", "second", "--yes")
    assert code == 0, out
    assert "This run: sent 2" in out
    after = rows()
    assert {k: v["status"] for k, v in after.items()} == {
        "a.one@example.org": "sent",
        "b.two@example.org": "sent",
        "c.three@example.org": "sent",
        "d.four@example.org": "sent",
        "ivan@@mail.kz": "skipped",
        "old.newsdesk@example.net": "suppressed",
    }
    for kept in ("ivan@@mail.kz", "old.newsdesk@example.net", "a.one@example.org"):
        assert after[kept] == first[kept]
    code, out = run("status", RELEASE_ID)
    assert code == 0, out
    assert (
        re.search(r"sent\s+4", out) and re.search(r"skipped\s+1", out) and re.search(r"suppressed\s+1", out)
    )
    assert sorted(r for m in smtpd.messages for r in m.rcpt_tos) == [
        "a.one@example.org",
        "b.two@example.org",
        "c.three@example.org",
        "d.four@example.org",
    ]


def test_a_refused_mailbox_is_suppressed_a_policy_refusal_is_not(office: Path, smtpd: SmtpServer) -> None:
    smtpd.faults.rcpt = {
        "a.one@example.org": "550 5.1.1 No such user here",
        "b.two@example.org": "550 5.7.1 Message rejected by policy",
        "c.three@example.org": "550 5.1.2 Bad destination domain",
    }
    code, out = run("send", RELEASE, "--list", "first", "--list", "second", "--yes")
    assert code == 3, out
    found = rows()
    assert [
        found[a]["status"] for a in ("a.one@example.org", "b.two@example.org", "c.three@example.org")
    ] == ["failed"] * 3
    code, out = run("suppressed", "--format", "json")
    assert code == 0, out
    listed = {e["address"]: e for e in json.loads(out)}
    assert "b.two@example.org" not in listed
    for address, words in (
        ("a.one@example.org", "5.1.1 No such user here"),
        ("c.three@example.org", "5.1.2"),
    ):
        assert listed[address]["source"] == "bounce"
        assert words in str(listed[address]["reason"]) and RELEASE_ID in str(listed[address]["reason"])
    code, out = run("status", RELEASE_ID)
    assert (
        "a.one@example.org (contacts/first.csv:2): 550 5.1.1 No such user here (suppressed: not retried)"
        in out
    )
    assert "--retry" in out  # for the policy refusal, which may pass once the cause is fixed

    smtpd.faults.rcpt = {}
    code, out = run("send", RELEASE, "--list", "first", "--list", "second", "--retry", "--yes")
    assert code == 0, out
    got = [r for m in smtpd.messages for r in m.rcpt_tos]
    assert got.count("b.two@example.org") == 1
    assert "a.one@example.org" not in got and "c.three@example.org" not in got
    assert rows()["a.one@example.org"]["smtp_reply"] == "5.1.1 No such user here"  # the server's words stay
    code, out = run("status", RELEASE_ID)
    assert "--retry" not in out, out
