"""How times, durations and counts read in reldist's messages and logs (English, for people).

Owns :func:`describe_time` (``2026-11-28 10:00 (UTC+5)``), :func:`describe_duration`
(``3 h 5 min``), :func:`utc_offset` and :func:`recipients_were`. Pure functions; no imports from
reldist.
"""

from __future__ import annotations

import datetime as dt

__all__ = ["describe_duration", "describe_time", "recipients_were", "utc_offset"]


def describe_time(when: dt.datetime, tz: dt.tzinfo) -> str:
    """``2026-11-28 10:00 (UTC+5)``, ``2026-10-25 02:30 CEST (UTC+2)`` in the zone ``tz``."""
    local = when.astimezone(tz)
    name = local.tzname() or ""
    label = f" {name}" if name[:1].isalpha() and name != "UTC" else ""
    return f"{local:%Y-%m-%d %H:%M}{label} ({utc_offset(local)})"


def describe_duration(span: dt.timedelta) -> str:
    """``2 d 3 h``, ``3 h 5 min``, ``4 min``, ``30 s`` (rounded down, the sign dropped)."""
    seconds = int(abs(span.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def utc_offset(when: dt.datetime) -> str:
    """``UTC+5``, ``UTC+5:30``, ``UTC-3``, ``UTC``."""
    offset = when.utcoffset() or dt.timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    if minutes == 0:
        return "UTC"
    sign = "+" if minutes > 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def count(n: int, singular: str, plural: str | None = None) -> str:
    """``1 recipient``, ``3 recipients``; ``count(1, "copy", "copies")``."""
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


def recipients_were(n: int) -> str:
    """``1 recipient was``, ``3 recipients were``."""
    return "1 recipient was" if n == 1 else f"{n} recipients were"
