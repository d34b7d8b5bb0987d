"""Sending rate limits (``30/minute``, ``2000/day``) as the receiving server counts them.

Owns parsing rate texts and :class:`RateLimiter`, which paces the start of each message. It does
not send anything or read the ledger: the engine passes in the times of messages sent by earlier
runs (``history``) so that a daily limit survives a restart.

The guarantee, for every configured :class:`Rate` of ``count`` per ``period``: no time window of
length ``period`` — closed, half-open or open — contains more than ``count`` grants, counting
``history`` too. Times are compared as the floats the clock returns: a grant at ``t`` and an
earlier one at ``e`` are in one window when ``t <= e + period``.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence

from .settings import PACING_LIMIT, Rate, parse_rate

__all__ = ["PACING_LIMIT", "Rate", "RateLimiter", "parse_rate"]


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
    survive restarts. ``clock`` and ``sleep`` are injectable; the limiter sleeps through ``sleep``
    only, re-reading the clock after each sleep, so a clock that jumps forward is harmless.
    Concurrent :meth:`acquire` calls are served one at a time, in order, under an asyncio lock.
    """

    def __init__(
        self,
        rates: Sequence[Rate],
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        history: Iterable[float] = (),
    ) -> None:
        self.rates = tuple(rates)
        self._clock = clock
        self._sleep = sleep
        # Only the last `keep` grants can ever constrain the next one.
        self._keep = max((rate.count for rate in self.rates), default=1)
        self._log: list[float] = sorted(history)[-self._keep :]
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        rates = ", ".join(rate.text for rate in self.rates) or "unlimited"
        return f"<RateLimiter {rates}>"

    def _earliest(self) -> float:
        """The first clock time the rules allow for the next grant (−inf when unconstrained)."""
        log = self._log
        earliest = -math.inf
        if not log:
            return earliest
        for rate in self.rates:
            if len(log) >= rate.count:
                # Strictly after: a window [e, e + period] must not hold count + 1 grants.
                earliest = max(earliest, math.nextafter(log[-rate.count] + rate.period, math.inf))
            if rate.paced:
                earliest = max(earliest, log[-1] + rate.spacing)
        return earliest

    def next_free(self) -> float:
        """The clock time at which the next :meth:`acquire` could proceed (now, if it can)."""
        return max(self._clock(), self._earliest())

    async def acquire(self) -> None:
        """Wait until one more message may start, then record its start."""
        if not self.rates:
            return  # no limits: nothing to wait for or remember
        async with self._lock:
            while True:
                now = self._clock()
                earliest = self._earliest()
                if now >= earliest:
                    break
                await self._sleep(earliest - now)
            bisect.insort(self._log, now)
            del self._log[: -self._keep]


def lookback(rates: Sequence[Rate]) -> float:
    """Seconds of sending history a limiter needs: the longest configured period (a rate such as
    ``100/2days`` must see two days back, or its limit would not survive a restart)."""
    return max((rate.period for rate in rates), default=0.0)
