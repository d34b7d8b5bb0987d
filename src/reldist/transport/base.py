"""What every transport takes and returns.

A transport gets an :class:`Envelope` plus the message bytes and answers with an :class:`Outcome`;
it knows nothing of releases, contacts or the ledger. The send engine (``reldist.send``) owns the
loop, the ledger and the retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Status = Literal["sent", "deferred", "failed", "unknown"]


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


class Connection(Protocol):
    """One open channel to the destination; sends messages one after another."""

    async def send(self, message: Outgoing) -> Outcome: ...

    async def close(self) -> None: ...


class Transport(Protocol):
    """A factory of connections. ``connections`` is how many the engine may open at once."""

    name: str
    connections: int

    async def connect(self) -> Connection:
        """Open one connection; raises :class:`reldist.errors.TransportError` if impossible."""
        ...
