"""What the do-not-contact commands and a few others say: ``unsuppress`` names the
contacts/suppressed.csv line it cannot remove, ``suppressed`` has a header and local times,
``init`` in the current folder says no ``cd .``, ``send --test`` checks the address first, and
``inbox`` counts in the singular. Real commands through CliRunner."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from helpers import RELEASE_ID, run
from reldist.feedback.inbox import Summary


def test_unsuppress_names_the_file_line_it_cannot_remove(office: Path) -> None:
    code, out = run("unsuppress", "old.newsdesk@example.net")
    assert code == 1, out
    assert "still suppressed by contacts/suppressed.csv:2" in out and "remove that line" in out
    assert "not on the list" not in out
    code, out = run("suppressed", "--format", "json")
    assert [e["address"] for e in json.loads(out)] == ["old.newsdesk@example.net"]

    code, out = run("suppress", "x@example.org")
    assert code == 0, out
    code, out = run("unsuppress", "x@example.org")
    assert code == 0, out
    assert "removed: x@example.org" in out
    code, out = run("unsuppress", "nobody@example.org")
    assert code == 0 and "not on the list: nobody@example.org" in out


def test_suppressed_has_a_header_and_local_times_with_their_offset(office: Path) -> None:
    code, out = run("suppress", "x@example.org", "--reason", "asked by phone")
    assert code == 0, out
    code, out = run("suppressed")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split() == ["address", "source", "created_at", "reason"]
    row = next(line for line in lines if line.startswith("x@example.org"))
    assert re.search(r"  cli  .*  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+05:00  asked by phone$", row), row
    code, out = run("suppressed", "--format", "json")
    stamps = [e["created_at"] for e in json.loads(out) if e["address"] == "x@example.org"]
    assert len(stamps) == 1 and stamps[0].endswith("+05:00")


def test_init_here_says_no_cd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out = run("init")
    assert code == 0, out
    assert "cd ." not in out and "reldist check releases/" in out
    code, out = run("init", str(tmp_path / "elsewhere"))
    assert code == 0, out
    assert f"  cd {tmp_path / 'elsewhere'}" in out


def test_a_bad_test_address_is_said_before_anything(office: Path) -> None:
    code, out = run("send", RELEASE_ID, "--test", "bad@@x")
    assert code == 1, out
    assert "--test bad@@x: not an email address" in out
    assert "Test copies" not in out
    assert not (office / "outbox").exists() or not list((office / "outbox").rglob("*.eml"))


def test_inbox_counts_in_the_singular() -> None:
    summary = Summary()
    summary.outcomes["replied"] = 1
    summary.suppressed = 1
    assert summary.text(where="INBOX").startswith(
        "inbox: 1 message read from INBOX: 1 replied; 1 address suppressed"
    )
