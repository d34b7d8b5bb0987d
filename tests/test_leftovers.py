"""``reldist check`` catches what Word and Excel leave behind: each warning names file:line and quotes it.

The seed (a real Word text export) is pasted raw into the example's ``ru.md`` as a press officer
would; a cp1251 list with Kazakh letters lost to ``?``; a list with no rows. Checked through the
real command (JSON and terminal) and, for the scans, on text directly.
"""

from __future__ import annotations

import json
from pathlib import Path

from helpers import RELEASE_ID, run
from reldist.leftovers import scan_markdown, unmix

SEED = Path(__file__).parent / "data" / "seed-word-export.txt"  # the real Word export (shared/seeds)
RELEASE = f"releases/{RELEASE_ID}"


def findings(*args: str) -> tuple[int, list[dict[str, str]]]:
    code, output = run("check", RELEASE, "--format", "json", *args)
    return code, json.loads(output)["findings"]


def test_the_example_has_no_leftovers(office: Path) -> None:
    code, found = findings()
    codes = {f["code"] for f in found}
    assert not codes & {
        "replacement-char",
        "field-code",
        "mixed-script",
        "duplicate-paragraph",
        "placeholder",
    }


RAW = """Проект Европейского Союза поддерживает Карагандинскую область

Йоханнес Стенбаек Мэдсeн, Глава по сотрудничеству Представительства EC в Казахстане.

За дополнительной информацией обращайтесь к: Мартин Зелинка, \ufffd HYPERLINK "mailto:m.z@arnika.org" \ufffdm.z@arnika.org\ufffd

Контактные данные представителя проекта и Представительства ЕС(прямой рабочий номер/e-mail).

Выбросы CO2 выросли в XX веке; [Insert quote here] и XXX.

Поле \x13 MERGEFIELD name \x14Имя\x15 осталось.

Проект финансируется Европейским Союзом и реализуется организациями «Арника» и ЭкоМузей.

Проект финансируется Европейским Союзом и реализуется организациями «Арника» и ЭкоМузей.
"""


def test_scan_names_line_and_quotes_each_leftover() -> None:
    found = [(f.code, f.place, f.found) for f in scan_markdown(RAW, "ru.md")]
    assert ("mixed-script", "ru.md:3", "Мэдсeн") in found
    assert ("mixed-script", "ru.md:3", "EC") in found
    assert ("replacement-char", "ru.md:5") in [(c, p) for c, p, _ in found]
    assert ("field-code", "ru.md:5", 'HYPERLINK "') in found
    assert ("placeholder", "ru.md:7", "(прямой рабочий номер/e-mail)") in found
    assert ("placeholder", "ru.md:9", "[Insert quote here]") in found
    assert ("placeholder", "ru.md:9", "XXX") in found
    assert ("field-code", "ru.md:11", "MERGEFIELD n") in found
    assert [p for c, p, _ in found if c == "duplicate-paragraph"] == ["ru.md:15"]
    # CO2 (a formula), XX (a Roman numeral) and the Cyrillic ЕС are not faults
    assert not [w for c, _, w in found if c == "mixed-script" and w in {"CO", "CO2", "XX", "ЕС"}]
    messages = {f.found: f.message for f in scan_markdown(RAW, "ru.md")}
    assert "write 'Мэдсен'" in messages["Мэдсeн"]
    assert "write 'ЕС' in Cyrillic" in messages["EC"]


def test_unmix_suggests_the_word_in_one_alphabet() -> None:
    assert unmix("Мэдсeн") == "Мэдсен"
    assert unmix("Рrеss") == "Press"
    assert unmix("Мэдсеn") is None  # 'n' has no Cyrillic twin


def test_duplicated_sentence_inside_longer_paragraphs() -> None:
    text = (
        "За дополнительной информацией, пожалуйста, обращайтесь к: Мартин Зелинка.\n\n"
        "Текст.\n\nЗа дополнительной информацией, пожалуйста, обращайтесь к:\n"
    )
    found = [(f.code, f.place) for f in scan_markdown(text, "ru.md")]
    assert found == [("duplicate-paragraph", "ru.md:5")]


def test_raw_word_export_pasted_into_ru_md_fails_check(office: Path) -> None:
    (office / RELEASE / "ru.md").write_bytes(SEED.read_bytes())
    code, found = findings("--strict")
    assert code == 1
    by_code: dict[str, list[str]] = {}
    for f in found:
        by_code.setdefault(f["code"], []).append(f["place"])
    ru = f"{RELEASE}/ru.md"
    assert by_code["replacement-char"] == [f"{ru}:46", f"{ru}:49", f"{ru}:136", f"{ru}:139"]
    assert by_code["field-code"] == by_code["replacement-char"]
    assert by_code["mixed-script"] == [f"{ru}:22", f"{ru}:22"]
    assert by_code["placeholder"] == [f"{ru}:103"]
    # the label the template shows, the headline repeated under the subject, the repeated sentence
    assert sorted(by_code["duplicate-paragraph"]) == [f"{ru}:1", f"{ru}:100", f"{ru}:7"]
    code, output = run("check", RELEASE)
    assert code == 0  # warnings only, without --strict
    assert f"{ru}:22: 'Мэдсeн' mixes Latin and Cyrillic letters ('e' Latin)" in output
    assert f"{ru}:103: template text left unfilled: '(прямой рабочий номер/e-mail)'" in output
    assert f"{ru}:1: 'ПРЕСС-РЕЛИЗ' is shown by the template already" in output
    assert f"{ru}:7: the text repeats the headline 'Проект ЕС поддерживает" in output


def test_field_codes_in_a_subject(office: Path) -> None:
    toml = office / RELEASE / "release.toml"
    text = toml.read_text(encoding="utf-8")
    toml.write_text(text.replace('preheader = "ЭкоМузей', 'preheader = "\ufffdЭкоМузей', 1), encoding="utf-8")
    code, found = findings("--strict")
    assert code == 1
    assert [(f["code"], f["place"]) for f in found if f["code"] == "replacement-char"] == [
        ("replacement-char", f"{RELEASE}/release.toml [ru] preheader")
    ]


def test_kazakh_letters_lost_to_cp1251_in_a_list(office: Path) -> None:
    rows = (
        "email;name;lang;outlet\n"
        "s.a@example.com;Салтанат Ержан?ызы;kk;Ар?а тынысы\n"
        "b.s@example.org;Бауыржан Сейт?али;kk;?аза? радиосы\n"
        "ok@example.org;Иван Петров;ru;Что нового?\n"
    )
    (office / "contacts" / "example.csv").write_bytes(rows.encode("cp1251"))
    code, found = findings("--strict")
    assert code == 1
    losses = [(f["place"], f["found"]) for f in found if f["code"] == "encoding-loss"]
    assert losses == [
        ("contacts/example.csv:2", "Салтанат Ержан?ызы"),
        ("contacts/example.csv:3", "Бауыржан Сейт?али"),
    ]


def test_a_release_that_reaches_nobody(office: Path) -> None:
    (office / "contacts" / "example.csv").write_text("email,name,lang\n", encoding="utf-8")
    code, output = run("check", RELEASE)
    assert code == 0
    assert (
        f"{RELEASE}/release.toml lists: this release reaches nobody: 0 recipients ready in example" in output
    )
    code, found = findings("--strict")
    assert code == 1
    assert [f["code"] for f in found if f["level"] == "warning"] == ["no-recipients"]
    code, output = run("send", RELEASE, "--yes")
    assert code == 1
    assert "this release reaches nobody: no recipient in example can get it; nothing was sent" in output
    assert not (office / "outbox" / RELEASE_ID).exists() or not any(
        (office / "outbox" / RELEASE_ID).iterdir()
    )
