"""What each SMTP reply means for a message (the pure table of transport/replies.py), and the
aiosmtplib internals the pipelined session relies on, checked against the installed aiosmtplib
and a real aiosmtpd server."""

from __future__ import annotations

import asyncio
import inspect
from importlib.metadata import version

import aiosmtplib
import pytest

from reldist.envelope import Outcome
from reldist.transport.connect import Connector, hang_up
from reldist.transport.replies import lost, replied
from reldist.transport.secrets import Secrets
from smtpfixtures import SmtpServer

REPLIES = [
    # code, text, after the body?, status, code kept, session dropped
    (250, "2.0.0 Ok: queued as 1", True, "sent", 250, False),
    (251, "2.1.5 will forward", True, "sent", 251, False),
    (450, "4.2.0 mailbox busy", False, "deferred", 450, False),
    (451, "4.3.0 try later", True, "deferred", 451, False),
    (421, "4.4.2 closing", False, "deferred", 421, True),
    (421, "4.4.2 closing", True, "deferred", 421, True),
    (550, "5.1.1 no such user", False, "failed", 550, False),
    (554, "5.7.1 rejected", True, "failed", 554, False),
    (250, "Ok", False, "deferred", None, True),  # a 2xx where a refusal was expected: out of step
    (354, "go ahead", True, "unknown", None, True),
    (199, "what", False, "deferred", None, True),
    (600, "what", True, "unknown", None, True),
]


@pytest.mark.parametrize(("code", "text", "after_body", "status", "kept", "drop"), REPLIES)
def test_what_a_reply_means(
    code: int, text: str, after_body: bool, status: str, kept: int | None, drop: bool
) -> None:
    verdict = replied(code, text, after_body=after_body)
    assert verdict.outcome.status == status
    assert verdict.outcome.code == kept
    assert verdict.drop is drop
    assert text in verdict.outcome.reply
    if kept is None:  # an unexpected reply says so, with its code, and when it came
        assert f"{code} {text}" in verdict.outcome.reply
        assert ("after" if after_body else "before") in verdict.outcome.reply


def test_a_lost_connection_before_the_body_defers_and_after_it_is_unknown() -> None:
    assert lost("connection lost (reset)", after_body=False) == Outcome(
        "deferred", None, "connection lost (reset) before the message was sent"
    )
    assert lost("no reply within 30 s", after_body=True) == Outcome(
        "unknown", None, "no reply within 30 s after the message was sent; it may have been delivered"
    )


def test_aiosmtplib_is_a_tested_major_version() -> None:
    # pyproject.toml pins the range; the session below reaches into aiosmtplib after AUTH.
    major = int(version("aiosmtplib").split(".")[0])
    assert major == 5, (
        "aiosmtplib outside the tested range (5.x): rerun tests/test_smtp_*.py, then widen the pin"
    )


def test_the_aiosmtplib_internals_the_session_takes_over_are_there(smtpd: SmtpServer) -> None:
    # transport/smtp.py hands aiosmtplib's connected transport to its own reader after EHLO and
    # AUTH (Session), reading esmtp_extensions; connect.py uses the public auth_* calls,
    # server_auth_methods, supports_extension, is_ehlo_or_helo_needed and close(). If aiosmtplib
    # renames or reshapes any of them, this fails here rather than as a hang in a send.
    for name in ("auth_plain", "auth_login", "auth_xoauth2", "ehlo", "helo", "connect", "close"):
        assert callable(getattr(aiosmtplib.SMTP, name)), name
    assert "tls_context" in inspect.signature(aiosmtplib.SMTP).parameters

    async def main() -> None:
        settings = smtpd.settings()
        connector = Connector(settings, Secrets(settings, {}), f"{smtpd.host}:{smtpd.port}")
        smtp = await connector.open()
        try:
            transport = smtp.transport
            assert isinstance(transport, asyncio.WriteTransport)
            assert not transport.is_closing()
            assert isinstance(smtp.esmtp_extensions, dict)
            assert "size" in smtp.esmtp_extensions
            assert isinstance(smtp.server_auth_methods, list)
            assert smtp.is_ehlo_or_helo_needed is False
            assert transport.get_protocol() is smtp.protocol  # what Session replaces
            assert callable(transport.set_protocol)
        finally:
            hang_up(smtp)
        assert transport.is_closing()

    asyncio.run(main())
