"""The SMTP transport against a real aiosmtpd server on 127.0.0.1 (see smtpfixtures.py)."""

from __future__ import annotations

import asyncio
import shlex
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
import trustme

from reldist.envelope import Outcome, Outgoing
from reldist.errors import ConfigError, TransportError
from reldist.settings import SmtpSettings
from reldist.transport.smtp import SmtpConnection, SmtpTransport
from smtpfixtures import Login, SmtpServer, make_outgoing, smtp_server

T = TypeVar("T")
USER = "press@ecomuseum.kz"
SECRET = "hunter2-S3CRET-9f8e7d"
ENV = {"RELDIST_SMTP_PASSWORD": SECRET}

Factory = Callable[..., SmtpServer]


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


async def send_all(transport: SmtpTransport, messages: list[Outgoing]) -> list[Outcome]:
    connection = await transport.connect()
    try:
        return [await connection.send(m) for m in messages]
    finally:
        await connection.close()


def send(
    server: SmtpServer, messages: list[Outgoing], *, environ: dict[str, str] | None = None, **kw: Any
) -> list[Outcome]:
    transport = SmtpTransport(server.settings(**kw), environ=environ or {})
    return run(send_all(transport, messages))


def many(n: int) -> list[Outgoing]:
    return [make_outgoing(i, recipient=f"j{i}@example.kz") for i in range(1, n + 1)]


@pytest.fixture(params=["pipelining", "one-at-a-time"])
def smtpd(request: pytest.FixtureRequest, smtpd_factory: Factory) -> SmtpServer:
    """Every test here with ``smtpd`` runs against a server that offers PIPELINING (MAIL, RCPT
    and DATA go in one write) and one that does not (one command a round trip)."""
    return smtpd_factory(pipelining=request.param == "pipelining")


def verbs(server: SmtpServer, session: int | None = None) -> list[str]:
    return [v for s, v in server.commands if session is None or s == session]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# -- what the server receives ------------------------------------------------------------------


def test_message_arrives_as_sent(smtpd: SmtpServer) -> None:
    message = make_outgoing(
        7,
        recipient="aigerim@example.kz",
        sender="bounces@ecomuseum.kz",
        subject="Проект ЕС поддерживает Карагандинскую область",
        body="Караганда, 28 ноября.\n.a line that starts with a dot\nEnd.\n",
    )
    [outcome] = send(smtpd, [message])

    assert outcome.status == "sent"
    assert outcome.code == 250
    assert "queued" in outcome.reply
    [got] = smtpd.messages
    # The envelope sender is the bounce address, not the From header.
    assert got.mail_from == "bounces@ecomuseum.kz"
    assert got.rcpt_tos == ["aigerim@example.kz"]
    parsed = got.message
    assert parsed["From"].addresses[0].addr_spec == "press@ecomuseum.kz"
    assert parsed["From"].addresses[0].display_name == "ЭкоМузей"
    assert parsed["Subject"] == "Проект ЕС поддерживает Карагандинскую область"
    # (BytesParser keeps CRLF in an 8bit body)
    text = parsed.get_content().replace("\r\n", "\n")
    assert text == "Караганда, 28 ноября.\n.a line that starts with a dot\nEnd.\n"
    assert got.content == message.data  # byte for byte, dot-stuffing undone by the server
    assert not got.smtputf8
    assert "SMTPUTF8" not in got.mail_options
    assert "BODY=8BITMIME" in got.mail_options  # the body is 8bit Cyrillic
    assert f"SIZE={len(message.data)}" in got.mail_options
    assert not got.tls


def test_bare_lf_message_goes_out_with_crlf(smtpd: SmtpServer) -> None:
    data = b"From: a@example.kz\nTo: b@example.kz\nSubject: lf\n\n.\n..\nbody\n"
    [outcome] = send(smtpd, [make_outgoing(data=data)])
    assert outcome.status == "sent"
    assert smtpd.messages[0].content == data.replace(b"\n", b"\r\n")
    assert "BODY=8BITMIME" not in smtpd.messages[0].mail_options


def test_one_connection_carries_many_messages(smtpd: SmtpServer) -> None:
    outcomes = send(smtpd, many(5))
    assert [o.status for o in outcomes] == ["sent"] * 5
    assert smtpd.connections == 1
    assert [m.rcpt_tos[0] for m in smtpd.messages] == [f"j{i}@example.kz" for i in range(1, 6)]
    assert verbs(smtpd).count("EHLO") == 1
    assert "RSET" not in verbs(smtpd)  # no failed transaction, so no RSET
    assert verbs(smtpd)[-1] == "QUIT"


def test_reconnects_after_messages_per_connection(smtpd: SmtpServer) -> None:
    outcomes = send(smtpd, many(5), messages_per_connection=2)
    assert [o.status for o in outcomes] == ["sent"] * 5
    assert smtpd.connections == 3
    assert [m.session for m in smtpd.messages] == [1, 1, 2, 2, 3]
    for session in (1, 2, 3):
        assert verbs(smtpd, session)[-1] == "QUIT"


def test_connections_are_independent(smtpd: SmtpServer) -> None:
    transport = SmtpTransport(smtpd.settings())

    async def main() -> list[Outcome]:
        first, second = await transport.connect(), await transport.connect()
        try:
            return list(
                await asyncio.gather(*(c.send(m) for c, m in zip([first, second] * 2, many(4), strict=True)))
            )
        finally:
            await first.close()
            await second.close()

    assert [o.status for o in run(main())] == ["sent"] * 4
    assert smtpd.connections == 2
    assert sorted(m.session for m in smtpd.messages) == [1, 1, 2, 2]


# -- one recipient's reply decides -------------------------------------------------------------


def test_5xx_at_rcpt_fails_with_server_words_and_rset_follows(smtpd: SmtpServer) -> None:
    smtpd.faults.rcpt["j1@example.kz"] = "550 5.1.1 <j1@example.kz>: Recipient address rejected"
    outcomes = send(smtpd, many(2))

    assert outcomes[0] == Outcome("failed", 550, "5.1.1 <j1@example.kz>: Recipient address rejected")
    assert outcomes[1].status == "sent"
    assert [m.rcpt_tos for m in smtpd.messages] == [["j2@example.kz"]]
    assert smtpd.connections == 1
    # Pipelined, DATA went with RCPT and was refused too (no valid recipient).
    refused = ["MAIL", "RCPT", "DATA"] if smtpd.pipelining else ["MAIL", "RCPT"]
    assert verbs(smtpd) == ["EHLO", *refused, "RSET", "MAIL", "RCPT", "DATA", "QUIT"]


def test_4xx_at_rcpt_defers_and_a_retry_goes_through(smtpd: SmtpServer) -> None:
    smtpd.faults.rcpt["j1@example.kz"] = ["450 4.2.1 Mailbox busy, try later"]
    message = make_outgoing(1, recipient="j1@example.kz")
    outcomes = send(smtpd, [message, message])
    assert outcomes[0] == Outcome("deferred", 450, "4.2.1 Mailbox busy, try later")
    assert outcomes[1].status == "sent"
    assert len(smtpd.messages) == 1


def test_5xx_at_mail_fails(smtpd: SmtpServer) -> None:
    smtpd.faults.mail[1] = "553 5.7.1 Sender address rejected: not owned by user"
    outcomes = send(smtpd, many(2))
    assert outcomes[0] == Outcome("failed", 553, "5.7.1 Sender address rejected: not owned by user")
    assert outcomes[1].status == "sent"
    assert "RSET" not in verbs(smtpd)  # MAIL refused: no transaction was open


@pytest.mark.parametrize(
    ("reply", "status"),
    [("554 5.7.1 Message rejected as spam", "failed"), ("452 4.3.1 Insufficient storage", "deferred")],
)
def test_reply_after_data_decides(smtpd: SmtpServer, reply: str, status: str) -> None:
    smtpd.faults.data["j1@example.kz"] = reply
    outcomes = send(smtpd, many(2))
    assert outcomes[0] == Outcome(status, int(reply[:3]), reply[4:])  # type: ignore[arg-type]
    assert outcomes[1].status == "sent"
    assert "RSET" not in verbs(smtpd)  # the transaction ended with the reply to "."
    assert smtpd.connections == 1


def test_421_defers_and_the_next_send_reconnects(smtpd: SmtpServer) -> None:
    smtpd.faults.close_after = 2
    outcomes = send(smtpd, many(4))
    assert [o.status for o in outcomes] == ["sent", "sent", "deferred", "sent"]
    assert outcomes[2].code == 421
    assert "Too many messages" in outcomes[2].reply
    assert smtpd.connections == 2
    assert [m.rcpt_tos[0] for m in smtpd.messages] == ["j1@example.kz", "j2@example.kz", "j4@example.kz"]


def test_hang_up_at_mail_defers_and_the_next_send_reconnects(smtpd: SmtpServer) -> None:
    smtpd.faults.drop_at_mail = {2}
    outcomes = send(smtpd, many(3))
    assert [o.status for o in outcomes] == ["sent", "deferred", "sent"]
    assert outcomes[1].code is None
    assert "before the message was sent" in outcomes[1].reply
    assert smtpd.connections == 2
    assert [m.session for m in smtpd.messages] == [1, 2]


def test_hang_up_after_the_body_is_unknown(smtpd: SmtpServer) -> None:
    smtpd.faults.drop_after_data = {1}
    outcomes = send(smtpd, many(2))
    assert [o.status for o in outcomes] == ["unknown", "sent"]
    assert outcomes[0].code is None
    assert "after the message was sent" in outcomes[0].reply
    assert "may have been delivered" in outcomes[0].reply
    # The server did get the whole message: resending blindly could duplicate it.
    assert [u.rcpt_tos for u in smtpd.unanswered] == [["j1@example.kz"]]
    assert smtpd.connections == 2


def test_no_reply_to_the_body_within_the_timeout_is_unknown(smtpd: SmtpServer) -> None:
    smtpd.faults.slow_data = {1}
    smtpd.faults.delay = 8.0
    started = time.monotonic()
    outcomes = send(smtpd, many(2), timeout=0.4)
    # well under the server's 8 s: it gave up after its own 0.4 s (a generous bound, for a
    # loaded machine)
    assert time.monotonic() - started < 6.0
    assert [o.status for o in outcomes] == ["unknown", "sent"]
    assert "no reply within 0.4 s after the message was sent" in outcomes[0].reply
    assert smtpd.connections == 2


def test_no_reply_before_the_body_defers(smtpd: SmtpServer) -> None:
    smtpd.faults.slow_mail = {1}
    smtpd.faults.delay = 3.0
    outcomes = send(smtpd, many(2), timeout=0.4)
    assert [o.status for o in outcomes] == ["deferred", "sent"]
    assert outcomes[0] == Outcome("deferred", None, "no reply within 0.4 s before the message was sent")
    assert [m.rcpt_tos for m in smtpd.messages] == [["j2@example.kz"]]
    assert smtpd.connections == 2


def test_a_cancelled_send_leaves_no_half_open_session(smtpd: SmtpServer) -> None:
    smtpd.faults.slow_data = {1}
    smtpd.faults.delay = 3.0

    async def main() -> Outcome:
        connection = await SmtpTransport(smtpd.settings()).connect()
        try:
            task = asyncio.create_task(connection.send(make_outgoing(1)))
            await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return await connection.send(make_outgoing(2, recipient="j2@example.kz"))
        finally:
            await connection.close()

    outcome = run(main())
    assert outcome.status == "sent"
    assert smtpd.connections == 2
    assert [m.rcpt_tos for m in smtpd.messages] == [["j2@example.kz"]]


def test_unreachable_server_is_a_transport_error() -> None:
    port = free_port()
    transport = SmtpTransport(SmtpSettings(host="127.0.0.1", port=port, security="none"))
    with pytest.raises(TransportError) as caught:
        run(transport.connect())
    assert str(caught.value).startswith(f"127.0.0.1:{port}: cannot connect")
    assert caught.value.exit_code == 4


def test_failed_reconnect_in_send_is_a_transport_error(smtpd_factory: Factory) -> None:
    server = smtpd_factory(drop_at_mail={2})

    async def main() -> tuple[list[Outcome], BaseException]:
        transport = SmtpTransport(server.settings())
        connection = await transport.connect()
        outcomes = [await connection.send(m) for m in many(2)]
        server.stop()
        try:
            await connection.send(make_outgoing(3))
        except TransportError as exc:
            return outcomes, exc
        finally:
            await connection.close()
        raise AssertionError("send() did not raise")

    outcomes, exc = run(main())
    assert [o.status for o in outcomes] == ["sent", "deferred"]
    assert "cannot connect" in str(exc)


# -- TLS ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["tls", "starttls"])
def test_tls_with_verified_certificate(smtpd_factory: Factory, mode: str) -> None:
    server = smtpd_factory(tls=mode)
    outcomes = send(server, many(2))
    assert [o.status for o in outcomes] == ["sent", "sent"]
    assert all(m.tls for m in server.messages)
    assert ("STARTTLS" in verbs(server)) == (mode == "starttls")
    # After STARTTLS the client greets again (RFC 3207).
    assert verbs(server).count("EHLO") == (2 if mode == "starttls" else 1)


@pytest.mark.parametrize("mode", ["tls", "starttls"])
def test_certificate_from_another_ca_is_refused(smtpd_factory: Factory, smtp_ca_file: Any, mode: str) -> None:
    server = smtpd_factory(tls=mode, ca=trustme.CA())  # not the CA the client trusts
    transport = SmtpTransport(server.settings(ca_file=smtp_ca_file))
    with pytest.raises(TransportError, match="certificate verification failed"):
        run(transport.connect())
    assert server.messages == []
    assert "MAIL" not in verbs(server)


def test_certificate_not_trusted_without_ca_file(smtpd_factory: Factory) -> None:
    server = smtpd_factory(tls="tls")
    transport = SmtpTransport(server.settings(ca_file=None))
    with pytest.raises(TransportError, match=r"ca_file"):
        run(transport.connect())


def test_starttls_required_but_not_offered(smtpd: SmtpServer) -> None:
    transport = SmtpTransport(smtpd.settings(security="starttls"))
    with pytest.raises(TransportError, match="STARTTLS"):
        run(transport.connect())


def test_missing_ca_file_is_a_config_error(smtpd_factory: Factory, tmp_path: Any) -> None:
    server = smtpd_factory(tls="tls")
    transport = SmtpTransport(server.settings(ca_file=tmp_path / "nope.pem"))
    with pytest.raises(ConfigError, match=r"\[smtp\] ca_file"):
        run(transport.connect())


# -- AUTH --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mechanisms", "auth", "expected"),
    [
        (["PLAIN", "LOGIN"], "auto", "PLAIN"),
        (["PLAIN", "LOGIN"], "plain", "PLAIN"),
        (["PLAIN", "LOGIN"], "login", "LOGIN"),
        (["LOGIN"], "auto", "LOGIN"),
    ],
)
def test_password_auth(smtpd_factory: Factory, mechanisms: list[str], auth: str, expected: str) -> None:
    server = smtpd_factory(tls="starttls", users={USER: SECRET}, mechanisms=mechanisms)
    outcomes = send(
        server, many(2), environ=ENV, username=USER, password_env="RELDIST_SMTP_PASSWORD", auth=auth
    )
    assert [o.status for o in outcomes] == ["sent", "sent"]
    assert server.logins == [Login(expected, USER, SECRET, True)]
    assert [m.user for m in server.messages] == [USER, USER]


def test_auth_over_plain_text_to_loopback_is_allowed(smtpd_factory: Factory) -> None:
    server = smtpd_factory(users={USER: SECRET})
    outcomes = send(server, many(1), environ=ENV, username=USER, password_env="RELDIST_SMTP_PASSWORD")
    assert outcomes[0].status == "sent"
    assert server.logins == [Login("PLAIN", USER, SECRET, True)]


def test_auth_happens_on_every_new_connection(smtpd_factory: Factory) -> None:
    server = smtpd_factory(tls="tls", users={USER: SECRET})
    outcomes = send(
        server,
        many(3),
        environ=ENV,
        username=USER,
        password_env="RELDIST_SMTP_PASSWORD",
        messages_per_connection=2,
    )
    assert [o.status for o in outcomes] == ["sent"] * 3
    assert server.connections == 2
    assert [login.ok for login in server.logins] == [True, True]


def test_password_from_a_command(smtpd_factory: Factory) -> None:
    server = smtpd_factory(tls="starttls", users={USER: SECRET})
    command = f'{shlex.quote(sys.executable)} -c \'print("{SECRET}"); print("second line")\''
    outcomes = send(server, many(1), username=USER, password_command=command)
    assert outcomes[0].status == "sent"
    assert server.logins == [Login("PLAIN", USER, SECRET, True)]


def test_failing_password_command_is_a_config_error(smtpd_factory: Factory) -> None:
    server = smtpd_factory(tls="starttls", users={USER: SECRET})
    command = f"{shlex.quote(sys.executable)} -c 'import sys; sys.exit(\"vault is locked\")'"
    transport = SmtpTransport(server.settings(username=USER, password_command=command))
    with pytest.raises(ConfigError, match=r"\[smtp\] password_command: .* status 1: vault is locked"):
        run(transport.connect())
    assert server.connections == 0


def test_xoauth2(smtpd_factory: Factory) -> None:
    token = "ya29.a0AfH6SMBx-token"
    server = smtpd_factory(tls="starttls", tokens={USER: token})
    command = f"{shlex.quote(sys.executable)} -c 'print(\"{token}\")'"
    outcomes = send(server, many(2), username=USER, token_command=command, auth="xoauth2")
    assert [o.status for o in outcomes] == ["sent", "sent"]
    assert server.logins == [Login("XOAUTH2", USER, token, True)]
    assert [m.user for m in server.messages] == [USER, USER]


def test_xoauth2_rejected_token(smtpd_factory: Factory) -> None:
    server = smtpd_factory(tls="starttls", tokens={USER: "the-right-token"})
    command = f"{shlex.quote(sys.executable)} -c 'print(\"{SECRET}\")'"
    transport = SmtpTransport(server.settings(username=USER, token_command=command))
    assert "XOAUTH2 as press@ecomuseum.kz" in transport.describe()
    with pytest.raises(TransportError) as caught:
        run(transport.connect())
    assert "authentication failed" in str(caught.value)
    assert "token_command" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert server.logins == [Login("XOAUTH2", USER, SECRET, False)]


def test_wrong_password_never_shows_the_password(smtpd_factory: Factory) -> None:
    server = smtpd_factory(tls="starttls", users={USER: "the-right-one"})
    settings = server.settings(username=USER, password_env="RELDIST_SMTP_PASSWORD")
    transport = SmtpTransport(settings, environ=ENV)
    with pytest.raises(TransportError) as caught:
        run(transport.connect())

    exc = caught.value
    text = str(exc)
    assert text.startswith(f"127.0.0.1:{server.port}: authentication failed for {USER} (535")
    assert "RELDIST_SMTP_PASSWORD" in text
    everything = [
        text,
        repr(exc),
        repr(exc.args),
        "".join(traceback.format_exception(exc)),
        repr(settings),
        repr(transport),
        transport.describe(),
    ]
    for shown in everything:
        assert SECRET not in shown
    assert server.logins == [Login("PLAIN", USER, SECRET, False)]


def test_secret_is_scrubbed_from_server_replies(smtpd_factory: Factory) -> None:
    # A server that echoes what it got must not leak the secret into the ledger's reply text.
    server = smtpd_factory(tls="starttls", users={USER: SECRET})
    server.faults.rcpt["j1@example.kz"] = f"550 5.7.1 you said {SECRET}"
    outcomes = send(server, many(1), environ=ENV, username=USER, password_env="RELDIST_SMTP_PASSWORD")
    assert outcomes[0] == Outcome("failed", 550, "5.7.1 you said ***")


def test_missing_password_variable_is_a_config_error(smtpd_factory: Factory) -> None:
    server = smtpd_factory(tls="starttls", users={USER: SECRET})
    transport = SmtpTransport(
        server.settings(username=USER, password_env="RELDIST_SMTP_PASSWORD"), environ={}
    )
    with pytest.raises(ConfigError) as caught:
        run(transport.connect())
    assert str(caught.value) == ("[smtp] password_env: environment variable RELDIST_SMTP_PASSWORD is not set")
    assert server.connections == 0


def test_auth_mechanism_not_offered(smtpd_factory: Factory) -> None:
    server = smtpd_factory(tls="starttls", users={USER: SECRET}, mechanisms=["LOGIN"])
    transport = SmtpTransport(
        server.settings(username=USER, password_env="RELDIST_SMTP_PASSWORD", auth="plain"),
        environ=ENV,
    )
    with pytest.raises(TransportError, match=r"does not offer AUTH PLAIN \(it offers LOGIN\)"):
        run(transport.connect())
    assert server.logins == []


def test_insecure_auth_to_a_remote_host_is_refused_before_connecting() -> None:
    settings = SmtpSettings(
        host="smtp.example.org",
        port=25,
        security="none",
        username=USER,
        password_env="RELDIST_SMTP_PASSWORD",
    )
    with pytest.raises(ConfigError, match=r"^\[smtp\] security: .*unencrypted to smtp.example.org"):
        SmtpTransport(settings, environ=ENV)
    # Explicitly allowed, it constructs (no I/O happens in the constructor).
    allowed = SmtpTransport(
        SmtpSettings(
            host="smtp.example.org",
            security="none",
            username=USER,
            password_env="X",
            allow_insecure_auth=True,
        )
    )
    assert allowed.describe() == "smtp.example.org:587 (no TLS, as press@ecomuseum.kz)"


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.3.4.5", "::1", "[::1]"])
def test_plain_text_auth_is_fine_on_loopback(host: str) -> None:
    SmtpTransport(SmtpSettings(host=host, security="none", username=USER, password_env="X"), environ={})


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"auth": "xoauth2"}, "auth"),
        ({"auth": "plain"}, "auth"),
        ({"username": USER}, "username"),
        ({"password_env": "X"}, "username"),
        ({"username": USER, "password_env": "X", "token_command": "t"}, "auth"),
        ({"username": USER, "password_env": "X", "password_command": "p"}, "password_env"),
        ({"connections": 0}, "connections"),
        ({"messages_per_connection": 0}, "messages_per_connection"),
        ({"timeout": 0}, "timeout"),
        ({"port": 0}, "port"),
    ],
)
def test_impossible_settings_are_config_errors(changes: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^\[smtp\] {key}:"):
        SmtpTransport(SmtpSettings(host="smtp.example.org", **changes))


def test_describe() -> None:
    def describe(**kw: Any) -> str:
        return SmtpTransport(SmtpSettings(**kw)).describe()

    assert (
        describe(host="smtp.office365.com", username=USER, password_env="P")
        == "smtp.office365.com:587 (STARTTLS, as press@ecomuseum.kz)"
    )
    assert describe(host="smtp.gmail.com", port=465, security="tls") == "smtp.gmail.com:465 (TLS)"
    assert describe(host="::1", port=25, security="none") == "[::1]:25 (no TLS)"
    assert SmtpTransport(SmtpSettings(host="h", connections=3)).connections == 3
    assert SmtpTransport.name == "smtp"


# -- SMTPUTF8 and international addresses ------------------------------------------------------


def test_smtputf8_only_when_the_address_needs_it(smtpd: SmtpServer) -> None:
    unicode_local = make_outgoing(1, recipient="журналист@пример.рф", needs_smtputf8=True)
    idn_domain = make_outgoing(2, recipient="editor@пример.рф")
    plain = make_outgoing(3, recipient="editor@example.kz")
    outcomes = send(smtpd, [unicode_local, idn_domain, plain])

    assert [o.status for o in outcomes] == ["sent"] * 3
    first, second, third = smtpd.messages
    assert first.rcpt_tos == ["журналист@пример.рф"]
    assert first.smtputf8 and "SMTPUTF8" in first.mail_options
    # (str(), not .addresses: CPython leaves raw UTF-8 in addr_spec as surrogate escapes)
    assert str(first.message["To"]) == "журналист@пример.рф"
    # An IDN domain goes out in its ASCII form, without SMTPUTF8.
    assert second.rcpt_tos == ["editor@xn--e1afmkfd.xn--p1ai"]
    assert not second.smtputf8 and "SMTPUTF8" not in second.mail_options
    assert not third.smtputf8


def test_server_without_smtputf8_fails_that_recipient_only(smtpd_factory: Factory) -> None:
    server = smtpd_factory(smtputf8=False)
    outcomes = send(
        server,
        [
            make_outgoing(1, recipient="журналист@пример.рф", needs_smtputf8=True),
            make_outgoing(2, recipient="editor@пример.рф"),
        ],
    )
    assert outcomes[0].status == "failed"
    assert outcomes[0].code is None
    assert "does not support SMTPUTF8" in outcomes[0].reply
    assert "журналист@пример.рф" in outcomes[0].reply
    assert outcomes[1].status == "sent"
    assert [m.rcpt_tos for m in server.messages] == [["editor@xn--e1afmkfd.xn--p1ai"]]
    assert verbs(server).count("MAIL") == 1  # nothing was attempted for the first one


def test_non_ascii_local_part_is_sent_with_smtputf8_even_if_not_flagged(smtpd: SmtpServer) -> None:
    [outcome] = send(smtpd, [make_outgoing(1, recipient="журналист@example.kz")])
    assert outcome.status == "sent"
    assert smtpd.messages[0].smtputf8


# -- closing -----------------------------------------------------------------------------------


def test_close_quits_and_is_idempotent(smtpd: SmtpServer) -> None:
    async def main() -> SmtpConnection:
        connection = await SmtpTransport(smtpd.settings()).connect()
        await connection.send(make_outgoing())
        await connection.close()
        await connection.close()
        return connection

    connection = run(main())
    assert verbs(smtpd) == ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]
    assert "closed" in repr(connection)


def test_default_local_hostname(smtpd: SmtpServer) -> None:
    [outcome] = send(smtpd, many(1), local_hostname=None)
    assert outcome.status == "sent"


# -- the fixtures themselves -------------------------------------------------------------------


def test_smtp_server_serves_another_process() -> None:
    script = (
        "import smtplib, sys\n"
        "with smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=5) as s:\n"
        "    s.sendmail('a@example.kz', ['b@example.kz'], b'Subject: hi\\r\\n\\r\\nbody\\r\\n')\n"
    )
    with smtp_server(rcpt={"c@example.kz": "550 no"}) as server:
        subprocess.run([sys.executable, "-c", script, str(server.port)], check=True, timeout=30)
        assert server.connections == 1
        assert [m.rcpt_tos for m in server.messages] == [["b@example.kz"]]
        assert server.messages[0].message["Subject"] == "hi"
        assert server.faults.rcpt == {"c@example.kz": "550 no"}
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


# -- the wire, byte by byte ---------------------------------------------------------------------


class WireServer:
    """An SMTP server written at the socket level, for what aiosmtpd cannot be made to do:
    answer pipelined commands in one segment or a byte at a time, send multi-line replies, or
    accept DATA after refusing the only recipient. ``script`` maps a command verb to its reply
    bytes (the last one repeats; ``b""`` is silence, ``HANG_UP`` closes the connection after the
    replies before it); every chunk the server reads is kept in ``chunks``, and every new
    connection counts in ``connections``."""

    def __init__(self, script: dict[str, list[bytes]], *, drip: bool = False) -> None:
        self.script = script
        self.drip = drip
        self.chunks: list[bytes] = []
        self.bodies: list[bytes] = []
        self.connections = 0

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        if self.drip:  # one byte a segment
            for i in range(len(data)):
                writer.write(data[i : i + 1])
                await writer.drain()
                await asyncio.sleep(0)
        else:
            writer.write(data)
            await writer.drain()

    def _reply(self, verb: str) -> bytes:
        replies = self.script[verb]
        return replies.pop(0) if len(replies) > 1 else replies[0]

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await self._send(writer, b"220 wire.test ESMTP\r\n")
        buffer = b""
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            self.chunks.append(chunk)
            buffer += chunk
            replies = b""
            while b"\r\n" in buffer:
                line, buffer = buffer.split(b"\r\n", 1)
                verb = line.split(b" ", 1)[0].split(b":", 1)[0].upper().decode()
                if verb == "EHLO":
                    replies += b"250-wire.test\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n250 8BITMIME\r\n"
                elif verb == "QUIT":
                    replies += b"221 bye\r\n"
                else:
                    replies += self._reply(verb)
                if HANG_UP in replies:
                    await self._send(writer, replies.partition(HANG_UP)[0])
                    writer.close()
                    return
                if verb == "DATA" and replies.endswith(b"354 go on\r\n"):
                    await self._send(writer, replies)
                    replies = b""
                    while not (buffer == b".\r\n" or buffer.startswith(b".\r\n") or b"\r\n.\r\n" in buffer):
                        more = await reader.read(65536)
                        if not more:  # the client gave up on this message and hung up
                            writer.close()
                            return
                        buffer += more
                    if buffer.startswith(b".\r\n"):
                        body, buffer = b".\r\n", buffer[3:]
                    else:
                        body, buffer = buffer.split(b"\r\n.\r\n", 1)
                        body += b"\r\n.\r\n"
                    self.bodies.append(body)
                    replies += self._reply(".")
            await self._send(writer, replies)
            if replies.endswith(b"221 bye\r\n"):
                break
        writer.close()


HANG_UP = b"<hang up>"


def wire_send(server: WireServer, messages: list[Outgoing], timeout: float = 5.0) -> list[Outcome]:
    async def main() -> list[Outcome]:
        listener = await asyncio.start_server(server.serve, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        settings = SmtpSettings(host="127.0.0.1", port=port, security="none", timeout=timeout)
        try:
            return await send_all(SmtpTransport(settings, environ={}), messages)
        finally:
            listener.close()

    return asyncio.run(main())


@pytest.mark.parametrize("drip", [False, True], ids=["one segment", "a byte a segment"])
def test_pipelined_commands_go_in_one_write_and_replies_are_read_however_they_come(drip: bool) -> None:
    server = WireServer(
        {
            "MAIL": [b"250-2.1.0 sender\r\n250 2.1.0 ok\r\n"],  # multi-line replies, too
            "RCPT": [b"250 2.1.5 ok\r\n"],
            "DATA": [b"354 go on\r\n"],
            ".": [b"250-2.0.0 queued\r\n250 2.0.0 as A1\r\n", b"250 2.0.0 queued as A2\r\n"],
        },
        drip=drip,
    )
    outcomes = wire_send(server, many(2))
    assert outcomes == [
        Outcome("sent", 250, "2.0.0 queued\n2.0.0 as A1"),
        Outcome("sent", 250, "2.0.0 queued as A2"),
    ]
    pipelined = [c for c in server.chunks if c.startswith(b"MAIL")]
    assert len(pipelined) == 2
    for n, chunk in enumerate(pipelined, 1):
        assert chunk.startswith(b"MAIL FROM:<bounces@ecomuseum.kz> SIZE=")
        assert chunk.endswith(f"\r\nRCPT TO:<j{n}@example.kz>\r\nDATA\r\n".encode())
    assert [b.endswith(b"\r\n.\r\n") for b in server.bodies] == [True, True]


def test_data_accepted_after_the_only_recipient_was_refused_is_ended_empty() -> None:
    """RFC 2920 3.1: if DATA gets 354 although no RCPT was accepted, send a lone dot."""
    server = WireServer(
        {
            "MAIL": [b"250 ok\r\n"],
            "RCPT": [b"550 5.1.1 no such user\r\n", b"250 ok\r\n"],
            "DATA": [b"354 go on\r\n"],
            ".": [b"554 5.5.1 no valid recipients\r\n", b"250 2.0.0 queued\r\n"],
            "RSET": [b"250 flushed\r\n"],
        }
    )
    outcomes = wire_send(server, many(2))
    assert outcomes == [Outcome("failed", 550, "5.1.1 no such user"), Outcome("sent", 250, "2.0.0 queued")]
    assert server.bodies[0] == b".\r\n"  # the refused recipient's message never went out
    assert b"Subject:" in server.bodies[1]


OK = {"MAIL": [b"250 ok\r\n"], "RCPT": [b"250 ok\r\n"], "DATA": [b"354 go on\r\n"], ".": [b"250 queued\r\n"]}


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        pytest.param(
            {"MAIL": [b"421 4.3.2 shutting down\r\n", b"250 ok\r\n"], "RCPT": [b"", b"250 ok\r\n"]},
            Outcome("deferred", 421, "4.3.2 shutting down"),
            id="421 to MAIL, then silence",
        ),
        pytest.param(
            {"MAIL": [b"250 ok\r\n" + HANG_UP, b"250 ok\r\n"]},
            Outcome(
                "deferred", None, "connection lost (Unexpected EOF received) before the message was sent"
            ),
            id="hang-up after the reply to MAIL",
        ),
        pytest.param(
            {"RCPT": [b"", b"250 ok\r\n"], "DATA": [b"", b"354 go on\r\n"]},
            Outcome("deferred", None, "no reply within 1 s before the message was sent"),
            id="no reply to RCPT",
        ),
        pytest.param(
            {"MAIL": [b"250-" + b"x" * 9000 + b"\r\n250 ok\r\n", b"250 ok\r\n"]},
            Outcome("deferred", None, "unexpected reply before the message was sent: -1 Response too long"),
            id="a reply line too long",
        ),
    ],
)
def test_a_pipelined_batch_answered_in_part(script: dict[str, list[bytes]], expected: Outcome) -> None:
    """The message is deferred without waiting out the timeout where the server is going away,
    the session is dropped, and the next message goes through on a new connection."""
    server = WireServer({**OK, **script})
    started = time.monotonic()
    # A long timeout, so that "did not wait it out" is told apart from a slow, loaded machine.
    timeout = 8.0 if expected.code == 421 else 1.0
    outcomes = wire_send(server, many(2), timeout=timeout)
    assert outcomes == [expected, Outcome("sent", 250, "queued")]
    assert server.connections == 2
    assert len(server.bodies) == 1
    if expected.code == 421:
        assert time.monotonic() - started < timeout - 2  # did not wait for RCPT's and DATA's replies


def test_no_reply_to_the_empty_data_drops_the_session() -> None:
    """After a 354 to DATA with the only recipient refused, the lone dot is not answered: a late
    answer could be taken for the next command's, so the next message gets a new connection."""
    server = WireServer(
        {**OK, "RCPT": [b"550 5.1.1 no such user\r\n", b"250 ok\r\n"], ".": [b"", b"250 queued\r\n"]}
    )
    outcomes = wire_send(server, many(2), timeout=1.0)
    assert outcomes == [Outcome("failed", 550, "5.1.1 no such user"), Outcome("sent", 250, "queued")]
    assert server.connections == 2
