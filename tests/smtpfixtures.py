"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, port 0, recording what it receives.

The server runs in its own thread (aiosmtpd's ``Controller``), so it serves a client running in
``asyncio.run`` in the test as well as a ``reldist send`` subprocess. Faults are made by the
server itself, never by mocking the client.

Fixtures (pytest, imported into ``conftest.py``)::

    smtp_ca                     trustme.CA for the whole session
    smtp_ca_file                Path of that CA's PEM file (give it to SmtpSettings.ca_file)
    smtpd                       a started plain server (no TLS, no AUTH); change smtpd.faults
    smtpd_factory(**options)    start more servers (options as for smtp_server); all stopped
                                at teardown; TLS servers use smtp_ca unless ca= is given
    outgoing                    the make_outgoing function

Plain helpers (no pytest needed)::

    with smtp_server(**options) as server:     # a context manager, e.g. around a subprocess
        server.port, server.messages, server.connections, ...

    smtp_server(*, tls=None | "starttls" | "tls", ca=None, users=None, tokens=None,
                mechanisms=None, smtputf8=True, pipelining=True, faults=None, **fault_fields)

    ``users``       {login: password}: AUTH PLAIN/LOGIN accepted for these, and required
    ``tokens``      {user: access_token}: AUTH XOAUTH2 accepted for these, and required
    ``mechanisms``  advertised AUTH mechanisms (default: PLAIN LOGIN, plus XOAUTH2 with tokens)
    ``smtputf8``    advertise SMTPUTF8
    ``pipelining``  advertise PIPELINING (RFC 2920; default True, as real servers do)
    ``faults``      a Faults object; or its fields as keywords (rcpt={...}, drop_at_mail={3})

    make_outgoing(seq=1, *, recipient=..., sender=..., from_header=..., subject=..., body=...,
                  data=None, needs_smtputf8=False) -> reldist.transport.base.Outgoing

:class:`SmtpServer` (what both give you):

    .host, .port, .tls, .ca_file     where and how to connect (ca_file: None without TLS)
    .messages      list[Received]: every message answered 250, in order (.at: when, time.time())
    .unanswered    list[Received]: bodies received but never answered (drop_after_data, or a
                   slow_data reply the client gave up on)
    .connections   number of SMTP sessions (clients that sent EHLO/HELO)
    .logins        list[Login]: every AUTH attempt (mechanism, user, secret, ok)
    .commands      list[(session number, VERB)]: every command received, e.g. (2, "RSET")
    .faults        the Faults in force (mutable between sends)
    .settings(**overrides) -> SmtpSettings pointing at this server

:class:`Received`: ``.mail_from``, ``.rcpt_tos``, ``.mail_options`` (upper case, e.g.
``["SIZE=312", "SMTPUTF8"]``), ``.smtputf8``, ``.content`` (raw bytes), ``.session``, ``.tls``,
``.user`` and ``.message`` (parsed with ``BytesParser(policy=email.policy.default)``).

:class:`Faults` (message numbers count MAIL commands on the whole server, from 1)::

    rcpt        {address: reply}: reply at RCPT for that recipient (e.g. "550 5.1.1 No such
                user"); a list of replies is used one per attempt, then the address is accepted
    data        {address: reply}: reply at the end of DATA, same rules
    mail        {message number: reply} at MAIL
    close_after N: after N messages accepted in one session, reply 421 to MAIL and hang up
    drop_at_mail {message numbers}: hang up on receiving MAIL, without a reply
    slow_mail   {message numbers}: wait `delay` seconds before answering MAIL
    drop_after_data {message numbers}: read the whole body, then hang up without a reply
    slow_data   {message numbers}: wait `delay` seconds before answering the end of DATA
    delay       seconds, for slow_data (default 2.0)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.policy
import itertools
import json
import shutil
import ssl
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Literal

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from reldist.envelope import Envelope as OutEnvelope
from reldist.envelope import Outgoing
from reldist.settings import SmtpSettings

__all__ = [
    "Faults",
    "Login",
    "Received",
    "SmtpServer",
    "make_outgoing",
    "outgoing",
    "smtp_ca",
    "smtp_ca_file",
    "smtp_server",
    "smtpd",
    "smtpd_factory",
]

HOST = "127.0.0.1"


@dataclass
class Faults:
    """What the server does wrong, and when (see the module docstring)."""

    rcpt: dict[str, str | list[str]] = field(default_factory=dict)
    data: dict[str, str | list[str]] = field(default_factory=dict)
    mail: dict[int, str] = field(default_factory=dict)
    close_after: int | None = None
    drop_at_mail: Collection[int] = ()
    slow_mail: Collection[int] = ()
    drop_after_data: Collection[int] = ()
    slow_data: Collection[int] = ()
    delay: float = 2.0


@dataclass
class Received:
    """One message as the server received it."""

    mail_from: str
    rcpt_tos: list[str]
    mail_options: list[str]
    smtputf8: bool
    content: bytes
    session: int
    number: int  # the MAIL command's number on the server
    tls: bool
    user: str | None
    at: float = field(default_factory=time.time)  # when the server had the whole message

    @property
    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=email.policy.default).parsebytes(self.content)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass(frozen=True)
class Login:
    """One AUTH attempt."""

    mechanism: str
    user: str
    secret: str
    ok: bool


def _take(replies: Mapping[str, str | list[str]], key: str) -> str | None:
    reply = replies.get(key)
    if isinstance(reply, list):
        return reply.pop(0) if reply else None
    return reply


async def _hang_up(server: SMTP) -> None:
    """Close the connection and wait to be cancelled (aiosmtpd cancels us on connection loss)."""
    assert server.transport is not None
    server.transport.close()
    await asyncio.get_running_loop().create_future()


class _Handler:
    """aiosmtpd handler: records everything and plays the faults.

    aiosmtpd treats every attribute named ``auth_*`` as an AUTH mechanism and every ``handle_*``
    as a hook, so no other attribute here may start with those words.
    """

    def __init__(self, state: SmtpServer) -> None:
        self.state = state

    def _session_number(self, server: SMTP) -> int:
        number: int = getattr(server, "reldist_session", 0)
        return number

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        self.state._new_session(server)
        session.host_name = hostname
        if self.state.pipelining:  # aiosmtpd reads pipelined commands but does not say so
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_HELO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str) -> str:
        self.state._new_session(server)
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        state, faults = self.state, self.state.faults
        number = next(state._numbers)
        envelope.reldist_number = number  # type: ignore[attr-defined]
        accepted = getattr(server, "reldist_accepted", 0)
        if faults.close_after is not None and accepted >= faults.close_after:
            await server.push("421 4.7.0 Too many messages in one session, closing")
            await _hang_up(server)
        if number in faults.drop_at_mail:
            await _hang_up(server)
        if number in faults.slow_mail:
            await asyncio.sleep(faults.delay)
        reply = faults.mail.get(number)
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = _take(self.state.faults.rcpt, address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        state, faults = self.state, self.state.faults
        number: int = getattr(envelope, "reldist_number", 0)
        auth = session.auth_data
        user = auth.login.decode() if isinstance(auth, LoginPassword) else auth
        assert server.transport is not None
        assert envelope.mail_from is not None
        content = envelope.original_content
        assert isinstance(content, bytes)
        received = Received(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            mail_options=list(envelope.mail_options),
            smtputf8=envelope.smtp_utf8,
            content=content,
            session=self._session_number(server),
            number=number,
            tls=server.transport.get_extra_info("sslcontext") is not None,
            user=user,
        )
        if number in faults.drop_after_data:
            state.unanswered.append(received)
            await _hang_up(server)
        for address in envelope.rcpt_tos:
            reply = _take(faults.data, address)
            if reply is not None:
                return reply
        if number in faults.slow_data:
            state.unanswered.append(received)
            await asyncio.sleep(faults.delay)
            state.unanswered.remove(received)
        state.messages.append(received)
        server.reldist_accepted = getattr(server, "reldist_accepted", 0) + 1  # type: ignore[attr-defined]
        return f"250 2.0.0 OK queued as {number}"

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 1:
            blob = await server.challenge_auth("")
            if not isinstance(blob, bytes):
                return AuthResult(success=False, handled=True)
        else:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except ValueError:
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        fields = dict(part.split("=", 1) for part in blob.decode().split("\x01") if "=" in part)
        user = fields.get("user", "")
        token = fields.get("auth", "").removeprefix("Bearer ")
        ok = user in self.state.tokens and self.state.tokens[user] == token
        self.state.logins.append(Login("XOAUTH2", user, token, ok))
        if ok:
            return AuthResult(success=True, auth_data=user)
        # Like Gmail: a base64 JSON error as a 334 challenge, then 535 after the empty reply.
        error = json.dumps({"status": "401", "schemes": "Bearer", "scope": "https://mail/"})
        await server.challenge_auth(error)
        return AuthResult(
            success=False, handled=False, message="535 5.7.8 Username and Password not accepted"
        )


class _RecordingSMTP(SMTP):
    """aiosmtpd's SMTP that writes every command verb into the server's log."""

    def __init__(self, handler: _Handler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        state = handler.state

        def record(verb: str, method: Callable[[str], Any]) -> Callable[[str], Any]:
            async def recorded(arg: str) -> Any:
                state.commands.append((getattr(self, "reldist_session", 0), verb))
                return await method(arg)

            return recorded

        self._smtp_methods = {verb: record(verb, method) for verb, method in self._smtp_methods.items()}


class _Controller(Controller):
    """aiosmtpd 1.4.6's Controller cannot bind port 0 (it pokes the server on the port it was
    given); this one reads the bound port back before poking."""

    def __init__(self, state: SmtpServer, **kwargs: Any) -> None:
        self.state = state
        super().__init__(_Handler(state), hostname=HOST, port=0, **kwargs)

    def factory(self) -> SMTP:
        with warnings.catch_warnings():
            # "Requiring AUTH while not requiring TLS": intended on loopback plain-text servers.
            warnings.simplefilter("ignore", UserWarning)
            return _RecordingSMTP(self.handler, **self.SMTP_kwargs)

    async def _bind(self) -> asyncio.AbstractServer:
        server = await self.loop.create_server(
            self._factory_invoker, host=self.hostname, port=self.port, ssl=self.ssl_context
        )
        self.port = server.sockets[0].getsockname()[1]
        return server

    def _create_server(self) -> Any:
        return self._bind()


class SmtpServer:
    """A running test server and everything it saw (see the module docstring)."""

    host = HOST

    def __init__(
        self,
        *,
        tls: Literal["starttls", "tls"] | None = None,
        ca: trustme.CA | None = None,
        users: Mapping[str, str] | None = None,
        tokens: Mapping[str, str] | None = None,
        mechanisms: Sequence[str] | None = None,
        smtputf8: bool = True,
        pipelining: bool = True,
        faults: Faults | None = None,
    ) -> None:
        self.tls = tls
        self.pipelining = pipelining
        self.users = dict(users or {})
        self.tokens = dict(tokens or {})
        self.faults = faults or Faults()
        self.messages: list[Received] = []
        self.unanswered: list[Received] = []
        self.logins: list[Login] = []
        self.commands: list[tuple[int, str]] = []
        self.connections = 0
        self.ca_file: Path | None = None
        self._numbers = itertools.count(1)
        self._sessions = itertools.count(1)
        self._lock = threading.Lock()
        self._tmp: str | None = None

        kwargs: dict[str, Any] = {
            "enable_SMTPUTF8": smtputf8,
            "server_hostname": "mx.test",
            "ready_timeout": 10.0,
        }
        if tls is not None:
            ca = ca or trustme.CA()
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert(HOST, "localhost", "::1").configure_cert(context)
            self._tmp = tempfile.mkdtemp(prefix="reldist-smtpd-")
            self.ca_file = Path(self._tmp) / "ca.pem"
            ca.cert_pem.write_to_path(str(self.ca_file))
            if tls == "tls":
                kwargs["ssl_context"] = context
            else:
                kwargs["tls_context"] = context
                kwargs["require_starttls"] = True
        if self.users or self.tokens:
            wanted = mechanisms or ["PLAIN", "LOGIN"] + (["XOAUTH2"] if self.tokens else [])
            wanted_upper = {m.upper() for m in wanted}
            kwargs["authenticator"] = self._authenticate
            kwargs["auth_required"] = True
            kwargs["auth_exclude_mechanism"] = [
                m for m in ("PLAIN", "LOGIN", "XOAUTH2") if m not in wanted_upper
            ]
            # aiosmtpd's auth_require_tls looks for a STARTTLS layer only; on implicit TLS (or
            # plain text) it would refuse every AUTH.
            kwargs["auth_require_tls"] = tls == "starttls"
        else:
            kwargs["auth_exclude_mechanism"] = ["PLAIN", "LOGIN", "XOAUTH2"]
        self._controller = _Controller(self, **kwargs)

    @property
    def port(self) -> int:
        port: int = self._controller.port
        return port

    def settings(self, **overrides: Any) -> SmtpSettings:
        """SmtpSettings that reach this server (fast timeout, CA file set when TLS)."""
        values: dict[str, Any] = {
            "host": HOST,
            "port": self.port,
            "security": self.tls or "none",
            "ca_file": self.ca_file,
            "timeout": 5.0,
            "local_hostname": "client.test",
        }
        values.update(overrides)
        return SmtpSettings(**values)

    def _new_session(self, server: SMTP) -> None:
        if not getattr(server, "reldist_session", 0):
            with self._lock:
                server.reldist_session = next(self._sessions)  # type: ignore[attr-defined]
                self.connections += 1

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        user, secret = data.login.decode(), data.password.decode()
        ok = user in self.users and self.users[user] == secret
        self.logins.append(Login(mechanism, user, secret, ok))
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop serving (idempotent): later connections are refused."""
        if self._controller._thread is not None:
            self._controller.stop()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __repr__(self) -> str:
        return f"<SmtpServer {HOST}:{self.port} tls={self.tls} {len(self.messages)} messages>"


@contextlib.contextmanager
def smtp_server(
    *,
    tls: Literal["starttls", "tls"] | None = None,
    ca: trustme.CA | None = None,
    users: Mapping[str, str] | None = None,
    tokens: Mapping[str, str] | None = None,
    mechanisms: Sequence[str] | None = None,
    smtputf8: bool = True,
    pipelining: bool = True,
    faults: Faults | None = None,
    **fault_fields: Any,
) -> Iterator[SmtpServer]:
    """Start a recording server on 127.0.0.1 (a free port) for the duration of the block."""
    if faults is None:
        faults = Faults(**fault_fields)
    else:
        for name, value in fault_fields.items():
            setattr(faults, name, value)
    server = SmtpServer(
        tls=tls,
        ca=ca,
        users=users,
        tokens=tokens,
        mechanisms=mechanisms,
        smtputf8=smtputf8,
        pipelining=pipelining,
        faults=faults,
    ).start()
    try:
        yield server
    finally:
        server.stop()


def make_outgoing(
    seq: int = 1,
    *,
    recipient: str = "journalist@example.kz",
    sender: str = "bounces@ecomuseum.kz",
    from_header: str = "ЭкоМузей <press@ecomuseum.kz>",
    subject: str = "Press release",
    body: str = "Hello.\n.leading dot\nEnd.\n",
    data: bytes | None = None,
    needs_smtputf8: bool = False,
) -> Outgoing:
    """A small but real message (CRLF, UTF-8 body) and its envelope."""
    if data is None:
        # Long lines: CPython's folder drops the space between RFC 2047 words of a long
        # Cyrillic subject (it decodes as "поддерживаетКарагандинскую").
        policy = email.policy.SMTPUTF8 if needs_smtputf8 else email.policy.SMTP
        message = EmailMessage(policy=policy.clone(max_line_length=998))
        message["From"] = from_header
        message["To"] = recipient
        message["Subject"] = subject
        message["Message-ID"] = f"<test.{seq}@ecomuseum.kz>"
        message.set_content(body, cte="8bit")
        data = message.as_bytes()
    return Outgoing(
        seq=seq,
        address=recipient,
        envelope=OutEnvelope(sender=sender, recipient=recipient, needs_smtputf8=needs_smtputf8),
        data=data,
    )


@pytest.fixture(scope="session")
def smtp_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def smtp_ca_file(smtp_ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "smtp-ca.pem"
    smtp_ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def smtpd_factory(smtp_ca: trustme.CA) -> Iterator[Callable[..., SmtpServer]]:
    with contextlib.ExitStack() as stack:

        def start(**options: Any) -> SmtpServer:
            if options.get("tls"):
                options.setdefault("ca", smtp_ca)
            return stack.enter_context(smtp_server(**options))

        yield start


@pytest.fixture
def smtpd(smtpd_factory: Callable[..., SmtpServer]) -> SmtpServer:
    return smtpd_factory()


@pytest.fixture
def outgoing() -> Callable[..., Outgoing]:
    return make_outgoing
