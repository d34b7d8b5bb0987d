"""Whole sends over SMTP against a real aiosmtpd server on 127.0.0.1, checked on both sides:
what the server received (parsed back) and what the ledger (a real SQLite file) recorded.

Faults (4xx, 5xx, 421 and hang-ups, drops after DATA, an unreachable port, a killed process)
are made by the test server or the operating system, never by mocking the client.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from helpers import RELEASE_ID, make_workspace, set_lists
from reldist.cli import main
from reldist.envelope import Outcome, Outgoing
from reldist.job import Job
from reldist.ledger import Ledger
from reldist.release import load_release
from reldist.send import send_release
from reldist.settings import parse_rate
from reldist.transport.base import Connection
from reldist.transport.smtp import SmtpTransport
from reldist.workspace import open_workspace
from smtpfixtures import SmtpServer, smtp_server

RELEASE = f"releases/{RELEASE_ID}"


def office(tmp_path: Path, port: int, *, recipients: int = 20, **smtp: object) -> Path:
    """A workspace whose release goes to ``recipients`` generated journalists over SMTP."""
    root = make_workspace(tmp_path / "office")
    rows = ["email,name,lang"]
    for n in range(recipients):
        lang = ("ru", "en", "kk")[n % 3]
        rows.append(f"j{n:04d}@example.org,Журналист {n},{lang}")
    (root / "contacts" / "generated.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    set_lists(root, "generated")
    settings = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "connections": 2,
        "timeout": 2.0,
        "retries": 2,
        "backoff": 0.01,
        **smtp,
    }
    table = "\n".join(
        f"{k} = {v!r}".replace("'", '"')
        if isinstance(v, str)
        else f"{k} = {str(v).lower() if isinstance(v, bool) else v}"
        for k, v in settings.items()
    )
    config = root / "reldist.toml"
    text = config.read_text(encoding="utf-8").replace(
        'reply_to = "', 'bounce = "bounces@ecomuseum.example"\nreply_to = "'
    )
    config.write_text(text + f"\n[smtp]\n{table}\n", encoding="utf-8")
    return root


def send(root: Path, *args: str) -> tuple[int, str]:
    old = os.getcwd()
    os.chdir(root)
    try:
        result = CliRunner().invoke(main, ["send", RELEASE, "--yes", *args], catch_exceptions=False)
    finally:
        os.chdir(old)
    return result.exit_code, result.output


def ledger_rows(root: Path) -> dict[str, tuple[str, int, int | None, str, str | None]]:
    db = sqlite3.connect(root / "reldist.db")
    return {
        address: (status, attempts, code, reply, message_id)
        for address, status, attempts, code, reply, message_id in db.execute(
            "SELECT address, status, attempts, smtp_code, smtp_reply, message_id FROM deliveries"
        )
    }


def received_by_address(server: SmtpServer) -> Counter[str]:
    return Counter(rcpt for message in server.messages for rcpt in message.rcpt_tos)


def test_everyone_gets_exactly_one_individual_message(tmp_path: Path, smtpd: SmtpServer) -> None:
    root = office(tmp_path, smtpd.port, recipients=30, connections=3)
    code, out = send(root)
    assert code == 0, out
    counts = received_by_address(smtpd)
    assert len(counts) == 30 and set(counts.values()) == {1}
    rows = ledger_rows(root)
    assert {status for status, *_ in rows.values()} == {"sent"}
    for message in smtpd.messages:
        parsed = message.message
        (rcpt,) = message.rcpt_tos
        assert parsed["To"].addresses[0].addr_spec == rcpt  # one recipient a message, never a shared list
        assert parsed["Cc"] is None and parsed["Bcc"] is None
        assert message.mail_from == "bounces@ecomuseum.example"  # envelope sender differs from From
        assert parsed["From"].addresses[0].addr_spec == "press@ecomuseum.example"
        status, attempts, smtp_code, _, message_id = rows[rcpt]
        assert (status, attempts, smtp_code) == ("sent", 1, 250)
        assert parsed["Message-ID"] == message_id
        assert "SMTPUTF8" not in message.mail_options
    assert 1 <= smtpd.connections <= 3


def test_reconnects_after_messages_per_connection(tmp_path: Path, smtpd: SmtpServer) -> None:
    root = office(tmp_path, smtpd.port, recipients=12, connections=1, messages_per_connection=5)
    assert send(root)[0] == 0
    assert len(smtpd.messages) == 12
    assert smtpd.connections == 3


def test_temporary_and_permanent_failures_and_retry(tmp_path: Path, smtpd: SmtpServer) -> None:
    root = office(tmp_path, smtpd.port, recipients=6)
    smtpd.faults.rcpt = {
        "j0000@example.org": ["450 4.2.0 Mailbox busy, try later"],  # once, then accepted
        "j0001@example.org": ["450 4.7.1 Greylisted"] * 5,  # more often than the run retries
        "j0002@example.org": "550 5.7.1 Rejected by policy here",  # 5.1.1 would suppress it
    }
    code, out = send(root)
    assert code == 3, out
    rows = ledger_rows(root)
    assert rows["j0000@example.org"][:3] == ("sent", 2, 250)
    assert rows["j0001@example.org"][:3] == ("deferred", 2, 450)
    assert "Greylisted" in rows["j0001@example.org"][3]
    assert rows["j0002@example.org"][:3] == ("failed", 1, 550)
    assert "Rejected by policy here" in rows["j0002@example.org"][3]
    assert "failed: j0002@example.org" in out and "Rejected by policy here" in out

    old = os.getcwd()
    os.chdir(root)
    try:
        status = CliRunner().invoke(main, ["status", RELEASE_ID])
    finally:
        os.chdir(old)
    assert "550 5.7.1 Rejected by policy here" in status.output
    assert "--retry" in status.output

    smtpd.faults.rcpt = {}
    before = received_by_address(smtpd)
    code, out = send(root, "--retry")
    assert code == 0, out
    after = received_by_address(smtpd)
    assert after - before == Counter({"j0001@example.org": 1, "j0002@example.org": 1})
    assert ledger_rows(root)["j0002@example.org"][:2] == ("sent", 2)


def test_421_and_hang_up_in_the_middle(tmp_path: Path, smtpd: SmtpServer) -> None:
    # The fifth message of every session gets the 421, whichever it is; a retried message may
    # land in that slot again, so this test allows more attempts than the default two here.
    root = office(tmp_path, smtpd.port, recipients=14, connections=1, retries=6)
    smtpd.faults.close_after = 4
    code, out = send(root)
    assert code == 0, out
    counts = received_by_address(smtpd)
    assert len(counts) == 14 and set(counts.values()) == {1}
    assert smtpd.connections >= 4


def test_drop_after_data_is_unknown_and_not_resent_unless_asked(tmp_path: Path, smtpd: SmtpServer) -> None:
    root = office(tmp_path, smtpd.port, recipients=5, connections=1)
    smtpd.faults.drop_after_data = {3}
    code, out = send(root)
    assert code == 3, out
    rows = ledger_rows(root)
    unknown = [a for a, row in rows.items() if row[0] == "unknown"]
    assert len(unknown) == 1
    assert len(smtpd.unanswered) == 1 and smtpd.unanswered[0].rcpt_tos == unknown
    assert len(smtpd.messages) == 4

    code, out = send(root)  # a plain re-run leaves the unknown alone
    assert code == 3 and len(smtpd.messages) == 4
    assert "--resend-unknown" in out
    code, out = send(root, "--resend-unknown")
    assert code == 0, out
    assert [m.rcpt_tos for m in smtpd.messages[4:]] == [unknown]


def test_unreachable_server_exits_4_and_keeps_everyone_queued(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = office(tmp_path, port, recipients=4)
    code, out = send(root)
    assert code == 4, out
    assert "127.0.0.1" in out
    assert {row[0] for row in ledger_rows(root).values()} == {"queued"}


def test_rate_limit_holds_with_an_injected_clock(tmp_path: Path, smtpd: SmtpServer) -> None:
    """Send 25 messages at "10/second": the clock is fake, the server and the client are real."""
    root = office(tmp_path, smtpd.port, recipients=25, connections=4, rate="10/second")
    now = [1_000_000.0]
    started: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        now[0] += max(seconds, 0.0)
        await asyncio.sleep(0)

    class Recording:
        """The real SMTP transport; notes the (fake) time at which each message starts."""

        def __init__(self, inner: SmtpTransport) -> None:
            self.inner, self.name, self.connections = inner, "smtp", inner.connections

        async def connect(self) -> Connection:
            connection = await self.inner.connect()

            class Noting:
                async def send(self, message: Outgoing) -> Outcome:
                    started.append(now[0])
                    return await connection.send(message)

                async def close(self) -> None:
                    await connection.close()

            return Noting()

    ws = open_workspace(start=root)
    assert ws.config.rates == (parse_rate("10/second"),)
    release = load_release(root / RELEASE, workspace=root)
    with ws.open_ledger() as ledger:
        job = Job(ws, release, ledger=ledger)
        assert ws.config.smtp is not None
        result = send_release(
            job,
            ledger,
            transport=Recording(SmtpTransport(ws.config.smtp)),
            sleep=fake_sleep,
            clock=lambda: now[0],
        )
    assert result.exit_code == 0
    assert len(smtpd.messages) == 25
    started.sort()
    assert all(b - a >= 0.1 - 1e-9 for a, b in itertools.pairwise(started))  # paced evenly
    for t in started:  # no window of one second sees more than 10
        assert sum(1 for u in started if t <= u <= t + 1.0) <= 10
    assert started[-1] - started[0] >= 2.4 - 1e-9


@pytest.mark.slow
def test_killed_sends_never_send_twice(tmp_path: Path) -> None:
    """SIGKILL a multi-hundred-recipient send at several points; re-run until done.

    Every recipient gets exactly one copy, except those the ledger reports as unknown (killed
    between the message leaving and the reply being recorded), which get at most one.
    """
    total = 300
    with smtp_server(slow_data=set(range(1, 2000)), delay=0.005) as server:
        root = office(tmp_path, server.port, recipients=total, connections=2)
        env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
        command = [sys.executable, "-m", "reldist", "send", RELEASE, "--yes"]
        for kill_at in (40, 120, 200):
            process = subprocess.Popen(
                command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            deadline = time.monotonic() + 60
            while len(server.messages) < kill_at and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            process.send_signal(signal.SIGKILL)
            process.wait()
        done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode in (0, 3), done.stderr
        rows = ledger_rows(root)
        counts = received_by_address(server)
    unknown = {a for a, row in rows.items() if row[0] == "unknown"}
    assert len(rows) == total
    assert {row[0] for row in rows.values()} <= {"sent", "unknown"}
    assert len(unknown) <= 3 * 2  # at most the messages in flight at each kill (connections = 2)
    for address, row in rows.items():
        if row[0] == "sent":
            assert counts[address] == 1, address
        else:
            assert counts[address] <= 1, address
    assert done.returncode == (3 if unknown else 0)


def test_password_from_environment_never_printed(tmp_path: Path) -> None:
    with smtp_server(users={"press@ecomuseum.example": "s3cret-Pa55"}) as server:
        root = office(
            tmp_path,
            server.port,
            recipients=2,
            username="press@ecomuseum.example",
            password_env="RELDIST_TEST_PW",
        )
        os.environ["RELDIST_TEST_PW"] = "wrong-s3cret-Pa55"
        try:
            code, out = send(root)
            assert code == 1, out  # a wrong password is configuration: running again will not help
            assert "s3cret" not in out
            os.environ["RELDIST_TEST_PW"] = "s3cret-Pa55"
            code, out = send(root)
        finally:
            del os.environ["RELDIST_TEST_PW"]
        assert code == 0, out
        assert len(server.messages) == 2
        assert {login.user for login in server.logins if login.ok} == {"press@ecomuseum.example"}
    db = (root / "reldist.db").read_bytes()
    assert b"s3cret" not in db


def test_dates_are_iso(tmp_path: Path, smtpd: SmtpServer) -> None:
    root = office(tmp_path, smtpd.port, recipients=1)
    send(root)
    with Ledger.open(root / "reldist.db") as ledger:
        (row,) = list(ledger.rows(RELEASE_ID))
    assert dt.datetime.fromisoformat(row.updated_at).tzinfo is not None


def test_missing_password_stops_at_once_instead_of_hanging(tmp_path: Path, smtpd: SmtpServer) -> None:
    """A password that cannot be had is a config error (exit 1) before anything is planned."""
    root = office(
        tmp_path,
        smtpd.port,
        recipients=3,
        username="press@ecomuseum.example",
        password_env="RELDIST_NOT_SET_PW",
    )
    os.environ.pop("RELDIST_NOT_SET_PW", None)
    env = {k: v for k, v in os.environ.items() if k != "RELDIST_NOT_SET_PW"}
    for command in (["send", RELEASE, "--yes"], ["check", RELEASE]):
        done = subprocess.run(
            [sys.executable, "-m", "reldist", *command],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        assert "environment variable RELDIST_NOT_SET_PW is not set" in done.stdout + done.stderr
    assert smtpd.connections == 0
    assert not (root / "reldist.db").exists() or {row[0] for row in ledger_rows(root).values()} <= {"queued"}


def test_a_config_error_inside_the_send_loop_is_raised_not_waited_on(
    tmp_path: Path, smtpd: SmtpServer
) -> None:
    """deliver() itself: the first connection meets the missing password; the run must end."""
    from reldist.engine import SendResult, deliver
    from reldist.errors import ConfigError
    from reldist.ratelimit import RateLimiter

    root = office(
        tmp_path,
        smtpd.port,
        recipients=4,
        username="press@ecomuseum.example",
        password_env="RELDIST_NOT_SET_PW",
    )
    ws = open_workspace(start=root)
    release = load_release(root / RELEASE, workspace=root)
    assert ws.config.smtp is not None
    with ws.open_ledger() as ledger:
        job = Job(ws, release, ledger=ledger)
        ledger.plan(release.id, job.planner.entries())
        ids = ledger.pending_ids(release.id, ["queued"])
        result = SendResult(release.id, "smtp")

        async def run() -> None:
            await asyncio.wait_for(
                deliver(
                    iter(ledger.fetch(ids)),
                    make=job.outgoing,
                    ledger=ledger,
                    transport=SmtpTransport(ws.config.smtp, environ={}),
                    limiter=RateLimiter(()),
                    retry=ws.config.retry,
                    sleep=asyncio.sleep,
                    result=result,
                ),
                timeout=20,
            )

        with pytest.raises(ConfigError, match="RELDIST_NOT_SET_PW is not set"):
            asyncio.run(run())
        assert ledger.counts(release.id)["sent"] == 0
