"""Which transport a workspace sends through: SMTP when ``reldist.toml`` has ``[smtp]``, else the outbox.

Owns choosing and preparing a transport (:func:`make_transport`, :func:`proof_transport` for test
copies, :func:`check_transport`). aiosmtplib is imported only when the SMTP transport is made.
"""

from __future__ import annotations

import asyncio

from ..config import Config
from .base import Transport
from .outbox import OutboxTransport

__all__ = ["check_transport", "make_transport", "proof_transport"]


def check_transport(transport: Transport) -> None:
    """Make sure the transport can start: for SMTP, that its password or token can be had
    (no connection is made). Raises :class:`reldist.errors.ConfigError` naming the key."""
    check = getattr(transport, "check_credentials", None)
    if check is not None:
        asyncio.run(check())


def make_transport(config: Config, release_id: str) -> Transport:
    """The transport the config asks for: SMTP when ``[smtp]`` is present, else the outbox."""
    if config.smtp is not None:
        from .smtp import SmtpTransport

        return SmtpTransport(config.smtp)
    return OutboxTransport(config.outbox_path / release_id)


def proof_transport(config: Config, release_id: str) -> Transport:
    """Where test copies go: the configured SMTP server, or ``outbox/<release-id>/test/``."""
    if config.smtp is not None:
        return make_transport(config, release_id)
    return OutboxTransport(config.outbox_path / release_id / "test")
