"""``templates/strings.toml``: the boilerplate of each language, read and checked.

Owns :data:`STRING_KEYS` (what every language's table must have) and :func:`load_strings`, which
names the place of every fault as ``templates/strings.toml [en] greeting``: a missing table or
key, a value that is not text, an unknown ``{placeholder}`` or a lone brace, a locale Babel does
not know. What the strings mean is the templates' and ``render``'s business.
"""

from __future__ import annotations

import string
import tomllib
from pathlib import Path

from babel import Locale, UnknownLocaleError

from .errors import TemplateError, place

__all__ = ["STRING_KEYS", "load_strings"]

STRING_KEYS = (
    "locale",
    "language_name",
    "press_release",
    "version_below",
    "version_heading",
    "embargo",
    "embargo_note",
    "greeting",
    "greeting_anonymous",
    "unsubscribe",
    "why_received",
    "back_to_top",
    "attachments",
    "sent_on",
    "test_notice",
)


def load_strings(folder: Path, languages: tuple[str, ...], *, workspace: Path) -> dict[str, dict[str, str]]:
    """``templates/strings.toml``: one table a language, every key of :data:`STRING_KEYS` filled."""
    path = folder / "strings.toml"
    where = place(path, workspace)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TemplateError("missing (the boilerplate strings of each language)", place=where) from None
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{exc}", place=where) from None
    strings: dict[str, dict[str, str]] = {}
    for lang in languages:
        table = data.get(lang)
        if not isinstance(table, dict):
            raise TemplateError(
                f"no [{lang}] table; add the strings for {lang!r} (copy [en] and translate)", place=where
            )
        for key in STRING_KEYS:
            if key not in table:
                raise TemplateError(
                    f"{where} [{lang}] {key}: missing (copy it from another language and translate)"
                )
        for key, value in table.items():
            if not isinstance(value, str):
                raise TemplateError(f"{where} [{lang}] {key}: must be a string, not {value!r}")
            if key in STRING_KEYS or key == "organisation":  # the ones reldist fills or shows as they are
                _check_placeholders(value, _PLACEHOLDERS.get(key, ()), f"{where} [{lang}] {key}")
        try:
            Locale.parse(table["locale"])
        except (ValueError, UnknownLocaleError):
            raise TemplateError(
                f"{where} [{lang}] locale: {table['locale']!r} is not a locale Babel knows (such as ru, en_GB, kk)"
            ) from None
        strings[lang] = {key: str(value) for key, value in table.items()}
    return strings


#: The placeholders reldist fills in each string (the others are shown as they are).
_PLACEHOLDERS = {
    "embargo": ("when",),
    "greeting": ("name",),
    "why_received": ("organisation",),
    "sent_on": ("date",),
}


def _check_placeholders(text: str, allowed: tuple[str, ...], where: str) -> None:
    """An unknown ``{placeholder}`` or a lone brace is an error naming the string."""
    can = ", ".join("{" + name + "}" for name in allowed) if allowed else "no placeholders"
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError as exc:
        raise TemplateError(
            f"{exc} in {text!r} (write {{{{ and }}}} for a literal brace)", place=where
        ) from None
    for name in names:
        if name not in allowed:
            raise TemplateError(f"unknown placeholder {{{name}}} in {text!r}; it can use {can}", place=where)
