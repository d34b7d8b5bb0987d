"""Header values never carry a control character: any C0 or C1 character in a contact's name,
a subject or the release id is removed (hypothesis, with an alphabet full of them), and a header
block that has one anyway is refused."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import RELEASE_ID, contact, make_workspace, parse
from reldist.headers import check_header_block, header
from reldist.message import MessageBuilder
from reldist.release import Attachment, load_release
from reldist.render import Renderer
from reldist.workspace import open_workspace

DATE = dt.datetime(2026, 11, 28, 5, 0, tzinfo=dt.UTC)
CONTROLS = [chr(c) for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)]] + ["\u2028", "\u2029"]
C0_C1 = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Control characters are most of what is drawn; the rest is ASCII and Cyrillic text.
dirty = st.text(
    st.sampled_from(CONTROLS) | st.sampled_from(list('abc xyz"\\=?АБВ жёЁ')),
    min_size=1,
    max_size=40,
)
ids = st.text(st.sampled_from(CONTROLS) | st.sampled_from(list("2026-eu_k.")), min_size=1, max_size=20)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, ...]:
    root = make_workspace(tmp_path_factory.mktemp("ws") / "office")
    ws = open_workspace(start=root)
    release = load_release(root / "releases" / RELEASE_ID, workspace=root)
    return ws, release, Renderer(ws.config, release, now=DATE)


def decoded(value: str) -> str:
    return str(make_header(decode_header(value)))


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(name=dirty, subject=dirty.filter(lambda s: s.strip(" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85")), rid=ids)
def test_no_control_character_reaches_a_header(
    setup: tuple[object, ...], name: str, subject: str, rid: str
) -> None:
    ws, release, renderer = setup
    builder = MessageBuilder(ws.config, dataclasses.replace(release, id=rid))  # type: ignore[attr-defined,arg-type]
    who = contact("ivan@example.org", name)
    rendered = renderer.render(who)  # type: ignore[attr-defined]
    rendered = dataclasses.replace(rendered, subject=subject, bodies=None)
    data = builder.build(rendered, who, message_id="<a.1@x.example>", date=DATE)
    head = data.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        assert not re.search(rb"[\x00-\x1f\x7f-\xff]", line), line  # ASCII, no control, no raw 8-bit
    msg = parse(data)
    assert len(msg.get_all("To") or []) == 1 and len(msg.get_all("Subject") or []) == 1
    for field in ("To", "Subject", "X-Reldist-Release", "From", "List-Id"):
        raw = msg.get(field)
        assert raw is not None, field
        assert not C0_C1.search(decoded(str(raw))), (field, decoded(str(raw)))


def test_attachment_file_name_with_control_characters(setup: tuple[object, ...]) -> None:
    ws, release, renderer = setup
    attachment = Attachment(Path("memo\r\nBcc: x@evil.example\x85.pdf"), "x", "application/pdf", b"%PDF")
    builder = MessageBuilder(ws.config, dataclasses.replace(release, attachments=(attachment,)))  # type: ignore[attr-defined,arg-type]
    who = contact()
    data = builder.build(renderer.render(who), who, message_id="<a.1@x.example>", date=DATE)  # type: ignore[attr-defined]
    msg = parse(data)
    assert msg["Bcc"] is None
    (part,) = list(msg.iter_attachments())
    assert part.get_filename() == "memo Bcc: x@evil.example .pdf"


@pytest.mark.parametrize(
    "bad", ["a\x00b", "a\x01b", "a\tb", "a\x7fb", "a\x85b", "a\x9fb", "a\u2028b", "a\rb", "a\nb"]
)
def test_a_header_block_with_a_control_character_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="control character"):
        check_header_block(header("X-Test", [bad]))
    assert check_header_block(header("X-Test", ["ab"])) == "X-Test: ab\r\n"


def test_a_message_id_with_a_control_character_is_refused(setup: tuple[object, ...]) -> None:
    ws, release, renderer = setup
    builder = MessageBuilder(ws.config, release)  # type: ignore[arg-type]
    who = contact()
    with pytest.raises(ValueError, match="control character"):
        builder.build(renderer.render(who), who, message_id="<a.1@x.example>\x01", date=DATE)  # type: ignore[attr-defined]
