"""What ``status`` and ``report`` show: formulas in CSV cells are
neutralised, ``sent_at`` and ``outlet`` are reported (migration 3 backfills ``sent_at``), RELEASE is
found as ``send`` finds it. (The ledger's side, on both engines, is in test_ledger.py.)"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

from helpers import RELEASE_ID, run, write_contacts

FORMULA = '=HYPERLINK("http://x","y")'


def read_csv(path: Path) -> list[dict[str, str]]:
    text = path.read_text(encoding="utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def test_report_csv_neutralises_formulas(office: Path) -> None:
    write_contacts(
        office,
        "press",
        [
            f'formula@example.org,"{FORMULA.replace(chr(34), chr(34) * 2)}",en,,+7 701 000 00 00,,,,,',
            "plain@example.org,Plain Name,en,,@outlet,,,,,",
            "minus@example.org,-1+2,en,,Normal,,,,,",
        ],
    )
    code, out = run("send", RELEASE_ID, "--list", "press", "--yes")
    assert code == 0, out
    code, out = run("report", RELEASE_ID, "--format", "csv", "-o", "report.csv")
    assert code == 0, out
    rows = {row["address"]: row for row in read_csv(office / "report.csv")}
    assert rows["formula@example.org"]["name"] == "'" + FORMULA
    assert rows["formula@example.org"]["outlet"] == "'+7 701 000 00 00"
    assert rows["plain@example.org"]["outlet"] == "'@outlet"
    assert rows["minus@example.org"]["name"] == "'-1+2"
    for row in rows.values():
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), (row, value)
    # JSON is for scripts: the values as they are
    code, out = run("report", RELEASE_ID, "--format", "json")
    names = {r["address"]: r["name"] for r in json.loads(out)}
    assert names["formula@example.org"] == FORMULA


def test_report_has_sent_at_and_outlet(office: Path) -> None:
    code, out = run("send", RELEASE_ID, "--yes")
    assert code == 0, out
    code, out = run("report", RELEASE_ID, "--format", "json")
    assert code == 0, out
    records = json.loads(out)
    sent = [r for r in records if r["status"] == "sent"]
    assert sent and all(r["sent_at"] for r in sent)
    assert all(r["sent_at"] is None for r in records if r["status"] != "sent")
    by_address = {r["address"]: r for r in records}
    assert by_address["aigerim.nurlanova@example.org"]["outlet"] == "Карагандинское обозрение"
    assert list(records[0])[:5] == ["address", "name", "outlet", "language", "template"]
    # a later run moves updated_at of every row, never sent_at
    before = {r["address"]: r["sent_at"] for r in sent}
    run("send", RELEASE_ID, "--yes")
    code, out = run("report", RELEASE_ID, "--format", "json")
    after = {r["address"]: r["sent_at"] for r in json.loads(out) if r["status"] == "sent"}
    assert after == before


def test_report_and_status_of_a_missing_release_are_errors(office: Path) -> None:
    code, out = run("send", RELEASE_ID, "--yes")
    assert code == 0
    for command in ("report", "status"):
        code, out = run(command, "2026-11-eu-karagnda")
        assert code == 1, (command, out)
        assert "reldist: error: 2026-11-eu-karagnda: no such release" in out
        assert f"releases here: {RELEASE_ID}" in out
        assert f"did you mean {RELEASE_ID!r}?" in out
    code, out = run("report", "nothing-like-it", "--format", "csv", "-o", "r.csv")
    assert code == 1
    assert not (office / "r.csv").exists()


def test_report_and_status_find_a_release_as_send_does(office: Path) -> None:
    """A release whose id differs from its folder's name: given either, or the folder's path."""
    toml = office / "releases" / RELEASE_ID / "release.toml"
    toml.write_text('id = "eu-karaganda-final"\n' + toml.read_text(encoding="utf-8"), encoding="utf-8")
    code, out = run("send", "eu-karaganda-final", "--yes")
    assert code == 0, out
    for name in (RELEASE_ID, "eu-karaganda-final", f"releases/{RELEASE_ID}"):
        code, out = run("status", name)
        assert code == 0, (name, out)
        assert out.startswith("eu-karaganda-final: 14 recipients"), (name, out)
        code, out = run("report", name, "--format", "json")
        assert code == 0 and len(json.loads(out)) == 14, (name, out)


def test_status_of_a_release_whose_folder_is_gone_reads_the_ledger(office: Path) -> None:
    code, out = run("send", RELEASE_ID, "--yes")
    assert code == 0
    shutil.rmtree(office / "releases" / RELEASE_ID)
    code, out = run("status", RELEASE_ID)
    assert code == 0, out
    assert "sent" in out
