"""``reldist check`` as a deliverability check: each warning names its place and quotes what it found.

A workspace is made with one problem of every kind the check knows (written into real release,
template, contact and config files), then checked through the library and through the command
(terminal and ``--format json``), with the exit codes of warnings, ``--strict`` and errors.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from helpers import RELEASE_ID, make_workspace
from reldist.cli import main
from reldist.deliverability import check_release, html_size_as_sent
from reldist.findings import CheckResult, Finding
from reldist.job import Job
from reldist.release import find_release, load_release
from reldist.workspace import open_workspace

RELEASE = f"releases/{RELEASE_ID}"
NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
LONG_SUBJECT = (
    "EU project supports Karaganda region in tackling climate change, and much more news from the steppe"
)


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, (path, old)
    write(path, text.replace(old, new, 1))


@pytest.fixture
def troubled(tmp_path: Path) -> Iterator[Path]:
    """The example workspace with one of every problem the check looks for."""
    root = make_workspace(tmp_path / "office")
    folder = root / "releases" / RELEASE_ID
    (folder / "files").mkdir()
    (folder / "files" / "memorandum.pdf").write_bytes(b"%PDF-1.4\n" + b"x" * 3000)
    write(
        folder / "release.toml",
        f"""languages = ["ru", "en"]
lists = ["regional", "national"]
template = "release"
send_at = 2026-11-28T10:00:00+05:00
embargo = 2026-11-28T10:30:00+05:00
attachments = ["files/memorandum.pdf"]

[ru]
file = "ru.md"
subject = "Проект ЕС поддерживает Карагандинскую область"
preheader = "ЭкоМузей и областное управление подписали меморандум"

[en]
file = "en.md"
subject = "{LONG_SUBJECT}"
""",
    )
    en = folder / "en.md"
    write(
        en,
        en.read_text(encoding="utf-8")
        + "\n![](https://ecomuseum.kz/photo.jpg)\n\n"
        + "See the [old site](http://ecomuseum.kz/old) and the [memorandum](files/memorandum.pdf).\n",
    )
    ru = folder / "ru.md"
    write(ru, ru.read_text(encoding="utf-8") + "\n![Подписание меморандума](photo.jpg)\n")
    templates = root / "templates"
    edit(
        templates / "release.html.j2",
        "<h1>{{ s.title }}</h1>",
        "<h1>{{ s.title }}</h1>\n{% if recipient.outlet %}<p>For {{ recipient.outlet }}</p>{% endif %}",
    )
    edit(
        templates / "base.html.j2",
        "<p>{{ sender.name }}",
        '<img src="https://ecomuseum.kz/logo.png" width="120">\n'
        '<a href="file:///C:/Users/irina/scan.pdf">scan</a>\n'
        "{% if recipient.region is defined %}<p>{{ recipient.region }}</p>{% endif %}\n<p>{{ sender.name }}",
    )
    write(
        root / "contacts" / "regional.csv",
        "email,name,lang,outlet\n"
        "ivan@example.org,Иван Петров,ru,\n"
        "aigul@example.org,Айгуль,kk,\n"
        "bad@@example.org,Плохой,ru,\n",
    )
    write(
        root / "contacts" / "national.csv",
        "email,name,lang,outlet,region\nolga@example.org,Ольга,en,Steppe Standard,Astana\n",
    )
    config = root / "reldist.toml"
    edit(config, '[unsubscribe]\nmailto = "unsubscribe@ecomuseum.example"\n', "")
    write(
        config,
        config.read_text(encoding="utf-8")
        + '\n[check]\nmax_html = "20KB"\nmax_attachments = "2KB"\n\n[dispatch]\nembargo_lead = "2h"\n',
    )
    old = os.getcwd()
    os.chdir(root)
    try:
        yield root
    finally:
        os.chdir(old)


def check(root: Path, now: dt.datetime = NOW) -> CheckResult:
    ws = open_workspace(start=root)
    release = load_release(find_release(RELEASE_ID, ws.root), workspace=ws.root)
    return check_release(Job(ws, release), now=now)


def by_code(result: CheckResult, code: str) -> list[Finding]:
    return [f for f in result.findings if f.code == code]


def test_every_problem_is_named_with_its_place_and_what_was_found(troubled: Path) -> None:
    result = check(troubled)
    md = f"releases/{RELEASE_ID}/en.md"
    toml = f"releases/{RELEASE_ID}/release.toml"

    (alt,) = [f for f in by_code(result, "image-alt") if f.place.startswith(md)]
    assert alt.found == "https://ecomuseum.kz/photo.jpg" and "no alt text" in alt.message
    assert alt.place == f"{md}:{_line(troubled / md, 'photo.jpg')}"
    (logo,) = [f for f in by_code(result, "image-alt") if f.place.startswith("templates/")]
    assert logo.found == "https://ecomuseum.kz/logo.png"
    assert logo.place == f"templates/base.html.j2:{_line(troubled / 'templates/base.html.j2', 'logo.png')}"

    (http,) = by_code(result, "http-link")
    assert http.found == "http://ecomuseum.kz/old" and http.place.startswith(md + ":")
    assert "'http://ecomuseum.kz/old'" in http.message

    local = {f.found: f.place for f in by_code(result, "local-link")}
    assert local == {
        "files/memorandum.pdf": f"{md}:{_line(troubled / md, 'files/memorandum.pdf')}",
        "file:///C:/Users/irina/scan.pdf": f"templates/base.html.j2:{_line(troubled / 'templates/base.html.j2', 'scan.pdf')}",
        "photo.jpg": f"releases/{RELEASE_ID}/ru.md:{_line(troubled / 'releases' / RELEASE_ID / 'ru.md', 'photo.jpg')}",
    }

    (preheader,) = by_code(result, "preheader")
    assert preheader.place == f"{toml} [en] preheader"
    (long,) = by_code(result, "subject-long")
    assert long.found == LONG_SUBJECT and long.place == f"{toml} [en] subject"
    assert f"{len(LONG_SUBJECT)} characters" in long.message

    sizes = by_code(result, "html-size")
    assert sizes and all("over check.max_html 20.0 KB" in f.message for f in sizes)
    assert {f.place for f in sizes} >= {"templates/release.html.j2 (ru, en)"}

    (attachments,) = by_code(result, "attachments-size")
    assert (
        "'files/memorandum.pdf' 2.9 KB" in attachments.message and attachments.place == f"{toml} attachments"
    )

    (lead,) = by_code(result, "embargo-lead")
    assert "ends only 30 min after send_at" in lead.message and "embargo_lead asks for 2 h" in lead.message

    (language,) = by_code(result, "language-missing")
    assert language.found == "kk" and "contacts/regional.csv:3" in language.message

    variables = {(f.found, f.place) for f in by_code(result, "variable-unfilled")}
    release_line = _line(troubled / "templates/release.html.j2", "recipient.outlet")
    base_line = _line(troubled / "templates/base.html.j2", "recipient.region")
    assert variables == {
        ("recipient.outlet", f"templates/release.html.j2:{release_line}"),
        ("recipient.region", f"templates/base.html.j2:{base_line}"),
    }
    messages = " ".join(f.message for f in by_code(result, "variable-unfilled"))
    assert "contacts/regional.csv" in messages and "contacts/national.csv" not in messages
    assert "the column is empty" in messages and "the column is missing" in messages

    (unsubscribe,) = by_code(result, "unsubscribe-missing")
    assert unsubscribe.place == "reldist.toml [unsubscribe]"
    (auth,) = by_code(result, "authentication")
    assert auth.level == "note" and "SPF" in auth.message and "DMARC" in auth.message

    (bad,) = by_code(result, "bad-row")
    assert bad.place == "contacts/regional.csv:4" and "'bad@@example.org'" in bad.message
    assert result.count("error") == 0
    assert result.exit_code() == 0 and result.exit_code(strict=True) == 1


def test_embargo_passed_and_embargo_before_send_at(troubled: Path) -> None:
    result = check(troubled, now=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    (passed,) = by_code(result, "embargo-passed")
    assert "has passed" in passed.message and passed.found == "2026-11-28T10:30:00+05:00"
    assert not by_code(result, "embargo-lead")

    toml = troubled / "releases" / RELEASE_ID / "release.toml"
    edit(toml, "embargo = 2026-11-28T10:30:00+05:00", "embargo = 2026-11-28T09:00:00+05:00")
    (early,) = by_code(check(troubled), "embargo-lead")
    assert "ends before it is sent" in early.message
    edit(toml, "embargo = 2026-11-28T09:00:00+05:00", "embargo = 2026-11-28T14:00:00+05:00")
    assert not by_code(check(troubled), "embargo-lead")


def test_a_clean_release_has_no_warnings_about_content(tmp_path: Path) -> None:
    root = make_workspace(tmp_path / "office")
    result = check(root)
    codes = {f.code for f in result.findings if f.level != "note"}
    assert not codes & {
        "image-alt",
        "http-link",
        "local-link",
        "preheader",
        "subject-long",
        "html-size",
        "attachments-size",
        "unsubscribe-missing",
        "variable-unfilled",
        "embargo-passed",
        "embargo-lead",
    }


@pytest.mark.parametrize(
    ("host", "noted"),
    [("smtp.office365.com", True), ("127.0.0.1", True), ("email-smtp.eu-west-1.amazonaws.com", False)],
)
def test_spf_dkim_dmarc_note_unless_a_relay_signs(tmp_path: Path, host: str, noted: bool) -> None:
    root = make_workspace(tmp_path / "office")
    config = root / "reldist.toml"
    write(config, config.read_text(encoding="utf-8") + f'\n[smtp]\nhost = "{host}"\n')
    notes = by_code(check(root), "authentication")
    assert bool(notes) is noted
    if noted:
        assert f"'{host}' is not a relay that signs for you" in notes[0].message


def test_terminal_report_is_grouped_and_keeps_the_preflight_lines(troubled: Path) -> None:
    result = CliRunner().invoke(main, ["check", RELEASE], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "skipped: contacts/regional.csv:4: 'bad@@example.org' is not an email address" in out
    assert "2 recipients ready" in out or "3 recipients ready" in out
    assert "Check passed: nothing was sent." in out
    headings = [
        line.strip() for line in out.splitlines() if line.startswith("  ") and not line.startswith("    ")
    ]
    assert headings == [
        "Content",
        "Subject and preheader",
        "Languages",
        "Personalisation",
        "Attachments",
        "Timing",
        "Unsubscribe",
        "Authentication",
    ]
    assert "warning: releases/2026-11-eu-karaganda/en.md:" in out
    assert "17 warnings (1 of them bad contact rows, listed above)" in out

    strict = CliRunner().invoke(main, ["check", RELEASE, "--strict"], catch_exceptions=False)
    assert strict.exit_code == 1
    assert "Check failed (--strict: warnings count as errors)" in strict.output


def test_json_report_for_scripts(troubled: Path) -> None:
    result = CliRunner().invoke(main, ["check", RELEASE, "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["release"] == RELEASE_ID and data["ok"] is True and data["exit_code"] == 0
    assert data["recipients"]["skipped"] == 1
    assert data["counts"]["warning"] == sum(1 for f in data["findings"] if f["level"] == "warning") > 10
    codes = {f["code"] for f in data["findings"]}
    assert {"http-link", "local-link", "image-alt", "variable-unfilled", "bad-row"} <= codes
    assert all(f["place"] and f["message"] for f in data["findings"])

    strict = CliRunner().invoke(
        main, ["check", RELEASE, "--format", "json", "--strict"], catch_exceptions=False
    )
    assert strict.exit_code == 1
    assert json.loads(strict.output)["ok"] is False


def test_json_report_of_an_error(troubled: Path) -> None:
    edit(troubled / "templates" / "release.html.j2", "<h1>{{ s.title }}</h1>", "<h1>{{ s.title }</h1>")
    result = CliRunner().invoke(main, ["check", RELEASE, "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 1
    data = json.loads(result.output)
    (error,) = data["findings"]
    assert data["ok"] is False and error["level"] == "error"
    assert error["place"].startswith("templates/release.html.j2:")
    text = CliRunner().invoke(main, ["check", RELEASE])
    assert text.exit_code == 1 and "templates/release.html.j2:" in text.output


def test_html_size_is_measured_as_sent() -> None:
    # base64 of 57 bytes is one 76-character line plus CRLF
    assert html_size_as_sent("a" * 57) == 78
    # Cyrillic is two bytes a letter; line ends become CRLF before encoding
    assert html_size_as_sent("я" * 10 + "\n") == 4 * 8 + 2


def _line(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")
