"""Rate limits: parsing, and the sliding-window and pacing guarantees under a fake clock."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reldist.ratelimit import (
    HOLD_AFTER,
    PACING_LIMIT,
    Hold,
    Rate,
    RateHeld,
    RateLimiter,
    next_step,
    parse_rate,
)

INF = math.inf


class FakeClock:
    """A clock whose sleep advances it at once (plus an optional overshoot per sleep)."""

    def __init__(self, now: float = 0.0, overshoot: Iterable[float] = ()) -> None:
        self.now = now
        self.sleeps: list[float] = []
        self._overshoot = iter(overshoot)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        assert seconds > 0, "the limiter must not sleep for nothing"
        self.sleeps.append(seconds)
        self.now += seconds + next(self._overshoot, 0.0)
        await asyncio.sleep(0)  # let other workers run, as a real sleep would


def acquire_times(limiter: RateLimiter, clock: FakeClock, n: int) -> list[float]:
    async def main() -> list[float]:
        times = []
        for _ in range(n):
            await limiter.acquire()
            times.append(clock())
        return times

    return asyncio.run(main())


def window_violations(
    grants: Sequence[float], rates: Sequence[Rate], history: Sequence[float] = ()
) -> list[str]:
    """Windows of length `period` holding more than `count` grants (history included).

    A window that holds too many has a latest grant g; all its grants then lie in
    [g - period, g]. History alone may break a limit, so only windows ending at a new grant
    are the limiter's business.
    """
    everything = sorted([*history, *grants])
    problems = []
    for rate in rates:
        for g in grants:
            inside = [x for x in everything if x <= g and g <= x + rate.period]
            if len(inside) > rate.count:
                problems.append(f"{rate.text}: {len(inside)} grants in [{g - rate.period}, {g}]")
    return problems


def pacing_violations(
    grants: Sequence[float], rates: Sequence[Rate], history: Sequence[float] = ()
) -> list[str]:
    everything = sorted([*history, *grants])
    problems = []
    for rate in rates:
        if not rate.paced:
            continue
        for g in grants:
            before = [x for x in everything if x < g]
            if everything.count(g) > 1 or (before and g < before[-1] + rate.spacing):
                problems.append(f"{rate.text}: grant at {g} follows {before[-1:]} too closely")
    return problems


# -- parse_rate --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "count", "period"),
    [
        ("30/minute", 30, 60.0),
        ("2/second", 2, 1.0),
        ("500/hour", 500, 3600.0),
        ("2000/day", 2000, 86400.0),
        ("10/5minutes", 10, 300.0),
        ("10/5 minutes", 10, 300.0),
        ("1/2.5s", 1, 2.5),
        ("30 / min", 30, 60.0),
        ("30/MIN", 30, 60.0),
        ("30 per minute", 30, 60.0),
        ("100/hours", 100, 3600.0),
        ("7/h", 7, 3600.0),
        ("3/sec", 3, 1.0),
        ("5/d", 5, 86400.0),
        ("14/days", 14, 86400.0),
        (" 30/minute ", 30, 60.0),
    ],
)
def test_parse_rate(text: str, count: int, period: float) -> None:
    assert parse_rate(text) == Rate(count, period, text.strip())


@pytest.mark.parametrize(
    "text",
    [
        "",
        "30",
        "minute",
        "/minute",
        "0/minute",
        "-1/minute",
        "1.5/minute",
        "thirty/minute",
        "30/fortnight",
        "30/m",
        "30/0minutes",
        "30/minute/2",
        "30/-5minutes",
    ],
)
def test_parse_rate_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=repr(text).replace("\\", "\\\\").replace(".", r"\.")):
        parse_rate(text)


def test_rate_itself_checks_its_numbers() -> None:
    with pytest.raises(ValueError):
        Rate(0, 60.0, "0/minute")
    with pytest.raises(ValueError):
        Rate(1, 0.0, "1/0s")
    assert Rate(30, 60.0, "30/minute").spacing == 2.0
    assert Rate(1, PACING_LIMIT, "1/hour").paced
    assert not Rate(1, PACING_LIMIT + 1, "x").paced


# -- the limiter, by example -------------------------------------------------------------------


def test_short_periods_are_paced_evenly() -> None:
    clock = FakeClock(1000.0)
    limiter = RateLimiter([parse_rate("30/minute")], clock=clock, sleep=clock.sleep)
    assert acquire_times(limiter, clock, 5) == [1000.0, 1002.0, 1004.0, 1006.0, 1008.0]
    assert clock.sleeps == [2.0, 2.0, 2.0, 2.0]


def test_a_closed_window_never_holds_one_too_many() -> None:
    # 2/second: grants at 0 and 0.5; a third at exactly 1.0 would put three in [0, 1].
    clock = FakeClock(0.0)
    rate = parse_rate("2/second")
    limiter = RateLimiter([rate], clock=clock, sleep=clock.sleep)
    grants = acquire_times(limiter, clock, 6)
    assert grants[:2] == [0.0, 0.5]
    assert grants[2] == math.nextafter(1.0, INF)
    assert window_violations(grants, [rate]) == []
    assert pacing_violations(grants, [rate]) == []


def test_long_periods_only_count() -> None:
    clock = FakeClock(0.0)
    rate = parse_rate("3/day")
    limiter = RateLimiter([rate], clock=clock, sleep=clock.sleep, hold_after=None)
    grants = acquire_times(limiter, clock, 4)
    assert grants == [0.0, 0.0, 0.0, math.nextafter(86400.0, INF)]


def test_both_rules_together() -> None:
    clock = FakeClock(0.0)
    rates = [parse_rate("30/minute"), parse_rate("40/2hours")]  # the second is not paced
    limiter = RateLimiter(rates, clock=clock, sleep=clock.sleep, hold_after=None)
    grants = acquire_times(limiter, clock, 42)
    assert grants[:30] == [2.0 * i for i in range(30)]
    assert grants[30] == math.nextafter(60.0, INF)  # 31 in [0, 60] would be one too many
    assert grants[40] == math.nextafter(7200.0, INF)
    assert grants[41] == grants[40] + 2.0
    assert window_violations(grants, rates) == []


def test_history_from_earlier_runs_counts() -> None:
    # Three sent a few hours ago under 3/day: the next must wait for the first to age out.
    clock = FakeClock(50_000.0)
    limiter = RateLimiter(
        [parse_rate("3/day")], clock=clock, sleep=clock.sleep, history=[300.0, 100.0, 200.0], hold_after=None
    )
    assert limiter.next_free() == math.nextafter(86_500.0, INF)
    assert acquire_times(limiter, clock, 1) == [math.nextafter(86_500.0, INF)]


def test_history_older_than_the_period_does_not_count() -> None:
    clock = FakeClock(100_000.0)
    limiter = RateLimiter([parse_rate("2/day")], clock=clock, sleep=clock.sleep, history=[1.0, 2.0, 3.0])
    assert acquire_times(limiter, clock, 2) == [100_000.0, 100_000.0]


def test_history_paces_the_first_message() -> None:
    clock = FakeClock(1000.0)
    limiter = RateLimiter([parse_rate("30/minute")], clock=clock, sleep=clock.sleep, history=[999.5])
    assert acquire_times(limiter, clock, 2) == [1001.5, 1003.5]


def test_next_free() -> None:
    clock = FakeClock(10.0)
    limiter = RateLimiter([parse_rate("1/5s")], clock=clock, sleep=clock.sleep)
    assert limiter.next_free() == 10.0
    acquire_times(limiter, clock, 1)
    assert limiter.next_free() == math.nextafter(15.0, INF)
    clock.now = 20.0
    assert limiter.next_free() == 20.0


def test_no_rates_never_wait() -> None:
    clock = FakeClock(5.0)
    limiter = RateLimiter([], clock=clock, sleep=clock.sleep)
    assert acquire_times(limiter, clock, 3) == [5.0, 5.0, 5.0]
    assert clock.sleeps == []


def test_a_clock_that_overshoots_is_harmless() -> None:
    clock = FakeClock(0.0, overshoot=[0.7, 0.0, 3.0, 0.1] * 10)
    rate = parse_rate("3/2s")
    limiter = RateLimiter([rate], clock=clock, sleep=clock.sleep)
    grants = acquire_times(limiter, clock, 12)
    assert window_violations(grants, [rate]) == []
    assert pacing_violations(grants, [rate]) == []


def test_concurrent_workers_get_ordered_grants() -> None:
    clock = FakeClock(0.0)
    rate = parse_rate("4/second")
    limiter = RateLimiter([rate], clock=clock, sleep=clock.sleep)
    grants: list[tuple[float, int]] = []

    async def worker(number: int) -> None:
        for _ in range(3):
            await limiter.acquire()
            grants.append((clock(), number))

    async def main() -> None:
        await asyncio.gather(*(worker(n) for n in range(5)))

    asyncio.run(main())
    times = [t for t, _ in grants]
    assert times == sorted(times)
    assert len(times) == 15
    assert times[:4] == [0.0, 0.25, 0.5, 0.75]
    assert window_violations(times, [rate]) == []
    # The lock hands grants out in arrival order: once all are queued, nobody jumps the queue
    # (worker 0 gets a second grant before the others have even asked).
    assert [n for _, n in grants[:6]] == [0, 0, 1, 2, 3, 4]


def test_cancelled_acquire_records_nothing() -> None:
    clock = FakeClock(0.0)
    limiter = RateLimiter([parse_rate("1/minute")], clock=clock, sleep=clock.sleep)

    async def main() -> None:
        await limiter.acquire()

        async def blocked_sleep(seconds: float) -> None:
            await asyncio.Event().wait()

        limiter._sleep = blocked_sleep
        task = asyncio.create_task(limiter.acquire())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    # One grant recorded; with a count of 1 the window rule makes the next strictly later.
    assert limiter.next_free() == math.nextafter(60.0, INF)


def test_real_clock_smoke() -> None:
    limiter = RateLimiter([parse_rate("20/second")])
    started = time.monotonic()
    asyncio.run(_acquire_n(limiter, 3))
    assert time.monotonic() - started >= 0.095


async def _acquire_n(limiter: RateLimiter, n: int) -> None:
    for _ in range(n):
        await limiter.acquire()


# -- the guarantees, for any rates, workers and clock behaviour ---------------------------------

periods = st.one_of(
    st.sampled_from([0.5, 1.0, 2.5, 60.0, 300.0, 3600.0, 3600.5, 86400.0]),
    st.floats(min_value=0.01, max_value=200_000.0, allow_nan=False, allow_infinity=False),
)
rates_strategy = st.lists(
    st.builds(lambda c, p: Rate(c, p, f"{c}/{p}s"), st.integers(1, 8), periods),
    min_size=1,
    max_size=3,
)
starts = st.sampled_from([0.0, 12.5, 1_700_000_000.25])


@settings(max_examples=150, deadline=None)
@given(
    rates=rates_strategy,
    start=starts,
    workers=st.integers(1, 6),
    per_worker=st.integers(1, 8),
    overshoot=st.lists(st.floats(0.0, 50.0), max_size=20),
    jumps=st.lists(st.floats(0.0, 100.0), max_size=20),
    history_ages=st.lists(st.floats(0.0, 100_000.0), max_size=12),
)
def test_no_window_ever_exceeds_its_count(
    rates: list[Rate],
    start: float,
    workers: int,
    per_worker: int,
    overshoot: list[float],
    jumps: list[float],
    history_ages: list[float],
) -> None:
    clock = FakeClock(start, overshoot=overshoot)
    history = [start - age for age in history_ages]
    limiter = RateLimiter(rates, clock=clock, sleep=clock.sleep, history=history, hold_after=None)
    grants: list[float] = []
    jump = iter(jumps)

    async def worker() -> None:
        for _ in range(per_worker):
            clock.now += next(jump, 0.0)  # time spent sending, seen by everyone
            await limiter.acquire()
            grants.append(clock())
            await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(*(worker() for _ in range(workers)))

    asyncio.run(main())
    assert len(grants) == workers * per_worker
    assert grants == sorted(grants)
    assert window_violations(grants, rates, history) == []
    assert pacing_violations(grants, rates, history) == []


@settings(max_examples=100, deadline=None)
@given(
    rates=rates_strategy,
    start=starts,
    workers=st.integers(1, 4),
    per_worker=st.integers(1, 8),
)
def test_the_limiter_never_waits_longer_than_a_rule_demands(
    rates: list[Rate], start: float, workers: int, per_worker: int
) -> None:
    clock = FakeClock(start)
    limiter = RateLimiter(rates, clock=clock, sleep=clock.sleep, hold_after=None)
    grants: list[float] = []

    async def worker() -> None:
        for _ in range(per_worker):
            await limiter.acquire()
            grants.append(clock())

    async def main() -> None:
        await asyncio.gather(*(worker() for _ in range(workers)))

    asyncio.run(main())
    for i, g in enumerate(grants):
        # Each grant is immediate (the start, or as soon as the one before released the lock)
        # or lands on the bound of some rule.
        bounds = {start, *(grants[i - 1 : i])}
        for rate in rates:
            if i >= rate.count:
                bounds.add(math.nextafter(grants[i - rate.count] + rate.period, INF))
            if rate.paced and i:
                bounds.add(grants[i - 1] + rate.spacing)
        assert any(math.isclose(g, b, rel_tol=1e-12, abs_tol=1e-12) for b in bounds), (g, bounds)


# -- a daily cap that is used up stops the run instead of sleeping -----------------------------

DAY = 86400.0
DAILY = parse_rate("3/day")
M365 = parse_rate("30/minute")
HOURLY = parse_rate("2/hour")  # an hour is still paced: its waits are slept


@pytest.mark.parametrize(
    ("rates", "log", "now", "expected"),
    [
        # nothing sent yet, or room left in the window: start now
        ([DAILY], [], 0.0, 0.0),
        ([DAILY], [0.0, 10.0], 20.0, 0.0),
        # the cap is used up and frees in an hour: stop, saying until when and which rate
        ([DAILY], [3600.0, 3601.0, 3602.0], DAY, Hold(math.nextafter(DAY + 3600.0, INF), DAILY)),
        # ... and in a minute or less: sleep it (the cap frees at yesterday's pace)
        ([DAILY], [0.0, 1.0, 2.0], DAY - 30.0, math.nextafter(DAY, INF) - (DAY - 30.0)),
        (
            [DAILY],
            [0.0, 1.0, 2.0],
            DAY - HOLD_AFTER + 1.0,
            math.nextafter(DAY, INF) - (DAY - HOLD_AFTER + 1.0),
        ),
        # one second over the bound: stop
        ([DAILY], [0.0, 1.0, 2.0], DAY - HOLD_AFTER - 1.0, Hold(math.nextafter(DAY, INF), DAILY)),
        # paced rates are slept however long their spacing: 2/hour waits 30 minutes
        ([HOURLY], [0.0], 1.0, 1799.0),
        ([HOURLY], [0.0, 1800.0], 1800.0, 1800.0),
        # both: the pacing is slept while the daily cap has room; then the cap stops the run
        ([M365, DAILY], [0.0], 1.0, 1.0),
        ([M365, DAILY], [0.0, 2.0, 4.0], 5.0, Hold(math.nextafter(DAY, INF), DAILY)),
        # two days: the window reaches back two days
        (
            [parse_rate("3/2days")],
            [0.0, 1.0, 2.0],
            DAY,
            Hold(math.nextafter(2 * DAY, INF), parse_rate("3/2days")),
        ),
    ],
)
def test_next_step_decides_start_sleep_or_hold(
    rates: list[Rate], log: list[float], now: float, expected: float | Hold
) -> None:
    step = next_step(rates, log, now)
    if isinstance(expected, Hold):
        assert step == expected
    else:  # a wait to sleep: to the rule's bound, give or take the float step past a window
        assert not isinstance(step, Hold) and step == pytest.approx(expected, abs=1e-9)


def test_next_step_never_holds_when_told_to_sleep() -> None:
    assert next_step([DAILY], [3600.0, 3601.0, 3602.0], DAY, hold_after=None) == pytest.approx(3600.0)


def test_a_held_acquire_sleeps_for_nothing_and_records_nothing() -> None:
    clock = FakeClock(DAY)
    limiter = RateLimiter([DAILY], clock=clock, sleep=clock.sleep, history=[7200.0, 7300.0, 7400.0])

    async def main() -> Hold:
        with pytest.raises(RateHeld) as raised:
            await limiter.acquire()
        return raised.value.hold

    hold = asyncio.run(main())
    assert hold == Hold(math.nextafter(DAY + 7200.0, INF), DAILY)
    assert clock.sleeps == []
    assert limiter.next_free() == hold.until  # no grant was recorded
    clock.now = hold.until
    assert acquire_times(limiter, clock, 1) == [hold.until]


@settings(max_examples=150, deadline=None)
@given(rates=rates_strategy, start=starts, history_ages=st.lists(st.floats(0.0, 250_000.0), max_size=12))
def test_a_hold_comes_exactly_when_sleeping_would_be_long(
    rates: list[Rate], start: float, history_ages: list[float]
) -> None:
    history = sorted(start - age for age in history_ages)
    held, sleeping = FakeClock(start), FakeClock(start)
    holding = RateLimiter(rates, clock=held, sleep=held.sleep, history=history)
    patient = RateLimiter(rates, clock=sleeping, sleep=sleeping.sleep, history=history, hold_after=None)
    grant = acquire_times(patient, sleeping, 1)[0]

    async def main() -> Hold | None:
        try:
            await holding.acquire()
        except RateHeld as exc:
            return exc.hold
        return None

    hold = asyncio.run(main())
    if hold is None:  # granted: at the same moment, having slept only waits a run may sleep
        assert held() == grant
        assert all(
            wait <= HOLD_AFTER or any(r.paced and wait <= r.period + 1e-6 for r in rates)
            for wait in held.sleeps
        )
    else:  # held: until the moment the patient limiter granted, by a rate over an hour
        assert hold.until == grant and not hold.rate.paced and hold.rate in rates
        assert hold.until - held() > HOLD_AFTER
