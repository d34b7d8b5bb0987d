"""What an SMTP reply, or the loss of the connection, means for one message: a pure table.

=====================================================  ===========
what happened                                          status
=====================================================  ===========
2xx after the end of the message                       ``sent``
4xx at MAIL, RCPT or DATA (421 also drops the link)    ``deferred``
5xx at MAIL, RCPT or DATA                              ``failed``
any other reply before the final ``.``                ``deferred`` (no code; drops the link)
any other reply after the final ``.``                 ``unknown`` (no code; drops the link)
connection lost / timeout before the final ``.``       ``deferred`` (no code)
connection lost / timeout after the final ``.``        ``unknown`` (it may have been delivered)
=====================================================  ===========

No I/O and no aiosmtplib: ``smtp`` turns exceptions into the words passed to :func:`lost` and
scrubs the secret from every text before it is shown.
"""

from __future__ import annotations

from typing import NamedTuple

from ..envelope import Outcome

__all__ = ["Verdict", "lost", "replied"]


class Verdict(NamedTuple):
    """The outcome of one message, and whether the session can carry another one."""

    outcome: Outcome
    drop: bool  # the session must be closed: 421, or a reply out of step


def replied(code: int, text: str, *, after_body: bool) -> Verdict:
    """The verdict on a reply to MAIL, RCPT or DATA (``after_body=False``) or to the end of
    the message (``after_body=True``)."""
    if 200 <= code < 300 and after_body:
        return Verdict(Outcome("sent", code, text), False)
    # 421: the server is closing the channel. A reply that is no 4xx or 5xx here leaves the
    # session out of step; neither can carry another message.
    drop = code == 421 or not 400 <= code < 600
    if 400 <= code < 500:
        return Verdict(Outcome("deferred", code, text), drop)
    if 500 <= code < 600:
        return Verdict(Outcome("failed", code, text), drop)
    if after_body:
        text = f"unexpected reply after the message was sent: {code} {text}"
        return Verdict(Outcome("unknown", None, text), drop)
    return Verdict(
        Outcome("deferred", None, f"unexpected reply before the message was sent: {code} {text}"), drop
    )


def lost(what: str, *, after_body: bool) -> Outcome:
    """The outcome when the connection broke or timed out (``what`` says how): before the final
    ``.`` the message did not leave; after it, it may have been delivered."""
    if after_body:
        return Outcome("unknown", None, f"{what} after the message was sent; it may have been delivered")
    return Outcome("deferred", None, f"{what} before the message was sent")
