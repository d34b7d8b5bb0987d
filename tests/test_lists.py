"""Media lists as people make them: Russian and Kazakh headers, language names, title rows, sheets.

Real files (UTF-8, cp1251, UTF-16, XLSX made with openpyxl) in the example workspace, read through
``read_contacts`` and through ``reldist check`` / ``send``, asserting on the contacts, the
warnings with their places, and the messages then written to the outbox.
"""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pytest

from helpers import RELEASE_ID, parse, run
from reldist.contacts import Contact, Skipped, read_contacts
from reldist.vocabulary import closest_column, column_name, language_code

RELEASE = f"releases/{RELEASE_ID}"


@pytest.mark.parametrize(
    ("header", "column"),
    [
        ("E-mail", "email"),
        ("Email address", "email"),
        ("Почта", "email"),
        ("Эл. почта", "email"),
        ("Электронная почта", "email"),
        ("\u0415-mail", "email"),  # a Cyrillic Е typed for the Latin E
        ("Электрондық пошта", "email"),
        ("ФИО", "name"),
        ("Имя", "name"),
        ("Full name", "name"),
        ("Аты-жөні", "name"),
        ("Language", "lang"),
        ("Язык", "lang"),
        ("Тіл", "lang"),
        ("Языки", "languages"),
        ("Издание", "outlet"),
        ("СМИ", "outlet"),
        ("Media", "outlet"),
        ("Тема", "beat"),
        ("Регион", "region"),
        ("Обращение", "salutation"),
        ("Шаблон", "template"),
        ("Теги", "tags"),
        ("  home   Phone ", "home_phone"),
    ],
)
def test_column_names_in_any_language_and_case(header: str, column: str) -> None:
    assert column_name(header) == column
    assert column_name(header.upper()) == column


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("RU", "ru"),
        ("en-GB", "en"),
        ("en_gb", "en"),
        ("English", "en"),
        ("русский", "ru"),
        ("Русский язык", "ru"),
        ("қазақша", "kk"),
        ("Қазақ тілі", "kk"),
        ("казахский", "kk"),
        ("Kazakh", "kk"),
        ("английский", "en"),
        ("эльфийский", None),
        ("xx", None),
    ],
)
def test_language_values(value: str, code: str | None) -> None:
    assert language_code(value) == code


def test_closest_column_for_a_typo() -> None:
    assert closest_column("Languge") == "lang"
    assert closest_column("Emial") == "email"
    assert closest_column("Телефон") is None


def read(root: Path, *lists: str) -> list[Contact | Skipped]:
    return list(read_contacts(root, list(lists)))


def test_a_russian_list_from_excel_cp1251(office: Path) -> None:
    text = (
        "ФИО;Почта;Язык;Издание;Языки\r\n"
        "Анна Смирнова;anna@example.org;русский;Курьер;\r\n"
        "Rachel Walsh;rachel@example.org;English;Review;English, Русский язык\r\n"
        "Айгүл Сейтова;aigul@example.org;en-GB;Арқа;\r\n"
        "Пётр;petr@example.org;эльфийский;X;\r\n"
    )
    (office / "contacts" / "ru.csv").write_bytes(
        text.replace("Айгүл", "Айгуль").replace("Арқа", "Арка").encode("cp1251")
    )
    items = read(office, "ru")
    good = [i for i in items if isinstance(i, Contact)]
    assert [(c.address, c.lang, c.languages, c.fields["outlet"]) for c in good] == [
        ("anna@example.org", "ru", (), "Курьер"),
        ("rachel@example.org", "en", ("en", "ru"), "Review"),
        ("aigul@example.org", "en", (), "Арка"),
    ]
    (bad,) = [i for i in items if isinstance(i, Skipped)]
    assert bad.source == "contacts/ru.csv:5"
    assert bad.reason.startswith(
        "lang 'эльфийский' is not a language reldist knows; write a code (ru, en, kk)"
    )


def test_a_kazakh_list_in_utf16_with_title_rows(office: Path) -> None:
    text = (
        "Журналистер тізімі\t\t\n"
        "\t\t\n"
        "Аты-жөні\tЭлектрондық пошта\tТіл\n"
        "Салтанат Ахметова\ts.a@example.com\tқазақша\n"
    )
    (office / "contacts" / "kz.txt").write_bytes(text.encode("utf-16"))
    (contact,) = read(office, "kz")
    assert isinstance(contact, Contact)
    assert (contact.name, contact.address, contact.lang, contact.source) == (
        "Салтанат Ахметова",
        "s.a@example.com",
        "kk",
        "contacts/kz.txt:4",
    )


def test_a_csv_with_a_title_line_above_the_header(office: Path) -> None:
    text = "Список журналистов, ноябрь 2026\n\nФИО;Е-mail;Язык\nАнна;anna@example.org;RU\n"
    (office / "contacts" / "t.csv").write_text(text, encoding="utf-8")
    (contact,) = read(office, "t")
    assert isinstance(contact, Contact)
    assert (contact.address, contact.lang, contact.source) == ("anna@example.org", "ru", "contacts/t.csv:4")


def workbook(path: Path) -> None:
    """A workbook as an office keeps it: a cover sheet first, the journalists on the second
    under a merged title and a blank row."""
    book = openpyxl.Workbook()
    cover = book.active
    assert cover is not None
    cover.title = "Инструкция"
    cover["A1"] = "Список ведёт пресс-служба"
    sheet = book.create_sheet("Журналисты")
    sheet["A1"] = "Журналисты Карагандинской области"
    sheet.merge_cells("A1:D1")
    sheet.append([])
    sheet.append(["ФИО", "Эл. почта", "Язык", "Languge"])
    sheet.append(["Rachel Walsh", "r.walsh@example.org", "English", "x"])
    sheet.append(["Айгерим Нурланова", "aigerim@example.org", "Русский", "y"])
    book.save(path)


def use_lists(root: Path, lists: str) -> None:
    toml = root / RELEASE / "release.toml"
    text = toml.read_text(encoding="utf-8").replace('lists = ["example"]', f"lists = {lists}")
    toml.write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    "lists",
    [
        '["regional#Журналисты"]',
        '["regional.xlsx#Журналисты"]',
        '[{name = "regional", sheet = "Журналисты"}]',
    ],
)
def test_a_named_sheet_below_its_title(office: Path, lists: str) -> None:
    workbook(office / "contacts" / "regional.xlsx")
    use_lists(office, lists)
    code, output = run("check", RELEASE, "--format", "json")
    result = json.loads(output)
    assert result["recipients"]["ready"] == 2
    assert result["recipients"]["by_language"] == {"en": 1, "ru": 1}
    found = {f["code"]: f for f in result["findings"]}
    assert found["unknown-column"]["place"] == "contacts/regional.xlsx"
    assert found["unknown-column"]["message"].startswith(
        "'languge' (did you mean 'lang'?): not a column reldist knows, and no template uses it"
    )
    assert found["sheet"]["level"] == "note"
    assert found["sheet"]["message"].startswith(
        "the workbook has 2 sheets; read 'Журналисты', not 'Инструкция'"
    )
    code, output = run("send", RELEASE, "--yes")
    assert code == 0, output
    sent = sorted((office / "outbox" / RELEASE_ID).glob("*.eml"))
    messages = {str(parse(p.read_bytes())["To"]): parse(p.read_bytes()) for p in sent}
    assert set(messages) == {"Rachel Walsh <r.walsh@example.org>", "Айгерим Нурланова <aigerim@example.org>"}
    assert messages["Rachel Walsh <r.walsh@example.org>"]["Content-Language"] == "en, ru, kk"


def test_the_first_sheet_is_read_by_default(office: Path) -> None:
    workbook(office / "contacts" / "regional.xlsx")
    use_lists(office, '["regional"]')
    code, output = run("check", RELEASE)
    assert code == 1  # the cover sheet has no header with an email column
    assert (
        "reldist: error: contacts/regional.xlsx:1: no 'email' column (columns: Список ведёт пресс-служба)"
        in output
    )


def test_an_unknown_sheet_names_the_sheets(office: Path) -> None:
    workbook(office / "contacts" / "regional.xlsx")
    use_lists(office, '["regional#Press"]')
    code, output = run("check", RELEASE)
    assert code == 1
    assert "contacts/regional.xlsx: no sheet 'Press' (the sheets are 'Инструкция', 'Журналисты')" in output


def test_a_column_a_template_uses_is_not_unknown(office: Path) -> None:
    csv = office / "contacts" / "example.csv"
    csv.write_text(csv.read_text(encoding="utf-8").replace(",tags\n", ",tags,Languge\n", 1), encoding="utf-8")
    code, output = run("check", RELEASE)
    assert "contacts/example.csv: 'languge' (did you mean 'lang'?): not a column reldist knows" in output
    template = office / "templates" / "release.txt.j2"
    template.write_text(template.read_text(encoding="utf-8") + "{{ recipient.languge }}\n", encoding="utf-8")
    code, output = run("check", RELEASE)
    assert "languge' (did you mean" not in output


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        (
            'greeting = "Dear {name},"',
            'greeting = "Dear {nmae},"',
            "templates/strings.toml [en] greeting: unknown placeholder {nmae} in 'Dear {nmae},'; it can use {name}",
        ),
        ('greeting = "Dear {name},"\n', "", "templates/strings.toml [en] greeting: missing"),
        (
            'unsubscribe = "Unsubscribe"',
            'unsubscribe = "Unsubscribe {name}"',
            "templates/strings.toml [en] unsubscribe: unknown placeholder {name} in 'Unsubscribe {name}'; "
            "it can use no placeholders",
        ),
        (
            'locale = "en_GB"',
            'locale = "english"',
            "templates/strings.toml [en] locale: 'english' is not a locale",
        ),
        (
            'embargo = "EMBARGOED UNTIL {when}"',
            'embargo = "EMBARGOED UNTIL {when"',
            "templates/strings.toml [en] embargo:",
        ),
    ],
)
def test_an_error_in_strings_toml_names_the_string(office: Path, old: str, new: str, error: str) -> None:
    path = office / "templates" / "strings.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    code, output = run("check", RELEASE)
    assert code == 1
    assert f"reldist: error: {error}" in output
    assert "Traceback" not in output


def test_random_bytes_in_a_cp1251_list_are_refused_not_read(office: Path) -> None:
    good = "email;name;lang;salutation\r\nanna@example.org;Анна Смирнова;ru;Здравствуйте, Анна!\r\n"
    data = good.encode("cp1251") + b"ivan@example.org;Ivan;ru;" + "Здравствуйте, ".encode("cp1251")
    (office / "contacts" / "rnd.csv").write_bytes(data + b"\x8e\x9a\x8f\xff\xfe\x81 \x80\x80!\r\n")
    use_lists(office, '["rnd"]')
    code, output = run("check", RELEASE)
    assert code == 1, output
    assert (
        "contacts/rnd.csv:3: read as cp1251, this line has characters no list has ('ЋљЏЃЂ'): the file "
        "is in another encoding or damaged; fix it in the original and save it as UTF-8 (Excel: 'CSV UTF-8')"
    ) in output
    assert "ЋљЏ" not in output.replace("('ЋљЏЃЂ')", "")  # never read into a greeting
    # the same list without the damaged row is read as cp1251, as before
    (office / "contacts" / "rnd.csv").write_bytes(good.encode("cp1251"))
    code, output = run("check", RELEASE)
    assert "1 recipient ready" in output or "1 recipients ready" in output, output


def test_damaged_bytes_far_down_a_cp1251_list_name_their_line(office: Path) -> None:
    rows = "".join(f"user{i}@example.org;Пользователь {i};ru\r\n" for i in range(3000))  # > 64 KB
    data = f"email;name;lang\r\n{rows}".encode("cp1251") + b"late@example.org;\x8e\x9a\x8f\xff;ru\r\n"
    assert len(data) > 64 * 1024
    (office / "contacts" / "big.csv").write_bytes(data)
    use_lists(office, '["big"]')
    code, output = run("check", RELEASE)
    assert code == 1, output
    assert "contacts/big.csv:3002: read as cp1251, this line has characters no list has ('ЋљЏ')" in output
