"""What a word processor or a spreadsheet leaves behind in a release, for ``reldist check``.

Owns the text inspections that Word and Excel make necessary: U+FFFD replacement characters
(``replacement-char``), field codes such as ``HYPERLINK "…"`` or the raw U+0013–U+0015 field
markers (``field-code``), words that mix Latin and Cyrillic letters or Latin words made only of
letters that look Cyrillic inside Russian text (``mixed-script``, with the fix), a paragraph or
a long sentence that appears twice (``duplicate-paragraph``), unfilled template text such as
«(прямой рабочий номер/e-mail)», ``[Insert …]`` or ``XXX`` (``placeholder``; the skeleton text
that ``reldist new`` writes, such as ``# Headline: what happened``, is an error), and in contact
lists a ``?`` inside a Cyrillic word (``encoding-loss``: Excel saving Kazakh letters as cp1251);
and a language version written mostly in another script or language than its code says, such as
Russian text imported as ``en`` (``wrong-language``).

The scans are pure functions over text, each returning :class:`Leftover` records that name
``file:line`` and quote what they found; :func:`text_findings` reads a release's Markdown files and
adds the release that reaches nobody (``no-recipients``). ``deliverability`` turns them into
findings. Nothing here writes a file.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .errors import ReleaseError, place
from .listcheck import list_findings

if TYPE_CHECKING:
    from pathlib import Path

    from .job import Job
    from .plan import Preflight
    from .release import Release

__all__ = [
    "LOOKALIKE",
    "PLACEHOLDER",
    "Leftover",
    "ListLosses",
    "scan_field",
    "scan_markdown",
    "script_fixes",
    "script_mismatch",
    "text_findings",
    "unfilled",
    "unmix",
]

_CYR = "\u0400-\u04ff"
_LAT = "A-Za-z\u00c0-\u024f"
#: Latin letters that look exactly like a Cyrillic one (and the Cyrillic letter).
LOOKALIKE = dict(zip("ABCEHKMOPTXYaceopxyIi", "АВСЕНКМОРТХУасеорхуІі", strict=True))
_TO_LATIN = {cyr: lat for lat, cyr in LOOKALIKE.items()}
_WORD = re.compile(r"\w+")
_FFFD = re.compile(r".{0,30}\ufffd.{0,30}")
_MARKERS = re.compile(r"[\x13\x14\x15]")
_FIELD = re.compile(
    r"\b(?:HYPERLINK\s+(?:\\l\s+)?\"|MERGEFIELD\s+\S|PAGEREF\s+\S|REF\s+_Ref|INCLUDEPICTURE\s+\"|"
    r"TOC\s+\\|SEQ\s+\w+\s+\\|FORMTEXT\b|FORMCHECKBOX\b|MACROBUTTON\s|FILLIN\s+\"|NUMPAGES\b|"
    r"DOCPROPERTY\s|MERGEFORMAT\b)"
)
_ROMAN = re.compile(r"[IVXLCDM]+")
_LINK_TARGET = re.compile(r"\]\([^)\s]*(?:\s+\"[^\"]*\")?\)|<[^>\s]+>|\b\S+@\S+|\b\w+://\S+")
_PLACEHOLDER_WORDS = (
    r"insert|enter|type|add|your|fill|name of|укажите|указать|вставьте|вставить|введите|впишите|"
    r"прямой|ваш|ваше|ваши|фио|должность|дата|название|наименование|имя|фамилия|контакт"
)
PLACEHOLDER = re.compile(
    rf"\((?:{_PLACEHOLDER_WORDS})\b[^()\n]*\)|\[(?:{_PLACEHOLDER_WORDS}|…|\.\.\.)[^\[\]\n]*\](?!\()"
    r"|\b[XХ]{3,}\b|_{4,}|\blorem ipsum\b",
    re.IGNORECASE,
)
_LOSS = re.compile(rf"(?:(?<=[{_CYR}])|(?<![\w?]))\?+(?=[{_CYR}])")
_LABEL = re.compile(r"(?i)\W*(пресс[- ]релиз|press release|баспасөз релизі)\W*")
_SENTENCE = re.compile(r"[^.!?…:;]+(?:[.!?…:;]+|$)")
_MD_MARKS = re.compile(r"^\s*(?:#+|>|[-*+]|\d+[.)])\s+|[*_`\\]")


@dataclass(frozen=True, slots=True)
class Leftover:
    """One thing left behind: its code, place (``file:line``), message and the text it quotes."""

    code: str
    place: str
    message: str
    found: str
    level: Literal["error", "warning", "note"] = "warning"


def _quote(text: str, limit: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def unmix(word: str) -> str | None:
    """The word with its look-alike letters in the script of the rest of it, or None if it cannot be."""
    table = LOOKALIKE if _latin_fewer(word) else _TO_LATIN
    fixed = "".join(table.get(c, c) for c in word)
    has_cyr = any("\u0400" <= c <= "\u04ff" for c in fixed)
    has_lat = any(c.isalpha() and c.isascii() for c in fixed)
    return fixed if not (has_cyr and has_lat) else None


def script_fixes(line: str) -> Iterator[tuple[str, str | None, bool]]:
    """(word, the word in one alphabet or None, True when it is a Latin look-alike word in Russian
    text) for each word of ``line`` that mixes Latin and Cyrillic or looks Cyrillic but is not."""
    bare = _LINK_TARGET.sub(" ", line)
    cyr = len(re.findall(f"[{_CYR}]", bare))
    lat = len(re.findall(f"[{_LAT}]", bare))
    for word in dict.fromkeys(_WORD.findall(bare)):
        has_cyr = re.search(f"[{_CYR}]", word) is not None
        has_lat = re.search(f"[{_LAT}]", word) is not None
        if has_cyr and has_lat:
            yield word, unmix(word), False
        elif (
            has_lat
            and not has_cyr
            and len(word) >= 2
            and word.isalpha()
            and all(c in LOOKALIKE for c in word)
            and not _ROMAN.fullmatch(word)
            and cyr > 2 * lat
        ):
            yield word, "".join(LOOKALIKE[c] for c in word), True


def _mixed(line: str, place: str) -> Iterator[Leftover]:
    for word, fixed, lookalike in script_fixes(line):
        if lookalike:
            yield Leftover(
                "mixed-script",
                place,
                f"{word!r} is written in Latin letters inside Russian text; if it is the Russian "
                f"abbreviation, write {fixed!r} in Cyrillic",
                word,
            )
            continue
        latin_fewer = _latin_fewer(word)
        odd = [c for c in dict.fromkeys(word) if c.isalpha() and c.isascii() == latin_fewer]
        letters = ", ".join(f"'{c}'" for c in odd) + (" Latin" if latin_fewer else " Cyrillic")
        fix = f"write {fixed!r}" if fixed else "retype it in one alphabet"
        yield Leftover(
            "mixed-script",
            place,
            f"{word!r} mixes Latin and Cyrillic letters ({letters}): it looks right but search, "
            f"spell checkers and screen readers break on it; {fix}",
            word,
        )


def _latin_fewer(word: str) -> bool:
    cyr = sum(1 for c in word if "\u0400" <= c <= "\u04ff")
    lat = sum(1 for c in word if c.isalpha() and c.isascii())
    return cyr >= lat


def _normal(text: str) -> str:
    return " ".join(_MD_MARKS.sub("", text).split()).casefold()


def _duplicates(lines: list[str], source: str) -> Iterator[Leftover]:
    """Paragraphs (and sentences of 40+ characters) that appear a second time."""
    paragraphs: list[tuple[int, str]] = []
    start, block = 0, list[str]()
    for number, line in enumerate([*lines, ""], start=1):
        if line.strip():
            if not block:
                start = number
            block.append(line)
        elif block:
            paragraphs.append((start, " ".join(block)))
            block = []
    seen: dict[str, int] = {}
    sentences: dict[str, int] = {}
    for number, text in paragraphs:
        key = _normal(_LINK_TARGET.sub("", text))
        if len(key) < 20:
            continue
        if key in seen:
            yield Leftover(
                "duplicate-paragraph",
                f"{source}:{number}",
                f"this paragraph repeats line {seen[key]}: {_quote(text)!r}; remove one",
                _quote(text),
            )
            continue
        seen[key] = number
        for piece in _SENTENCE.findall(key):
            sentence = piece.strip()
            if len(sentence) < 40:
                continue
            if sentence in sentences and sentences[sentence] != number:
                yield Leftover(
                    "duplicate-paragraph",
                    f"{source}:{number}",
                    f"this sentence repeats one at line {sentences[sentence]}: {_quote(sentence)!r}; "
                    "remove one",
                    _quote(sentence),
                )
            sentences.setdefault(sentence, number)


def scan_line(line: str, place: str) -> Iterator[Leftover]:
    """The leftovers in one line of text (``place`` names it)."""
    for match in _FFFD.finditer(line):
        count = line.count("\ufffd")
        yield Leftover(
            "replacement-char",
            place,
            f"{count} replacement character(s) U+FFFD (�): text that was lost when the file was "
            f"saved or converted: {_quote(match.group())!r}; retype it from the original",
            _quote(match.group()),
        )
        break
    field = _FIELD.search(line) or _MARKERS.search(line)
    if field:
        around = _MARKERS.sub(" ", line[max(0, field.start() - 10) : field.end() + 50])
        yield Leftover(
            "field-code",
            place,
            f"a Word field code was copied as text: {_quote(around)!r}; "
            "keep only the text it shows (a link as [text](https://…)), or use 'reldist import'",
            _quote(field.group()),
        )
    yield from _mixed(line, place)
    for match in PLACEHOLDER.finditer(line):
        yield Leftover(
            "placeholder",
            place,
            f"template text left unfilled: {match.group()!r}; fill it in or remove it",
            match.group(),
        )


@functools.cache
def _skeleton() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """What ``reldist new`` writes, taken from the skeleton itself so the two cannot drift apart:
    its lines (normalised), its headline labels (``headline:``) and its marks (``**CITY**``, the
    example address). Section headings are left out: a finished release keeps them."""
    from .importer import SKELETON  # at call time: the importer imports this module

    lines: set[str] = set()
    labels: set[str] = set()
    marks: set[str] = set()
    for text in SKELETON.values():
        for line in text.splitlines():
            if not line.strip() or line.startswith("## "):
                continue
            lines.add(_normal(line))
            if line.startswith("# ") and ":" in line:
                labels.add(_normal(line.split(":", 1)[0]) + ":")
            marks.update(re.findall(r"\*\*[^*]+\*\*|[\w.+-]+@[\w-]+(?:\.[\w-]+)+", line))
    return frozenset(lines), frozenset(labels), frozenset(marks)


def _skeleton_text(line: str) -> str | None:
    """What in ``line`` is still the skeleton's text, or None."""
    if not line.strip():
        return None
    lines, labels, marks = _skeleton()
    text = _normal(line)
    if any(mark in line for mark in marks):
        return _quote(line.strip())
    if any(text.startswith(label) for label in labels) or text in lines:
        return _quote(line.strip())
    for known in lines:
        matcher = difflib.SequenceMatcher(None, text, known)
        if matcher.real_quick_ratio() >= 0.85 and matcher.ratio() >= 0.85:
            return _quote(line.strip())
    return None


def _unfilled_line(line: str, place: str) -> Leftover | None:
    left = _skeleton_text(line)
    if left is None:
        return None
    return Leftover(
        "placeholder",
        place,
        f"the skeleton text 'reldist new' wrote is still here: {left!r}; replace it with the "
        "release's own text (or remove the line)",
        left,
        level="error",
    )


def unfilled(release: Release, root: Path) -> list[Leftover]:
    """The lines of the release's Markdown files still as ``reldist new`` wrote them: ``send``
    refuses such a release, as ``check`` does."""
    found = []
    for lang in release.languages:
        source = release.versions[lang].source
        text = (root / source).read_text(encoding="utf-8-sig")
        found += [
            item
            for number, line in enumerate(text.splitlines(), start=1)
            if (item := _unfilled_line(line, f"{source}:{number}")) is not None
        ]
    return found


def refuse_unfilled(release: Release, root: Path, named: str) -> None:
    """Raise :class:`ReleaseError` when :func:`unfilled` finds lines: ``send`` and ``dispatch``
    never send "# Headline: what happened" to the journalists. ``named`` is the release as the
    user would give it to ``reldist check``."""
    left = unfilled(release, root)
    if left:
        raise ReleaseError(
            f"{len(left)} line(s) still as 'reldist new' wrote them, such as {left[0].found!r}; write "
            f"the release's own text ('reldist check {named}' lists them); nothing was sent",
            place=left[0].place,
        )


def scan_markdown(text: str, source: str) -> list[Leftover]:
    """Every leftover in a Markdown file's text; ``source`` is its workspace-relative path."""
    lines = text.splitlines()
    found: list[Leftover] = []
    fence = False
    for number, line in enumerate(lines, start=1):
        if line.lstrip().startswith(("```", "~~~")):
            fence = not fence
        if not fence:
            found += scan_line(line, f"{source}:{number}")
            left = _unfilled_line(line, f"{source}:{number}")
            if left is not None:
                found.append(left)
    found += _duplicates(lines, source)
    return found


#: Languages written in Cyrillic and in Latin letters; others are not judged.
_CYRILLIC_LANGS = frozenset({"ru", "kk", "uk", "be", "bg", "mk", "sr", "ky", "tg", "mn"})
_LATIN_LANGS = frozenset({"en", "de", "fr", "es", "it", "pt", "nl", "pl", "cs", "tr", "sv", "fi", "da"})
_KAZAKH = re.compile("[әғқңөұүһіӘҒҚҢӨҰҮҺІ]")


def script_mismatch(text: str, lang: str) -> tuple[str, Literal["error", "warning"]] | None:
    """What ``text`` looks like when it is not written in ``lang``'s script (an error) or, for ru
    and kk, reads as the other one (a warning: a guess from the letters), else None."""
    bare = _LINK_TARGET.sub(" ", text)
    cyr = len(re.findall(f"[{_CYR}]", bare))
    lat = len(re.findall(f"[{_LAT}]", bare))
    kazakh = len(_KAZAKH.findall(bare))
    letters = cyr + lat
    if letters < 20:
        return None
    # Kazakh letters are one in seven of a Kazakh text and none of a Russian one; a Kazakh name
    # quoted in Russian text stays far below the 3 % taken as Kazakh here.
    looks = "Kazakh" if kazakh >= 5 and kazakh >= 0.03 * cyr else "Russian"
    if lang in _LATIN_LANGS and cyr > 0.6 * letters:
        return f"{looks} text (Cyrillic: {cyr:,} of {letters:,} letters)", "error"
    if lang in _CYRILLIC_LANGS and lat > 0.6 * letters:
        return f"text in Latin letters ({lat:,} of {letters:,} letters)", "error"
    if lang == "ru" and looks == "Kazakh":
        return (
            f"Kazakh text ({kazakh:,} of its {cyr:,} Cyrillic letters are ә, ғ, қ, ң, ө, ұ, ү, һ, і)",
            "warning",
        )
    if lang == "kk" and cyr >= 100 and kazakh < 0.005 * cyr:
        few = "none" if not kazakh else f"only {kazakh:,}"
        return (
            f"Russian text ({few} of its {cyr:,} Cyrillic letters are ә, ғ, қ, ң, ө, ұ, ү, һ, і)",
            "warning",
        )
    return None


_NAMES = {"en": "English", "ru": "Russian", "kk": "Kazakh"}


def _wrong_language(text: str, lang: str, place: str, what: str) -> list[Leftover]:
    mismatch = script_mismatch(text, lang)
    if mismatch is None:
        return []
    looks, level = mismatch
    name = _NAMES.get(lang, lang)
    return [
        Leftover(
            "wrong-language",
            place,
            f"the {lang} {what} looks like {looks}; put the {name} text here, or correct the language code",
            looks,
            level=level,
        )
    ]


def scan_field(value: str, place: str) -> list[Leftover]:
    """Leftovers in a one-line value such as a subject or preheader (no duplicates check)."""
    return list(scan_line(value, place))


class ListLosses:
    """Contact rows where a ``?`` stands inside a Cyrillic word (letters lost to cp1251), and the
    columns of each list. Keeps at most ``limit`` rows per list and counts the rest.
    """

    def __init__(self, limit: int = 10) -> None:
        self.limit = limit
        self._rows: dict[str, list[Leftover]] = {}
        self._more: dict[str, int] = {}
        self.columns: dict[str, set[str]] = {}  # list file -> its columns

    def add(self, source: str, values: Iterable[str], columns: Iterable[str] = ()) -> None:
        """Look at one row's cells; ``source`` is ``contacts/x.csv:17``."""
        self.columns.setdefault(source.rsplit(":", 1)[0], set()).update(columns)
        for value in values:
            match = _LOSS.search(value)
            if match is None:
                continue
            list_file = source.rsplit(":", 1)[0]
            rows = self._rows.setdefault(list_file, [])
            if len(rows) >= self.limit:
                self._more[list_file] = self._more.get(list_file, 0) + 1
                return
            word = next(w for w in re.findall(r"[\w?]+", value) if "?" in w)
            rows.append(
                Leftover(
                    "encoding-loss",
                    source,
                    f"{word!r} in {value!r}: a '?' inside a Cyrillic word is a letter the file's "
                    "encoding could not hold (Excel saves Kazakh letters such as қ, ә, ұ as '?' in "
                    "cp1251); fix the original and save it as 'CSV UTF-8' or .xlsx",
                    value,
                )
            )
            return

    def findings(self) -> list[Leftover]:
        found = [item for rows in self._rows.values() for item in rows]
        for list_file, more in self._more.items():
            found.append(
                Leftover(
                    "encoding-loss",
                    list_file,
                    f"{more} more row(s) with '?' inside Cyrillic words",
                    str(more),
                )
            )
        return found


def _headline_twice(text: str, headline: str, source: str) -> list[Leftover]:
    """The text's first paragraphs repeating the headline (or the «ПРЕСС-РЕЛИЗ» label the
    templates show), as Word text pasted without a ``# `` heading does."""
    import difflib

    found = []
    paragraphs: list[tuple[int, str]] = []
    start, block = 0, list[str]()
    for number, line in enumerate([*text.splitlines(), ""], start=1):
        if line.strip() and not line.startswith("#"):
            start = start or number
            block.append(line.strip())
        elif block:
            paragraphs.append((start, " ".join(block)))
            start, block = 0, []
        if len(paragraphs) == 3 or (line.startswith("## ")):
            break
    wanted = " ".join(headline.split()).casefold()
    for index, (number, paragraph) in enumerate(paragraphs):
        if _LABEL.fullmatch(paragraph.strip()):
            found.append(
                Leftover(
                    "duplicate-paragraph",
                    f"{source}:{number}",
                    f"{paragraph.strip()!r} is shown by the template already; remove it from the text",
                    paragraph.strip(),
                )
            )
            continue
        joined = ""
        for _, more in paragraphs[index:]:
            joined = f"{joined} {more}".strip()
            if wanted and difflib.SequenceMatcher(None, wanted, joined.casefold()).ratio() >= 0.8:
                found.append(
                    Leftover(
                        "duplicate-paragraph",
                        f"{source}:{number}",
                        f"the text repeats the headline {headline!r}: {_quote(joined)!r}; start the file "
                        "with it as '# headline' (or remove the copy)",
                        _quote(joined),
                    )
                )
                return found
    return found


def text_findings(job: Job, report: Preflight, losses: ListLosses) -> list[tuple[str, Leftover]]:
    """(topic, leftover) for the release's text, subjects and preheaders, its lists, and its reach."""
    release, root = job.release, job.workspace.root
    toml = place(release.folder / "release.toml", root)
    found: list[tuple[str, Leftover]] = []
    for lang in release.languages:
        version = release.versions[lang]
        for key, value in (("subject", version.subject), ("preheader", version.preheader)):
            found += [("Subject and preheader", item) for item in scan_field(value, f"{toml} [{lang}] {key}")]
        found += [
            ("Languages", item)
            for item in _wrong_language(version.subject, lang, f"{toml} [{lang}] subject", "subject")
        ]
        text = (root / version.source).read_text(encoding="utf-8-sig")
        found += [("Languages", item) for item in _wrong_language(text, lang, version.source, "version")]
        found += [("Content", item) for item in scan_markdown(text, version.source)]
        found += [
            ("Content", item)
            for item in _headline_twice(text, version.body.title or version.subject, version.source)
        ]
    found += [("Recipients", item) for item in losses.findings()]
    found += [("Recipients", item) for item in list_findings(job, report, losses.columns)]
    return found
