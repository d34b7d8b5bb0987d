"""Checking TOML tables against a small schema: unknown keys and wrong types name the key.

Used by ``config`` (reldist.toml) and ``release`` (release.toml). It only checks shape; what a
value means is up to the caller.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from .errors import ReldistError
from .names import did_you_mean

Schema = Mapping[str, type | tuple[type, ...]]

_TYPE_NAMES: dict[type, str] = {
    str: "a string",
    int: "a whole number",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "a table",
    dt.datetime: "a date and time",
}


def check_table(
    table: Mapping[str, Any],
    schema: Schema,
    *,
    where: str,
    prefix: str = "",
    error: Callable[[str], ReldistError],
    others: Mapping[str, Schema] | None = None,
) -> None:
    """Raise ``error(...)`` for the first key not in ``schema`` or of the wrong type.

    ``where`` is the file name shown first; ``prefix`` is the dotted table name ("smtp.").
    ``others`` are the file's other tables by name: a key that belongs to one of them is most
    often a line uncommented under a table header that is still commented out, and is said so.
    """
    for key, value in table.items():
        name = f"{prefix}{key}"
        if key not in schema:
            known = ", ".join(sorted(schema))
            homes = [t for t, other in (others or {}).items() if key in other and f"{t}." != prefix]
            hint = (
                f" ('{key}' belongs in the [{homes[0]}] table: is its [{homes[0]}] line still commented out?)"
                if len(homes) == 1 and not isinstance(value, dict)
                else did_you_mean(name, [f"{prefix}{k}" for k in schema])
            )
            raise error(f"{where}: unknown key '{name}'{hint} (known keys here: {known})")
        expected = schema[key]
        types = expected if isinstance(expected, tuple) else (expected,)
        # TOML integers are fine where a float is expected; bool is not an int here.
        ok = any(
            (isinstance(value, t) and not (t is int and isinstance(value, bool)))
            or (t is float and isinstance(value, int) and not isinstance(value, bool))
            for t in types
        )
        if not ok:
            wanted = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
            raise error(f"{where}: '{name}' must be {wanted}, not {value!r}")


def str_list(value: Any, *, where: str, name: str, error: Callable[[str], ReldistError]) -> tuple[str, ...]:
    """A TOML value that must be a list of strings (a single string is taken as a list of one)."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise error(f"{where}: '{name}' must be a list of strings, not {value!r}")
