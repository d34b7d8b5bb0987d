"""Word's plain-text export (``.txt``): its encodings, its field codes, its paragraphs.

Owns reading a text file saved by Word (UTF-8 with or without BOM, UTF-16, cp1251) and turning
it into :class:`~reldist.importer.blocks.Block` paragraphs: field codes between the markers
U+0013 (begin), U+0014 (separator) and U+0015 (end) — or the U+FFFD replacement characters those
markers become when the file is converted, as in ``� HYPERLINK "mailto:…" �text�`` — are replaced
by what they show, ``HYPERLINK`` fields becoming links (nested fields and a missing separator
handled); runs of spaces collapse; the number of blank lines before each paragraph is kept (a
wide gap ends a group of lines).
"""

from __future__ import annotations

import codecs
import re

from .blocks import Block, Links, safe_target

__all__ = ["decode", "paragraphs"]

_FIELD_NAMES = (
    "HYPERLINK|MERGEFIELD|PAGEREF|REF|INCLUDEPICTURE|INCLUDETEXT|TOC|SEQ|FORMTEXT|FORMCHECKBOX|"
    "MACROBUTTON|FILLIN|DOCPROPERTY|DATE|TIME|PAGE|NUMPAGES|SYMBOL|NOTEREF|AUTOTEXT|EQ|IF|QUOTE"
)
# A field whose markers were turned into U+FFFD: begin, code, one or more separators, the shown
# text and the end; or (no separator) begin, code, end.
_MANGLED = re.compile(
    rf'\ufffd\s*(?P<code>(?:{_FIELD_NAMES})\b(?:\s+(?:"[^"\ufffd\n]*"|\\\*?\s*\w+|[^\s"\ufffd\\]+))*)\s*'
    r"(?:\ufffd+(?P<shown>[^\ufffd\n]*)\ufffd|\ufffd)"
)
_SPACES = re.compile(r"[ \t\u00a0]{2,}")


def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding): a BOM, else UTF-8, else UTF-16 without a BOM, else cp1251."""
    for bom, name in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(name), name
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    if data[1::2].count(0) > len(data) // 4:
        return data.decode("utf-16-le", errors="replace"), "utf-16-le"
    if data[0::2].count(0) > len(data) // 4:
        return data.decode("utf-16-be", errors="replace"), "utf-16-be"
    return data.decode("cp1251", errors="replace"), "cp1251"


def _unmangle(text: str) -> str:
    """U+FFFD around a field code back into the field markers."""

    def markers(match: re.Match[str]) -> str:
        shown = match.group("shown")
        if shown is None:
            return f"\x13{match.group('code')}\x15"
        return f"\x13{match.group('code')}\x14{shown}\x15"

    return _MANGLED.sub(markers, text)


def _field(code: str, shown: str | None, links: Links, notes: list[str]) -> str:
    """What a field shows: a link token for HYPERLINK, else its shown text."""
    words = code.strip()
    name = words.split(maxsplit=1)[0].upper() if words else ""
    if name == "HYPERLINK":
        quoted = re.findall(r'(\\[a-z])?\s*"([^"]*)"', words)
        target = next((value for switch, value in quoted if not switch), "")
        anchor = next((value for switch, value in quoted if switch == "\\l"), "")
        label = (shown or "").strip() or target
        url, note = safe_target(target if target else "#" + anchor)
        if note:
            notes.append(note)
        if url is None:
            return label
        if url.startswith("mailto:") and label == target:
            label = url[len("mailto:") :]
        return links.add(label, url)
    if name == "INCLUDEPICTURE":
        notes.append("dropped a picture field (INCLUDEPICTURE): add the image to files/ by hand")
        return ""
    if shown is None:
        notes.append(f"dropped a Word field that showed nothing: {words[:60]!r}")
        return ""
    return shown


def _resolve(text: str, links: Links, notes: list[str]) -> str:
    """Replace every field (innermost first) by what it shows."""
    pattern = re.compile(r"\x13([^\x13\x14\x15]*)(?:\x14([^\x13\x15]*))?\x15")
    while True:
        new = pattern.sub(lambda m: _field(m.group(1), m.group(2), links, notes), text)
        if new == text:
            break
        text = new
    if re.search(r"[\x13\x14\x15]", text):
        notes.append("removed field markers that did not pair up")
        text = re.sub(r"[\x13\x14\x15]", "", text)
    return text


def paragraphs(text: str, links: Links) -> list[Block]:
    """The paragraphs of a Word text export, fields resolved; each with the blank lines before it."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x0c", "\n").replace("\x0b", "\n")
    blocks: list[Block] = []
    gap = 0
    for line in text.split("\n"):
        notes: list[str] = []
        resolved = _resolve(_unmangle(line), links, notes)
        if not resolved.strip():
            gap += 1
            continue
        resolved = links.bare_urls(_SPACES.sub(" ", resolved.lstrip()), notes)
        blocks.append(Block("p", resolved, notes, gap=gap))
        gap = 0
    return blocks
