"""Counts and grammar agree between check, preview, status and check's JSON: "1 recipient",
and as many notes and warnings shown as counted."""

from __future__ import annotations

import json
import re
from pathlib import Path

from helpers import RELEASE_ID, run, write_contacts


def test_one_recipient_is_singular_everywhere(office: Path) -> None:
    write_contacts(office, "one", ["solo@example.org,Solo,en,,,,,,,"])
    code, out = run("check", RELEASE_ID, "--list", "one")
    assert code == 0, out
    assert "1 recipient ready (" in out and "1 recipients" not in out
    code, text = run("check", RELEASE_ID, "--list", "one", "--format", "json")
    data = json.loads(text)
    assert data["recipients"]["ready"] == 1
    shown = {level: len(re.findall(rf"^\s+{level}: ", out, re.M)) for level in ("error", "warning", "note")}
    assert shown == data["counts"], (shown, data["counts"])
    assert f"{data['counts']['note']} note" in out
    code, out = run("preview", RELEASE_ID, "--list", "one")
    assert code == 0 and out.startswith("1 recipient ("), out
    code, out = run("send", RELEASE_ID, "--list", "one", "--yes")
    assert code == 0, out
    code, out = run("status", RELEASE_ID)
    assert out.startswith(f"{RELEASE_ID}: 1 recipient\n"), out


def test_many_are_plural(office: Path) -> None:
    code, out = run("check", RELEASE_ID)
    assert "13 recipients ready (" in out and "0 duplicates merged" in out
