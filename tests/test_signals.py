"""SIGTERM (kill, systemd stop) and SIGINT (Ctrl-C) stop 'reldist send' gently: no new message
starts, the one in flight is finished and recorded, and the exit code says which signal (143,
130). A real 'reldist send' process, a real aiosmtpd server that is slow to answer one DATA."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from helpers import RELEASE_ID
from smtpfixtures import smtp_server
from test_send_smtp import office


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_finishes_the_message_in_flight_and_records_it(
    tmp_path: Path, signum: signal.Signals, code: int
) -> None:
    with smtp_server(slow_data={3}, delay=1.5) as server:
        root = office(tmp_path, server.port, recipients=10, connections=1)
        process = subprocess.Popen(
            [sys.executable, "-m", "reldist", "send", RELEASE_ID, "--yes"],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        )
        deadline = time.monotonic() + 60
        while not server.unanswered and time.monotonic() < deadline:  # the 3rd DATA, unanswered
            time.sleep(0.01)
        assert server.unanswered, "the third message never arrived"
        process.send_signal(signum)
        out, _ = process.communicate(timeout=60)
        received = Counter(rcpt for message in server.messages for rcpt in message.rcpt_tos)
    assert process.returncode == code, out
    assert f"interrupted by {signum.name}" in out
    db = sqlite3.connect(root / "reldist.db")
    rows = dict(db.execute("SELECT address, status FROM deliveries WHERE status != 'suppressed'"))
    db.close()
    assert not {"sending", "unknown"} & set(rows.values()), rows  # nothing left in doubt
    assert {a for a, s in rows.items() if s == "sent"} == set(received)  # the slow one too
    assert len(received) == 3, received  # no new message after the signal
    assert {s for a, s in rows.items() if a not in received} == {"queued"}
