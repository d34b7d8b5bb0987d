"""Media lists: reading ``contacts/<name>.csv|.tsv|.txt|.xlsx`` into validated contacts.

This module owns everything between a list file on disk and a stream of :class:`Contact`
records: finding the file (:func:`list_path`), normalising the header (the rows themselves, with
their encoding, delimiter and XLSX, come from ``sheets``), checking each address with
email-validator, checking ``lang``/``languages``, merging duplicates across lists, flagging
addresses on the do-not-contact list and applying ``--where`` filters. It also reads ``contacts/suppressed.csv`` (:func:`read_suppressed`).

:func:`read_contacts` streams: it holds one row at a time plus the casefolded addresses seen so
far. A bad row becomes a :class:`Skipped` naming its ``file:line``; only a file that cannot be read
at all raises :class:`~reldist.errors.ContactsError`.

It does not decide whether a contact fits a release (languages, templates: ``plan``), know about
the ledger's suppressions (the caller passes them in) or render anything.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from email_validator import EmailNotValidError, validate_email

from . import sheets
from .errors import ContactsError, place
from .names import bad_list_name, did_you_mean
from .vocabulary import KNOWN_COLUMNS, check_languages, column_name, split_languages

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

SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx")
_HEADER_SEARCH = 30  # rows looked at for the header (title rows above it are skipped)
_TAG_SPLIT = re.compile(r"[;,]")


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
    bad: bool = True  # False for a good row this release cannot serve (it reads only other languages)

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


@dataclass(frozen=True, slots=True)
class _List:
    name: str
    path: Path
    display: str
    encoding: str | None  # None for XLSX
    columns: tuple[str, ...]  # normalised header; "" for a column without a name
    header_line: int = 1  # rows up to this one are the header and title rows above it
    sheet: str | None = None  # the workbook sheet named as ``list#sheet``


# -- finding lists ---------------------------------------------------------------------------


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
    """The file of list ``name``: ``contacts/<name>.csv``, ``.tsv``, ``.txt`` or ``.xlsx``.

    ``name#sheet`` names a sheet of a workbook; the file is the same.
    """
    name = name.partition("#")[0]
    problem = bad_list_name(name)
    if problem:
        raise ContactsError(f"list {problem}")
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
        folder = workspace / "contacts"
        have = sorted(
            {p.stem for p in folder.iterdir() if p.suffix.lower() in SUFFIXES} - {"suppressed"}
            if folder.is_dir()
            else set()
        )
        if not hint:
            hint = did_you_mean(stem, have)
        raise ContactsError(f"no such list (looked for {looked}){hint}", place=place)
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise ContactsError(f"more than one file for this list ({names}); keep one", place=place)
    return found[0]


# -- text encodings and rows -----------------------------------------------------------------


def _column_name(text: str) -> str:
    return column_name(text)


def _open(workspace: Path, name: str, path: Path, forced: str | None) -> _List:
    """Find a list's encoding and its header row (the first row with an email column)."""
    display = place(path, workspace)
    sheet = name.partition("#")[2] or None
    encoding = None if path.suffix.lower() == ".xlsx" else sheets.encoding_of(path, display, forced)
    if sheet is not None and encoding is not None:
        raise ContactsError(
            f"'#{sheet}' names a sheet, but this is a text file, not a workbook", place=display
        )
    head: list[tuple[int, list[str] | sheets.BadRow]] = []
    with closing(sheets.rows(path, display, encoding, sheet=sheet)) as rows:
        for row in rows:
            head.append(row)
            cells = row[1]
            if not isinstance(cells, sheets.BadRow) and "email" in (_column_name(c) for c in cells):
                break
            if len(head) >= _HEADER_SEARCH:
                break
    if not head:
        raise ContactsError("the file is empty (it needs a header row with 'email')", place=display)
    line, cells = head[-1]
    if isinstance(cells, sheets.BadRow) or "email" not in (_column_name(c) for c in cells):
        line, cells = head[0]
    if isinstance(cells, sheets.BadRow):
        raise ContactsError(f"cannot read the header: {cells.reason}", place=f"{display}:{line}")
    columns = tuple(_column_name(cell) for cell in cells)
    first_at: dict[str, int] = {}
    for index, column in enumerate(columns):
        if column in first_at:
            other = cells[first_at[column]].strip()
            raise ContactsError(
                f"two columns are both '{column}' "
                f"('{other}' and '{cells[index].strip()}'); rename or remove one",
                place=f"{display}:{line}",
            )
        if column:
            first_at[column] = index
    if "email" not in first_at:
        found = ", ".join(cell.strip()[:40] for cell in cells if cell.strip())
        raise ContactsError(
            f"no 'email' column (columns: {found}); name it email, E-mail or Почта", place=f"{display}:{line}"
        )
    return _List(Path(name.partition("#")[0]).stem, path, display, encoding, columns, line, sheet)


# -- rows into contacts ----------------------------------------------------------------------


def _split_tags(text: str) -> tuple[str, ...]:
    tags = (tag.strip() for tag in _TAG_SPLIT.split(text))
    return tuple(dict.fromkeys(tag for tag in tags if tag))


def _matches(fields: Mapping[str, str], conditions: Sequence[tuple[str, str]]) -> bool:
    for column, wanted in conditions:
        cell = fields.get(column, "")
        if column == "tags":
            values: Sequence[str] = _split_tags(cell) or ("",)
        elif column == "languages":
            split = split_languages(cell)
            values = (split or [""]) if isinstance(split, list) else [cell]
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
    cells: list[str] | sheets.BadRow,
    conditions: Sequence[tuple[str, str]],
    seen: dict[str, int],
    suppressed: Container[str],
    *,
    index: int,
    displays: Sequence[str],
) -> Contact | Skipped | None:
    source = f"{lst.display}:{line}"
    if isinstance(cells, sheets.BadRow):
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
        where = f"{displays[first >> 32]}:{first & 0xFFFFFFFF}"
        reason = f"{address} is already in {where}; merged (the first row is kept)"
        return Skipped("duplicate", source, reason, address, name)
    langs = check_languages(fields.get("lang", ""), fields.get("languages", ""))
    if isinstance(langs, str):
        return Skipped("invalid", source, langs, address, name)
    # only now: a broken row does not hide a later good row of the same address
    # The first row's place packed in one int (list index, line): at 100,000 addresses this
    # map is most of what reading holds, and a "file:line" string each costs ~4 MB more.
    seen[key] = index << 32 | line
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
    paths: dict[tuple[Path, str], str] = {}
    for name in lists:  # a list named twice is read once
        paths.setdefault((list_path(workspace, name), name.partition("#")[2]), name)
    opened = [_open(workspace, name, path, encoding) for (path, _), name in paths.items()]
    conditions: list[tuple[str, str]] = []
    for column, value in where:
        key = _column_name(column)
        if not any(key in lst.columns for lst in opened):
            have = sorted({c for lst in opened for c in lst.columns if c})
            raise ContactsError(
                f"--where {column}={value}: no list has a column '{key}'{did_you_mean(key, have)}"
            )
        conditions.append((key, value.strip().casefold()))
    seen: dict[str, int] = {}
    displays = [lst.display for lst in opened]
    for index, lst in enumerate(opened):
        with closing(sheets.rows(lst.path, lst.display, lst.encoding, sheet=lst.sheet)) as rows:
            for line, cells in rows:
                if line <= lst.header_line:  # the header (read by _open) and title rows above it
                    continue
                item = _item(lst, line, cells, conditions, seen, suppressed, index=index, displays=displays)
                if item is None:
                    continue
                if strict and isinstance(item, Skipped) and item.kind == "invalid":
                    raise ContactsError(str(item))
                yield item


def read_suppressed_file(
    path: Path, *, workspace: Path | None = None, lines: dict[str, str] | None = None
) -> dict[str, str]:
    """Addresses of a do-not-contact file (columns ``email`` [, ``reason``, ...]) -> reason.

    The keys are normalised addresses as written (the first row wins); ``lines``, when given, is
    filled with each one's ``file:line``. Any bad row raises :class:`ContactsError` naming
    ``file:line``: a do-not-contact list must not be half read.
    """
    lst = _open(workspace or path.parent, path.stem, path, None)
    result: dict[str, str] = {}
    with closing(sheets.rows(lst.path, lst.display, lst.encoding)) as rows:
        for line, cells in rows:
            if line <= lst.header_line:
                continue
            if isinstance(cells, sheets.BadRow):
                raise ContactsError(f"{cells.reason}", place=f"{lst.display}:{line}")
            fields, stray = _fields(lst.columns, cells)
            if stray:
                raise ContactsError("cells outside the named columns", place=f"{lst.display}:{line}")
            checked = _check_address(fields["email"])
            if isinstance(checked, str):
                raise ContactsError(f"{checked}", place=f"{lst.display}:{line}")
            result.setdefault(checked[0], fields.get("reason", ""))
            if lines is not None:
                lines.setdefault(checked[0].casefold(), f"{lst.display}:{line}")
    return result


def read_suppressed(workspace: Path, *, lines: dict[str, str] | None = None) -> dict[str, str]:
    """``contacts/suppressed.csv`` (optional) as ``{casefolded address: reason}``; ``lines``, when
    given, is filled with ``{casefolded address: "contacts/suppressed.csv:2"}``."""
    if not _candidates(workspace, "suppressed"):
        return {}
    path = list_path(workspace, "suppressed")
    result: dict[str, str] = {}
    for address, reason in read_suppressed_file(path, workspace=workspace, lines=lines).items():
        result.setdefault(address.casefold(), reason)
    return result
