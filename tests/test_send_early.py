"""``send`` of a release whose ``send_at`` is still to come: refused without ``--now``, said by
``--dry-run``, the prompt and ``check``; test copies go at any time.

Real commands (CliRunner, and a pseudo-terminal for the prompt) against a real aiosmtpd server on
127.0.0.1; the ledger rows are read from the real SQLite file.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from helpers import RELEASE_ID, make_workspace, run
from smtpfixtures import SmtpServer
from test_cli_options import on_a_terminal

RELEASE = f"releases/{RELEASE_ID}"
LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=2, hours=3)


@pytest.fixture
def scheduled(tmp_path: Path, smtpd: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example workspace over SMTP, its release scheduled two days ahead (Almaty time)."""
    root = make_workspace(tmp_path / "office")
    config = root / "reldist.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        + f'\n[smtp]\nhost = "127.0.0.1"\nport = {smtpd.port}\nsecurity = "none"\ntimeout = 5.0\n',
        encoding="utf-8",
    )
    toml = root / RELEASE / "release.toml"
    when = LATER.astimezone(dt.timezone(dt.timedelta(hours=5)))
    toml.write_text(
        f'send_at = "{when:%Y-%m-%d %H:%M} Asia/Almaty"\n' + toml.read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    monkeypatch.chdir(root)
    return root


def rows(root: Path) -> list[tuple[str, str]]:
    if not (root / "reldist.db").exists():
        return []
    with sqlite3.connect(root / "reldist.db") as db:
        return sorted(db.execute("SELECT address, status FROM deliveries"))


def shown(when: dt.datetime) -> str:
    return f"{when.astimezone(dt.timezone(dt.timedelta(hours=5))):%Y-%m-%d %H:%M} (UTC+5)"


def test_send_refuses_a_release_scheduled_later_and_sends_it_with_now(
    scheduled: Path, smtpd: SmtpServer
) -> None:
    code, out = run("send", RELEASE, "--yes")
    assert code == 1, out
    assert f"{RELEASE_ID} is scheduled for {shown(LATER)}, in 2 d " in out
    assert "'reldist dispatch' sends it then; nothing was sent" in out
    assert f"To send it now anyway: reldist send {RELEASE} --now" in out
    assert smtpd.messages == []
    assert rows(scheduled) == []

    code, out = run("send", RELEASE, "--dry-run")
    assert code == 0, out
    assert f"Scheduled for {shown(LATER)}" in out and "(send refuses it without --now)" in out
    assert smtpd.messages == []

    code, out = run("check", RELEASE)
    assert code == 0, out
    assert f"send_at: scheduled for {shown(LATER)}" in out
    assert "'reldist send' refuses it without --now" in out

    code, out = run("send", RELEASE, "--yes", "--now")
    assert code == 0, out
    assert "This run: sent 13" in out
    assert len(smtpd.messages) == 13
    statuses = [status for _, status in rows(scheduled)]
    assert statuses.count("sent") == 13 and len(statuses) == 14


def test_test_copies_are_not_held_back(scheduled: Path, smtpd: SmtpServer) -> None:
    code, out = run("send", RELEASE, "--test", "me@example.org")
    assert code == 0, out
    assert smtpd.messages and all(m.rcpt_tos == ["me@example.org"] for m in smtpd.messages)
    assert rows(scheduled) == []


@pytest.mark.slow
def test_the_prompt_names_the_schedule(scheduled: Path, smtpd: SmtpServer) -> None:
    code, screen = on_a_terminal(["send", RELEASE_ID, "--now"], scheduled, ["n"])
    assert code == 1, screen
    assert f"Send {RELEASE_ID} now, ahead of its send_at ({shown(LATER)}, in 2 d" in screen
    assert "Nothing was sent." in screen
    assert smtpd.messages == []
