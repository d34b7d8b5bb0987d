"""Render, then build: one recipient's message from a contact, in the one place the two meet.

Owns :class:`Composer` (a :class:`~reldist.render.Renderer` and a
:class:`~reldist.message.MessageBuilder` used together) and :class:`Built`, what it makes. The
send loop, the test copies, the preflight (which only measures) and the check and preview walk all
compose through it. It does no I/O: contacts come in, bytes go out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .contacts import Contact
from .message import MessageBuilder
from .render import Rendered, Renderer

__all__ = ["Built", "Composer"]


@dataclass(frozen=True, slots=True)
class Built:
    """One recipient's message as it would leave."""

    contact: Contact
    rendered: Rendered
    data: bytes
    message_id: str


class Composer:
    """Renders a contact's message with ``renderer`` and builds it with ``builder``."""

    __slots__ = ("builder", "renderer")

    def __init__(self, renderer: Renderer, builder: MessageBuilder) -> None:
        self.renderer = renderer
        self.builder = builder

    def build(self, contact: Contact, *, message_id: str, date: dt.datetime, sign: bool = True) -> Built:
        """The message as it leaves (``sign=False``: without the DKIM signature)."""
        rendered = self.renderer.render(contact)
        data = self.builder.build(rendered, contact, message_id=message_id, date=date, sign=sign)
        return Built(contact, rendered, data, message_id)

    def measure(self, contact: Contact, *, date: dt.datetime) -> int:
        """The size in bytes :meth:`build` would give, with every header made as the send will;
        only the base64 of the two bodies is left to arithmetic (and the signature: the key was
        proved on loading). For the preflight, which must not hold the messages."""
        rendered = self.renderer.render(contact)
        return self.builder.measure(rendered, contact, message_id=self.builder.new_message_id(0), date=date)
