"""Bounces and complaints: the reports mail systems write about a message reldist sent.

- ``multipart/report; report-type=delivery-status`` (RFC 3464, :func:`dsn`; RFC 6533's UTF-8
  ``message/global-delivery-status`` too): per recipient
  ``Action`` and ``Status``; ``failed`` with 5.1.x/5.4.x or 5.2.1 is *hard*, 5.7.x is *policy*
  (the sender's problem, never the address's), ``delayed``, 4.x.x and the other 5.x.x are *soft*.
- ``multipart/report; report-type=feedback-report`` (RFC 5965 ARF, :func:`arf`): a complaint.
- A message that looks like a bounce (:func:`looks_like_bounce`: from MAILER-DAEMON or
  postmaster, a bounce subject): ``flufl.bounce`` finds the failed recipients (Exchange, qmail,
  Yahoo, old Postfix and Exim texts...), the enhanced status code in the text decides hard or
  soft (:func:`fallback_bounce`).

Each finds the Message-IDs of the returned message, so that the inbox can match it to a delivery.
A report part or returned message sent base64 or quoted-printable is read decoded.
"""

from __future__ import annotations

import datetime as dt
import re
from email.message import Message
from email.parser import HeaderParser

from .incoming import MESSAGE_ID, Report, Severity, address_of, encoded_message_parts, kept_whole, text_of

_EMBEDDED_ID = re.compile(
    rb"^Message-ID:[ \t]*(?:\r?\n[ \t]+)?(<[^<>\s@]+@[^<>\s]+>)", re.IGNORECASE | re.MULTILINE
)
#: The returned message, whole or its headers (RFC 6533's UTF-8 forms beside RFC 822's).
_RETURNED = ("message/rfc822", "message/global", "message/global-headers")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_CODE = re.compile(r"\b([45])\d\d\b")
_BOUNCE_FROM = re.compile(r"mailer-daemon|postmaster|mail delivery (sub)?system", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery status notification|delivery (has )?failed|failure notice|"
    r"returned mail|mail delivery failed|delivery failure|non[- ]?delivery|недостав|не доставлен|"
    r"не удалось доставить|ошибка доставки",
    re.IGNORECASE,
)


def looks_like_bounce(message: Message, subject: str) -> bool:
    """From a mail system, or with a bounce subject and not a reply: worth :func:`fallback_bounce`."""
    return bool(_BOUNCE_FROM.search(str(message.get("From", "")))) or bool(
        _BOUNCE_SUBJECT.search(subject) and not message.get("In-Reply-To")
    )


def severity_of(status: str, action: str = "failed") -> Severity:
    """hard, soft or policy from an enhanced status code (and the DSN's Action)."""
    if action.lower() == "delayed" or status.startswith("4"):
        return "soft"
    if status.startswith("5.7"):
        return "policy"
    if status.startswith(("5.1.", "5.4.")) or status == "5.2.1":
        return "hard"
    return "soft" if status.startswith("5") else ""


def dsn(
    message: Message, raw: bytes, sender: str, date: dt.datetime | None, tokens: tuple[str, ...]
) -> Report:
    blocks = _report_blocks(message, raw, "message/delivery-status", "message/global-delivery-status")
    worst: tuple[int, Severity, str, str] = (-1, "", "", "")
    recipients: list[str] = []
    rank = {"hard": 3, "policy": 2, "soft": 1, "": 0}
    for block in blocks:
        action = str(block.get("Action", "")).strip().lower()
        if not action and not block.get("Final-Recipient"):
            continue
        status = _STATUS.search(str(block.get("Status", ""))) or _STATUS.search(
            str(block.get("Diagnostic-Code", ""))
        )
        code = status.group(0) if status else ""
        if action in ("delivered", "relayed", "expanded"):
            continue
        recipient = address_of(
            str(block.get("Original-Recipient") or block.get("Final-Recipient") or "").split(";")[-1]
        )
        if recipient:
            recipients.append(recipient)
        severity = severity_of(code, action) or (
            "soft" if action == "delayed" else "hard" if action == "failed" else ""
        )
        diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split(";", 1)[-1].split())
        if rank[severity] > worst[0]:
            worst = (rank[severity], severity, code, diagnostic)
    if worst[0] < 0:
        return Report("unknown", sender=sender, date=date, tokens=tokens)
    return Report("bounce", worst[1], worst[2], worst[3][:400], tuple(recipients), _returned_ids(message, raw),
                  tokens, sender, date)  # fmt: skip


def fallback_bounce(
    message: Message, raw: bytes, sender: str, date: dt.datetime | None, tokens: tuple[str, ...]
) -> Report | None:
    from flufl.bounce import all_failures

    try:
        temporary, permanent = all_failures(message)
    except Exception:
        temporary, permanent = frozenset(), frozenset()
    text = text_of(message)
    found = _STATUS.search(text)
    code = found.group(0) if found else ""
    addresses = [
        a.decode("utf-8", "replace") if isinstance(a, bytes) else str(a) for a in (*permanent, *temporary)
    ]
    if not addresses and not code:
        return None
    if code:
        severity = severity_of(code)
    else:
        smtp = _SMTP_CODE.search(text)
        severity = "soft" if (temporary and not permanent) or (smtp and smtp.group(1) == "4") else "hard"
    line = next((ln.strip() for ln in text.splitlines() if code and code in ln), "") if code else ""
    return Report("bounce", severity, code, line[:400], tuple(a.lower() for a in addresses), _returned_ids(message, raw),
                  tokens, sender, date)  # fmt: skip


def _returned_ids(message: Message, raw: bytes) -> tuple[str, ...]:
    """Message-IDs of the returned message: message/rfc822 and text/rfc822-headers parts, then any
    Message-ID header line after the bounce's own headers (NDRs that quote them as text)."""
    found: list[str] = []
    for part in message.walk():
        kind = part.get_content_type()
        if kind in _RETURNED and isinstance(part.get_payload(), list) and not kept_whole(part):
            inner = part.get_payload(0)
            if isinstance(inner, Message):
                found += MESSAGE_ID.findall(str(inner.get("Message-ID", "")))
        elif kind == "text/rfc822-headers":
            data = part.get_payload(decode=True)
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(part.get_payload())
            found += MESSAGE_ID.findall(str(HeaderParser().parsestr(text).get("Message-ID", "")))
    for kind, data in encoded_message_parts(message, raw):
        if kind in _RETURNED:
            returned = HeaderParser().parsestr(data.decode("utf-8", "replace"))
            found += MESSAGE_ID.findall(str(returned.get("Message-ID", "")))
    own = str(message.get("Message-ID", "")).strip()
    body = raw.split(b"\n\n", 1)[-1] if b"\n\n" in raw else raw.split(b"\r\n\r\n", 1)[-1]
    for match in _EMBEDDED_ID.finditer(body):
        value = match.group(1).decode("ascii", "replace")
        if value != own:
            found.append(value)
    return tuple(dict.fromkeys(found))


def arf(
    message: Message, raw: bytes, sender: str, date: dt.datetime | None, tokens: tuple[str, ...]
) -> Report:
    fields = _report_blocks(message, raw, "message/feedback-report")
    kind = next((str(f.get("Feedback-Type", "")).strip() for f in fields if f.get("Feedback-Type")), "abuse")
    recipients = tuple(
        address_of(str(f.get(name, "")))
        for f in fields
        for name in ("Original-Rcpt-To", "Removal-Recipient")
        if f.get(name)
    )
    return Report("complaint", "", "", f"feedback-type {kind}", recipients, _returned_ids(message, raw), tokens,
                  sender, date)  # fmt: skip


def _report_blocks(message: Message, raw: bytes, *content_types: str) -> list[Message]:
    """The header blocks of the message's ``content_types`` parts (``message/delivery-status``,
    ``message/feedback-report``): as the email package parsed them, or read from the decoded text
    of a part sent base64 or quoted-printable (what the package parsed of those is the encoded
    text, not fields)."""
    blocks: list[Message] = []
    for part in message.walk():
        if part.get_content_type() in content_types and not kept_whole(part):
            payload = part.get_payload()
            if isinstance(payload, list):
                blocks.extend(p for p in payload if isinstance(p, Message))
            elif isinstance(payload, str):
                blocks.extend(_header_blocks(payload))
    for kind, data in encoded_message_parts(message, raw):
        if kind in content_types:
            blocks.extend(_header_blocks(data.decode("utf-8", "replace")))
    return blocks


def _header_blocks(text: str) -> list[Message]:
    return [HeaderParser().parsestr(block) for block in re.split(r"\r?\n\s*\r?\n", text) if block.strip()]
