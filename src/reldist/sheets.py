"""Reading list files: text encodings, CSV dialects and XLSX workbooks, as rows of cells.

Owns turning ``contacts/<name>.csv|.tsv|.txt|.xlsx`` into ``(line number, cells)`` rows: the
encoding (a byte-order mark, strict UTF-8, or cp1251/KOI8/UTF-16 named by charset-normalizer
and checked; anything else is an error, never a guess), the delimiter (``,`` ``;`` tab, from the
header line) and Excel's ``sep=`` line, quoted cells over several lines (a row's number is the
physical line it starts on), and the first (or a named) sheet of an XLSX workbook. What the cells mean is
``contacts``' business.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import itertools
import re
import zipfile
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeAlias

import charset_normalizer

from .errors import ContactsError

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
_SEP_LINE = re.compile(r"\ufeff?sep=(.)")  # Excel's "sep=;" first line


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row the CSV reader could not split (broken quotes)."""

    reason: str


Row: TypeAlias = tuple[int, list[str] | BadRow]


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
        return _likely(probe, "cp1251", display)
    for name in named:
        if name in _ACCEPTED:
            return _likely(probe, name, display) if name.startswith(("cp", "koi8")) else name
    raise ContactsError(
        "cannot tell the text encoding (not UTF-8, UTF-16 or cp1251); save it from Excel as 'CSV UTF-8'",
        place=display,
    )


def _likely(probe: bytes, encoding: str, display: str) -> str:
    """``encoding`` when the probe read in it is text a list could hold, else an error naming the
    first line with characters no Russian or Kazakh list has (Serbian letters, box drawing…):
    bytes that are not in this encoding at all, which reldist does not guess its way through."""
    text = probe.decode(encoding, errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        _refuse_odd(line, encoding, f"{display}:{number}")
    return encoding


def _refuse_odd(text: str, encoding: str, where: str) -> None:
    odd = [c for c in text if c >= "\x80" and c not in _RUSSIAN_LETTERS and c not in _CP1251_PUNCTUATION]
    if odd:
        shown = "".join(dict.fromkeys(odd))[:12]
        raise ContactsError(
            f"read as {encoding}, this line has characters no list has ({shown!r}): the file is "
            "in another encoding or damaged; fix it in the original and save it as UTF-8 "
            "(Excel: 'CSV UTF-8')",
            place=where,
        )


def encoding_of(path: Path, display: str, forced: str | None) -> str:
    if forced is not None:
        try:
            return codecs.lookup(forced).name
        except LookupError:
            raise ContactsError(f"unknown text encoding '{forced}'", place=display) from None
    try:
        with path.open("rb") as raw:
            head = raw.read(_HEAD_BYTES)
    except OSError as exc:
        raise ContactsError(f"cannot read it ({exc.strerror})", place=display) from None
    if head.startswith(b"PK\x03\x04"):
        raise ContactsError("this is an Excel workbook, not text; name it .xlsx", place=display)
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
            f"cannot read this line as {encoding} "
            f"(byte 0x{data[exc.start]:02x}: {exc.reason}); save the file from Excel as 'CSV UTF-8'",
            place=f"{display}:{line}",
        )
    return ContactsError(f"cannot read it as {encoding}", place=display)  # pragma: no cover


def _delimiter(lines: list[str]) -> str:
    # the header is the line with the most delimiters: title lines above it have few or none
    header = max(
        (line for line in lines[:30] if line.strip()), key=lambda x: sum(map(x.count, ",;\t")), default=""
    )
    counts = {d: header.count(d) for d in ",;\t"}
    present = [d for d in ",;\t" if counts[d]]
    if len(present) <= 1:
        return present[0] if present else ","
    try:
        return csv.Sniffer().sniff("".join(lines[:50]), delimiters=",;\t").delimiter
    except csv.Error:
        return max(",;\t", key=lambda d: counts[d])


def _parse_csv(text: IO[str], display: str) -> Iterator[Row]:
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
                    "a quoted cell starts in this row and its closing quote "
                    "is missing (everything after it would be one cell)",
                    place=f"{display}:{start}",
                ) from None
            yield start, BadRow(f"the quotes in this row are broken ({exc})")
            continue
        yield start, row


def _csv_rows(path: Path, display: str, encoding: str) -> Iterator[Row]:
    try:
        # a one-byte Cyrillic encoding reads any bytes: rows past the detection probe are looked
        # at too, so damaged bytes further down are an error, not a name or a greeting
        single = codecs.lookup(encoding).name in ("cp1251", "koi8-r", "koi8-u")
        with path.open("rb") as raw, io.TextIOWrapper(raw, encoding=encoding, newline="") as text:
            for start, row in _parse_csv(text, display):
                if single and not isinstance(row, BadRow):
                    _refuse_odd("".join(row), encoding, f"{display}:{start}")
                yield start, row
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


def _xlsx_rows(path: Path, display: str, sheet_name: str | None = None) -> Iterator[Row]:
    # openpyxl costs ~15 MB when imported: only for workspaces that have an .xlsx list.
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ContactsError(f"cannot read it as an Excel workbook ({exc})", place=display) from None
    try:
        if sheet_name is None:
            sheet = book.worksheets[0]
        elif sheet_name in book.sheetnames:
            sheet = book[sheet_name]
        else:
            names = ", ".join(repr(name) for name in book.sheetnames)
            raise ContactsError(f"no sheet {sheet_name!r} (the sheets are {names})", place=display)
        if isinstance(sheet, ReadOnlyWorksheet):
            sheet.reset_dimensions()  # some writers record a wrong size; read every row there is
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, [_cell_text(v) for v in values]
    finally:
        book.close()


def sheet_names(path: Path) -> list[str]:
    """The sheets of an XLSX workbook, in order."""
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True)
    try:
        return list(book.sheetnames)
    finally:
        book.close()


def rows(
    path: Path, display: str, encoding: str | None, *, sheet: str | None = None
) -> Generator[Row, None, None]:
    """Every non-blank row of a list file, the header included, with its line (or row) number.

    ``sheet`` names a workbook's sheet (default: the first).
    """
    try:
        rows = _xlsx_rows(path, display, sheet) if encoding is None else _csv_rows(path, display, encoding)
        for number, cells in rows:
            if isinstance(cells, BadRow) or any(cell.strip() for cell in cells):
                yield number, cells
    except OSError as exc:
        raise ContactsError(f"cannot read it ({exc.strerror})", place=display) from None
