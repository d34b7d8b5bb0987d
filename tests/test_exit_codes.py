"""Exit codes that tell cron the truth, against a real aiosmtpd server and the real command.

A server that refuses our settings (535, no STARTTLS, a certificate that does not verify) is
configuration: exit 1, running again will not help. A server that cannot be reached is 4, and
the run never claims "nothing to send" while recipients wait. A server that goes away in the
middle of a run leaves the rest queued or deferred (never sent), exits 4, and the next run
finishes. ``--limit`` that stopped a run with everything attempted delivered is 0.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from smtpfixtures import smtp_server
from test_send_smtp import office, send


def statuses(root: Path) -> dict[str, str]:
    db = sqlite3.connect(root / "reldist.db")
    try:
        return dict(db.execute("SELECT address, status FROM deliveries WHERE status NOT IN ('suppressed')"))
    finally:
        db.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_wrong_password_is_configuration_exit_1_and_asked_once(tmp_path: Path) -> None:
    with smtp_server(users={"press@ecomuseum.example": "right"}) as server:
        root = office(
            tmp_path,
            server.port,
            recipients=3,
            connections=1,
            username="press@ecomuseum.example",
            password_env="RELDIST_T_PW",
        )
        os.environ["RELDIST_T_PW"] = "wrong"
        try:
            code, out = send(root)
        finally:
            del os.environ["RELDIST_T_PW"]
        assert code == 1, out
        assert "535" in out and "Fix [smtp] in reldist.toml" in out
        assert len(server.logins) == 1  # no retry: each failed login counts towards a lockout
    assert set(statuses(root).values()) == {"queued"}


def test_no_starttls_is_configuration_exit_1(tmp_path: Path) -> None:
    with smtp_server() as server:  # plain text only: no STARTTLS offered
        root = office(tmp_path, server.port, recipients=2, security="starttls")
        code, out = send(root)
        assert code == 1, out
        assert "STARTTLS" in out
        assert not server.messages


def test_certificate_that_does_not_verify_is_configuration_exit_1(tmp_path: Path) -> None:
    with smtp_server(tls="tls") as server:  # its CA is not given as ca_file
        root = office(tmp_path, server.port, recipients=2, security="tls")
        code, out = send(root)
        assert code == 1, out
        assert "certificate verification failed" in out
        assert not server.messages


def test_unreachable_is_exit_4_and_never_nothing_to_send(tmp_path: Path) -> None:
    root = office(tmp_path, free_port(), recipients=3)
    code, out = send(root)
    assert code == 4, out
    assert "nothing to send" not in out
    assert "This run: nothing sent." in out
    assert "queued 3" in out
    assert set(statuses(root).values()) == {"queued"}


def test_server_gone_mid_run_leaves_the_rest_queued_or_deferred_and_the_next_run_finishes(
    tmp_path: Path,
) -> None:
    total = 8
    with smtp_server() as server:
        root = office(
            tmp_path,
            server.port,
            recipients=total,
            connections=1,
            messages_per_connection=3,  # the 4th message needs a new connection
            rate="10/second",
        )

        def stop_after_three() -> None:
            deadline = time.monotonic() + 60
            while len(server.messages) < 3 and time.monotonic() < deadline:
                time.sleep(0.005)
            server.stop()

        watcher = threading.Thread(target=stop_after_three)
        watcher.start()
        code, out = send(root)
        watcher.join()
        first = Counter(rcpt for message in server.messages for rcpt in message.rcpt_tos)
    assert code == 4, out
    assert "This run: sent 3" in out
    after = statuses(root)
    assert {a for a, s in after.items() if s == "sent"} == set(first)  # sent means it arrived
    rest = {s for a, s in after.items() if a not in first}
    assert rest <= {"queued", "deferred"} and "deferred" in rest, after
    assert len(first) == 3

    with smtp_server() as again:
        config = root / "reldist.toml"
        text = config.read_text(encoding="utf-8")
        config.write_text(re.sub(r"port = \d+", f"port = {again.port}", text), encoding="utf-8")
        code, out = send(root)
        second = Counter(rcpt for message in again.messages for rcpt in message.rcpt_tos)
    assert code == 0, out
    assert set(statuses(root).values()) == {"sent"}
    assert not set(first) & set(second)  # nobody twice
    assert len(first) + len(second) == total and max(second.values()) == 1


def test_dispatch_log_names_the_cause_not_a_bad_contact_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad contact row is reported first; what stopped the release was the missing password."""
    from helpers import make_workspace, set_lists, write_contacts
    from test_dispatch import add_release, at, invoke, log_lines, real_now

    root = make_workspace(tmp_path / "office")
    write_contacts(root, "press", ["ivan@example.org,Иван,ru,,,,,,,", "bad@@example.org,Плохой,ru,,,,,,,"])
    set_lists(root, "press")
    with (root / "reldist.toml").open("a", encoding="utf-8") as handle:
        handle.write(
            f'\n[smtp]\nhost = "127.0.0.1"\nport = {free_port()}\nsecurity = "none"\n'
            'username = "press@ecomuseum.example"\npassword_env = "RELDIST_MISSING_PW"\n'
        )
    add_release(root, "due-now", send_at=at(real_now() - dt.timedelta(minutes=5)))
    monkeypatch.delenv("RELDIST_MISSING_PW", raising=False)
    monkeypatch.chdir(root)
    result = invoke("dispatch")
    assert result.exit_code == 1, result.output
    (line,) = [line for line in log_lines(root) if "event=release" in line]
    assert "action=broken" in line
    error = line.split("error=", 1)[1]
    assert "RELDIST_MISSING_PW" in error, line
    assert "contacts/press.csv:3" not in error, line
