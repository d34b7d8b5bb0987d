"""What one message is on its way out, and what became of it: plain data every stage shares.

``message`` builds an :class:`Envelope`, the engine wraps the bytes in an :class:`Outgoing`, a
transport answers with an :class:`Outcome`, and the ledger records it. This module imports nothing
from reldist, so that composing and recording do not depend on the delivery rooms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Envelope", "Outcome", "Outgoing", "Status"]

#: A transport's verdicts, and ``suppressed``: held back just before leaving (several senders).
Status = Literal["sent", "deferred", "failed", "unknown", "suppressed"]


@dataclass(frozen=True, slots=True)
class Envelope:
    """SMTP envelope of one message: the bounce address and the single recipient."""

    sender: str
    recipient: str
    #: True when an address cannot be put in ASCII form (needs SMTPUTF8).
    needs_smtputf8: bool = False


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One built message ready to leave."""

    seq: int  # the recipient's number in this release (ledger row id)
    address: str  # normalised recipient address, for file names and logs
    envelope: Envelope
    data: bytes  # RFC 5322 message, CRLF line ends
    message_id: str = ""  # as in the Message-ID header, for the ledger
    #: True when ``data`` is known to be in SMTP form already: CRLF line ends only, a final CRLF,
    #: no line starting with a dot (MessageBuilder's messages are). Saves two passes over it.
    canonical: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one message: the status and the server's words."""

    status: Status
    code: int | None = None
    reply: str = ""
