"""A journalist's reply stays visible behind a later auto-reply: ``status RELEASE`` lists every
reply (date, sender, first lines) while ``report``'s feedback column keeps the latest event.
The example is sent to the outbox by the real command; the events are recorded through the
feedback store into the real SQLite ledger, as ``reldist inbox`` records them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from helpers import RELEASE_ID, run
from reldist.feedback.store import Feedback
from reldist.ledger import Ledger


def test_status_lists_a_reply_a_later_auto_reply_would_hide(office: Path) -> None:
    code, out = run("send", RELEASE_ID, "--yes")
    assert code == 0, out
    with Ledger.open(office / "reldist.db") as ledger:
        row = next(r for r in ledger.rows(RELEASE_ID) if r.address == "e.kim@example.net")
        feedback = Feedback(ledger)
        noon = dt.datetime(2026, 12, 1, 7, 0, tzinfo=dt.UTC)
        assert feedback.record(
            row,
            "replied",
            source="inbox",
            detail="Спасибо, опубликуем в четверг.",
            happened_at=noon,
            incoming="<r1@x>",
        )
        assert feedback.record(
            row,
            "auto-replied",
            source="inbox",
            detail="Out of office",
            happened_at=noon + dt.timedelta(hours=2),
            incoming="<r2@x>",
        )
    code, out = run("status", RELEASE_ID)
    assert code == 0, out
    assert "Replies (first lines" in out
    assert "  2026-12-01T12:00:00+05:00 e.kim@example.net: Спасибо, опубликуем в четверг." in out
    code, out = run("report", RELEASE_ID, "--format", "json")
    found = next(r for r in json.loads(out) if r["address"] == "e.kim@example.net")
    assert found["feedback"] == "auto-replied" and found["feedback_detail"] == "Out of office"
