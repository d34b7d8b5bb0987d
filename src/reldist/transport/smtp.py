"""The SMTP transport: persistent sessions to one server whose replies become outcomes.

Owns :class:`SmtpTransport` (the settings, checked when it is made; ``describe``; the secret's
early check) and :class:`SmtpConnection`: one persistent session that reconnects lazily, writes
each message as one transaction (MAIL, RCPT, DATA pipelined when the server offers it; SIZE,
SMTPUTF8 and 8BITMIME as needed; ``xn--`` domains without SMTPUTF8) and turns each reply or
failure into an :class:`~reldist.envelope.Outcome` by the table in
:mod:`~reldist.transport.replies`. Opening a session (TCP, TLS, EHLO, AUTH) is
:mod:`~reldist.transport.connect`'s, the transactions on the wire :mod:`~reldist.transport.session`'s,
the secret :mod:`~reldist.transport.secrets`'.

A server that cannot be reached at all (refused, DNS, TLS verification, AUTH rejected) is a
:class:`~reldist.errors.TransportError`, raised from :meth:`SmtpTransport.connect` and from
:meth:`SmtpConnection.send` when a reconnect fails. It does not own retries, pacing or the ledger:
the send engine does.

The password or token is never stored in a printed object, logged or put into an exception
message; texts that come back from aiosmtplib or the server are scrubbed of it as well.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Mapping

import idna
from aiosmtplib import (
    SMTPException,
    SMTPResponseException,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)

from ..envelope import Envelope, Outcome, Outgoing
from ..settings import SmtpSettings, check_smtp
from .connect import Connector, hang_up
from .replies import lost, replied
from .secrets import Secrets
from .session import Session

__all__ = ["SmtpConnection", "SmtpSettings", "SmtpTransport"]

log = logging.getLogger(__name__)


_LINE_ENDS = re.compile(rb"\r\n|\n|\r(?!\n)")
_LEADING_DOT = re.compile(rb"(?m)^\.")
_COMMAND_BREAKER = re.compile(rb"[\x00-\x1f\x7f]")  # CR, LF and the rest: would split a command


def _address_for_smtp(address: str) -> tuple[str, bool]:
    """The address as written on MAIL/RCPT, and whether it needs SMTPUTF8.

    An internationalised domain with an ASCII local part goes out in its ASCII (``xn--``) form
    and needs no SMTPUTF8; only a non-ASCII local part (or an unencodable domain) does.
    """
    if address.isascii():
        return address, False
    local, at, domain = address.rpartition("@")
    if not at or not local.isascii():
        return address, True
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError:
        return address, True
    return f"{local}@{ascii_domain}", False


def _crlf(data: bytes) -> bytes:
    """The message with CRLF line ends, ending in a line end (its size for SIZE=)."""
    crlf = data.count(b"\r\n")
    if data.count(b"\n") == crlf and data.count(b"\r") == crlf and data.endswith(b"\r\n"):
        return data  # already canonical, as MessageBuilder's are: skip the regex pass over ~44 KB
    body = _LINE_ENDS.sub(b"\r\n", data)
    return body if body.endswith(b"\r\n") else body + b"\r\n"


def _dot_stuffed(body: bytes) -> bytes:
    """What goes after DATA: leading dots doubled and the final ``.`` line."""
    if not body.startswith(b".") and b"\n." not in body:
        return body + b".\r\n"  # no line starts with a dot (base64 bodies never do)
    return _LEADING_DOT.sub(b"..", body) + b".\r\n"


class SmtpTransport:
    """Opens :class:`SmtpConnection` objects to one server (implements ``Transport``).

    Construction checks the settings and does no I/O; the secret, the CA bundle and the socket
    are touched at the first :meth:`connect`.
    """

    name = "smtp"

    def __init__(self, settings: SmtpSettings, *, environ: Mapping[str, str] | None = None) -> None:
        check_smtp(settings)
        self.settings = settings
        self.connections = settings.connections
        self._secrets = Secrets(settings, os.environ if environ is None else environ)
        self._connector = Connector(settings, self._secrets, self.address)

    def __repr__(self) -> str:
        return f"SmtpTransport({self.describe()!r})"

    @property
    def address(self) -> str:
        host = self.settings.host
        return f"[{host}]:{self.settings.port}" if ":" in host else f"{host}:{self.settings.port}"

    def describe(self) -> str:
        """``smtp.office365.com:587 (STARTTLS, as press@ecomuseum.kz)`` — never the secret."""
        s = self.settings
        parts = [{"tls": "TLS", "starttls": "STARTTLS", "none": "no TLS"}[s.security]]
        if s.username:
            how = "XOAUTH2 " if self._secrets.mechanism() == "xoauth2" else ""
            parts.append(f"{how}as {s.username}")
        return f"{self.address} ({', '.join(parts)})"

    async def check_credentials(self) -> None:
        """Resolve the password or token (environment variable or command) without connecting;
        :class:`ConfigError` when it cannot be had. ``check`` and ``send`` call it first, so a
        missing secret stops them at once instead of at the first connection."""
        await self._secrets.credentials()

    async def connect(self) -> SmtpConnection:
        """Open one connection: TCP, TLS, EHLO, AUTH. Raises TransportError or ConfigError."""
        connection = SmtpConnection(self)
        await connection._open()
        return connection


class SmtpConnection:
    """One persistent SMTP session (implements ``Connection``); reconnects lazily.

    After a drop, a 421, a timeout or ``messages_per_connection`` messages, the next
    :meth:`send` opens a fresh session first. RSET is sent only after a transaction that
    stopped midway (a refusal at MAIL, RCPT or DATA).
    """

    def __init__(self, transport: SmtpTransport) -> None:
        self._transport = transport
        self._session: Session | None = None
        self._messages = 0  # transactions started on the current session
        self._needs_rset = False
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        state = "open" if self._session is not None and self._session.is_connected else "closed"
        return f"<SmtpConnection {self._transport.address} {state}, {self._messages} messages>"

    async def _open(self) -> None:
        smtp = await self._transport._connector.open()
        transport = smtp.transport
        if not isinstance(transport, asyncio.WriteTransport):  # pragma: no cover - just connected
            hang_up(smtp)
            raise self._transport._connector.error("the connection closed as it was set up")
        # aiosmtplib has connected, encrypted, greeted and logged in; the session's own reader
        # takes over the connection for the transactions (it reads pipelined replies).
        self._session = Session(
            transport, set(smtp.esmtp_extensions), timeout=self._transport.settings.timeout
        )
        self._messages = 0
        self._needs_rset = False

    async def _quit(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.quit(timeout=min(self._transport.settings.timeout, 5.0))

    async def _ready(self) -> Session:
        """A session able to take the next message; raises TransportError if none can be had."""
        session = self._session
        limit = self._transport.settings.messages_per_connection
        if session is not None and session.is_connected and self._messages >= limit:
            log.debug("reconnecting after %d messages", self._messages)
            await self._quit()
            session = None
        if session is not None and session.is_connected and self._needs_rset:
            try:
                reply = await session.command(b"RSET\r\n")
            except (SMTPException, OSError):
                reply = None
            if reply is not None and reply.code == 250:
                self._needs_rset = False
            else:
                await self._quit()
                session = None
        if session is None or not session.is_connected:
            if session is not None:
                session.abort()
            self._session = None
            await self._open()
            session = self._session
            assert session is not None
        return session

    async def send(self, message: Outgoing) -> Outcome:
        """Send one message in one transaction and say what became of it."""
        async with self._lock:
            session = await self._ready()
            return await self._transaction(session, message)

    async def close(self) -> None:
        """QUIT politely (errors ignored) and close the socket."""
        async with self._lock:
            await self._quit()

    async def _transaction(self, session: Session, message: Outgoing) -> Outcome:
        envelope: Envelope = message.envelope
        sender, sender_utf8 = _address_for_smtp(envelope.sender)
        recipient, recipient_utf8 = _address_for_smtp(envelope.recipient)
        utf8 = envelope.needs_smtputf8 or sender_utf8 or recipient_utf8
        if utf8 and not session.supports("smtputf8"):
            needy = envelope.sender if sender_utf8 and not recipient_utf8 else envelope.recipient
            text = f"{self._transport.address} does not support SMTPUTF8, which {needy} needs"
            return Outcome("failed", None, text)
        # MessageBuilder's bytes are in SMTP form already: no passes over ~43 KB for them.
        body = message.data if message.canonical else _crlf(message.data)
        payload = body + b".\r\n" if message.canonical else _dot_stuffed(body)
        options = ""
        if session.supports("size"):
            options += f" SIZE={len(body)}"
        if utf8:
            options += " SMTPUTF8"
        if not message.data.isascii() and session.supports("8bitmime"):
            options += " BODY=8BITMIME"
        try:
            encoding = "utf-8" if utf8 else "ascii"
            mail = f"MAIL FROM:<{sender}>{options}\r\n".encode(encoding)
            rcpt = f"RCPT TO:<{recipient}>\r\n".encode(encoding)
        except UnicodeEncodeError as exc:  # pragma: no cover - _address_for_smtp asked for SMTPUTF8
            return Outcome("failed", None, f"cannot write the address on a command line: {exc}")
        if _COMMAND_BREAKER.search(mail[:-2]) or _COMMAND_BREAKER.search(rcpt[:-2]):
            return Outcome("failed", None, "an address with control characters cannot go on a command line")

        self._messages += 1
        try:
            reply = await session.transaction(mail, rcpt, payload)
        except SMTPResponseException as exc:
            self._needs_rset = session.open
            return self._replied(session, exc.code, exc.message, after_body=session.body_sent)
        except (SMTPServerDisconnected, SMTPTimeoutError, OSError) as exc:
            session.abort()
            return self._lost(exc, after_body=session.body_sent)
        except asyncio.CancelledError:
            # Mid-command: a late reply could be taken for the next command's, so this session
            # cannot carry another message.
            session.abort()
            raise
        return self._replied(session, reply.code, reply.text, after_body=True)

    def _replied(self, session: Session, code: int, text: str, *, after_body: bool) -> Outcome:
        """The outcome of a reply (:func:`~reldist.transport.replies.replied`), acted upon."""
        if after_body:
            self._needs_rset = False  # the transaction is over either way
        verdict = replied(code, self._transport._secrets.scrub(text), after_body=after_body)
        if verdict.drop:
            session.abort()
        return verdict.outcome

    def _lost(self, exc: BaseException, *, after_body: bool) -> Outcome:
        """The outcome when the connection broke (:func:`~reldist.transport.replies.lost`)."""
        if isinstance(exc, SMTPTimeoutError):
            what = f"no reply within {self._transport.settings.timeout:g} s"
        elif isinstance(exc, SMTPException):
            what = f"connection lost ({exc.message})"
        else:
            what = f"connection lost ({exc})"
        return lost(self._transport._secrets.scrub(what), after_body=after_body)
