"""Opening an SMTP session: TCP, implicit TLS or STARTTLS (certificates always verified), EHLO, AUTH.

Owns :class:`Connector`, which makes a greeted, encrypted and authenticated aiosmtplib session
(PLAIN, LOGIN or XOAUTH2, one attempt with the best mechanism offered) and turns every way that
can fail into a :class:`~reldist.errors.TransportError` that says why, with the secret scrubbed
from it; and :func:`hang_up`, which closes a session at once. The mail transactions that follow
are ``session``'s, the outcomes ``smtp``'s.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl

import aiosmtplib
from aiosmtplib import (
    SMTPAuthenticationError,
    SMTPException,
    SMTPHeloError,
    SMTPResponseException,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)

from ..errors import ConfigError, ServerSetupError, TransportError
from ..settings import SmtpSettings
from .secrets import Credentials, Secrets

__all__ = ["Connector", "hang_up"]

log = logging.getLogger(__name__)


class Connector:
    """Opens aiosmtplib sessions to one server. The TLS context is built once, at the first open."""

    def __init__(self, settings: SmtpSettings, secrets: Secrets, address: str) -> None:
        self.settings = settings
        self.secrets = secrets
        self.address = address
        self._tls: ssl.SSLContext | None = None

    def error(self, reason: str, *, setup: bool = False) -> TransportError:
        """A TransportError naming the server, the secret scrubbed from it; with ``setup``, a
        :class:`ServerSetupError` (the server refuses our settings: exit 1, not 4)."""
        kind = ServerSetupError if setup else TransportError
        return kind(self.secrets.scrub(f"{self.address}: {reason}"))

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

    async def open(self) -> aiosmtplib.SMTP:
        """One aiosmtplib connection, greeted, encrypted and authenticated."""
        s = self.settings
        credentials = await self.secrets.credentials()
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
            hang_up(smtp)
            raise
        except (SMTPException, OSError, ValueError) as exc:
            hang_up(smtp)
            raise self.error(self._reason(exc, credentials), setup=_is_setup(exc)) from None
        except BaseException:  # cancelled: do not leave a half-open session behind
            hang_up(smtp)
            raise
        log.debug("connected to %s", self.address)
        return smtp

    def _reason(self, exc: BaseException, credentials: Credentials | None) -> str:
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
            raise self.error(
                "the server offers no AUTH; remove [smtp] username if it needs no login", setup=True
            )
        mechanism = credentials.mechanism
        if mechanism == "auto":
            # One attempt with the best mechanism offered. aiosmtplib's login() would try every
            # mechanism in turn, and each failed attempt counts towards a lockout.
            usable = [m for m in ("plain", "login") if m.upper() in offered]
            if not usable:
                raise self.error(
                    f"the server offers no AUTH mechanism reldist can use with a password "
                    f"(it offers {', '.join(offered) or 'none'})",
                    setup=True,
                )
            mechanism = "plain" if "plain" in usable else "login"
        elif mechanism.upper() not in offered:
            raise self.error(
                f"the server does not offer AUTH {mechanism.upper()} "
                f"(it offers {', '.join(offered) or 'none'}); change [smtp] auth",
                setup=True,
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
                self.secrets.forget_token()
            raise


def _is_setup(exc: BaseException) -> bool:
    """True when the server refuses how we are set up, so that trying again cannot help: a
    rejected login (535 and the like), a TLS certificate or handshake failure, no STARTTLS."""
    if isinstance(exc, SMTPAuthenticationError):
        return exc.code >= 500  # 454 "temporary authentication failure" may pass
    if _find(exc, ssl.SSLError) is not None:
        return True
    return (
        isinstance(exc, SMTPException)
        and not isinstance(exc, SMTPResponseException)
        and "STARTTLS" in exc.message.upper()
    )


def hang_up(smtp: aiosmtplib.SMTP, transport: asyncio.BaseTransport | None = None) -> None:
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
