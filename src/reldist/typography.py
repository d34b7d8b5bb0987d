"""No-break spaces where a line must not break: numbers, money, phone numbers, initials, dashes.

Owns the typographic rules applied to a release's text before it becomes HTML and plain text
(``markup`` calls :func:`tie` on every text run, so both parts get the same result):
``288 325``, ``30 месяцев``, ``EUR 288,325``, ``+7 7212 50-45-61``, ``Н. Н. Сериков``,
``г. Нур-Султан`` and the space before a dash (``веществ — это``) are joined with U+00A0 NO-BREAK
SPACE, which neither browsers nor the plain-text wrapper break at. In HTML a phone number is also
kept whole across its hyphens (:func:`nowrap_phones`). Pure functions over strings.
"""

from __future__ import annotations

import re

__all__ = ["NBSP", "nowrap_phones", "tie"]

NBSP = "\u00a0"
_PHONE = re.compile(
    r"(?<![\w:/=+])\+\d{1,3}(?:[ \u00a0]?(?:\(\d{1,5}\)|\d{1,5})(?:[ \u00a0-]\d{1,4})*)+(?: \(\d{1,3}\))?"
)
_GROUPS = re.compile(r"(?<=\d) (?=\d{3}(?!\d))")  # 288 325, 250 000
_NUMBER_WORD = re.compile(r"(?<=\d) (?=[^\W\d_])")  # 30 месяцев, 600 тыс., 7 этаж
_MONEY = re.compile(r"(?<![\w])(EUR|USD|KZT|RUB|GBP|CHF|€|\$|£|₸|₽) (?=\d)")
_INITIAL = re.compile(r"(?<![\w.])([A-ZА-ЯЁӘҒҚҢӨҰҮҺІ]\.) (?=[A-ZА-ЯЁӘҒҚҢӨҰҮҺІ])")
_ABBREVIATION = re.compile(
    r"(?<![\w])(г|ул|д|пр|просп|пер|им|т|с|стр|каб|тел|оф|No|№|St|Dr|Mr|Mrs|Ms|қ|к-сі|көш)(\.?) (?=\S)"
)
_DASH = re.compile(r"(?<=\S) (?=[—–] )")


def _phone(match: re.Match[str]) -> str:
    return match.group().replace(" ", NBSP)


def tie(text: str) -> str:
    """``text`` with no-break spaces where a line break would split a unit of meaning."""
    if " " not in text:
        return text
    text = _PHONE.sub(_phone, text)
    text = _GROUPS.sub(NBSP, text)
    text = _NUMBER_WORD.sub(NBSP, text)
    text = _MONEY.sub(lambda m: m.group(1) + NBSP, text)
    text = _INITIAL.sub(lambda m: m.group(1) + NBSP, text)
    text = _ABBREVIATION.sub(lambda m: m.group(1) + m.group(2) + NBSP, text)
    return _DASH.sub(NBSP, text)


_HTML_PHONE = re.compile(
    r"(?<![\w:/=+\"'])\+\d{1,3}(?:[\u00a0 ]?(?:\(\d{1,5}\)|\d{1,5})(?:[\u00a0 -]\d{1,4})*)+"
)


def nowrap_phones(html: str) -> str:
    """Each phone number in HTML text (not in attributes) wrapped so it never breaks at a hyphen."""
    out = []
    for index, part in enumerate(re.split(r"(<[^>]*>)", html)):
        if index % 2 or "+" not in part:
            out.append(part)
        else:
            out.append(
                _HTML_PHONE.sub(lambda m: f'<span style="white-space:nowrap">{m.group()}</span>', part)
            )
    return "".join(out)
