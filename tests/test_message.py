"""The MIME builder: structure, headers, escaping, header injection, and equality with the
reference ``EmailMessage`` path for any name, subject and address (hypothesis)."""

from __future__ import annotations

import binascii
import datetime as dt
from email.header import decode_header, make_header
from email.headerregistry import Address
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import RELEASE_ID, contact, make_workspace, parse, parts
from reldist.contacts import Contact, read_contacts
from reldist.headers import clean, encoded_words, header
from reldist.message import Base64Blocks, MessageBuilder, build_reference
from reldist.release import load_release
from reldist.render import Renderer
from reldist.workspace import open_workspace

DATE = dt.datetime(2026, 11, 28, 5, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, ...]:
    root = make_workspace(tmp_path_factory.mktemp("ws") / "office")
    ws = open_workspace(start=root)
    release = load_release(root / "releases" / RELEASE_ID, workspace=root)
    renderer = Renderer(ws.config, release, now=DATE)
    return ws, release, renderer, MessageBuilder(ws.config, release)


def build(setup: tuple[object, ...], who: object) -> bytes:
    ws, release, renderer, builder = setup
    rendered = renderer.render(who)  # type: ignore[attr-defined]
    return builder.build(  # type: ignore[attr-defined,no-any-return]
        rendered,
        who,
        message_id="<x.1.abc@ecomuseum.example>",
        date=DATE,
        unsubscribe=(renderer.unsubscribe_mailto(who.address), "https://ecomuseum.example/u?e=1"),  # type: ignore[attr-defined]
    )


def test_structure_and_headers(setup: tuple[object, ...]) -> None:
    msg = parse(build(setup, contact()))
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    for part in msg.iter_parts():
        assert part["Content-Transfer-Encoding"] == "base64"
        assert part.get_content_charset() == "utf-8"
    assert msg["From"].addresses[0].display_name == "ЭкоМузей Караганда"
    assert msg["From"].addresses[0].addr_spec == "press@ecomuseum.example"
    assert msg["To"].addresses[0] == Address("Иван Петров", addr_spec="ivan@example.org")
    assert msg["Subject"] == "Проект ЕС поддерживает Карагандинскую область в борьбе с изменением климата"
    assert msg["Content-Language"] == "ru, en, kk"
    assert msg["Message-ID"] == "<x.1.abc@ecomuseum.example>"
    assert msg["X-Reldist-Release"] == RELEASE_ID
    assert msg["List-Id"].endswith("<press.ecomuseum.example>")
    assert "<mailto:unsubscribe@ecomuseum.example?subject=unsubscribe%20" in msg["List-Unsubscribe"]
    assert "ivan@example.org" not in msg["List-Unsubscribe"]
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Reply-To"] == "irina.ignatovich@ecomuseum.example"
    assert msg["Date"].datetime == DATE
    raw = build(setup, contact())
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\xd0" not in head, "headers must be ASCII (RFC 2047), not raw UTF-8"
    for line in head.split(b"\r\n"):  # folded within 78 columns, but for one unbreakable URL
        assert len(line) <= 78 or len(line.strip().split(b" ")) <= 2, line
    assert b"=?utf-8?q?" not in raw.lower()


def test_language_order_russian_and_english_reader(setup: tuple[object, ...]) -> None:
    ru_text, ru_html = parts(parse(build(setup, contact(lang="ru"))))
    en_msg = parse(build(setup, contact("jane@example.net", "Jane Walsh", lang="en")))
    en_text, en_html = parts(en_msg)
    assert en_msg["Subject"] == "EU project supports Karaganda region in tackling climate change"
    assert en_msg["Content-Language"] == "en, ru, kk"
    for text in (ru_text, ru_html, en_text, en_html):
        assert "Карагандинскую область" in text and "Karaganda region" in text
    assert ru_text.index("Карагандинскую область") < ru_text.index("Karaganda region")
    assert en_text.index("Karaganda region") < en_text.index("Карагандинскую область")
    assert en_html.index("Karaganda region") < en_html.index("Карагандинскую область")
    assert "English version below" in ru_text and 'href="#lang-en"' in ru_html
    assert "Русская версия ниже" in en_text and 'href="#lang-ru"' in en_html
    assert "Dear Jane Walsh," in en_text and "Здравствуйте, Иван Петров!" in ru_text


def test_one_language_contact(setup: tuple[object, ...]) -> None:
    msg = parse(build(setup, contact(languages=("ru",))))
    text, html = parts(msg)
    assert msg["Content-Language"] == "ru"
    assert "Karaganda region" not in text and "Karaganda region" not in html
    assert "English version below" not in text


def test_text_part_has_no_markup(setup: tuple[object, ...]) -> None:
    text, html = parts(parse(build(setup, contact())))
    for tag in ("<p>", "<a ", "<strong>", "<h2>", "&nbsp;", "&laquo;", "**"):
        assert tag not in text
    assert "martin.zelinka@arnika.org" in text
    assert "style=" in html and "<style>" in html  # inlined, @media kept
    assert max(len(line) for line in text.splitlines() if "://" not in line and "mailto:" not in line) <= 78


def test_html_escapes_contact_fields(setup: tuple[object, ...]) -> None:
    evil = "<script>alert(1)</script>"
    text, html = parts(parse(build(setup, contact(name=evil))))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert evil in text  # plain text is text


def test_no_header_injection_from_name(setup: tuple[object, ...]) -> None:
    raw = build(setup, contact(name="Mallory\r\nBcc: x@example.net\r\nSubject: hi", lang="en"))
    msg = parse(raw)
    assert msg["Bcc"] is None
    assert len(msg.get_all("Subject") or []) == 1
    assert msg["Subject"].startswith("EU project")
    assert msg["To"].addresses[0].addr_spec == "ivan@example.org"
    assert b"\r\nBcc:" not in raw.split(b"\r\n\r\n", 1)[0]


def test_idn_and_utf8_addresses(setup: tuple[object, ...]) -> None:
    idn = contact("news@газета.example", "", ascii_address="news@xn--80aa0cbo65f.example")
    ws, release, renderer, builder = setup
    assert builder.envelope(idn).recipient == "news@xn--80aa0cbo65f.example"  # type: ignore[attr-defined]
    assert not builder.envelope(idn).needs_smtputf8  # type: ignore[attr-defined]
    msg = parse(build(setup, idn))
    assert msg["To"].addresses[0].addr_spec == "news@xn--80aa0cbo65f.example"
    utf8 = contact("иван@пример.example", "Иван", ascii_address=None)
    utf8 = type(utf8)(**{**{k: getattr(utf8, k) for k in utf8.__slots__}, "ascii_address": None})  # type: ignore[attr-defined]
    assert builder.envelope(utf8).needs_smtputf8  # type: ignore[attr-defined]
    assert str(parse(build(setup, utf8))["To"]) == "Иван <иван@пример.example>"


def test_attachments_make_multipart_mixed(tmp_path: Path) -> None:
    root = make_workspace(tmp_path / "office")
    folder = root / "releases" / RELEASE_ID
    (folder / "files").mkdir()
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 40
    (folder / "files" / "меморандум.pdf").write_bytes(pdf)
    toml = folder / "release.toml"
    toml.write_text(
        'attachments = ["files/меморандум.pdf"]\n' + toml.read_text(encoding="utf-8"), encoding="utf-8"
    )
    ws = open_workspace(start=root)
    release = load_release(folder, workspace=root)
    msg = parse(
        build(
            (ws, release, Renderer(ws.config, release, now=DATE), MessageBuilder(ws.config, release)),
            contact(),
        )
    )
    assert msg.get_content_type() == "multipart/mixed"
    attachments = list(msg.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["меморандум.pdf"]
    assert attachments[0].get_content() == pdf
    assert attachments[0].get_content_type() == "application/pdf"
    text, _ = parts(msg)
    assert "меморандум.pdf" in text
    assert_measure_is_length(ws, release)


def assert_measure_is_length(ws: object, release: object) -> None:
    """MessageBuilder.measure (the preflight's sizes) == the length build() gives, for every
    example contact, with and without unsubscribe links, text of any length mod 3."""
    renderer = Renderer(ws.config, release, now=DATE)  # type: ignore[attr-defined]
    builder = MessageBuilder(ws.config, release)  # type: ignore[attr-defined]
    people = [c for c in read_contacts(ws.root, ["example"]) if isinstance(c, Contact)]  # type: ignore[attr-defined]
    for who in people + [contact(name="Ян" * n) for n in range(6)]:
        rendered = renderer.render(who)
        for unsubscribe in (None, (None, None), ("mailto:u@x.example", "https://x.example/u?a=1")):
            kwargs = {"message_id": "<x.1.abc@ecomuseum.example>", "date": DATE, "unsubscribe": unsubscribe}
            assert builder.measure(rendered, who, **kwargs) == len(
                builder.build(rendered, who, sign=False, **kwargs)
            )


def test_measure_is_the_built_length(setup: tuple[object, ...]) -> None:
    assert_measure_is_length(setup[0], setup[1])


def raw_header(data: bytes, name: str) -> str:
    """A header's raw value, unfolded."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "surrogateescape").replace("\r\n ", " ")
    for line in head.split("\r\n"):
        if line.lower().startswith(name.lower() + ":"):
            return line.split(":", 1)[1].strip()
    raise KeyError(name)


def decoded_name(data: bytes, name: str) -> str:
    """The display name of an address header decoded as RFC 2047 says (see headers.phrase)."""
    value = raw_header(data, name)
    value = value.rsplit("<", 1)[0].strip() if "<" in value else ""
    if value.startswith('"') and value.endswith('"'):
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return str(make_header(decode_header(value))) if value else ""


def _same(fast: bytes, reference: bytes) -> None:
    a, b = parse(fast), parse(reference)
    for name in ("From", "To"):
        assert decoded_name(fast, name) == decoded_name(reference, name), name
        assert [x.addr_spec for x in a[name].addresses] == [x.addr_spec for x in b[name].addresses]
    for name in (
        "Subject",
        "Date",
        "Message-ID",
        "Content-Language",
        "Reply-To",
        "List-Id",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "X-Reldist-Release",
        "MIME-Version",
    ):
        assert str(a[name]) == str(b[name]), name
    assert a.get_content_type() == b.get_content_type()
    assert parts(a) == parts(b)
    assert [p.get_content() for p in a.iter_attachments()] == [p.get_content() for p in b.iter_attachments()]


def test_equal_to_reference_for_the_example(setup: tuple[object, ...]) -> None:
    ws, release, renderer, _ = setup
    for who in (contact(), contact("jane@example.net", "Jane", lang="en"), contact(name="")):
        rendered = renderer.render(who)  # type: ignore[attr-defined]
        unsub = (renderer.unsubscribe_mailto(who.address), "https://ecomuseum.example/u")  # type: ignore[attr-defined]
        fast = setup[3].build(rendered, who, message_id="<a.1@x.example>", date=DATE, unsubscribe=unsub)  # type: ignore[attr-defined]
        ref = build_reference(
            ws.config, release, rendered, who, message_id="<a.1@x.example>", date=DATE, unsubscribe=unsub
        )  # type: ignore[attr-defined]
        _same(fast, ref.as_bytes())


names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80)
local = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,20}", fullmatch=True).filter(
    lambda s: ".." not in s and not s.endswith(".")
)
domains = st.sampled_from(["example.org", "example.net", "xn--80aa0cbo65f.example", "mail.example.com"])


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(name=names, subject=names.filter(lambda s: s.strip()), local_part=local, domain=domains)
def test_any_name_subject_and_address_round_trip(
    setup: tuple[object, ...], name: str, subject: str, local_part: str, domain: str
) -> None:
    ws, release, renderer, builder = setup
    address = f"{local_part}@{domain}"
    who = contact(address, name)
    rendered = renderer.render(who)  # type: ignore[attr-defined]
    rendered = type(rendered)(rendered.template, rendered.languages, subject, rendered.html, rendered.text)
    fast = builder.build(rendered, who, message_id="<a.1@x.example>", date=DATE)  # type: ignore[attr-defined]
    msg = parse(fast)
    assert msg["To"].addresses[0].addr_spec == address
    assert decoded_name(fast, "To") == clean(name)
    assert msg["Subject"] == clean(subject)
    assert msg["Bcc"] is None and len(msg.get_all("To") or []) == 1
    ref = build_reference(ws.config, release, rendered, who, message_id="<a.1@x.example>", date=DATE)  # type: ignore[attr-defined]
    _same(fast, ref.as_bytes())
    head = fast.split(b"\r\n\r\n", 1)[0]
    assert max(len(line) for line in head.split(b"\r\n")) <= 998


def test_encoded_words_stay_short() -> None:
    words = encoded_words("Проект ЕС поддерживает Карагандинскую область " * 3)
    assert all(len(w) <= 75 for w in words)
    folded = header("Subject", words)
    assert all(len(line) <= 78 for line in folded.split("\r\n"))


pieces = st.lists(st.binary(max_size=3000), min_size=1, max_size=7).map(tuple)


@settings(max_examples=300, deadline=None)
@given(bodies=st.lists(pieces, min_size=1, max_size=4))
def test_base64_blocks_decode_to_the_body_in_whole_groups_on_short_lines(
    bodies: list[tuple[bytes, ...]],
) -> None:
    """Shared chunks encoded once and reused at any offset still decode to the whole body; every
    line is at most 76 characters of whole 4-character groups, '=' only at the very end."""
    blocks = Base64Blocks()
    blocks.MIN_SHARED = 64  # exercise sharing with small chunks too
    for body in [*bodies, *bodies]:  # the second round reuses the blocks
        encoded = blocks.encode(body)
        assert binascii.a2b_base64(encoded) == b"".join(body)
        assert blocks.size(body) == len(encoded)
        if not encoded:
            assert not b"".join(body)
            continue
        assert encoded.endswith(b"\r\n")
        lines = encoded[:-2].split(b"\r\n")
        assert all(0 < len(line) <= 76 and len(line) % 4 == 0 for line in lines)
        assert b"=" not in b"".join(lines[:-1]) and b"=" not in lines[-1].rstrip(b"=")


def test_a_stencilled_message_has_the_bodies_of_a_fully_rendered_one(setup: tuple[object, ...]) -> None:
    ws, release, renderer, builder = setup
    full = Renderer(ws.config, release, now=DATE, stencils=False)  # type: ignore[attr-defined]
    people = [c for c in read_contacts(ws.root, ["example"]) if isinstance(c, Contact)]  # type: ignore[attr-defined]
    shared = 0
    for who in people:
        fast_rendered = renderer.render(who)  # type: ignore[attr-defined]
        shared += fast_rendered.bodies is not None
        kwargs = {"message_id": "<a.1@x.example>", "date": DATE}
        a = parse(builder.build(fast_rendered, who, **kwargs))  # type: ignore[attr-defined]
        b = parse(builder.build(full.render(who), who, **kwargs))  # type: ignore[attr-defined]
        assert parts(a) == parts(b)
        assert [(k, str(v)) for k, v in a.items()] == [(k, str(v)) for k, v in b.items()]
    assert shared == len(people)
