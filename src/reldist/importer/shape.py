"""The press-release shape of an imported document, and the typography a careful editor would fix.

Owns the guesses an import makes about a document's structure: the «ПРЕСС-РЕЛИЗ»/"PRESS RELEASE"
label (dropped), the headline (the first heading, else the first paragraph), the dateline
(``**КАРАГАНДА** — …``), quotes (a paragraph that opens with a quotation mark), the notes to
editors (an explicit «Справка»/"Notes to editors" heading, or short facts after the text), the
press contacts («За дополнительной информацией…», "For further information…", «Контакты») and
where they end (a paragraph with no name, phone or email after them, such as a funder's note or
«Европейский Союз включает…», goes under a heading of its own),
repeated paragraphs and unfilled Word template text (dropped), and an address written as short
lines. And the typography: «ёлочки» with „лапками“ inside, an em dash for a spaced hyphen, words
with a Latin letter in Cyrillic (and back). Every guess is a note on the block it changed.
"""

from __future__ import annotations

import re

from ..leftovers import PLACEHOLDER, script_fixes
from .blocks import BOLD, END, NOTES, Block, Links

__all__ = ["shape", "typography"]

_LABEL = re.compile(
    r"^\s*(пресс[- ]релиз|press release|news release|media release|баспасөз релизі|для немедленного"
    r" распространения|for immediate release)\s*[.:]?\s*$",
    re.IGNORECASE,
)
_UPPER = "A-ZА-ЯЁӘҒҚҢӨҰҮҺІ"
_DATELINE = re.compile(rf"^([{_UPPER}][{_UPPER}\- .]{{2,40}}?)(,[^—–\-]{{1,40}}?)?\s+[—–-]\s+")
_OPENING = '«"“„'
_NOTES_HEADING = re.compile(
    r"^(справка|справка для редакц\w*|для редакторов|для редакций|примечания для редакторов|"
    r"notes to editors|notes for editors|editor'?s notes|(редакторларға|редакцияларға) арналған( анықтама)?|анықтама)\s*:?\s*$",
    re.IGNORECASE,
)
_CONTACTS_HEADING = re.compile(
    r"^(контакты|контакты для (прессы|сми)|пресс-служба|press contacts?|media contacts?|contacts?|"
    r"байланыс|баспасөз үшін байланыс)\s*:?\s*$",
    re.IGNORECASE,
)
_CONTACTS_START = re.compile(
    r"^(за дополнительной информацией|для получения дополнительной информации|for (further|more) "
    r"information|қосымша ақпарат)",
    re.IGNORECASE,
)
_HEADINGS = {
    "notes": {
        "ru": "Справка для редакций",
        "en": "Notes to editors",
        "kk": "Редакцияларға арналған анықтама",
    },
    "contacts": {"ru": "Контакты для прессы", "en": "Press contacts", "kk": "Баспасөз үшін байланыс"},
    "footnotes": {"ru": "Примечания", "en": "Notes", "kk": "Ескертпелер"},
}
#: The heading for what follows the press contacts but is none: the example release's for text
#: about the EU (an EU-funded project's boilerplate), else the notes to editors' (or, when the
#: release has those already, a general one).
_AFTER_CONTACTS = {
    "eu": {"ru": "О Европейском Союзе", "en": "About the European Union", "kk": "Еуропалық Одақ туралы"},
    "other": {"ru": "О проекте", "en": "About the project", "kk": "Жоба туралы"},
}
#: Lines that open a funder's note or an "about" text (what EU-funded projects print after the
#: contacts): short, but no contact's name or title.
_BOILERPLATE = re.compile(
    r"^((данный|этот) )?проект\b.{0,80}?(финансир|реализу|поддерж)|^((this|the) )?project\b.{0,80}?"
    r"(funded|implemented|supported)|^жоба\b.{0,80}?(қаржыландыр|іске асыр)|"
    r"^(европейский союз|the european union|еуропалық одақ)\b",
    re.IGNORECASE,
)
_PROSE = 120  # a paragraph this long is text, not a contact's name, title or address line
_EU = re.compile(r"европейск\w* союз|european union|еуропалық одақ", re.IGNORECASE)
_CONTACT_DATA = re.compile(
    r"[\w.+-]+@[\w-]+\.[\w.-]+|\+?\d[\d ()\-]{5,}\d|"
    rf"^[{_UPPER}][\w'-]+(?:\s+[{_UPPER}][\w.'-]+){{1,3}}\s*(?:[,(—–]|$)"
)
_ABOUT = re.compile(r"^(about|о|об|обо)\s+\S.{2,60}$|^.{3,60}\s+туралы$", re.IGNORECASE)
_TERMINAL = tuple('.!?:;…»"”)')
_SHORT = 200
_WIDE_GAP = 4  # blank lines in a text export that end a group of lines


def _words(text: str) -> str:
    return " ".join(text.split()).casefold()


def typography(block: Block, lang: str) -> None:
    """Quotes, dashes and mixed-alphabet words of one block, fixed in place; each fix noted."""
    text = block.text
    fixes = [(word, fixed, lookalike) for word, fixed, lookalike in script_fixes(text) if fixed]
    for word, fixed, lookalike in fixes:
        text = re.sub(rf"(?<!\w){re.escape(word)}(?!\w)", fixed, text)
        if lookalike:
            block.notes.append(
                f"{word!r} was in Latin letters inside Russian text; wrote the Cyrillic {fixed!r}"
            )
        else:
            block.notes.append(f"{word!r} had Latin and Cyrillic letters mixed; wrote {fixed!r}")
    if lang in ("ru", "kk"):
        before = text
        text = _quotes_ru(text)
        if text != before:
            block.notes.append("quotation marks set as «…» with „…“ inside")
    elif '"' in text:
        text = re.sub(r'(^|[\s(\[])"', "\\1“", text).replace('"', "”")
        block.notes.append("straight quotation marks set as “…”")
    # a spaced hyphen is a dash; in English a spaced en dash (a range, "March – August") stays
    spaced = r"(?<=\S) [-–] (?=\S)" if lang in ("ru", "kk") else r"(?<=\S) - (?=\S)"
    if re.search(spaced, text):
        text = re.sub(spaced, " — ", text)
        block.notes.append("a spaced hyphen set as a dash (—)")
    block.text = text


def _quotes_ru(text: str) -> str:
    out, depth = [], 0
    for index, raw in enumerate(text):
        char = raw
        if raw == '"':
            before = text[index - 1] if index else " "
            char = "«" if before.isspace() or before in "(«„“[-—" else "»"
        if char in "«„":
            depth += 1
            out.append("„" if depth > 1 else "«")
        elif char in "»“" and depth:
            out.append("“" if depth > 1 else "»")
            depth -= 1
        else:
            out.append(char)
    return "".join(out)


def join_broken(blocks: list[Block], links: Links) -> list[Block]:
    """Paragraphs that Word's text export broke over two lines, joined (a text export only)."""
    out: list[Block] = []
    for block in blocks:
        if out and _continues(out[-1].text, block, links):
            previous = out[-1]
            previous.text = previous.text.rstrip() + " " + block.text.strip()
            previous.notes.append("joined two lines that Word had broken apart")
            previous.notes.extend(block.notes)
            continue
        out.append(block)
    return out


def _continues(text: str, block: Block, links: Links) -> bool:
    plain = links.text_of(text)
    stripped = plain.rstrip()
    if block.gap >= _WIDE_GAP or not stripped or stripped.endswith(_TERMINAL):
        return False
    if stripped.endswith(","):
        return True
    if plain == stripped:  # a line that ends without a space was ended on purpose
        return False
    last = stripped.split()[-1]
    first = links.text_of(block.text).strip()
    starts_lower = bool(re.match(r"[a-zа-яёәғқңөұүһі]+(?![.\w])", first))
    return (last.isalpha() and last.islower()) or starts_lower


def shape(blocks: list[Block], links: Links, lang: str) -> list[Block]:
    """The blocks in the press-release shape; every guess noted on the block it made."""
    for block in blocks:
        if block.text == NOTES:
            block.text = _HEADINGS["footnotes"][_lang(lang)]
    blocks = [b for b in blocks if links.text_of(b.text).strip() or b.kind in ("table", "image")]
    label_note = None
    if blocks and _LABEL.match(links.text_of(blocks[0].text)):
        label_note = f"dropped the label {links.text_of(blocks[0].text).strip()!r} (templates show their own)"
        blocks = blocks[1:]
    if not blocks:
        return blocks
    heading = next((i for i, b in enumerate(blocks[:3]) if b.kind == "h1"), None)
    if heading is None:
        first = blocks[0]
        if first.kind in ("p", "h2", "h3") and len(links.text_of(first.text)) < _SHORT:
            first.kind = "h1"
            first.text = first.text.strip().rstrip(".")
            first.notes.append("the first paragraph taken as the headline")
        heading = 0
    if label_note:
        blocks[heading].notes.append(label_note)
    out = blocks[: heading + 1]
    rest = blocks[heading + 1 :]
    for block in out:
        typography(block, lang)
    seen: dict[str, Block] = {}
    section = "body"
    dateline_done = False
    i = 0
    while i < len(rest):
        block = rest[i]
        plain = links.text_of(block.text).strip()
        key = _words(plain)
        # a repeat: the same paragraph, or an intro line ("…обращайтесь к:") that began an earlier one
        repeated = key in seen or (key.endswith(":") and any(k.startswith(key) for k in seen))
        if block.kind == "p" and repeated and len(key) > 20:
            _note_last(out, f"dropped a paragraph after this one that repeats an earlier one: {plain[:60]!r}")
            i += 1
            continue
        if block.kind == "p" and PLACEHOLDER.search(plain) and len(plain) < _SHORT:
            _note_last(out, f"dropped Word template text after this, never filled in: {plain[:80]!r}")
            i += 1
            continue
        seen[key] = block
        typography(block, lang)
        plain = links.text_of(block.text).strip()
        if section == "contacts" and _contacts_end(block, out, rest, i, links):
            section = "about"
            kind = "eu" if any(_EU.search(links.text_of(b.text)) for b in rest[i:]) else "other"
            title = _AFTER_CONTACTS[kind][_lang(lang)]
            if kind == "other" and not any(b.text == _HEADINGS["notes"][_lang(lang)] for b in out):
                title = _HEADINGS["notes"][_lang(lang)]  # no notes to editors yet: these are they
            out.append(
                Block(
                    "h2",
                    title,
                    [
                        f"the press contacts end here (no name, phone or email in {plain[:50]!r}): "
                        f"what follows put under '{title}'"
                    ],
                )
            )
        if block.kind in ("p", "h2", "h3") and _NOTES_HEADING.match(plain):
            block.kind, section = "h2", "notes"
            block.text = block.text.strip().rstrip(":")
            block.notes.append("taken as the notes to editors heading")
        elif block.kind in ("p", "h2", "h3") and _CONTACTS_HEADING.match(plain):
            block.kind, section = "h2", "contacts"
            block.text = block.text.strip().rstrip(":")
            block.notes.append("taken as the press contacts heading")
        elif block.kind == "p" and _ABOUT.match(plain) and _long_follows(rest, i, links):
            block.kind, section = "h2", "about"
            block.notes.append("taken as a heading (a short 'About …' line before a long paragraph)")
        elif block.kind == "p" and section == "notes" and _is_fact(block, links):
            block.kind = "li"
            block.notes.append("a short fact under the notes to editors set as a list item")
        elif block.kind == "p" and _CONTACTS_START.match(plain) and section != "contacts":
            section = "contacts"
            out.append(Block("h2", _HEADINGS["contacts"][_lang(lang)], ["added the press contacts heading"]))
            out.extend(_contacts(block, links))
            i += 1
            continue
        elif block.kind == "p" and section == "body" and not dateline_done:
            dateline_done = True
            match = _DATELINE.match(plain)
            if match and block.text.startswith(match.group(0)):
                city = match.group(1).strip()
                extra = (match.group(2) or "").strip()
                block.text = (
                    f"{BOLD}{city}{END}{(' ' + extra) if extra else ''} — {block.text[match.end() :]}"
                )
                block.notes.append(f"{city} taken as the dateline")
        elif block.kind == "p" and plain[:1] in _OPENING and section == "body":
            block.kind = "quote"
            block.notes.append("a paragraph that opens with a quotation mark set as a quote")
        elif section == "body" and block.kind == "p" and _facts_follow(rest, i, links):
            section = "notes"
            out.append(Block("h2", _HEADINGS["notes"][_lang(lang)], ["added the notes to editors heading"]))
            while i < len(rest) and rest[i].kind == "p" and _is_fact(rest[i], links):
                typography(rest[i], lang)
                rest[i].kind = "li"
                rest[i].text = rest[i].text.strip()
                rest[i].notes.append("short facts after the text set as a list of notes to editors")
                out.append(rest[i])
                i += 1
            continue
        if block.kind == "p" and section != "body" and plain.endswith(":"):
            items = _listed(rest, i + 1, links)
            if len(items) >= 2:
                out.append(block)
                for item in items:
                    for extra in item:
                        typography(extra, lang)
                    first = item[0]
                    first.kind = "li"
                    first.text = " — ".join(part.text.strip() for part in item)
                    first.notes.extend(note for part in item[1:] for note in part.notes)
                    out.append(first)
                out[-len(items)].notes.append("short lines after a colon set as a list")
                i += 1 + sum(len(item) for item in items)
                continue
        if block.kind == "p" and section != "body":
            group = _short_run(rest, i, links)
            if len(group) >= 3:
                for extra in group[1:]:
                    typography(extra, lang)
                head = group[0].text.strip()
                if not links.text_of(head).endswith(":"):
                    head = f"{BOLD}{head}{END}"
                block.kind = "lines"
                block.text = "\n".join([head, *(g.text.strip() for g in group[1:])])
                block.notes.append("short lines kept as one block of lines (an address)")
                out.append(block)
                i += len(group)
                continue
        out.append(block)
        i += 1
    return out


def _lang(lang: str) -> str:
    return lang if lang in ("ru", "en", "kk") else "en"


def _note_last(out: list[Block], note: str) -> None:
    if out:
        out[-1].notes.append(note)


def _is_fact(block: Block, links: Links) -> bool:
    plain = links.text_of(block.text).strip()
    return 0 < len(plain) < _SHORT and not _CONTACTS_START.match(plain) and plain[:1] not in _OPENING


def _facts_follow(rest: list[Block], index: int, links: Links) -> bool:
    """Two or more short paragraphs after the long ones, before the contacts: notes to editors."""
    if not any(len(links.text_of(b.text)) >= _SHORT for b in rest[:index]):
        return False
    run = 0
    for block in rest[index:]:
        if block.kind != "p" or not _is_fact(block, links):
            break
        run += 1
    after = rest[index + run] if index + run < len(rest) else None
    ends_well = after is None or _CONTACTS_START.match(links.text_of(after.text).strip()) is not None
    return run >= 2 and ends_well


def _long_follows(rest: list[Block], index: int, links: Links) -> bool:
    plain = links.text_of(rest[index].text).strip()
    after = rest[index + 1] if index + 1 < len(rest) else None
    return (
        not plain.endswith(_TERMINAL)
        and after is not None
        and after.kind == "p"
        and len(links.text_of(after.text)) >= _SHORT
    )


def _contacts_end(block: Block, out: list[Block], rest: list[Block], index: int, links: Links) -> bool:
    """True when ``block``, in the press contacts, is no contact: a funder's or "about" line, or
    a paragraph of prose, with no phone or email, after contacts (not the intro line), and not a
    heading of its own. A short line (a contact's title: «Менеджер по коммуникациям») stays."""
    plain = links.text_of(block.text).strip()
    if block.kind not in ("p", "lines") or _CONTACT_DATA.search(plain):
        return False
    if not _BOILERPLATE.match(plain) and len(plain) < _PROSE:
        return False
    if _NOTES_HEADING.match(plain) or _CONTACTS_HEADING.match(plain):
        return False
    if _ABOUT.match(plain) and _long_follows(rest, index, links):
        return False
    since = next((n for n in range(len(out) - 1, -1, -1) if out[n].kind == "h2"), -1)
    return any(_CONTACT_DATA.search(links.text_of(b.text)) for b in out[since + 1 :])


def _listed(rest: list[Block], index: int, links: Links) -> list[list[Block]]:
    """Short lines after a paragraph ending in ':', one item each; where some gaps between them are
    wide and some narrow (a text export), the narrow ones join lines into one item."""
    run: list[Block] = []
    for at, block in enumerate(rest[index:], start=index):
        plain = links.text_of(block.text).strip()
        if block.kind != "p" or len(plain) > _SHORT or plain.endswith(":"):
            break
        if _ABOUT.match(plain) and _long_follows(rest, at, links):
            break  # the heading of what follows, not an item
        run.append(block)
    grouped = len({b.gap >= _WIDE_GAP for b in run[1:]}) > 1
    items: list[list[Block]] = []
    for block in run:
        if items and grouped and block.gap < _WIDE_GAP:
            items[-1].append(block)
        else:
            items.append([block])
    return items


def _short_run(rest: list[Block], index: int, links: Links) -> list[Block]:
    group = [rest[index]]
    for block in rest[index + 1 :]:
        plain = links.text_of(block.text).strip()
        if block.kind != "p" or block.gap >= _WIDE_GAP or len(plain) > 90 or plain.endswith("."):
            break
        group.append(block)
    first = links.text_of(rest[index].text).strip()
    return group if len(first) <= 90 and not first.endswith(".") else [rest[index]]


def _contacts(block: Block, links: Links) -> list[Block]:
    """«За дополнительной информацией … обращайтесь к: A, …; B, …; или C» as an intro and a list."""
    text = block.text.strip()
    intro, colon, rest = text.partition(":")
    if not colon or ";" not in rest:
        block.notes.append("taken as the press contacts")
        return [block]
    items = [re.sub(r"^(или|or|немесе)\s+", "", part.strip()) for part in rest.split(";")]
    listed = [Block("li", item.rstrip(".").strip()) for item in items if item.strip()]
    head = Block("p", intro.strip() + ":", ["the contacts split into a list at each ';'"])
    for note in block.notes:  # a note about a link goes to the item that has the link
        holder = next((b for b in listed if _has_target(b.text, note, links)), head)
        holder.notes.append(note)
    return [head, *listed]


def _has_target(text: str, note: str, links: Links) -> bool:
    for number in re.findall(r"\ue000(\d+)\ue001", text):
        target = links.items[int(number)][1]
        if target in note:
            return True
    return False
