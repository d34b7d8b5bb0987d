"""The SMTP transport: persistent aiosmtplib connections whose replies become outcomes.

Owns connecting (implicit TLS, STARTTLS or plain; certificates always verified), authenticating
(PLAIN, LOGIN, XOAUTH2) with a secret resolved lazily from an environment variable or a command
(``secrets``),
sending one message per transaction, and turning each reply or failure into an
:class:`~reldist.transport.base.Outcome`:

=====================================================  ===========
what happened                                          status
=====================================================  ===========
2xx after the end of the message                       ``sent``
4xx at MAIL, RCPT or DATA (421 also drops the link)    ``deferred``
5xx at MAIL, RCPT or DATA                              ``failed``
connection lost / timeout before the final ``.``       ``deferred`` (no code)
connection lost / timeout after the final ``.``        ``unknown`` (it may have been delivered)
=====================================================  ===========

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
import ssl
from collections.abc import Mapping

import aiosmtplib
import idna
from aiosmtplib import (
    SMTPAuthenticationError,
    SMTPException,
    SMTPHeloError,
    SMTPResponseException,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)

from ..envelope import Envelope, Outcome, Outgoing
from ..errors import ConfigError, TransportError
from ..settings import SmtpSettings, check_smtp
from .secrets import Credentials, Secrets
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


def _root_cause(exc: BaseException) -> BaseException:
    seen: set[int] = set()
    while exc.__cause__ is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc = exc.__cause__
    return exc


def _find(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


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
        self._tls: ssl.SSLContext | None = None

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

    # -- internals used by SmtpConnection -------------------------------------------------

    def _error(self, reason: str) -> TransportError:
        return TransportError(self._secrets.scrub(f"{self.address}: {reason}"))

    async def _tls_context(self) -> ssl.SSLContext:
        """System CAs plus ``ca_file``; hostname checks on. Built once, at the first connect."""
        if self._tls is None:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
            ca_file = self.settings.ca_file
            if ca_file is not None:
                try:
                    context.load_verify_locations(cafile=os.fspath(ca_file))
                except (OSError, ssl.SSLError) as exc:
                    raise ConfigError(f"[smtp] ca_file: cannot load {ca_file}: {exc}") from None
            self._tls = context
        return self._tls

    async def _open(self) -> aiosmtplib.SMTP:
        """One aiosmtplib connection, greeted, encrypted and authenticated."""
        s = self.settings
        credentials = await self._secrets.credentials()
        tls = await self._tls_context() if s.security != "none" else None
        smtp = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            local_hostname=s.local_hostname,
            timeout=s.timeout,
            use_tls=s.security == "tls",
            start_tls=s.security == "starttls",
            tls_context=tls,
        )
        try:
            await smtp.connect()
            await _ehlo(smtp)
            if credentials is not None:
                await self._authenticate(smtp, credentials)
        except TransportError:
            _hang_up(smtp)
            raise
        except (SMTPException, OSError, ValueError) as exc:
            _hang_up(smtp)
            raise self._error(self._connect_reason(exc, credentials)) from None
        except BaseException:  # cancelled: do not leave a half-open session behind
            _hang_up(smtp)
            raise
        log.debug("connected to %s", self.describe())
        return smtp

    def _connect_reason(self, exc: BaseException, credentials: Credentials | None) -> str:
        if isinstance(exc, SMTPAuthenticationError):
            assert credentials is not None
            return (
                f"authentication failed for {credentials.username} ({exc.code} {exc.message}); "
                f"check [smtp] username and {credentials.source}"
            )
        cert = _find(exc, ssl.SSLCertVerificationError)
        if isinstance(cert, ssl.SSLCertVerificationError):
            hint = "" if self.settings.ca_file else " (for a private CA set [smtp] ca_file)"
            return f"TLS certificate verification failed: {cert.verify_message or cert}{hint}"
        if _find(exc, ssl.SSLError) is not None:
            return f"TLS handshake failed: {_root_cause(exc)}"
        if isinstance(exc, SMTPTimeoutError):
            return f"timed out after {self.settings.timeout:g} s ({exc.message})"
        if isinstance(exc, SMTPResponseException):
            return f"the server refused us: {exc.code} {exc.message}"
        if isinstance(exc, aiosmtplib.SMTPConnectError):
            cause = exc.__cause__
            if isinstance(cause, OSError):
                return f"cannot connect: {cause.strerror or cause}"
            return f"cannot connect: {exc.message}"
        if isinstance(exc, SMTPServerDisconnected):
            return f"the server closed the connection while we set it up ({exc.message})"
        if isinstance(exc, SMTPException):
            return exc.message
        return str(exc)

    async def _authenticate(self, smtp: aiosmtplib.SMTP, credentials: Credentials) -> None:
        offered = [m.upper() for m in smtp.server_auth_methods]
        if not smtp.supports_extension("auth"):
            raise self._error("the server offers no AUTH; remove [smtp] username if it needs no login")
        mechanism = credentials.mechanism
        if mechanism == "auto":
            # One attempt with the best mechanism offered. aiosmtplib's login() would try every
            # mechanism in turn, and each failed attempt counts towards a lockout.
            usable = [m for m in ("plain", "login") if m.upper() in offered]
            if not usable:
                raise self._error(
                    f"the server offers no AUTH mechanism reldist can use with a password "
                    f"(it offers {', '.join(offered) or 'none'})"
                )
            mechanism = "plain" if "plain" in usable else "login"
        elif mechanism.upper() not in offered:
            raise self._error(
                f"the server does not offer AUTH {mechanism.upper()} "
                f"(it offers {', '.join(offered) or 'none'}); change [smtp] auth"
            )
        user, secret = credentials.username, credentials.secret.value
        try:
            if mechanism == "xoauth2":
                await smtp.auth_xoauth2(user, secret)
            elif mechanism == "plain":
                await smtp.auth_plain(user, secret)
            else:
                await smtp.auth_login(user, secret)
        except SMTPAuthenticationError:
            # A wrong or expired token must be fetched again at the next connect.
            if mechanism == "xoauth2":
                self._secrets.forget_token()
            raise


def _hang_up(smtp: aiosmtplib.SMTP, transport: asyncio.BaseTransport | None = None) -> None:
    """Close the session now, without a TLS close_notify exchange.

    A graceful TLS close needs the event loop to keep running; when the run ends right after
    an error the socket would be left for the garbage collector (a ResourceWarning). SMTP has
    its own end of session (QUIT), so nothing is lost. ``transport`` is the one captured
    before aiosmtplib may have closed and forgotten it.
    """
    transport = transport or smtp.transport
    smtp.close()
    if isinstance(transport, asyncio.WriteTransport):
        transport.abort()


async def _ehlo(smtp: aiosmtplib.SMTP) -> None:
    """EHLO (HELO for an old server) unless this session already has one."""
    if smtp.is_ehlo_or_helo_needed:
        try:
            await smtp.ehlo()
        except SMTPHeloError:
            await smtp.helo()


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
        smtp = await self._transport._open()
        transport = smtp.transport
        if not isinstance(transport, asyncio.WriteTransport):  # pragma: no cover - just connected
            _hang_up(smtp)
            raise self._transport._error("the connection closed as it was set up")
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
            return self._refused(session, exc.code, exc.message, after_body=session.body_sent)
        except (SMTPServerDisconnected, SMTPTimeoutError, OSError) as exc:
            session.abort()
            return self._lost(exc, after_body=session.body_sent)
        except asyncio.CancelledError:
            # Mid-command: a late reply could be taken for the next command's, so this session
            # cannot carry another message.
            session.abort()
            raise
        if 200 <= reply.code < 300:
            return Outcome("sent", reply.code, self._transport._secrets.scrub(reply.text))
        return self._refused(session, reply.code, reply.text, after_body=True)

    def _refused(
        self,
        session: Session,
        code: int,
        text: str,
        *,
        after_body: bool,
    ) -> Outcome:
        text = self._transport._secrets.scrub(text)
        if after_body:
            self._needs_rset = False  # the transaction is over either way
        if code == 421 or not 400 <= code < 600:
            # 421: the server is closing the channel. A reply that is no SMTP code leaves the
            # session out of step; neither can carry another message.
            session.abort()
        if 400 <= code < 500:
            return Outcome("deferred", code, text)
        if 500 <= code < 600:
            return Outcome("failed", code, text)
        if after_body:
            text = f"unexpected reply after the message was sent: {code} {text}"
            return Outcome("unknown", None, text)
        return Outcome("deferred", None, f"unexpected reply before the message was sent: {code} {text}")

    def _lost(self, exc: BaseException, *, after_body: bool) -> Outcome:
        timeout = self._transport.settings.timeout
        if isinstance(exc, SMTPTimeoutError):
            what = f"no reply within {timeout:g} s"
        elif isinstance(exc, SMTPException):
            what = f"connection lost ({exc.message})"
        else:
            what = f"connection lost ({exc})"
        if after_body:
            text = f"{what} after the message was sent; it may have been delivered"
            return Outcome("unknown", None, self._transport._secrets.scrub(text))
        text = f"{what} before the message was sent"
        return Outcome("deferred", None, self._transport._secrets.scrub(text))
