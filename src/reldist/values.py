"""Values as ``reldist.toml`` writes them: addresses, durations (``24h``) and sizes (``5MB``).

Pure parsing, each error a :class:`~reldist.errors.ConfigError` naming the key; ``config`` uses
them, and ``format_size`` writes sizes back for people.
"""

from __future__ import annotations

import re

from .errors import ConfigError

__all__ = ["address", "format_size", "optional_address", "parse_duration", "parse_size", "plain_address"]


# Most configured addresses are short and plain (press@ecomuseum.kz): email-validator accepts
# them and returns them unchanged, and importing it costs ~35 ms of every command's start
# (`reldist status` needs no more of it). Anything else goes through email-validator;
# tests/test_config_release.py checks that the two agree on what this lets through.
_PLAIN_ADDRESS = re.compile(r"[a-z0-9]+(?:[._+-][a-z0-9]+)*@(?:[a-z0-9]+(?:-[a-z0-9]+)*\.)+[a-z]{2,24}")
_SPECIAL_USE = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})  # email-validator's


def plain_address(text: str) -> bool:
    """True when ``text`` is an address email-validator would accept and leave as it is."""
    return (
        len(text) <= 64
        and _PLAIN_ADDRESS.fullmatch(text) is not None
        and text.rpartition(".")[2] not in _SPECIAL_USE
    )


def address(value: str, where: str, key: str) -> str:
    """A configured address, normalised; :class:`ConfigError` naming ``key`` if it is none."""
    if plain_address(value.strip()):
        return value.strip()
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(value.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ConfigError(f"'{key}' {value!r} is not an email address: {exc}", place=where) from None


def optional_address(value: str | None, where: str, key: str) -> str | None:
    return None if value is None or not value.strip() else address(value, where, key)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|min|s)", re.IGNORECASE)
_UNIT = {"d": 86400.0, "h": 3600.0, "m": 60.0, "min": 60.0, "s": 1.0}


def parse_duration(text: str, what: str) -> float:
    """``"24h"``, ``"90m"``, ``"1h30m"``, ``"45s"``, ``"2d"`` as seconds."""
    compact = text.replace(" ", "")
    parts = _DURATION.findall(compact)
    if not parts or "".join(f"{n}{u}" for n, u in parts).lower() != compact.lower():
        raise ConfigError(f"{text!r} is not a duration such as 24h, 90m or 1h30m", place=what)
    return sum(float(n) * _UNIT[u.lower()] for n, u in parts)


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|K|MB|M|GB|G)?\s*$", re.IGNORECASE)
_SIZE_UNIT = {
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
}


def format_size(n: int) -> str:
    """Bytes for people: ``912 bytes``, ``43.5 KB``, ``5.2 MB`` (the inverse of :func:`parse_size`)."""
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / 1024 / 1024:.1f} MB"


def parse_size(text: str, what: str) -> int:
    """``"5MB"``, ``"102KB"``, ``"2000"`` as bytes."""
    match = _SIZE.match(text)
    if not match:
        raise ConfigError(f"{text!r} is not a size such as 5MB or 102KB", place=what)
    number, unit = match.groups()
    return int(float(number) * _SIZE_UNIT[(unit or "b").lower()])
