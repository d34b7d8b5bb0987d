"""Pacing that must survive restarts and retries, with a fake clock and sleep, a real aiosmtpd
server and a real ledger: a rate's history reaches back its whole period across two runs, a
deferred message waits backoff, 2*backoff, 4*backoff, test copies are paced too, and a secret
never shows in a repr."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reldist.engine import SendResult
from reldist.job import Job
from reldist.ledger import Ledger
from reldist.proofs import send_test
from reldist.release import load_release
from reldist.send import send_release
from reldist.transport.secrets import Credentials, Secret
from reldist.workspace import open_workspace
from smtpfixtures import SmtpServer
from test_send_smtp import RELEASE, office

HOUR = 3600.0


class FakeTime:
    """A clock that only moves when slept on, starting ``offset`` seconds from the real now."""

    def __init__(self, offset: float = 0.0) -> None:
        self.now = time.time() + offset
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.slept.append(seconds)
            self.now += seconds
        await asyncio.sleep(0)


def run_send(
    root: Path, fake: FakeTime, *, limit: int, ledger_clock: Callable[[], dt.datetime]
) -> SendResult:
    ws = open_workspace(start=root)
    with Ledger.open(root / "reldist.db", clock=ledger_clock) as ledger:
        job = Job(ws, load_release(root / RELEASE, workspace=root), ledger=ledger)
        return send_release(job, ledger, limit=limit, sleep=fake.sleep, clock=fake.clock)


@pytest.mark.parametrize(("rate", "hours_ago", "wait_hours"), [("3/day", 20, 4), ("3/2days", 36, 12)])
def test_a_rate_limit_holds_across_two_runs(
    tmp_path: Path, smtpd: SmtpServer, rate: str, hours_ago: float, wait_hours: float
) -> None:
    root = office(tmp_path, smtpd.port, recipients=5, connections=1, rate=rate)
    earlier = FakeTime(-hours_ago * HOUR)
    then = dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours_ago)
    assert run_send(root, earlier, limit=3, ledger_clock=lambda: then).outcomes["sent"] == 3
    assert earlier.slept == []  # three in a day (or two) are allowed at once

    later = FakeTime()
    held = run_send(root, later, limit=1, ledger_clock=lambda: dt.datetime.now(dt.UTC))
    # the fourth may start only when the first of the three is a whole period old: the run
    # stops instead of sleeping for hours, and says when
    assert held.outcomes["sent"] == 0 and later.slept == []
    assert held.held is not None and held.held.rate.text == rate
    assert held.held.until - later.now == pytest.approx(wait_hours * HOUR, abs=120)
    assert held.exit_code == 0 and held.counts["queued"] == 2
    assert len(smtpd.messages) == 3

    then_free = FakeTime(held.held.until - time.time())
    again = run_send(root, then_free, limit=1, ledger_clock=lambda: dt.datetime.now(dt.UTC))
    assert again.outcomes["sent"] == 1 and again.held is None and then_free.slept == []
    assert len(smtpd.messages) == 4


def test_a_deferred_message_waits_backoff_then_doubles(tmp_path: Path, smtpd: SmtpServer) -> None:
    smtpd.faults.rcpt["j0000@example.org"] = "451 4.7.1 greylisted, try later"
    root = office(tmp_path, smtpd.port, recipients=2, connections=1, retries=4, backoff=1.5)
    fake = FakeTime()
    ws = open_workspace(start=root)
    with Ledger.open(root / "reldist.db") as ledger:
        job = Job(ws, load_release(root / RELEASE, workspace=root), ledger=ledger)
        result = send_release(job, ledger, sleep=fake.sleep, clock=fake.clock)
    assert result.outcomes == {"sent": 1, "deferred": 1}
    assert fake.slept == [1.5, 3.0, 6.0]  # before the 2nd, 3rd and 4th attempt


def test_test_copies_go_through_the_rate_limiter(tmp_path: Path, smtpd: SmtpServer) -> None:
    root = office(tmp_path, smtpd.port, recipients=6, connections=1, rate="2/minute")
    fake = FakeTime()
    ws = open_workspace(start=root)
    with Ledger.open(root / "reldist.db") as ledger:
        job = Job(ws, load_release(root / RELEASE, workspace=root), ledger=ledger)
        proofs = send_test(job, ledger, "me@ecomuseum.example", sleep=fake.sleep, clock=fake.clock)
    assert len(proofs) == 3  # ru, en and kk first
    assert all(p.outcome.status == "sent" for p in proofs)
    # 2 a minute, paced evenly: one every 30 s
    assert fake.slept and sum(fake.slept) == pytest.approx(60.0, abs=1)
    assert len(smtpd.messages) == 3


def test_a_secret_never_shows_in_a_repr() -> None:
    secret = Secret("hunter2-Pa55")
    credentials = Credentials("plain", "press@ecomuseum.example", secret, "RELDIST_SMTP_PASSWORD")
    for shown in (repr(secret), str(secret), f"{secret}", repr(credentials), str([credentials])):
        assert "hunter2" not in shown, shown
    assert secret.value == "hunter2-Pa55"


@pytest.mark.parametrize("connections", [1, 2, 4])
def test_a_limited_run_waits_only_for_the_pacing_between_its_messages(
    tmp_path: Path, smtpd: SmtpServer, connections: int
) -> None:
    # 3 of 8 at 30/minute: two waits of 2 s between the three messages, none before the first
    # (no history) and none after the last: the run ends with its last message.
    root = office(tmp_path, smtpd.port, recipients=8, connections=connections, rate="30/minute")
    fake = FakeTime()
    result = run_send(root, fake, limit=3, ledger_clock=lambda: dt.datetime.now(dt.UTC))
    assert result.outcomes == {"sent": 3} and result.limited and result.exit_code == 0
    assert fake.slept == [2.0, 2.0]
    assert len(smtpd.messages) == 3
