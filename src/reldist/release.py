"""A release: ``releases/<id>/release.toml`` plus one Markdown file a language.

Owns reading and checking the release folder: every language named in ``languages`` has a file
and a subject, listed files exist, ``send_at`` and ``embargo`` carry a time zone. Each language's
Markdown is converted once (``markup.convert``) into the HTML and plain-text bodies that every
recipient's message shares. Rendering per recipient is ``render``'s job.
"""

from __future__ import annotations

import datetime as dt
import mimetypes
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ReleaseError, place
from .markup import Body, convert
from .names import (
    bad_list_name,
    bad_template_name,
    check_id,
    find_release,  # noqa: F401  (re-exported: reldist.release.find_release)
)
from .schema import Schema, check_table, str_list

_TOP: Schema = {
    "id": str,
    "languages": (list, str),
    "lists": (list, str),
    "template": str,
    "send_at": (dt.datetime, str),
    "embargo": (dt.datetime, str),
    "embargo_subject": bool,
    "attachments": (list, str),
    "bilingual_subject": bool,
}
_LANG: Schema = {"file": str, "subject": str, "preheader": str}
_LANG_CODE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]+)?$")


@dataclass(frozen=True, slots=True)
class Version:
    """One language of a release."""

    lang: str
    subject: str
    preheader: str
    body: Body
    source: str  # workspace-relative path of the Markdown file


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with every message."""

    path: Path
    source: str  # as written in release.toml
    content_type: str
    data: bytes

    @property
    def filename(self) -> str:
        return self.path.name


@dataclass(frozen=True, slots=True)
class Release:
    """A checked release, ready to render."""

    id: str
    folder: Path
    languages: tuple[str, ...]
    lists: tuple[str, ...]
    template: str
    versions: dict[str, Version]
    send_at: dt.datetime | None = None
    embargo: dt.datetime | None = None
    embargo_subject: bool = False
    attachments: tuple[Attachment, ...] = ()
    bilingual_subject: bool = False


def load_release(
    folder: Path, *, workspace: Path, default_languages: tuple[str, ...] = ("ru", "en")
) -> Release:
    """Read and check a release folder; raises :class:`ReleaseError` naming the file and key."""
    folder = folder.resolve()
    toml_path = folder / "release.toml"
    where = place(toml_path, workspace)
    if not folder.is_dir():
        raise ReleaseError("no such release folder", place=place(folder, workspace))
    try:
        data: dict[str, Any] = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReleaseError("missing (every release folder needs a release.toml)", place=where) from None
    except UnicodeDecodeError as exc:
        raise ReleaseError(f"not UTF-8 text ({exc.reason})", place=where) from None
    except tomllib.TOMLDecodeError as exc:
        raise ReleaseError(f"{exc}", place=where) from None

    languages = str_list(
        data.get("languages", list(default_languages)),
        where=where,
        name="languages",
        error=ReleaseError,
    )
    if not languages:
        raise ReleaseError("'languages' is empty", place=where)
    for lang in languages:
        if not _LANG_CODE.match(lang):
            raise ReleaseError(
                f"'languages': {lang!r} is not a language code such as ru, en, kk", place=where
            )
    schema: dict[str, type | tuple[type, ...]] = dict(_TOP)
    schema.update({lang: dict for lang in languages})
    check_table(data, schema, where=where, error=ReleaseError)

    release_id = check_id(data.get("id", folder.name), where, given="id" in data)
    versions = {lang: _version(data, lang, folder, workspace, where) for lang in languages}
    lists = str_list(_sheets(data.get("lists", []), where), where=where, name="lists", error=ReleaseError)
    if not lists:
        raise ReleaseError(
            "'lists' is empty: name at least one list in contacts/ (e.g. lists = [\"example\"])", place=where
        )
    for name in lists:
        problem = bad_list_name(name.partition("#")[0])
        if problem:
            raise ReleaseError(f"'lists': {problem}", place=where)
    template = data.get("template", "release")
    problem = bad_template_name(template)
    if problem:
        raise ReleaseError(f"'template': {problem}", place=where)
    attachments = tuple(
        _attachment(folder, name, workspace, where)
        for name in str_list(data.get("attachments", []), where=where, name="attachments", error=ReleaseError)
    )
    return Release(
        id=release_id,
        folder=folder,
        languages=languages,
        lists=lists,
        template=template,
        versions=versions,
        send_at=parse_when(data.get("send_at"), where, "send_at"),
        embargo=parse_when(data.get("embargo"), where, "embargo"),
        embargo_subject=data.get("embargo_subject", False),
        attachments=attachments,
        bilingual_subject=data.get("bilingual_subject", False),
    )


def _sheets(value: Any, where: str) -> Any:
    """``{name = "regional", sheet = "Журналисты"}`` in ``lists`` as ``"regional#Журналисты"``."""
    if not isinstance(value, list):
        return value
    result = []
    for item in value:
        if isinstance(item, dict):
            check_table(item, {"name": str, "sheet": str}, where=where, prefix="lists.", error=ReleaseError)
            if "name" not in item:
                raise ReleaseError(f"'lists': {item!r} needs a name (the list in contacts/)", place=where)
            result.append(f"{item['name']}#{item['sheet']}" if item.get("sheet") else item["name"])
        else:
            result.append(item)
    return result


def _version(data: dict[str, Any], lang: str, folder: Path, workspace: Path, where: str) -> Version:
    table = data.get(lang)
    if table is None:
        raise ReleaseError(
            f"missing [{lang}] table with 'subject' (language {lang!r} is in 'languages')", place=where
        )
    check_table(table, _LANG, where=where, prefix=f"{lang}.", error=ReleaseError)
    subject = " ".join(table.get("subject", "").split())
    if not subject and "subject" in table:
        raise ReleaseError(f"'{lang}.subject' is empty: write the {lang} subject line", place=where)
    if not subject:
        raise ReleaseError(f"missing '{lang}.subject'", place=where)
    path = inside(
        folder, table.get("file", f"{lang}.md"), where=where, key=f"{lang}.file", workspace=workspace
    )
    source = place(path, workspace)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ReleaseError(f"'{lang}.file': {source} does not exist", place=where) from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise ReleaseError("not UTF-8 text; save it as UTF-8", place=f"{source}:{line}") from None
    if not text.strip():
        raise ReleaseError(f"the {lang} text is empty", place=source)
    preheader = " ".join(table.get("preheader", "").split())
    return Version(lang=lang, subject=subject, preheader=preheader, body=convert(text), source=source)


def inside(folder: Path, name: str, *, where: str, key: str, workspace: Path) -> Path:
    """``folder / name`` with symlinks resolved, refused unless it stays inside ``folder``: a
    release must not send (or read) a file from elsewhere on the machine."""
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise ReleaseError(
            f"{key!r}: {name!r} is outside the release folder ({place(path, workspace)}); "
            "copy the file into the release folder (e.g. files/)",
            place=where,
        )
    return path


def _attachment(folder: Path, name: str, workspace: Path, where: str) -> Attachment:
    path = inside(folder, name, where=where, key="attachments", workspace=workspace)
    if not path.is_file():
        raise ReleaseError(f"attachment {name!r} does not exist ({place(path, workspace)})", place=where)
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return Attachment(path=path, source=name, content_type=content_type, data=path.read_bytes())


def parse_when(value: dt.datetime | str | None, where: str, key: str) -> dt.datetime | None:
    """A TOML datetime with an offset, or ``"2026-11-28 10:00 Asia/Almaty"``; never a naive time."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ReleaseError(
                f"'{key}' = {value.isoformat()} has no time zone; "
                f"write it with an offset ({value.isoformat()}+05:00) or a zone name in quotes "
                f'("{value:%Y-%m-%d %H:%M} Asia/Almaty")',
                place=where,
            )
        return value
    match = re.fullmatch(r"\s*(\d{4}-\d{2}-\d{2})[T ](\d{1,2}:\d{2}(?::\d{2})?)\s+([\w/+-]+)\s*", value)
    if not match:
        raise ReleaseError(
            f"'{key}' = {value!r} is not a date and time with a zone, such as 2026-11-28T10:00:00+05:00",
            place=where,
        )
    date, time, zone = match.groups()
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ReleaseError(
            f"'{key}': {zone!r} is not a known time zone (such as Asia/Almaty)", place=where
        ) from None
    return dt.datetime.fromisoformat(f"{date}T{time}").replace(tzinfo=tz)


def attachment_mime(attachment: Attachment) -> tuple[str, str]:
    """(maintype, subtype) of an attachment."""
    main, _, sub = attachment.content_type.partition("/")
    return main, sub
