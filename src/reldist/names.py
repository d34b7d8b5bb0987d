"""Names that become paths or header values: release ids, list names, template names.

Owns the rules for the short names a press officer writes in ``release.toml``, in a contact's
``template`` cell or on the command line, and the "did you mean …" hint for a name that is not
known (:func:`did_you_mean`, difflib). A name that passes these checks is one path component
inside its folder: it cannot climb out with ``..`` or ``/``, and it carries no control character
into a header. Checking that a list or template exists is the caller's job.

It also turns the RELEASE a command is given (a folder, or an id) into the release's folder
(:func:`find_release`) and id (:func:`release_id`), reading only ``release.toml``'s ``id``: that is
all ``status`` and ``report`` need, and it keeps them from importing the Markdown converter.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from pathlib import Path

from .errors import ReleaseError, place

__all__ = [
    "bad_list_name",
    "bad_release_id",
    "bad_template_name",
    "check_id",
    "did_you_mean",
    "find_release",
    "known_releases",
    "release_id",
]

# Letters, digits, '-', '_' and '.', not leading with '.': an id is a folder name under outbox/
# and goes into the X-Reldist-Release header and the Message-ID, so it stays ASCII.
_RELEASE_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
# A template is <name>.html.j2 + <name>.txt.j2 in templates/.
_TEMPLATE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
# A list is a file in contacts/: any letters (Cyrillic file names are common), digits, spaces
# inside, '-', '_', '.'; never a path separator, never a leading '.'.
_LIST = re.compile(r"[^\W][\w .-]{0,199}")


def bad_release_id(value: str) -> str | None:
    """Why ``value`` is not a release id, or None when it is one."""
    if _RELEASE_ID.fullmatch(value):
        return None
    return (
        f"{value!r} is not a release id: use letters, digits, '-', '_' and '.' "
        "(not first), such as 2026-11-eu-karaganda"
    )


def bad_template_name(value: str) -> str | None:
    """Why ``value`` is not a bare template name (``wire``, not ``../templates/wire``), or None."""
    if _TEMPLATE.fullmatch(value):
        return None
    return (
        f"{value!r} is not a template name: write the bare name of a template in templates/ "
        "(letters, digits, '-', '_', '.'), such as wire"
    )


def bad_list_name(value: str) -> str | None:
    """Why ``value`` is not the plain name of a list in contacts/ (``regional``), or None."""
    if _LIST.fullmatch(value) and value == value.strip():
        return None
    return (
        f"{value!r} is not a list name: write the plain name of a file in contacts/, "
        "such as regional (no folders, no leading '.')"
    )


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'regional'?"`` for the closest of ``choices``, or ``""`` when none is close."""
    known = list(choices)
    import difflib  # only when a name is wrong: not on every command's start

    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    if not close:
        folded = {c.casefold(): c for c in known}
        close = [folded[c] for c in difflib.get_close_matches(word.casefold(), list(folded), n=1, cutoff=0.6)]
    return f"; did you mean {close[0]!r}?" if close else ""


def check_id(value: object, where: str, *, given: bool = True) -> str:
    """A release id from release.toml (or, when ``given`` is false, the folder's name), checked
    to be a slug: it names a folder under outbox/ and goes into headers."""
    if not isinstance(value, str):
        raise ReleaseError(f"'id' must be a string, not {value!r}", place=where)
    problem = bad_release_id(value)
    if problem:
        fix = "" if given else '; rename the folder or set id = "..." in release.toml'
        raise ReleaseError(f"{'id' if given else 'the folder name'}: {problem}{fix}", place=where)
    return value


def release_id(folder: Path, workspace: Path) -> str:
    """The id of the release in ``folder``: its ``id`` key, else the folder's name (checked as
    ``load_release`` checks it), reading nothing but release.toml."""
    toml = folder / "release.toml"
    where = place(toml, workspace)
    try:
        data = tomllib.loads(toml.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReleaseError("missing (every release folder needs a release.toml)", place=where) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ReleaseError(f"{exc}", place=where) from None
    return check_id(data.get("id", folder.name), where, given="id" in data)


def known_releases(workspace: Path) -> dict[str, Path]:
    """{id: folder} of every release under ``releases/`` whose id can be read."""
    found: dict[str, Path] = {}
    for toml in sorted((workspace / "releases").glob("*/release.toml")):
        try:
            found.setdefault(release_id(toml.parent, workspace), toml.parent)
        except ReleaseError:
            found.setdefault(toml.parent.name, toml.parent)  # load_release will say what is wrong
    return found


def find_release(name: str, workspace: Path, *, also: Iterable[str] = ()) -> Path:
    """A release folder from a path, a folder name under ``releases/``, or a release's id (which
    may differ from its folder's name). Not found: :class:`ReleaseError` listing the releases
    here (and ``also``, such as the ledger's) with the closest one."""
    as_path = Path(name)
    if (as_path / "release.toml").is_file() or as_path.is_dir():
        return as_path.resolve()
    candidate = workspace / "releases" / name
    if candidate.is_dir():
        return candidate.resolve()
    if len(as_path.parts) > 1:
        raise ReleaseError("no such release folder", place=name)
    known = known_releases(workspace)
    if name in known:
        return known[name].resolve()
    have = sorted({*known, *also})
    listed = f"; releases here: {', '.join(have)}" if have else ""
    raise ReleaseError(
        f"no such release (looked in {place(candidate, workspace)}{listed}){did_you_mean(name, have)}",
        place=name,
    )
