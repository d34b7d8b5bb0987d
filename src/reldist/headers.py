"""Header fields written by hand: RFC 2047 encoded words, display names, folding near 78 columns,
and the guard that no value from outside can add or alter a header.

No header can be created or altered from contact or release data: every C0 and C1 control
character (CR, LF and the rest) in names, subjects, the release id and file names is replaced by a
space before encoding (:func:`clean`), addresses have been validated, and every header block built
is refused if a control character got in anyway (:func:`check_header_block`).

Pure text in, text out; ``message`` assembles the fields into a message.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterable

CRLF = "\r\n"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")  # C0, DEL, C1, line separators
# The same set less CR and LF: what a finished header block may not contain anywhere.
_CONTROL_IN_BLOCK = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
_ATOM = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*$")
# 39 bytes of UTF-8 -> 52 base64 characters -> a 64-character encoded word, so that even
# "Subject: " plus the first word stays within 78 columns.
_WORD_BYTES = 39


def clean(text: str) -> str:
    """Text fit for a header: control characters become single spaces, ends stripped."""
    return " ".join(_CONTROL.sub(" ", text).split())


def check_header_block(text: str) -> str:
    """``text`` (header fields, each ending in CRLF) unchanged, or ValueError when a control
    character, a bare CR or LF, or a line starting with '.' is in it.

    Values from outside (names, subjects, the release id, file names) are passed through
    :func:`clean` before they become tokens, and addresses and config values are validated; this
    is the last line of defence, run on every built header block, so that no value, whatever
    its way in, can add or alter a header.
    """
    crlf = text.count("\r\n")
    if (
        text.count("\n") != crlf
        or text.count("\r") != crlf
        or "\n." in text
        or _CONTROL_IN_BLOCK.search(text)
    ):
        raise ValueError(f"header block with a control character or not in canonical form: {text!r}")
    return text


def encoded_words(text: str) -> list[str]:
    """RFC 2047 base64 encoded words, split on character boundaries."""
    words: list[str] = []
    chunk = bytearray()
    for char in text:
        data = char.encode("utf-8")
        if len(chunk) + len(data) > _WORD_BYTES:
            words.append(_word(chunk))
            chunk = bytearray()
        chunk += data
    if chunk:
        words.append(_word(chunk))
    return words


def _word(data: bytes | bytearray) -> str:
    return "=?utf-8?b?" + binascii.b2a_base64(bytes(data), newline=False).decode("ascii") + "?="


def phrase(name: str) -> list[str]:
    """A display name as header tokens: an atom run, a quoted string, or encoded words.

    A long non-ASCII name becomes several adjacent encoded words. RFC 2047 (6.2) says the white
    space between them is to be ignored, and mail programs do so; CPython's ``policy.default``
    address parser keeps it (``Иван Петров`` may come back as ``Иван Пет ров``), so tests decode
    display names with ``email.header.decode_header``, which follows the RFC.
    """
    name = clean(name)
    if not name:
        return []
    if name.isascii():
        if "=?" not in name and _ATOM.match(name):
            return name.split(" ")
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return [f'"{quoted}"']
    return encoded_words(name)


def unstructured(text: str) -> list[str]:
    """Subject-like text as header tokens (plain words, or encoded words if not plain ASCII)."""
    text = clean(text)
    if text.isascii() and "=?" not in text:
        return text.split(" ")
    return encoded_words(text)


def header(name: str, tokens: Iterable[str]) -> str:
    """``Name: tok tok`` folded between tokens so lines stay near 78 columns; ends with CRLF."""
    line = f"{name}:"
    lines: list[str] = []
    for token in tokens:
        # The first token stays on the header's line even when long (a URL cannot be broken,
        # and a fold right after the colon would reach some parsers as a leading space).
        if len(line) + 1 + len(token) > 78 and line != f"{name}:":
            lines.append(line)
            line = " " + token
        else:
            line = f"{line} {token}"
    lines.append(line)
    return CRLF.join(lines) + CRLF


def address_tokens(name: str, address: str) -> list[str]:
    """``Display Name <addr>`` tokens; just the address when there is no name."""
    words = phrase(name)
    return [*words, f"<{address}>"] if words else [address]
