"""``reldist new`` and ``reldist import``: the seed Word export, text exports with real field markers,
real .docx files made with python-docx, HTML and Markdown, through the real command.

Each test asserts on the Markdown written, the guesses printed with their lines, and what
``reldist check`` and ``send`` then make of the release.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import struct
import zlib
from pathlib import Path

import docx
import pytest
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.opc.packuri import PackURI
from docx.opc.part import Part
from docx.oxml import OxmlElement
from docx.oxml.ns import qn

from helpers import RELEASE_ID, parse, run

SEED = Path(__file__).parent / "data" / "seed-word-export.txt"
LEFTOVERS = {"replacement-char", "field-code", "mixed-script", "duplicate-paragraph", "placeholder"}


def codes(release: str) -> dict[str, list[str]]:
    code, output = run("check", release, "--format", "json")
    found: dict[str, list[str]] = {}
    for finding in json.loads(output)["findings"]:
        found.setdefault(finding["code"], []).append(finding["place"])
    return found


def test_the_seed_imported_with_one_command(office: Path) -> None:
    code, output = run("import", "2026-12-seed", "ru", str(SEED))
    assert code == 0, output
    md = office / "releases" / "2026-12-seed" / "ru.md"
    text = md.read_text(encoding="utf-8")
    example = (office / "releases" / RELEASE_ID / "ru.md").read_text(encoding="utf-8")
    # headline, dateline, text, quotes, notes to editors, contacts heading: as the example has them
    cut = example.index("За дополнительной информацией")
    assert text[:cut] == example[:cut]
    assert "ПРЕСС-РЕЛИЗ" not in text and "HYPERLINK" not in text and "\ufffd" not in text
    for target in (
        "mailto:martin.zelinka@arnika.org",
        "mailto:irina.ignatovich@ecomuseum.kz",
        "mailto:delegation-kazakhstan-pic@eeas.europa.eu",
    ):
        assert f"]({target})" in text
    assert (
        "**Представительство Европейского Союза в Республике Казахстан**\\\nул. Космонавтов, д. 62, 7 этаж\\\n"
        in text
    )
    assert text.count("За дополнительной информацией") == 1  # the repeat is dropped
    assert "прямой рабочий номер" not in text  # the unfilled template line is dropped
    lines = text.splitlines()

    def line_of(needle: str) -> int:
        return next(n for n, line in enumerate(lines, 1) if needle in line)

    where = "releases/2026-12-seed/ru.md"
    assert f"{where}:1: joined two lines that Word had broken apart" in output
    assert f"{where}:1: dropped the label 'ПРЕСС-РЕЛИЗ'" in output
    assert f"{where}:3: КАРАГАНДА taken as the dateline" in output
    assert (
        f"{where}:{line_of('Мэдсен')}: 'Мэдсeн' had Latin and Cyrillic letters mixed; wrote 'Мэдсен'"
        in output
    )
    assert f"{where}:{line_of('Мэдсен')}: 'EC' was in Latin letters inside Russian text" in output
    assert (
        f"{where}:{line_of('- Ирина')}: a link pointed into a local folder (../../../../../lpoa/AppData"
        in output
    )
    assert "made it mailto:irina.ignatovich@ecomuseum.kz" in output
    assert f"{where}:{line_of('## Справка')}: added the notes to editors heading" in output
    assert "The ru subject was empty; set it from the headline" in output
    toml = (office / "releases" / "2026-12-seed" / "release.toml").read_text(encoding="utf-8")
    assert (
        'subject = "Проект Европейского Союза поддерживает Карагандинскую область в борьбе с изменением климата"'
        in toml
    )
    found = codes("releases/2026-12-seed")
    assert not LEFTOVERS & set(found), found
    # what it honestly deserves: a long subject, no preheader, readers of languages it lacks
    assert set(found) - {"other-language", "authentication", "unsubscribe-one-click"} == {
        "subject-long",
        "preheader",
        "language-missing",
    }
    code, output = run("send", "releases/2026-12-seed", "--yes")
    assert code == 0, output
    sent = parse(next((office / "outbox" / "2026-12-seed").glob("*.eml")).read_bytes())
    body = sent.get_body(("plain",))
    assert body is not None
    plain = body.get_content()
    assert "Мэдсен" in plain and "HYPERLINK" not in plain and "irina.ignatovich@ecomuseum.kz" in plain


def test_an_edited_file_is_not_overwritten_without_force(office: Path) -> None:
    assert run("import", "x", "ru", str(SEED))[0] == 0
    md = office / "releases" / "x" / "ru.md"
    assert run("import", "x", "ru", str(SEED))[0] == 0  # untouched since: replaced
    md.write_text(md.read_text(encoding="utf-8") + "\nПравка.\n", encoding="utf-8")
    code, output = run("import", "x", "ru", str(SEED))
    assert code == 1
    assert (
        "reldist: error: releases/x/ru.md: exists and was edited since reldist wrote it; add --force"
        in output
    )
    assert md.read_text(encoding="utf-8").endswith("Правка.\n")
    toml = office / "releases" / "x" / "release.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8").replace('subject = "Проект', 'subject = "Свой: Проект'),
        encoding="utf-8",
    )
    code, output = run("import", "x", "ru", str(SEED), "--force")
    assert code == 0
    assert "Правка" not in md.read_text(encoding="utf-8")
    assert 'subject = "Свой: Проект' in toml.read_text(encoding="utf-8")  # a subject is never replaced
    assert "set it from the headline" not in output


EXPORT = (
    "PRESS RELEASE\r\n\r\n"
    "EU project supports Karaganda \r\n\r\n"
    "region in tackling climate change\r\n\r\n"
    'KARAGANDA —   Today  the  memorandum was signed \x13 HYPERLINK "https://example.org/memo" \\o "tip" \x14(text)\x15.\r\n\r\n\r\n\r\n'
    'See \x13 HYPERLINK "https://example.org/a" \x15 and '
    '\x13 HYPERLINK "javascript:alert(1)" \x14click\x15 and '
    '\x13 HYPERLINK "C:\\\\Users\\\\lpoa\\\\Temp\\\\memo.pdf" \x14the memo\x15 and '
    '\x13 IF \x13 MERGEFIELD x \x14yes\x15 = "yes" "a" "b" \x14nested\x15.\r\n'
)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "cp1251"])
def test_a_word_text_export_with_real_field_markers(office: Path, encoding: str) -> None:
    text = EXPORT if encoding != "cp1251" else EXPORT.replace("—", "-") + "\r\nКараганда.\r\n"
    source = office / "export.txt"
    source.write_bytes(text.encode(encoding))
    code, output = run("import", "t", "en", str(source))
    assert code == 0, output
    md = (office / "releases" / "t" / "en.md").read_text(encoding="utf-8")
    assert md.splitlines()[0] == "# EU project supports Karaganda region in tackling climate change"
    assert "**KARAGANDA** — Today the memorandum was signed [(text)](https://example.org/memo)." in md
    assert "See <https://example.org/a> and click and the memo and nested." in md
    assert not re.search("[\x13\x14\x15]", md)
    assert (
        "releases/t/en.md:5: dropped a link with an unsafe or unknown target 'javascript:alert(1)'" in output
    )
    assert (
        "releases/t/en.md:5: dropped a link to a local file that journalists cannot open: C:\\\\Users"
        in output
    )
    if encoding == "cp1251":
        assert "releases/t/en.md:1: read export.txt as cp1251" in output
    if encoding == "utf-16":
        assert "releases/t/en.md:1: read export.txt as utf-16" in output


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" + b"\xff\x00\x00" * 2 + b"\x00" + b"\x00\x00\xff" * 2)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _run(paragraph: docx.text.paragraph.Paragraph, text: str = "") -> OxmlElement:
    run = OxmlElement("w:r")
    if text:
        t = OxmlElement("w:t")
        t.text = text
        t.set(qn("xml:space"), "preserve")
        run.append(t)
    paragraph._p.append(run)
    return run


def _complex_field(paragraph: docx.text.paragraph.Paragraph, instr: str, shown: str) -> None:
    for kind in ("begin", None, "separate", "text", "end"):
        run = _run(paragraph)
        if kind == "text":
            t = OxmlElement("w:t")
            t.text = shown
            run.append(t)
        elif kind is None:
            code = OxmlElement("w:instrText")
            code.text = instr
            code.set(qn("xml:space"), "preserve")
            run.append(code)
        else:
            char = OxmlElement("w:fldChar")
            char.set(qn("w:fldCharType"), kind)
            run.append(char)


def _hyperlink(paragraph: docx.text.paragraph.Paragraph, url: str, text: str) -> None:
    rid = paragraph.part.relate_to(url, RT.HYPERLINK, is_external=True)
    link = OxmlElement("w:hyperlink")
    link.set(qn("r:id"), rid)
    run = OxmlElement("w:r")
    t = OxmlElement("w:t")
    t.text = text
    run.append(t)
    link.append(run)
    paragraph._p.append(link)


def make_docx(path: Path) -> None:
    document = docx.Document()
    document.add_paragraph("ПРЕСС-РЕЛИЗ")
    document.add_heading("Проект ЕС поддерживает Карагандинскую область", level=1)
    lead = document.add_paragraph()
    lead.add_run("КАРАГАНДА").bold = True
    lead.add_run(" — Сегодня подписан меморандум (")
    _complex_field(lead, ' HYPERLINK "https://ecomuseum.kz/memo" \\o "Меморандум" ', "текст")
    _run(lead, "), ")
    simple = OxmlElement("w:fldSimple")
    simple.set(qn("w:instr"), ' HYPERLINK "https://eeas.europa.eu/kz" ')
    inner = OxmlElement("w:r")
    t = OxmlElement("w:t")
    t.text = "сайт ЕС"
    inner.append(t)
    simple.append(inner)
    lead._p.append(simple)
    _run(lead, " и ")
    _hyperlink(lead, "https://arnika.org/ru", "«Арника»")
    _run(lead, ", но не ")
    _hyperlink(lead, "javascript:alert(1)", "это")
    _run(lead, ".")
    document.add_paragraph("«Это важный шаг», — сказал директор.")
    budget = document.add_paragraph("Общий бюджет — 288 325 евро.")
    reference = _run(budget)
    mark = OxmlElement("w:footnoteReference")
    mark.set(qn("w:id"), "1")
    reference.append(mark)
    footnotes = Part(
        PackURI("/word/footnotes.xml"),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml",
        (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<w:footnotes xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
            '<w:footnote w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:footnote>'
            '<w:footnote w:id="1"><w:p><w:r><w:t>По курсу на 1 марта 2022 года.</w:t></w:r></w:p></w:footnote>'
            "</w:footnotes>"
        ).encode(),
        document.part.package,
    )
    document.part.relate_to(footnotes, RT.FOOTNOTES)
    document.add_heading("Справка для редакций", level=2)
    document.add_paragraph("Продолжительность: 30 месяцев.", style="List Bullet")
    document.add_paragraph("Бюджет: 288 325 евро.", style="List Bullet")
    table = document.add_table(rows=2, cols=2)
    for row, cells in zip(table.rows, [("Год", "Выбросы"), ("2024", "600 тыс. тонн")], strict=True):
        for cell, value in zip(row.cells, cells, strict=True):
            cell.text = value
    picture = document.add_paragraph().add_run()
    image = path.parent / "chart.png"
    image.write_bytes(_png())
    shape = picture.add_picture(str(image))
    shape._inline.docPr.set("descr", "График выбросов")
    document.add_heading("Контакты для прессы", level=2)
    document.add_paragraph("Ирина Игнатович, +7 7212 50-45-61")
    document.save(str(path))


def test_a_word_document(office: Path) -> None:
    source = office / "release.docx"
    make_docx(source)
    code, output = run("import", "d", "ru", str(source))
    assert code == 0, output
    md = (office / "releases" / "d" / "ru.md").read_text(encoding="utf-8")
    lines = md.splitlines()
    assert lines[0] == "# Проект ЕС поддерживает Карагандинскую область"
    assert "ПРЕСС-РЕЛИЗ" not in md
    assert (
        "**КАРАГАНДА** — Сегодня подписан меморандум ([текст](https://ecomuseum.kz/memo)), "
        "[сайт ЕС](https://eeas.europa.eu/kz) и [«Арника»](https://arnika.org/ru), но не это." in md
    )
    assert "> «Это важный шаг», — сказал директор." in md
    assert "## Справка для редакций\n\n- Продолжительность: 30 месяцев.\n- Бюджет: 288 325 евро.\n" in md
    assert "| Год | Выбросы |\n|---|---|\n| 2024 | 600 тыс. тонн |" in md
    assert "![График выбросов](files/image-1.png)" in md
    assert (office / "releases" / "d" / "files" / "image-1.png").read_bytes() == _png()
    assert "## Контакты для прессы\n\nИрина Игнатович, +7 7212 50-45-61" in md
    # a footnote: its mark stays in the text, its text goes to the notes at the end
    assert "Общий бюджет — 288 325 евро.\\[1\\]" in md
    assert md.endswith("## Примечания\n\n1. По курсу на 1 марта 2022 года.\n")
    assert f"releases/d/ru.md:{len(lines) - 2}: the document's footnotes set as notes at the end" in output
    line = next(n for n, text in enumerate(lines, 1) if text.startswith("**КАРАГАНДА**"))
    assert (
        f"releases/d/ru.md:{line}: dropped a link with an unsafe or unknown target 'javascript:alert(1)'"
        in output
    )
    assert "releases/d/ru.md:1: saved the image files/image-1.png" in output
    found = codes("releases/d")
    assert not LEFTOVERS & set(found), found


def test_html_and_markdown(office: Path) -> None:
    page = office / "page.html"
    page.write_text(
        "<html><head><title>x</title><script>alert(1)</script></head><body>"
        "<h1>Headline</h1><p><b>ALMATY</b> — News with <a href='https://example.org'>a link</a> "
        "and <a href='javascript:evil()'>a trap</a>.</p><ul><li>one</li><li>two</li></ul></body></html>",
        encoding="utf-8",
    )
    code, output = run("import", "h", "en", str(page))
    assert code == 0, output
    md = (office / "releases" / "h" / "en.md").read_text(encoding="utf-8")
    assert md.startswith("# Headline\n\n**ALMATY** — News with [a link](https://example.org) and a trap.\n")
    assert "- one\n- two\n" in md and "alert" not in md
    assert "dropped a link with an unsafe or unknown target 'javascript:evil()'" in output
    source = office / "kk.md"
    source.write_text("# Тақырып\n\nМәтін.\n", encoding="utf-8")
    assert run("import", "h", "kk", str(source))[0] == 0
    assert (office / "releases" / "h" / "kk.md").read_text(encoding="utf-8") == "# Тақырып\n\nМәтін.\n"
    toml = (office / "releases" / "h" / "release.toml").read_text(encoding="utf-8")
    assert 'languages = ["en", "kk"]' in toml and 'subject = "Тақырып"' in toml


def test_new_makes_a_release_to_fill_in(office: Path) -> None:
    code, output = run("new", "2027-01-next")
    assert code == 0, output
    folder = office / "releases" / "2027-01-next"
    assert "Created releases/2027-01-next: release.toml and ru.md, en.md." in output
    assert (folder / "ru.md").read_text(encoding="utf-8").startswith("# Заголовок")
    assert "## Press contacts" in (folder / "en.md").read_text(encoding="utf-8")
    code, output = run("check", "releases/2027-01-next")
    assert code == 1
    assert "release.toml: 'ru.subject' is empty: write the ru subject line" in output  # not 'missing'
    assert run("new", "2027-01-next")[0] == 1  # never over an existing release
    code, output = run("import", "2027-01-next", "ru", str(SEED))
    assert code == 0, output  # the untouched skeleton is replaced


def _fill_toml(folder: Path) -> None:
    toml = folder / "release.toml"
    text = toml.read_text(encoding="utf-8").replace(
        'subject = ""', 'subject = "Музей открыт · Museum opens"', 2
    )
    toml.write_text(
        text.replace('preheader = ""', 'preheader = "Новая выставка в Караганде"'), encoding="utf-8"
    )


def test_check_refuses_the_untouched_skeleton(office: Path) -> None:
    assert run("new", "2027-02-draft", "--lang", "ru", "--lang", "en")[0] == 0
    folder = office / "releases" / "2027-02-draft"
    _fill_toml(folder)
    code, output = run("check", "releases/2027-02-draft")
    assert code == 1, output  # an error even without --strict: it must not reach 300 journalists
    ru, en = "releases/2027-02-draft/ru.md", "releases/2027-02-draft/en.md"
    for where, text in (
        (f"{en}:1", "'# Headline: what happened, in one line'"),
        (f"{en}:3", "'**CITY** — The news: who, what, where and when.'"),
        (f"{en}:7", "'> “A quote,” said name, title.'"),
        (f"{ru}:1", "'# Заголовок: что произошло, в одной строке'"),
        (f"{ru}:3", "'**ГОРОД** — Главное: кто, что, где и когда.'"),
    ):
        assert f"error: {where}: the skeleton text 'reldist new' wrote is still here: {text}" in output
    assert "Check passed" not in output
    assert "Check failed: 12 errors," in output  # errors fail without --strict: no word of it
    code, output = run("send", "releases/2027-02-draft", "--yes")  # and send refuses it
    assert code == 1, output
    assert (
        f"{ru}:1: 12 line(s) still as 'reldist new' wrote them, such as "
        "'# Заголовок: что произошло, в одной строке'; write the release's own text" in output
    )
    assert not list((office / "outbox").glob("2027-02-draft/*.eml"))
    # nor does dispatch, when the skeleton was given a send_at that has come
    due = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    toml = folder / "release.toml"
    toml.write_text(f"send_at = {due}\n" + toml.read_text(encoding="utf-8"), encoding="utf-8")
    code, output = run("dispatch")
    assert code == 1, output
    assert f"2027-02-draft: not sent: {ru}:1: 12 line(s) still as 'reldist new' wrote them" in output
    assert not list((office / "outbox").glob("2027-02-draft/*.eml"))
    logged = (office / "dispatch.log").read_text(encoding="utf-8").splitlines()
    assert any("release=2027-02-draft" in line and "action=broken" in line for line in logged), logged
    # half-filled: the headline label and the dateline mark are still found
    (folder / "en.md").write_text(
        "# Headline: Ecomuseum opens a climate exhibition\n\n**CITY** — Karaganda, 1 December.\n",
        encoding="utf-8",
    )
    found = codes("releases/2027-02-draft")
    assert [p for p in found["placeholder"] if p.startswith(en)] == [f"{en}:1", f"{en}:3"], found
    # the example release, written by hand, has none of it
    assert "placeholder" not in codes(f"releases/{RELEASE_ID}")


def word_export(markdown: str) -> str:
    """The text Word saves for a document that looked like ``markdown``: a PRESS RELEASE label,
    no Markdown marks, links as HYPERLINK fields between the real markers, blank lines between."""
    text = re.sub(
        r"\[([^\]]*)\]\(([^)]*)\)", lambda m: f'\x13 HYPERLINK "{m.group(2)}" \x14{m.group(1)}\x15', markdown
    )
    text = text.replace("# ", "", 1).replace("**", "").replace("## ", "").replace("> ", "").replace("- ", "")
    return "PRESS RELEASE\r\n\r\n" + text.replace("\\\n", "\n").replace("\n\n", "\n\n\n").replace(
        "\n", "\r\n"
    )


def test_the_english_example_round_trips_through_a_word_export(office: Path) -> None:
    example = (office / "releases" / RELEASE_ID / "en.md").read_text(encoding="utf-8")
    source = office / "en.txt"
    source.write_bytes(word_export(example).encode("utf-16"))
    code, output = run("import", "e", "en", str(source))
    assert code == 0, output
    assert (office / "releases" / "e" / "en.md").read_text(encoding="utf-8") == example
    assert "releases/e/en.md:15: taken as the notes to editors heading" in output
    assert "short lines after a colon set as a list" in output
    assert "taken as a heading (a short 'About …' line before a long paragraph)" in output


def test_russian_text_imported_as_english_is_called_out(office: Path) -> None:
    code, output = run("import", "2026-12-seed", "en", str(SEED))
    assert code == 0, output
    assert (
        "warning: releases/2026-12-seed/en.md: imported as en, but it looks like Russian text (Cyrillic: "
        in output
    )
    assert f"'reldist import 2026-12-seed ru {SEED}'" in output
    code, output = run("check", "releases/2026-12-seed")
    assert code == 1, output
    assert re.search(
        r"error: releases/2026-12-seed/en.md: the en version looks like Russian text "
        r"\(Cyrillic: [\d,]+ of [\d,]+ letters\); put the English text here",
        output,
    ), output
    assert (
        "error: releases/2026-12-seed/release.toml [en] subject: the en subject looks like Russian" in output
    )
    # Kazakh and Russian told apart by the Kazakh letters (a warning: a guess)
    example = office / "releases" / RELEASE_ID
    assert run("import", "swap", "ru", str(example / "kk.md"))[0] == 0
    assert run("import", "swap", "kk", str(example / "ru.md"))[0] == 0
    found = codes("releases/swap")
    assert {"releases/swap/ru.md", "releases/swap/kk.md"} <= set(found["wrong-language"]), found
    # the example's three versions are what their codes say
    assert "wrong-language" not in codes(f"releases/{RELEASE_ID}")


def test_the_seed_boilerplate_after_the_contacts_gets_its_own_heading(office: Path) -> None:
    code, output = run("import", "2026-12-seed", "ru", str(SEED))
    assert code == 0, output
    md = office / "releases" / "2026-12-seed" / "ru.md"
    lines = md.read_text(encoding="utf-8").splitlines()
    example = (office / "releases" / RELEASE_ID / "ru.md").read_text(encoding="utf-8").splitlines()
    at = lines.index("## О Европейском Союзе")  # the example's heading for the EU's boilerplate
    assert lines[at] == example[at] and lines[at + 2] == "Проект финансируется Европейским Союзом"
    assert lines.index("## Контакты для прессы") < at < lines.index("Данный проект реализуется:")
    assert (
        f"releases/2026-12-seed/ru.md:{at + 1}: the press contacts end here (no name, phone or email in "
        "'Проект финансируется Европейским Союзом'): what follows put under 'О Европейском Союзе'"
    ) in output
    # the wire template keeps only the press contacts: short, without the boilerplate
    with (office / "contacts" / "example.csv").open("a", encoding="utf-8") as handle:
        handle.write("lenta@example.org,,ru,ru,Лента,,,,wire,\n")
    code, output = run("send", "releases/2026-12-seed", "--yes")
    assert code == 0, output
    wire = next(
        message
        for path in (office / "outbox" / "2026-12-seed").glob("*.eml")
        if (message := parse(path.read_bytes()))["To"].addresses[0].addr_spec == "lenta@example.org"
    )
    body = wire.get_body(("plain",))
    assert body is not None
    plain = body.get_content()
    assert "Ирина Игнатович" in plain and "irina.ignatovich@ecomuseum.kz" in plain
    assert "Проект финансируется" not in plain and "27 государств-членов" not in plain


def test_the_words_a_new_press_officer_reads(office: Path) -> None:
    code, output = run("import", "2026-12-seed", "ru", str(SEED))
    assert code == 0, output
    toml = office / "releases" / "2026-12-seed" / "release.toml"
    assert toml.read_text(encoding="utf-8").startswith(
        "# Made by 'reldist import' from seed-word-export.txt. Fill in"
    )
    code, output = run("check", "releases/2026-12-seed")
    # one language: nothing about which comes first
    assert "(it is in ru only); they get it in ru: contacts/example.csv:9" in output
    assert "first:" not in output
    # a journalist who reads only English is no bad row of a Russian-only release
    assert "not for this release: contacts/example.csv:12: wants only en; this release is in ru" in output
    assert "0 skipped, 1 suppressed, 1 reading only other languages, 0 duplicates merged" in output
    assert "bad contact rows" not in output
    found = codes("releases/2026-12-seed")
    assert found["other-language"] == ["contacts/example.csv:12"] and "bad-row" not in found
    # the same long subject in two languages is long in each
    assert run("import", "2026-12-seed", "en", str(office / "releases" / RELEASE_ID / "en.md"))[0] == 0
    text = toml.read_text(encoding="utf-8")
    ru_subject = re.search(r'(?m)^subject = (".*")$', text)
    assert ru_subject is not None
    text = re.sub(r'(?m)^(\[en\]\nfile = "en.md"\n)subject = ".*"$', rf"\1subject = {ru_subject[1]}", text)
    toml.write_text(text.replace('languages = ["ru"]', 'languages = ["ru", "en"]'), encoding="utf-8")
    found = codes("releases/2026-12-seed")
    where = "releases/2026-12-seed/release.toml"
    assert found["subject-long"] == [f"{where} [ru] subject", f"{where} [en] subject"], found


def test_a_contacts_title_line_stays_with_the_contact(office: Path, tmp_path: Path) -> None:
    body = "Экомузей Караганды открыл новую выставку о климате и воде региона. " * 4
    gap = "\n" * 6  # wide gaps: each line a paragraph of its own
    source = tmp_path / "release.txt"
    source.write_text(
        f"ПРЕСС-РЕЛИЗ\n\nМузей открыл выставку о климате\n\nКАРАГАНДА — {body}\n\nКонтакты для прессы\n\n"
        f"Ирина Игнатович{gap}Менеджер по коммуникациям ЭкоМузея{gap}Телефон: +7 705 759-99-09{gap}"
        "Подробнее о выставке читайте на сайте музея, где собраны фотографии и программа на весь "
        "месяц, а также расписание экскурсий.\n",
        encoding="utf-8",
    )
    code, output = run("import", "t", "ru", str(source))
    assert code == 0, output
    lines = (office / "releases" / "t" / "ru.md").read_text(encoding="utf-8").splitlines()
    contacts, notes = lines.index("## Контакты для прессы"), lines.index("## Справка для редакций")
    title = lines.index("Менеджер по коммуникациям ЭкоМузея")
    assert contacts < title < lines.index("Телефон: +7 705 759-99-09") < notes
    assert lines[notes + 2].startswith("Подробнее о выставке")
    assert f"releases/t/ru.md:{notes + 1}: the press contacts end here" in output
