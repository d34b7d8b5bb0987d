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
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

__all__ = ["PACING_LIMIT", "Rate", "RateLimiter", "parse_rate"]

#: Rates whose period is at most this long (seconds) are also paced evenly.
PACING_LIMIT = 3600.0

_UNITS: dict[str, float] = {}
for _names, _seconds in (
    (("s", "sec", "secs", "second", "seconds"), 1.0),
    (("min", "mins", "minute", "minutes"), 60.0),
    (("h", "hr", "hrs", "hour", "hours"), 3600.0),
    (("d", "day", "days"), 86400.0),
):
    for _name in _names:
        _UNITS[_name] = _seconds

_RATE = re.compile(
    r"""^\s*(?P<count>\d+)\s*(?:/|\bper\b)\s*
        (?P<number>\d+(?:\.\d+)?)?\s*
        (?P<unit>[a-z]+)\s*$""",
    re.IGNORECASE | re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``count`` messages in any ``period`` seconds; ``text`` is how the user wrote it."""

    count: int
    period: float  # seconds
    text: str

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"{self.text!r}: the count must be at least 1")
        if not (self.period > 0 and math.isfinite(self.period)):
            raise ValueError(f"{self.text!r}: the period must be a positive number of seconds")

    @property
    def spacing(self) -> float:
        """The even spacing of sends, ``period / count``."""
        return self.period / self.count

    @property
    def paced(self) -> bool:
        """True when sends are spread evenly, not only counted (periods up to an hour)."""
        return self.period <= PACING_LIMIT


def parse_rate(text: str) -> Rate:
    """``"30/minute"`` → ``Rate(30, 60.0, "30/minute")``.

    Accepted: ``COUNT/UNIT`` or ``COUNT/NUMBER UNIT`` (``10/5minutes``, ``1/2.5 s``), ``per``
    instead of ``/``; units second, minute, hour, day, singular or plural, and the abbreviations
    s, sec, min, h, hr, d. Raises ValueError naming the text otherwise.
    """
    match = _RATE.match(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not a rate; write it as COUNT/UNIT, e.g. '30/minute', '2000/day' or '10/5minutes'"
        )
    unit = match["unit"].lower()
    if unit not in _UNITS:
        raise ValueError(
            f"{text!r}: unknown time unit {match['unit']!r}; use second, minute, hour or day "
            "(or s, min, h, d)"
        )
    count = int(match["count"])
    number = float(match["number"]) if match["number"] else 1.0
    if count < 1:
        raise ValueError(f"{text!r}: the count must be at least 1")
    if number <= 0:
        raise ValueError(f"{text!r}: the period must be longer than zero")
    return Rate(count, number * _UNITS[unit], text.strip())


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
