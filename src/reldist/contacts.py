"""Media lists: reading ``contacts/<name>.csv|.tsv|.txt|.xlsx`` into validated contacts.

This module owns everything between a list file on disk and a stream of :class:`Contact`
records: finding the file (:func:`list_path`), telling its text encoding (UTF-8, UTF-8 with BOM,
UTF-16 with BOM, cp1251) and delimiter (``,`` ``;`` tab), reading XLSX workbooks, normalising
the header, checking each address with email-validator, checking ``lang``/``languages``, merging
duplicates across lists, flagging addresses on the do-not-contact list and applying ``--where``
filters. It also reads ``contacts/suppressed.csv`` (:func:`read_suppressed`).

:func:`read_contacts` streams: it holds one row at a time plus the casefolded addresses seen so
far. A bad row becomes a :class:`Skipped` naming its ``file:line``; only a file that cannot be read
at all raises :class:`~reldist.errors.ContactsError`.

It does not decide whether a contact fits a release (languages, templates: ``plan``), know about
the ledger's suppressions (the caller passes them in) or render anything.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import itertools
import re
import zipfile
from collections.abc import Container, Generator, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import IO, Literal, TypeAlias

import charset_normalizer
import openpyxl
from email_validator import EmailNotValidError, validate_email
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet._read_only import ReadOnlyWorksheet

from .errors import ContactsError

__all__ = [
    "KNOWN_COLUMNS",
    "Contact",
    "Skipped",
    "list_path",
    "parse_where",
    "read_contacts",
    "read_suppressed",
    "read_suppressed_file",
]

KNOWN_COLUMNS: tuple[str, ...] = (
    "email",
    "name",
    "lang",
    "languages",
    "outlet",
    "beat",
    "region",
    "salutation",
    "template",
    "tags",
)

SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx")
_ALIASES = {"e_mail": "email", "email_address": "email", "e_mail_address": "email", "mail": "email"}
_HEAD_BYTES = 256 * 1024  # strict UTF-8 is checked on this much; the rest is checked as it streams
_PROBE_BYTES = 64 * 1024  # what charset-normalizer sees (it is slow on large input)
_SNIFF_CHARS = 16 * 1024
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: FF FE 00 00 starts with FF FE
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# What charset-normalizer may name for a list to be read; anything else is refused, not guessed.
# cp1251 is also taken when the bytes read as cp1251 are clean Russian (_looks_like_cp1251).
_ACCEPTED = frozenset({"cp1251", "koi8_r", "koi8_u", "utf_16", "utf_16_le", "utf_16_be"})
_RUSSIAN_LETTERS = frozenset("АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯабвгдеёжзийклмнопрстуфхцчшщъыьэюяІіЇїЄєҐґЎў")
_CP1251_PUNCTUATION = frozenset("«»—–…№“”„‘’•·\xa0\xad°±§©®™€")
_WORD = re.compile(r"[^\W\d_]+")
_LANG = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{2,8})*")
_LANG_SPLIT = re.compile(r"[\s,;/]+")
_TAG_SPLIT = re.compile(r"[;,]")
_SEP_LINE = re.compile(r"\ufeff?sep=(.)")  # Excel's "sep=;" first line


@dataclass(frozen=True, slots=True)
class Contact:
    """One valid recipient from a media list."""

    address: str  # normalised by email-validator; an IDN domain in Unicode form
    ascii_address: str | None  # None when the local part is non-ASCII (needs SMTPUTF8)
    name: str
    lang: str | None  # lower-case language code ("ru", "pt-br")
    languages: tuple[str, ...]  # () = all of the release's languages
    template: str | None
    tags: tuple[str, ...]
    fields: Mapping[str, str] = field(hash=False)  # every named column -> stripped cell text
    source: str  # "contacts/regional.csv:17"
    list_name: str  # "regional"


@dataclass(frozen=True, slots=True)
class Skipped:
    """A row that is not a recipient: broken, a duplicate of an earlier row, or do-not-contact."""

    kind: Literal["invalid", "duplicate", "suppressed"]
    source: str
    reason: str
    address: str  # the normalised address if the row had one, else the raw cell text
    name: str

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


@dataclass(frozen=True, slots=True)
class _BadRow:
    """A row the CSV reader could not split (broken quotes)."""

    reason: str


_Row: TypeAlias = tuple[int, list[str] | _BadRow]


@dataclass(frozen=True, slots=True)
class _List:
    name: str
    path: Path
    display: str
    encoding: str | None  # None for XLSX
    columns: tuple[str, ...]  # normalised header; "" for a column without a name


# -- finding lists ---------------------------------------------------------------------------


def _display(workspace: Path, path: Path) -> str:
    try:
        return path.relative_to(workspace).as_posix()
    except ValueError:
        return path.as_posix()


def _candidates(workspace: Path, name: str) -> list[Path]:
    wanted = workspace / "contacts" / name
    if wanted.suffix.lower() in SUFFIXES:
        return [wanted] if wanted.is_file() else []
    if not wanted.parent.is_dir():
        return []
    return sorted(
        p
        for p in wanted.parent.iterdir()
        if p.stem == wanted.name and p.suffix.lower() in SUFFIXES and p.is_file()
    )


def list_path(workspace: Path, name: str) -> Path:
    """The file of list ``name``: ``contacts/<name>.csv``, ``.tsv``, ``.txt`` or ``.xlsx``."""
    found = _candidates(workspace, name)
    place = f"contacts/{name}"
    stem = Path(name).name
    if not found:
        given = Path(stem).suffix.lower() in SUFFIXES
        looked = stem if given else ", ".join(stem + suffix for suffix in SUFFIXES)
        hint = ""
        for old in (".xls", ".ods", ".numbers"):
            if (workspace / "contacts" / (name + old)).exists():
                hint = f"; {stem}{old} is there: save it as .xlsx or as 'CSV UTF-8'"
        raise ContactsError(f"{place}: no such list (looked for {looked}){hint}")
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise ContactsError(f"{place}: more than one file for this list ({names}); keep one")
    return found[0]


# -- text encodings and rows -----------------------------------------------------------------


def _looks_like_cp1251(text: str) -> bool:
    """True when ``text`` (bytes read as cp1251) is clean Russian: the fallback for short files.

    charset-normalizer needs a few dozen Cyrillic letters to name cp1251; a two-row list is too
    short. Latin-1 text read as cp1251 turns into words that mix Latin and Cyrillic letters, and
    KOI8-R into words with the case upside down, so both are refused here.
    """
    for char in text:
        if char >= "\x80" and char not in _CP1251_PUNCTUATION and char not in _RUSSIAN_LETTERS:
            return False
    cyrillic = False
    for word in _WORD.findall(text):
        if word.isascii():
            continue
        if any(char.isascii() for char in word):
            return False
        if not (word.islower() or word.isupper() or (word[0].isupper() and word[1:].islower())):
            return False
        cyrillic = True
    return cyrillic


def _detect(head: bytes, *, whole: bool, display: str) -> str:
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for start in range(0, len(head), 65536):  # in pieces: the text itself is not kept
            decoder.decode(head[start : start + 65536])
        decoder.decode(b"", final=whole)
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"
    probe = head[:_PROBE_BYTES]
    best = charset_normalizer.from_bytes(probe).best()
    # could_be_from_charset lists encodings that give the very same text
    named = (best.encoding, *best.could_be_from_charset) if best is not None else ()
    if "cp1251" in named or _looks_like_cp1251(probe.decode("cp1251", errors="replace")):
        return "cp1251"
    for name in named:
        if name in _ACCEPTED:
            return name
    raise ContactsError(
        f"{display}: cannot tell the text encoding (not UTF-8, UTF-16 or cp1251); "
        "save it from Excel as 'CSV UTF-8'"
    )


def _encoding(path: Path, display: str, forced: str | None) -> str:
    if forced is not None:
        try:
            return codecs.lookup(forced).name
        except LookupError:
            raise ContactsError(f"{display}: unknown text encoding '{forced}'") from None
    try:
        with path.open("rb") as raw:
            head = raw.read(_HEAD_BYTES)
    except OSError as exc:
        raise ContactsError(f"{display}: cannot read it ({exc.strerror})") from None
    if head.startswith(b"PK\x03\x04"):
        raise ContactsError(f"{display}: this is an Excel workbook, not text; name it .xlsx")
    return _detect(head, whole=len(head) < _HEAD_BYTES, display=display)


def _decode_error(path: Path, encoding: str, display: str) -> ContactsError:
    """The exact line of the first undecodable byte (an error path: reading it all is fine)."""
    data = path.read_bytes()
    try:
        data.decode(encoding)
    except UnicodeDecodeError as exc:
        text = data[: exc.start].decode(encoding, errors="replace")
        line = text.count("\n") + text.count("\r") - text.count("\r\n") + 1
        return ContactsError(
            f"{display}:{line}: cannot read this line as {encoding} "
            f"(byte 0x{data[exc.start]:02x}: {exc.reason}); save the file from Excel as 'CSV UTF-8'"
        )
    return ContactsError(f"{display}: cannot read it as {encoding}")  # pragma: no cover


def _delimiter(lines: list[str]) -> str:
    header = next((line for line in lines if line.strip()), "")
    counts = {d: header.count(d) for d in ",;\t"}
    present = [d for d in ",;\t" if counts[d]]
    if len(present) <= 1:
        return present[0] if present else ","
    try:
        return csv.Sniffer().sniff("".join(lines[:50]), delimiters=",;\t").delimiter
    except csv.Error:
        return max(",;\t", key=lambda d: counts[d])


def _parse_csv(text: IO[str], display: str) -> Iterator[_Row]:
    lines: list[str] = []
    size = 0
    while size < _SNIFF_CHARS and (line := text.readline()):
        lines.append(line)
        size += len(line)
    offset = 0
    sep = _SEP_LINE.fullmatch(lines[0].rstrip("\r\n")) if lines else None
    if sep is not None:
        delimiter = sep.group(1)
        lines.pop(0)
        offset = 1
    else:
        delimiter = _delimiter(lines)
    # strict: a quote left open raises at the end instead of swallowing the rest of the file
    reader = csv.reader(itertools.chain(lines, text), delimiter=delimiter, strict=True)
    while True:
        start = reader.line_num + 1 + offset  # physical line where the next row starts
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "unexpected end of data" in str(exc) or "field larger" in str(exc):
                raise ContactsError(
                    f"{display}:{start}: a quoted cell starts in this row and its closing quote "
                    "is missing (everything after it would be one cell)"
                ) from None
            yield start, _BadRow(f"the quotes in this row are broken ({exc})")
            continue
        yield start, row


def _csv_rows(path: Path, display: str, encoding: str) -> Iterator[_Row]:
    try:
        with path.open("rb") as raw, io.TextIOWrapper(raw, encoding=encoding, newline="") as text:
            yield from _parse_csv(text, display)
    except UnicodeDecodeError:
        raise _decode_error(path, encoding, display) from None


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone number typed as a number: 77012345678, not 77012345678.0
    if isinstance(value, dt.datetime):
        if value.time() == dt.time():
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="minutes" if not value.second else "seconds")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _xlsx_rows(path: Path, display: str) -> Iterator[_Row]:
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ContactsError(f"{display}: cannot read it as an Excel workbook ({exc})") from None
    try:
        sheet = book.worksheets[0]
        if isinstance(sheet, ReadOnlyWorksheet):
            sheet.reset_dimensions()  # some writers record a wrong size; read every row there is
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, [_cell_text(v) for v in values]
    finally:
        book.close()


def _rows(path: Path, display: str, encoding: str | None) -> Generator[_Row, None, None]:
    """Every non-blank row of a list file, the header included, with its line (or row) number."""
    try:
        rows = _xlsx_rows(path, display) if encoding is None else _csv_rows(path, display, encoding)
        for number, cells in rows:
            if isinstance(cells, _BadRow) or any(cell.strip() for cell in cells):
                yield number, cells
    except OSError as exc:
        raise ContactsError(f"{display}: cannot read it ({exc.strerror})") from None


def _column_name(text: str) -> str:
    name = re.sub(r"[\s\-]+", "_", text.replace("\ufeff", "").strip().lower())
    return _ALIASES.get(name, name)


def _open(workspace: Path, name: str, path: Path, forced: str | None) -> _List:
    """Find a list's encoding and read its header (only the header)."""
    display = _display(workspace, path)
    encoding = None if path.suffix.lower() == ".xlsx" else _encoding(path, display, forced)
    with closing(_rows(path, display, encoding)) as rows:
        first = next(rows, None)
    if first is None:
        raise ContactsError(f"{display}: the file is empty (it needs a header row with 'email')")
    line, cells = first
    if isinstance(cells, _BadRow):
        raise ContactsError(f"{display}:{line}: cannot read the header: {cells.reason}")
    columns = tuple(_column_name(cell) for cell in cells)
    first_at: dict[str, int] = {}
    for index, column in enumerate(columns):
        if column in first_at:
            other = cells[first_at[column]].strip()
            raise ContactsError(
                f"{display}:{line}: two columns are both '{column}' "
                f"('{other}' and '{cells[index].strip()}'); rename or remove one"
            )
        if column:
            first_at[column] = index
    if "email" not in first_at:
        found = ", ".join(cell.strip()[:40] for cell in cells if cell.strip())
        raise ContactsError(f"{display}:{line}: no 'email' column (columns: {found})")
    return _List(Path(name).stem, path, display, encoding, columns)


# -- rows into contacts ----------------------------------------------------------------------


def _split_languages(text: str) -> list[str]:
    return [part.replace("_", "-").lower() for part in _LANG_SPLIT.split(text) if part]


def _split_tags(text: str) -> tuple[str, ...]:
    tags = (tag.strip() for tag in _TAG_SPLIT.split(text))
    return tuple(dict.fromkeys(tag for tag in tags if tag))


def _matches(fields: Mapping[str, str], conditions: Sequence[tuple[str, str]]) -> bool:
    for column, wanted in conditions:
        cell = fields.get(column, "")
        if column == "tags":
            values: Sequence[str] = _split_tags(cell) or ("",)
        elif column == "languages":
            values = _split_languages(cell) or [""]
        else:
            values = (cell,)
        if all(value.casefold() != wanted for value in values):
            return False
    return True


def _check_address(raw: str) -> tuple[str, str | None] | str:
    """(normalised, ASCII form or None) for a good address, else the reason it is not one."""
    if not raw:
        return "no email address"
    try:
        checked = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        hint = ""
        if "<" in raw and ">" in raw:
            hint = "; put only the address in the email column and the name in the name column"
        elif raw.lower().startswith("mailto:"):
            hint = "; remove 'mailto:'"
        elif raw.count("@") > 1 and re.search(r"[\s,;]", raw):
            hint = "; one address a row: give the second one a row of its own"
        return f"'{raw}' is not an email address: {exc}{hint}"
    return checked.normalized, checked.ascii_email


def _check_languages(fields: Mapping[str, str]) -> tuple[str | None, tuple[str, ...]] | str:
    raw_lang = fields.get("lang", "")
    lang = raw_lang.replace("_", "-").lower() or None
    if lang is not None and not _LANG.fullmatch(lang):
        return f"lang '{raw_lang}' is not a language code such as ru, en, kk"
    raw_languages = fields.get("languages", "")
    languages = tuple(dict.fromkeys(_split_languages(raw_languages)))
    for code in languages:
        if not _LANG.fullmatch(code):
            return f"languages '{raw_languages}': '{code}' is not a language code such as ru, en, kk"
    return lang, languages


def _fields(columns: tuple[str, ...], cells: list[str]) -> tuple[dict[str, str], list[str]]:
    """The named columns' stripped cells, and the non-empty cells outside any named column."""
    fields = dict.fromkeys((c for c in columns if c), "")
    stray: list[str] = []
    for index, cell in enumerate(cells):
        column = columns[index] if index < len(columns) else ""
        if column:
            fields[column] = cell.strip()
        elif cell.strip():
            stray.append(cell.strip())
    return fields, stray


def _item(
    lst: _List,
    line: int,
    cells: list[str] | _BadRow,
    conditions: Sequence[tuple[str, str]],
    seen: dict[str, str],
    suppressed: Container[str],
) -> Contact | Skipped | None:
    source = f"{lst.display}:{line}"
    if isinstance(cells, _BadRow):
        return Skipped("invalid", source, cells.reason, "", "")
    fields, stray = _fields(lst.columns, cells)
    raw, name = fields["email"], fields.get("name", "")
    if stray:
        quoted = ", ".join(f"'{cell}'" for cell in stray[:3])
        return Skipped(
            "invalid",
            source,
            f"{len(stray)} cell(s) outside the named columns ({quoted}); give the column a "
            "name in the header, or put quotes around a cell that contains the delimiter",
            raw,
            name,
        )
    if conditions and not _matches(fields, conditions):
        return None
    checked = _check_address(raw)
    if isinstance(checked, str):
        return Skipped("invalid", source, checked, raw, name)
    address, ascii_address = checked
    key = address.casefold()
    first = seen.get(key)
    if first is not None:
        reason = f"{address} is already in {first}; merged (the first row is kept)"
        return Skipped("duplicate", source, reason, address, name)
    langs = _check_languages(fields)
    if isinstance(langs, str):
        return Skipped("invalid", source, langs, address, name)
    # only now: a broken row does not hide a later good row of the same address
    seen[key] = source
    if key in suppressed:
        why = suppressed.get(key, "") if isinstance(suppressed, Mapping) else ""
        reason = f"{address} is on the do-not-contact list" + (f" ({why})" if why else "")
        return Skipped("suppressed", source, reason, address, name)
    return Contact(
        address=address,
        ascii_address=ascii_address,
        name=name,
        lang=langs[0],
        languages=langs[1],
        template=fields.get("template") or None,
        tags=_split_tags(fields.get("tags", "")),
        fields=MappingProxyType(fields),
        source=source,
        list_name=lst.name,
    )


def parse_where(expr: str) -> tuple[str, str]:
    """``"beat=climate"`` -> ``("beat", "climate")`` (``--where`` on the command line)."""
    column, equals, value = expr.partition("=")
    if not equals or not column.strip():
        raise ContactsError(f"--where {expr}: write it as COLUMN=VALUE, e.g. --where beat=climate")
    return column.strip(), value.strip()


def read_contacts(
    workspace: Path,
    lists: Sequence[str],
    *,
    where: Sequence[tuple[str, str]] = (),
    suppressed: Container[str] = frozenset(),
    strict: bool = False,
    encoding: str | None = None,
) -> Iterator[Contact | Skipped]:
    """Stream the contacts of ``lists`` in order: each row as a Contact or a Skipped.

    ``where`` keeps only rows whose columns have these values (all must match; for ``tags`` and
    ``languages``, one of the values); other rows are left out without a word. ``suppressed``
    holds casefolded addresses (a mapping's values are shown as the reason). Every list's header
    is read before the first row, so a missing list or column fails before anything is yielded.
    With ``strict`` the first invalid row raises :class:`ContactsError` instead.

    Each casefolded address comes out at most once as a Contact or a suppressed Skipped; later
    rows with it are duplicates. An invalid row does not count, so a corrected copy later wins.
    """
    paths: dict[Path, str] = {}
    for name in lists:
        paths.setdefault(list_path(workspace, name), name)  # a list named twice is read once
    opened = [_open(workspace, name, path, encoding) for path, name in paths.items()]
    conditions: list[tuple[str, str]] = []
    for column, value in where:
        key = _column_name(column)
        if not any(key in lst.columns for lst in opened):
            raise ContactsError(f"--where {column}={value}: no list has a column '{key}'")
        conditions.append((key, value.strip().casefold()))
    seen: dict[str, str] = {}
    for lst in opened:
        with closing(_rows(lst.path, lst.display, lst.encoding)) as rows:
            for line, cells in itertools.islice(rows, 1, None):  # the header was read by _open
                item = _item(lst, line, cells, conditions, seen, suppressed)
                if item is None:
                    continue
                if strict and isinstance(item, Skipped) and item.kind == "invalid":
                    raise ContactsError(str(item))
                yield item


def read_suppressed_file(path: Path, *, workspace: Path | None = None) -> dict[str, str]:
    """Addresses of a do-not-contact file (columns ``email`` [, ``reason``, ...]) -> reason.

    The keys are normalised addresses as written (the first row wins). Any bad row raises
    :class:`ContactsError` naming ``file:line``: a do-not-contact list must not be half read.
    """
    lst = _open(workspace or path.parent, path.stem, path, None)
    result: dict[str, str] = {}
    with closing(_rows(lst.path, lst.display, lst.encoding)) as rows:
        for line, cells in itertools.islice(rows, 1, None):
            if isinstance(cells, _BadRow):
                raise ContactsError(f"{lst.display}:{line}: {cells.reason}")
            fields, stray = _fields(lst.columns, cells)
            if stray:
                raise ContactsError(f"{lst.display}:{line}: cells outside the named columns")
            checked = _check_address(fields["email"])
            if isinstance(checked, str):
                raise ContactsError(f"{lst.display}:{line}: {checked}")
            result.setdefault(checked[0], fields.get("reason", ""))
    return result


def read_suppressed(workspace: Path) -> dict[str, str]:
    """``contacts/suppressed.csv`` (optional) as ``{casefolded address: reason}``."""
    if not _candidates(workspace, "suppressed"):
        return {}
    path = list_path(workspace, "suppressed")
    result: dict[str, str] = {}
    for address, reason in read_suppressed_file(path, workspace=workspace).items():
        result.setdefault(address.casefold(), reason)
    return result
