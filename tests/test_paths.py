"""Names that become paths stay inside the workspace: release ids, attachments, language files,
list names, a contact's template cell; and unknown names get a "did you mean" (difflib)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import RELEASE_ID, run, write_contacts
from reldist.names import bad_list_name, bad_release_id, did_you_mean

RELEASE_TOML = Path("releases") / RELEASE_ID / "release.toml"


def edit_release(office: Path, old: str, new: str) -> None:
    toml = office / RELEASE_TOML
    text = toml.read_text(encoding="utf-8")
    assert old in text
    toml.write_text(text.replace(old, new, 1), encoding="utf-8")


def files_outside(root: Path, office: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_relative_to(office)]


def test_release_id_that_climbs_out_is_refused(office: Path) -> None:
    before = files_outside(office.parent, office)
    edit_release(
        office, 'languages = ["ru", "en", "kk"]', 'id = "../../../escaped"\nlanguages = ["ru", "en", "kk"]'
    )
    code, out = run("send", f"releases/{RELEASE_ID}", "--yes")
    assert code == 1
    assert f"releases/{RELEASE_ID}/release.toml: id: '../../../escaped' is not a release id" in out
    assert files_outside(office.parent, office) == before
    assert not list((office / "outbox").rglob("*.eml"))


@pytest.mark.parametrize("bad", ["a/b", ".hidden", "x\ny", "x\x85y", "", "тест", "a b"])
def test_release_id_rule(bad: str) -> None:
    assert bad_release_id(bad)
    assert bad_release_id("2026-11-eu_karaganda.v2") is None


def test_folder_name_is_the_id_and_must_be_a_slug(office: Path) -> None:
    (office / "releases" / RELEASE_ID).rename(office / "releases" / "my release")
    code, out = run("check", "releases/my release")
    assert code == 1
    assert "the folder name: 'my release' is not a release id" in out
    assert "set id" in out


def test_attachment_outside_the_release_folder_is_refused(office: Path) -> None:
    (office.parent / "private.txt").write_text("secret", encoding="utf-8")
    edit_release(office, "[ru]", 'attachments = ["../../../private.txt"]\n\n[ru]')
    code, out = run("send", RELEASE_ID, "--yes")
    assert code == 1
    assert "release.toml: 'attachments': '../../../private.txt' is outside the release folder" in out
    assert not list((office / "outbox").rglob("*.eml"))


def test_attachment_symlink_to_outside_is_refused_inside_is_fine(office: Path) -> None:
    folder = office / "releases" / RELEASE_ID
    (folder / "files").mkdir()
    (office.parent / "private.txt").write_text("secret", encoding="utf-8")
    (folder / "files" / "memo.txt").symlink_to(office.parent / "private.txt")
    edit_release(office, "[ru]", 'attachments = ["files/memo.txt"]\n\n[ru]')
    code, out = run("check", RELEASE_ID)
    assert code == 1
    assert "'attachments': 'files/memo.txt' is outside the release folder" in out

    (folder / "files" / "memo.txt").unlink()
    (folder / "files" / "real.txt").write_text("public", encoding="utf-8")
    (folder / "files" / "memo.txt").symlink_to(folder / "files" / "real.txt")
    code, out = run("check", RELEASE_ID)
    assert code == 0, out


def test_language_file_outside_the_release_folder_is_refused(office: Path) -> None:
    (office / "secret.md").write_text("# Secret\n\ntext\n", encoding="utf-8")
    edit_release(office, 'file = "en.md"', 'file = "../../secret.md"')
    code, out = run("check", RELEASE_ID)
    assert code == 1
    assert "'en.file': '../../secret.md' is outside the release folder" in out


@pytest.mark.parametrize("bad", ["../secret", "sub/list", ".hidden", "/etc/passwd", " lead"])
def test_list_names_are_plain(office: Path, bad: str) -> None:
    assert bad_list_name(bad)
    edit_release(office, 'lists = ["example"]', f'lists = ["{bad}"]')
    code, out = run("check", RELEASE_ID)
    assert code == 1
    assert f"release.toml: 'lists': {bad!r} is not a list name" in out


def test_list_option_is_a_plain_name(office: Path) -> None:
    (office / "outside.csv").write_text("email\na@example.org\n", encoding="utf-8")
    code, out = run("check", RELEASE_ID, "--list", "../outside")
    assert code == 1
    assert "'../outside' is not a list name" in out
    assert bad_list_name("Региональные СМИ") is None


def test_template_cell_that_is_a_path_skips_the_row_only(office: Path) -> None:
    write_contacts(
        office,
        "mixed",
        [
            "one@example.org,One,en,,,,,,,",
            "two@example.org,Two,en,,,,,,../templates/release,",
            "three@example.org,Three,en,,,,,,wire,",
            "four@example.org,Four,en,,,,,,wier,",
        ],
    )
    code, out = run("send", RELEASE_ID, "--list", "mixed", "--yes")
    assert "contacts/mixed.csv:3: template: '../templates/release' is not a template name" in out
    assert "contacts/mixed.csv:5: template 'wier' does not exist" in out
    assert "did you mean 'wire'?" in out
    sent = sorted(p.name.split("-", 1)[1] for p in (office / "outbox" / RELEASE_ID).glob("*.eml"))
    assert sent == ["one@example.org.eml", "three@example.org.eml"]
    assert code == 0


def test_did_you_mean_for_keys_lists_releases_and_columns(office: Path) -> None:
    code, out = run("check", RELEASE_ID, "--list", "exampel")
    assert code == 1
    assert "no such list" in out and "did you mean 'example'?" in out

    code, out = run("check", "2026-11-eu-karagnda")
    assert code == 1
    assert f"did you mean {RELEASE_ID!r}?" in out

    code, out = run("check", RELEASE_ID, "--where", "outlat=x")
    assert code == 1
    assert "did you mean 'outlet'?" in out

    config = office / "reldist.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n[dispatch]\nmax_lte = '2h'\n", encoding="utf-8")
    code, out = run("check", RELEASE_ID)
    assert code == 1
    assert "unknown key 'dispatch.max_lte'; did you mean 'dispatch.max_late'?" in out


def test_did_you_mean_says_nothing_when_nothing_is_close() -> None:
    assert did_you_mean("zzzz", ["example", "regional"]) == ""
    assert did_you_mean("REGIONAL", ["example", "regional"]) == "; did you mean 'regional'?"


def test_dispatch_refuses_a_scheduled_release_whose_id_climbs_out(office: Path) -> None:
    import datetime as dt
    import shutil

    before = files_outside(office.parent, office)
    due = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat(timespec="seconds")
    bad = office / "releases" / "escape"
    shutil.copytree(office / "releases" / RELEASE_ID, bad)
    toml = bad / "release.toml"
    toml.write_text(
        f'id = "../../../escaped"\nsend_at = {due}\n' + toml.read_text(encoding="utf-8"), encoding="utf-8"
    )
    code, out = run("schedule")
    assert "broken" in out and "'../../../escaped' is not a release id" in out
    assert not any(line.startswith("../") for line in out.splitlines())  # never used as a name
    code, out = run("dispatch")
    assert code == 1, out
    assert "release=escape " in (office / "dispatch.log").read_text(encoding="utf-8")
    assert "releases/escape/release.toml: id: '../../../escaped' is not a release id" in out
    assert files_outside(office.parent, office) == before
    assert not list((office / "outbox").rglob("*.eml"))
