"""Sending rate limits (``30/minute``, ``2000/day``) as the receiving server counts them.

Owns parsing rate texts and :class:`RateLimiter`, which paces the start of each message. It does
not send anything or read the ledger: the engine passes in the times of messages sent by earlier
runs (``history``) so that a daily limit survives a restart.

The guarantee, for every configured :class:`Rate` of ``count`` per ``period``: no time window of
length ``period`` — closed, half-open or open — contains more than ``count`` grants, counting
``history`` too. Times are compared as the floats the clock returns: a grant at ``t`` and an
earlier one at ``e`` are in one window when ``t <= e + period``.

A run never sleeps for hours: when a rate over an hour (:data:`PACING_LIMIT`; a daily cap such as
``2000/day``) is used up and the next message may not start for more than :data:`HOLD_AFTER`,
:class:`RateHeld` says until when, and the run stops taking new messages (the next run
continues). Shorter waits, and every wait of the evenly paced rates, are slept.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from .settings import PACING_LIMIT, Rate, parse_rate

__all__ = ["HOLD_AFTER", "PACING_LIMIT", "Hold", "Rate", "RateHeld", "RateLimiter", "next_step", "parse_rate"]

#: The longest wait a rate over an hour may impose before a run stops instead (seconds). A daily
#: cap frees its grants at the pace they were taken a day before, mostly seconds apart: those
#: waits are slept; a longer gap ends the run, and cron's next run (or the operator) continues.
HOLD_AFTER = 60.0


@dataclass(frozen=True, slots=True)
class Hold:
    """A rate over an hour is used up: no message may start before ``until`` (the limiter's clock)."""

    until: float
    rate: Rate


class RateHeld(Exception):
    """Raised by ``acquire`` instead of sleeping for more than :data:`HOLD_AFTER`."""

    def __init__(self, hold: Hold) -> None:
        super().__init__(f"the rate {hold.rate.text} allows the next message at {hold.until}")
        self.hold = hold


def _earliest(rates: Sequence[Rate], log: Sequence[float]) -> tuple[float, Rate | None]:
    """The first clock time the rules allow for the next grant (−inf when unconstrained), and
    the rate that sets it. ``log`` is the earlier grants, oldest first."""
    earliest, binding = -math.inf, None
    if not log:
        return earliest, binding
    for rate in rates:
        if len(log) >= rate.count:
            # Strictly after: a window [e, e + period] must not hold count + 1 grants.
            after = math.nextafter(log[-rate.count] + rate.period, math.inf)
            if after > earliest:
                earliest, binding = after, rate
        if rate.paced and log[-1] + rate.spacing > earliest:
            earliest, binding = log[-1] + rate.spacing, rate
    return earliest, binding


def next_step(
    rates: Sequence[Rate], log: Sequence[float], now: float, *, hold_after: float | None = HOLD_AFTER
) -> float | Hold:
    """What the next message must do at ``now``, given the earlier grants ``log`` (oldest first):
    ``0.0`` start now; a positive number, sleep that many seconds and ask again; a :class:`Hold`,
    stop the run (a rate over an hour would make it wait longer than ``hold_after``; ``None``:
    always sleep)."""
    earliest, rate = _earliest(rates, log)
    wait = earliest - now
    if wait <= 0:
        return 0.0
    if rate is not None and not rate.paced and hold_after is not None and wait > hold_after:
        return Hold(earliest, rate)
    return wait


class RateLimiter:
    """Grants starts of messages so that every configured rate holds.

    Two rules, per rate:

    * the sliding window: a grant must come strictly later than ``period`` after the
      ``count``-th grant before it, so no window of length ``period`` (closed ones included)
      ever holds more than ``count`` grants;
    * even pacing, for periods up to an hour (:data:`PACING_LIMIT`): a grant comes at least
      ``period / count`` after the one before, so ``30/minute`` means one message every two
      seconds, not thirty at the top of each minute. For longer periods only the window is
      enforced: pacing ``2000/day`` evenly would mean one message every 43 seconds, while the
      daily quota is what the provider actually counts.

    ``history`` holds the clock times of messages already sent (from the ledger), so limits
    survive restarts. A wait longer than ``hold_after`` that a rate over an hour imposes raises
    :class:`RateHeld` (``None``: sleep however long). ``clock`` and ``sleep`` are injectable; the
    limiter sleeps through ``sleep`` only, re-reading the clock after each sleep, so a clock that
    jumps forward is harmless.
    Concurrent :meth:`acquire` calls are served one at a time, in order, under an asyncio lock.
    """

    def __init__(
        self,
        rates: Sequence[Rate],
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        history: Iterable[float] = (),
        hold_after: float | None = HOLD_AFTER,
    ) -> None:
        self.rates = tuple(rates)
        self.hold_after = hold_after
        self._clock = clock
        self._sleep = sleep
        # Only the last `keep` grants can ever constrain the next one.
        self._keep = max((rate.count for rate in self.rates), default=1)
        self._log: list[float] = sorted(history)[-self._keep :]
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        rates = ", ".join(rate.text for rate in self.rates) or "unlimited"
        return f"<RateLimiter {rates}>"

    def next_free(self) -> float:
        """The clock time at which the next :meth:`acquire` could proceed (now, if it can)."""
        return max(self._clock(), _earliest(self.rates, self._log)[0])

    async def acquire(self) -> None:
        """Wait until one more message may start, then record its start. Raises
        :class:`RateHeld` instead of a wait longer than ``hold_after`` for a rate over an hour."""
        if not self.rates:
            return  # no limits: nothing to wait for or remember
        async with self._lock:
            while True:
                now = self._clock()
                step = next_step(self.rates, self._log, now, hold_after=self.hold_after)
                if isinstance(step, Hold):
                    raise RateHeld(step)
                if step <= 0:
                    break
                await self._sleep(step)
            bisect.insort(self._log, now)
            del self._log[: -self._keep]


def lookback(rates: Sequence[Rate]) -> float:
    """Seconds of sending history a limiter needs: the longest configured period (a rate such as
    ``100/2days`` must see two days back, or its limit would not survive a restart)."""
    return max((rate.period for rate in rates), default=0.0)
