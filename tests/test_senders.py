"""Several senders on one real PostgreSQL ledger: one plan, disjoint claims, recovery only of a
dead sender's rows, a rate limit held across senders, suppressions seen at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from reldist import senders
from reldist.envelope import Outcome
from reldist.ledger import ClaimError, Ledger, PlanEntry, SuppressedError
from reldist.settings import parse_rate


def entries(n: int) -> Iterator[PlanEntry]:
    for i in range(n):
        address = f"j{i}@example.org"
        yield PlanEntry(address_key=address, address=address, status="queued", contact="{}")


@pytest.fixture
def pair(pg_url: str) -> Iterator[tuple[Ledger, Ledger]]:
    a, b = Ledger.open(pg_url), Ledger.open(pg_url)
    yield a, b
    for ledger in (a, b):
        if not ledger.db.conn.closed:
            ledger.close()


def test_the_release_is_planned_once_and_claims_never_overlap(pair: tuple[Ledger, Ledger]) -> None:
    a, b = pair
    senders.join(a, "r1", "send")
    senders.join(b, "r1", "send")
    number = a.plan("r1", entries(10))
    seen = []
    assert b.plan("r1", (seen.append(e) or e for e in entries(12))) == number  # joined, not planned again
    assert len(seen) == 12  # the joiner's preflight still read every entry
    assert sum(a.counts("r1").values()) == 10
    claimed_a = senders.claim(a, "r1", ["queued"], plan=number, count=4)
    claimed_b = senders.claim(b, "r1", ["queued"], plan=number, count=4)
    rest = senders.claim(a, "r1", ["queued"], plan=number, count=10)
    ids = [r.id for r in claimed_a + claimed_b + rest]
    assert len(ids) == 10 == len(set(ids))
    assert [r.id for r in claimed_a] == sorted(r.id for r in claimed_a)
    # a row claimed by a may not be marked by b
    with pytest.raises(ClaimError):
        b.mark_sending(claimed_a[0].id, "<x@y>")
    b.mark_sending(claimed_b[0].id, "<x@y>")


def test_a_sender_alone_plans_again_after_the_others_are_gone(pair: tuple[Ledger, Ledger]) -> None:
    a, b = pair
    senders.join(a, "r1", "send")
    first = a.plan("r1", entries(3))
    senders.leave(a)
    senders.join(b, "r1", "send")
    assert b.plan("r1", entries(4)) == first + 1
    assert sum(b.counts("r1").values()) == 4


def test_only_a_dead_senders_rows_become_unknown(pair: tuple[Ledger, Ledger]) -> None:
    a, b = pair
    senders.join(a, "r1", "send")
    senders.join(b, "r1", "send")
    number = a.plan("r1", entries(6))
    mine = senders.claim(a, "r1", ["queued"], plan=number, count=3)
    a.mark_sending(mine[0].id, "<m0@x>")
    a.mark_sending(mine[1].id, "<m1@x>")
    a.record(mine[1].id, Outcome("sent", 250, "ok"))
    assert b.recover_interrupted("r1") == 0  # a is alive, however slow
    assert b.get(mine[0].id).status == "sending"
    dead = a.sender
    a.db.conn.close()  # a dies: its session lock goes with it, as soon as the server notices
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (dead,) in b.db.execute(senders.LIVE).fetchall():
        time.sleep(0.01)
    assert b.recover_interrupted("r1") == 1
    assert b.get(mine[0].id).status == "unknown"
    assert b.get(mine[1].id).status == "sent"
    # a's unsent claim is back in the pool: b can claim it and the other three
    claimed = senders.claim(b, "r1", ["queued"], plan=number, count=10)
    assert {r.id for r in claimed} == {r.id for r in b.rows("r1") if r.status == "queued"}
    assert len(claimed) == 4


def test_leave_hands_back_unfinished_claims(pair: tuple[Ledger, Ledger]) -> None:
    a, b = pair
    senders.join(a, "r1", "send")
    number = a.plan("r1", entries(3))
    assert len(senders.claim(a, "r1", ["queued"], plan=number, count=3)) == 3
    senders.leave(a)
    senders.join(b, "r1", "send")
    assert len(senders.claim(b, "r1", ["queued"], plan=number, count=3)) == 3


def test_a_suppression_made_elsewhere_stops_the_message_at_once(pair: tuple[Ledger, Ledger]) -> None:
    a, b = pair
    senders.join(a, "r1", "send")
    number = a.plan("r1", entries(2))
    first, second = senders.claim(a, "r1", ["queued"], plan=number, count=2)
    b.suppress("J1@example.org", reason="asked on the phone")  # another machine, after the plan
    a.mark_sending(first.id, "<m0@x>")
    with pytest.raises(SuppressedError) as caught:
        a.mark_sending(second.id, "<m1@x>")
    assert caught.value.reason == "asked on the phone"
    row = b.get(second.id)
    assert (row.status, row.reason, row.attempts) == ("suppressed", "asked on the phone", 0)


def test_the_rate_limit_holds_across_senders(pair: tuple[Ledger, Ledger]) -> None:
    rate = parse_rate("3/0.4s")
    limiters = [
        senders.SharedRateLimiter([rate], senders.rate_connection(ledger), sleep=asyncio.sleep)
        for ledger in pair
    ]

    async def grant(limiter: senders.SharedRateLimiter, n: int) -> None:
        for _ in range(n):
            await limiter.acquire()

    async def both() -> None:
        await asyncio.gather(grant(limiters[0], 5), grant(limiters[1], 5))

    asyncio.run(both())
    times = sorted(r[0] for r in pair[0].db.execute("SELECT at FROM sends"))
    assert len(times) == 10
    for i, start in enumerate(times):
        assert sum(1 for t in times[i:] if t <= start + rate.period) <= rate.count
        if i:
            assert times[i] - times[i - 1] >= rate.spacing - 1e-6  # paced evenly too
