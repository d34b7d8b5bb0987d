"""An incoming message as ``classify`` reads it, and the :class:`Report` it becomes.

Reading without a full parse (compat32: several times faster than ``policy.default``): decoded
header text, the sender's address, the date, VERP tokens in the addresses it was delivered to, the
first text part, the decoded body of a report part sent base64 or quoted-printable, and the key
that makes a message unique in the mailbox. Pure: no ledger, no network.
"""

from __future__ import annotations

import datetime as dt
import email
import email.errors
import email.header
import email.utils
import re
from dataclasses import dataclass
from email.message import Message
from typing import Literal

Kind = Literal["bounce", "complaint", "unsubscribe", "auto-reply", "reply", "unknown"]
Severity = Literal["hard", "soft", "policy", ""]

#: A Message-ID in angle brackets.
MESSAGE_ID = re.compile(r"<[^<>\s@]+@[^<>\s]+>")
_VERP = re.compile(r"\+([A-Za-z0-9_-]{20,})@")
_ANGLE = re.compile(r"<([^<>\s]+@[^<>\s]+)>")


@dataclass(frozen=True, slots=True)
class Report:
    """An incoming message, classified."""

    kind: Kind
    severity: Severity = ""
    status: str = ""  # the enhanced status code, "5.1.1"
    diagnostic: str = ""  # the server's words, or a reply's first lines
    recipients: tuple[str, ...] = ()  # the addresses it is about
    message_ids: tuple[str, ...] = ()  # Message-IDs that may be ours
    tokens: tuple[str, ...] = ()
    sender: str = ""  # From's address
    date: dt.datetime | None = None

    @property
    def detail(self) -> str:
        """One line for the ledger: status and diagnostic, or the text."""
        return " ".join(part for part in (self.status, self.diagnostic) if part)[:500]


def message_key(message: Message, raw: bytes) -> str:
    """What makes an incoming message unique: its Message-ID, else a digest of its bytes."""
    found = MESSAGE_ID.search(str(message.get("Message-ID", "")))
    if found:
        return found.group(0)
    import hashlib

    return "sha256:" + hashlib.sha256(raw).hexdigest()


def parse(raw: bytes) -> Message:
    # compat32: several times faster than policy.default, and all this needs is headers and text.
    return email.message_from_bytes(raw)


#: The transfer encodings that hide a ``message/*`` part's text from the parser.
_ENCODED = frozenset({"base64", "quoted-printable"})


#: ``message/*`` types whose body is blocks of fields, not a message (RFC 6533's UTF-8 DSN): the
#: parser, which knows only ``message/delivery-status``, would read the first block alone.
_FIELDS = frozenset({"message/global-delivery-status"})


def encoded(part: Message) -> bool:
    """Whether ``part`` was sent base64 or quoted-printable."""
    return str(part.get("Content-Transfer-Encoding", "")).strip().lower() in _ENCODED


def _kept_whole(kind: str, part: Message) -> bool:
    return kind in _FIELDS or (kind.startswith("message/") and encoded(part))


def kept_whole(part: Message) -> bool:
    """Whether :func:`encoded_message_parts` reads ``part`` (what the parser made of it is not its
    content)."""
    return _kept_whole(part.get_content_type(), part)


class _Leaf(Message):
    """compat32's Message, except that a ``message/*`` part sent base64 or quoted-printable (and a
    ``message/global-delivery-status``) is kept whole as its text, so that it decodes per its
    Content-Transfer-Encoding.

    The parser reads the body of a ``message/*`` part as header blocks (``delivery-status``) or as
    a message (the others) before any decoding: base64 text read so gives blocks with no fields,
    and quoted-printable's soft line breaks cut fields in two. It asks the type through
    :meth:`get_content_type`, so this reports such a part as ``application/octet-stream``;
    :meth:`declared_type` is the type the part names.
    """

    def get_content_type(self) -> str:
        kind = super().get_content_type()
        return "application/octet-stream" if _kept_whole(kind, self) else kind

    def declared_type(self) -> str:
        return super().get_content_type()


def encoded_message_parts(message: Message, raw: bytes) -> list[tuple[str, bytes]]:
    """(type, decoded body) of each ``message/*`` part of ``message`` (parsed from ``raw``) that was
    sent base64 or quoted-printable, and of each ``message/global-delivery-status``, in the order
    of the message. Most reports have none, and then ``raw`` is not parsed again."""
    if not any(kept_whole(part) for part in message.walk()):
        return []
    found: list[tuple[str, bytes]] = []
    for part in email.message_from_bytes(raw, _class=_Leaf).walk():
        if isinstance(part, _Leaf) and _kept_whole(part.declared_type(), part):
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                found.append((part.declared_type(), data))
    return found


def header_text(message: Message, name: str) -> str:
    value = message.get(name)
    if value is None:
        return ""
    try:
        if isinstance(value, email.header.Header):
            # 8-bit header bytes (raw UTF-8, as many servers send now): compat32 keeps them as
            # unknown-8bit chunks; read them as UTF-8.
            out = []
            for chunk, charset in email.header.decode_header(value):
                if isinstance(chunk, bytes):
                    out.append(chunk.decode(_charset(charset), "replace"))
                else:
                    out.append(chunk)
            return "".join(out)
        return str(email.header.make_header(email.header.decode_header(str(value))))
    except (UnicodeDecodeError, LookupError, email.errors.HeaderParseError):
        return str(value)


def _charset(name: str | None) -> str:
    import codecs

    try:
        return codecs.lookup(name).name if name and name != "unknown-8bit" else "utf-8"
    except LookupError:
        return "utf-8"


def address_of(value: str) -> str:
    # A plain regex first: email.utils.parseaddr costs ~0.1 ms, and most values are plain.
    found = _ANGLE.search(value)
    if found:
        return found.group(1).lower()
    value = value.strip()
    if "@" in value and " " not in value and "," not in value:
        return value.strip("<>").lower()
    return email.utils.parseaddr(value)[1].strip().lower()


def date_of(message: Message) -> dt.datetime | None:
    try:
        when = email.utils.parsedate_to_datetime(str(message.get("Date", "")))
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def verp_tokens(message: Message) -> tuple[str, ...]:
    """VERP tokens in the addresses a bounce was delivered to (bounces+TOKEN@domain)."""
    found: list[str] = []
    for name in ("To", "Delivered-To", "X-Original-To", "Envelope-To", "Return-Path"):
        for value in message.get_all(name, []):
            found += _VERP.findall(str(value))
    return tuple(dict.fromkeys(found))


def text_of(message: Message) -> str:
    """The first text/plain part (else text/html without its tags), decoded."""
    html = None
    for part in message.walk():
        if part.get_content_maintype() == "multipart" or part.get_filename():
            continue
        kind = part.get_content_type()
        if kind in ("text/plain", "text/html"):
            data = part.get_payload(decode=True)
            if not isinstance(data, bytes):
                continue
            charset = part.get_content_charset() or "utf-8"
            try:
                text = data.decode(charset, "replace")
            except LookupError:
                text = data.decode("utf-8", "replace")
            if kind == "text/plain":
                return text
            html = html or re.sub(r"<[^>]+>", " ", text)
        elif kind.startswith("message/"):
            break  # the returned message is not the report's own text
    return html or ""
