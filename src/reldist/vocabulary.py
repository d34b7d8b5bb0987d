"""Column names and language values as people write them in media lists (en, ru, kk).

Owns two translations: a header cell (``E-mail``, ``Эл. почта``, ``Е-mail`` with a Cyrillic Е,
``ФИО``, ``Аты-жөні``, ``Language``, ``Тіл``, ``Издание``…) to reldist's column name
(:func:`column_name`), with the closest known column for one it does not know
(:func:`closest_column`); and a ``lang``/``languages`` value (``RU``, ``en-GB``, ``English``,
``русский``, ``Русский язык``, ``қазақша``) to a language code (:func:`language_code`), using
Babel's language names in English, Russian and Kazakh. Pure functions; reads no files.
"""

from __future__ import annotations

import difflib
import functools
import re

__all__ = [
    "ACCEPTED_LANGUAGES",
    "KNOWN_COLUMNS",
    "check_languages",
    "closest_column",
    "column_name",
    "language_code",
    "split_languages",
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

# Written as people write them; compared after _squash (case, spaces, dots, dashes, ё, and a
# Cyrillic letter typed for its Latin twin in a Latin word, as in «Е-mail»).
_ALIASES: dict[str, tuple[str, ...]] = {
    "email": (
        "email",
        "e-mail",
        "e mail",
        "mail",
        "email address",
        "e-mail address",
        "emails",
        "почта",
        "эл. почта",
        "эл почта",
        "электронная почта",
        "адрес электронной почты",
        "e-mail адрес",
        "емейл",
        "имейл",
        "емэйл",
        "мейл",
        "эл. адрес",
        "электронный адрес",
        "пошта",
        "эл. пошта",
        "электрондық пошта",
        "электронды пошта",
        "электрондық пошта мекенжайы",
    ),
    "name": (
        "name",
        "full name",
        "contact name",
        "contact",
        "journalist",
        "person",
        "фио",
        "ф.и.о.",
        "имя",
        "имя фамилия",
        "фамилия имя",
        "фамилия имя отчество",
        "контакт",
        "контактное лицо",
        "журналист",
        "аты-жөні",
        "аты жөні",
        "толық аты-жөні",
        "аты",
        "есімі",
    ),
    "lang": (
        "lang",
        "language",
        "preferred language",
        "first language",
        "язык",
        "язык письма",
        "основной язык",
        "тіл",
        "тілі",
        "негізгі тіл",
    ),
    "languages": ("languages", "langs", "only languages", "языки", "тілдер"),
    "outlet": (
        "outlet",
        "media",
        "media outlet",
        "publication",
        "newspaper",
        "organisation",
        "organization",
        "сми",
        "издание",
        "редакция",
        "медиа",
        "сми/издание",
        "бақ",
        "басылым",
        "басылым атауы",
        "ақпарат құралы",
    ),
    "beat": ("beat", "topic", "topics", "subject", "тема", "темы", "рубрика", "направление", "тақырып"),
    "region": ("region", "city", "регион", "область", "город", "өңір", "аймақ", "облыс", "қала"),
    "salutation": (
        "salutation",
        "greeting",
        "обращение",
        "приветствие",
        "қаратпа",
        "сәлемдесу",
        "құрметті",
    ),
    "template": ("template", "шаблон", "үлгі"),
    "tags": ("tags", "tag", "labels", "теги", "тег", "метки", "тегтер", "белгілер"),
    "reason": ("reason", "причина", "себебі", "себеп"),
}
_CYR_TWINS = str.maketrans("аеорсухкмтві", "aeopcyxkmtbi")
_LATIN = re.compile(r"[a-z]")


def _squash(text: str) -> str:
    text = text.replace("\ufeff", "").strip().casefold().replace("ё", "е")
    text = re.sub(r"[\s.\-_/]+", "", text)
    if _LATIN.search(text):  # a Latin word with a Cyrillic twin letter in it: «Е-mail»
        text = text.translate(_CYR_TWINS)
    return text


@functools.cache
def _alias_table() -> dict[str, str]:
    return {_squash(alias): column for column, aliases in _ALIASES.items() for alias in aliases}


def column_name(text: str) -> str:
    """The column a header cell names: a known column for any of its spellings, else the cell
    in lower case with ``_`` for spaces and dashes (``Home phone`` -> ``home_phone``)."""
    known = _alias_table().get(_squash(text))
    if known:
        return known
    return re.sub(r"[\s\-]+", "_", text.replace("\ufeff", "").strip().lower())


def closest_column(text: str) -> str | None:
    """The known column whose spelling is nearest to ``text`` (a typo such as ``Languge``), or None."""
    table = _alias_table()
    match = difflib.get_close_matches(_squash(text), list(table), n=1, cutoff=0.75)
    return table[match[0]] if match else None


# -- languages ----------------------------------------------------------------------------------

_THREE = {
    "rus": "ru", "eng": "en", "kaz": "kk", "ukr": "uk", "deu": "de", "ger": "de", "fra": "fr",
    "fre": "fr", "tur": "tr", "uzb": "uz", "kir": "ky", "zho": "zh", "chi": "zh", "spa": "es",
    "ita": "it", "bel": "be", "tat": "tt",
}  # fmt: skip
_SHORT = {
    "рус": "ru", "русск": "ru", "ру": "ru", "англ": "en", "анг": "en", "каз": "kk", "қаз": "kk",
    "казах": "kk", "орысша": "ru", "ағылшынша": "en", "қазақша": "kk", "казахша": "kk",
    "русский язык": "ru", "английский язык": "en", "казахский язык": "kk",
}  # fmt: skip
ACCEPTED_LANGUAGES = (
    "a code (ru, en, kk), a tag such as en-GB, or a language name in English, Russian or Kazakh "
    "(English, русский, Русский язык, қазақша)"
)
_TAG = re.compile(r"([a-z]{2,3})(?:[-_][a-z0-9]{1,8})*")


@functools.cache
def _names() -> dict[str, str]:
    from babel import Locale

    names: dict[str, str] = {}
    for locale in ("en", "ru", "kk"):
        for code, name in Locale.parse(locale).languages.items():
            if "_" in code:
                continue
            names.setdefault(name.casefold(), code)
            names.setdefault(f"{name} язык".casefold(), code)
            names.setdefault(f"{name} language".casefold(), code)
            if name.endswith(" тілі"):
                names.setdefault(name[: -len(" тілі")].casefold() + "ша", code)
    names.update(_SHORT)
    return names


@functools.cache
def _codes() -> frozenset[str]:
    from babel import Locale

    return frozenset(str(code) for code in Locale.parse("en").languages if "_" not in str(code))


@functools.lru_cache(maxsize=4096)  # a list repeats a handful of values over thousands of rows
def language_code(value: str) -> str | None:
    """The language code of a ``lang`` value (``EN``, ``en-GB``, ``English``, ``русский``,
    ``қазақша`` -> ``en``/``ru``/``kk``), or None when it names no language reldist knows."""
    text = " ".join(value.strip().rstrip(".").split()).casefold()
    if not text:
        return None
    match = _TAG.fullmatch(text)
    if match:
        code = _THREE.get(match.group(1), match.group(1))
        if code in _codes():
            return code
    return _names().get(text)


_LANG_SPLIT = re.compile(r"[,;/]+")


def split_languages(text: str) -> list[str] | str:
    """The codes of a ``languages`` cell (``ru, en``; ``русский / English``; ``ru en``), or the
    part that names no language."""
    codes: list[str] = []
    if not text:
        return codes
    for part in _LANG_SPLIT.split(text):
        if not part.strip():
            continue
        code = language_code(part)
        if code is not None:
            codes.append(code)
            continue
        for word in part.split():
            code = language_code(word)
            if code is None:
                return part.strip()
            codes.append(code)
    return codes


def check_languages(raw_lang: str, raw_languages: str) -> tuple[str | None, tuple[str, ...]] | str:
    """(lang, languages) of a contact's two cells, or why one of them names no language."""
    lang = language_code(raw_lang) if raw_lang.strip() else None
    if raw_lang.strip() and lang is None:
        return f"lang '{raw_lang}' is not a language reldist knows; write {ACCEPTED_LANGUAGES}"
    split = split_languages(raw_languages)
    if isinstance(split, str):
        return f"languages '{raw_languages}': '{split}' is not a language reldist knows; write {ACCEPTED_LANGUAGES}"
    return lang, tuple(dict.fromkeys(split))
