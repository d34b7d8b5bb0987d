"""Preview pages and test copies carry the Date the real message will: in the workspace's zone,
and on the day the release is scheduled when it is scheduled."""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from pathlib import Path

import pytest

from helpers import RELEASE_ID, parse, run

ALMATY = dt.timezone(dt.timedelta(hours=5))


def schedule(office: Path, when: dt.datetime) -> None:
    toml = office / "releases" / RELEASE_ID / "release.toml"
    toml.write_text(f"send_at = {when.isoformat()}\n" + toml.read_text(encoding="utf-8"), encoding="utf-8")


def copy_dates(office: Path) -> list[str]:
    return [
        parse(path.read_bytes())["Date"]
        for path in sorted((office / "outbox" / RELEASE_ID / "test").glob("*.eml"))
    ]


def preview_dates(office: Path) -> list[str]:
    found = []
    for path in (office / "preview" / RELEASE_ID / "recipients").glob("*.js"):
        found += re.findall(r'"Date", "([^"]+)"', path.read_text(encoding="utf-8"))
    return found


@pytest.mark.parametrize("scheduled", [False, True])
def test_preview_and_test_copies_date_in_the_workspace_zone(office: Path, scheduled: bool) -> None:
    when = (dt.datetime.now(ALMATY) + dt.timedelta(days=3)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    if scheduled:
        schedule(office, when)
    code, out = run("send", RELEASE_ID, "--test", "me@ecomuseum.example")
    assert code == 0, out
    code, out = run("preview", RELEASE_ID)
    assert code == 0, out
    dates = copy_dates(office) + preview_dates(office)
    assert len(dates) > 10
    for text in dates:
        assert text.endswith("+0500"), text  # Asia/Almaty, as the real sends
        shown = email.utils.parsedate_to_datetime(text)
        if scheduled:
            assert shown == when
        else:
            assert abs(shown - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
