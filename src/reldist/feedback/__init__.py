"""What comes back from journalists: unsubscribes, bounces, complaints, replies.

``store`` keeps them in the ledger (events beside the deliveries, suppressions with their
source); ``classify`` tells what an incoming message is; ``inbox`` reads a mailbox (IMAP,
Maildir, mbox) and records what it finds. ``reldist serve`` (``reldist.serve``) records the
clicks on unsubscribe links through :func:`unsubscribe`.
"""

from __future__ import annotations

from ..ledger import Row
from .store import Feedback

__all__ = ["unsubscribe"]


def unsubscribe(
    feedback: Feedback, row: Row, *, source: str, incoming: str | None = None, detail: str = ""
) -> bool:
    """Suppress ``row``'s recipient and record the ``unsubscribed`` event, in one transaction.

    Returns False when it was recorded before (a repeated click, a mail read twice): nothing changes.
    """
    with feedback.transaction():
        if incoming is None and feedback.has(row, "unsubscribed"):
            feedback.suppress(row.address, reason=f"unsubscribed ({row.release_id})", source=source)
            return False
        added = feedback.record(row, "unsubscribed", source=source, incoming=incoming, detail=detail)
        if added:
            feedback.suppress(row.address, reason=f"unsubscribed ({row.release_id})", source=source)
    return added
