"""Two ``reldist dispatch`` processes started together on one PostgreSQL ledger with a due release
(real processes, a real aiosmtpd): the release is planned once, every recipient gets exactly one
copy (the messages the server received, parsed back), both dispatchers finish, and dispatch.log
says what each did."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import psycopg
import pytest

from smtpfixtures import smtp_server
from test_dispatch import MINUTE, add_release, at, log_lines, real_now, start_dispatcher
from test_pg_commands import use_ledger
from test_send_smtp import office


@pytest.mark.slow
def test_two_dispatchers_on_postgresql_share_a_due_release(tmp_path: Path, pg_url: str) -> None:
    total = 120
    with smtp_server(slow_data=set(range(1, 5000)), delay=0.05) as server:
        root = office(tmp_path, server.port, recipients=total, connections=1)
        add_release(root, "now", at(real_now() - MINUTE))
        use_ledger(root, pg_url)
        processes = [start_dispatcher(root), start_dispatcher(root)]
        outputs = [p.communicate(timeout=120) for p in processes]
        messages = list(server.messages)
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0 and (out, err) == ("", ""), (out, err)  # quiet on success

    with psycopg.connect(pg_url) as db:
        rows = {
            address: (status, sender, plan, message_id)
            for address, status, sender, plan, message_id in db.execute(
                "SELECT address, status, sender, plan, message_id FROM deliveries WHERE release_id = 'now'"
            )
        }
        senders = dict(db.execute("SELECT id, pid FROM senders WHERE release_id = 'now'"))
    assert len(rows) == total
    assert {status for status, _, _, _ in rows.values()} == {"sent"}
    assert {plan for _, _, plan, _ in rows.values()} == {1}  # planned once, not once per dispatcher
    by_sender = Counter(sender for _, sender, _, _ in rows.values())
    assert set(by_sender) == set(senders) and len(senders) == 2 and min(by_sender.values()) >= 1
    assert sorted(senders.values()) == sorted(p.pid for p in processes)

    # What the server received, parsed back: one message per recipient, each its own.
    assert Counter(rcpt for message in messages for rcpt in message.rcpt_tos) == Counter(set(rows))
    for message in messages:
        [rcpt] = message.rcpt_tos
        parsed = message.message
        assert parsed["To"].addresses[0].addr_spec == rcpt
        assert parsed["Message-ID"] == rows[rcpt][3]

    # dispatch.log: each dispatcher says once what it did with the release, and the shares add up.
    lines = log_lines(root)
    released = [line for line in lines if "event=release release=now" in line]
    assert len(released) == 2 and {f"pid={p.pid}" for p in processes} == {
        line.split()[1] for line in released
    }
    shares = {line.split()[1]: line for line in released}
    for process in processes:
        line = shares[f"pid={process.pid}"]
        sent = by_sender[next(s for s, pid in senders.items() if pid == process.pid)]
        assert "state=due action=sent" in line and f'outcome="sent {sent}" exit=0' in line, line
    runs = [line for line in lines if "event=run" in line]
    assert len(runs) == 2 and all("problems=0 exit=0" in line for line in runs), runs
    assert len(lines) == 4, lines
