"""Names that become paths or header values: release ids, list names, template names.

Owns the rules for the short names a press officer writes in ``release.toml``, in a contact's
``template`` cell or on the command line, and the "did you mean …" hint for a name that is not
known (:func:`did_you_mean`, difflib). A name that passes these checks is one path component
inside its folder: it cannot climb out with ``..`` or ``/``, and it carries no control character
into a header. Checking that the named thing exists is the caller's job.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

__all__ = ["bad_list_name", "bad_release_id", "bad_template_name", "did_you_mean"]

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
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    if not close:
        folded = {c.casefold(): c for c in known}
        close = [folded[c] for c in difflib.get_close_matches(word.casefold(), list(folded), n=1, cutoff=0.6)]
    return f"; did you mean {close[0]!r}?" if close else ""
