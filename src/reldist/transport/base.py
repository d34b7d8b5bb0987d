"""What every transport takes and returns.

A transport gets an :class:`Envelope` plus the message bytes and answers with an :class:`Outcome`;
it knows nothing of releases, contacts or the ledger. The send engine (``reldist.send``) owns the
loop, the ledger and the retries.
"""

from __future__ import annotations

from typing import Protocol

from ..envelope import Envelope, Outcome, Outgoing, Status

__all__ = ["Connection", "Envelope", "Outcome", "Outgoing", "Status", "Transport"]


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

    def describe(self) -> str:
        """Where messages go, for people: ``outbox/<release>/`` or ``host:587 (STARTTLS, as …)``."""
        ...
