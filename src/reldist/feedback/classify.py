"""What an incoming message is: a bounce, a complaint, an unsubscribe request, an auto-reply, a
person's reply, or none of these.

Pure: bytes in, a :class:`Report` out (no ledger, no network). In order:

1. ``multipart/report; report-type=delivery-status`` (RFC 3464): per recipient ``Action`` and
   ``Status``; ``failed`` with 5.1.x/5.4.x or 5.2.1 is *hard*, 5.7.x is *policy* (the sender's
   problem, never the address's), ``delayed``, 4.x.x and the other 5.x.x are *soft*.
2. ``multipart/report; report-type=feedback-report`` (RFC 5965 ARF): a complaint.
3. Something that looks like a bounce (from MAILER-DAEMON or postmaster, a bounce subject):
   ``flufl.bounce`` finds the failed recipients (Exchange, qmail, Yahoo, old Postfix and Exim
   texts...), the enhanced status code in the text decides hard or soft.
4. ``unsubscribe <token>`` in the subject (the mailto link of every message): unsubscribe.
5. RFC 3834 ``Auto-Submitted``, ``X-Autoreply``, ``Precedence: auto_reply``, or a vacation
   subject in ru/en/kk: an auto-reply.
6. ``In-Reply-To``/``References``: a reply (its first lines kept; a reply that says just
   "unsubscribe" / «отписаться» is an unsubscribe request).

Each report carries what matching needs: the Message-IDs that may be ours (the returned
message's, In-Reply-To, References), tokens (subject, VERP address) and recipient addresses.
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
from email.parser import HeaderParser
from typing import Literal

__all__ = ["Report", "classify", "message_key"]

Kind = Literal["bounce", "complaint", "unsubscribe", "auto-reply", "reply", "unknown"]
Severity = Literal["hard", "soft", "policy", ""]

_MSGID = re.compile(r"<[^<>\s@]+@[^<>\s]+>")
_EMBEDDED_ID = re.compile(
    rb"^Message-ID:[ \t]*(?:\r?\n[ \t]+)?(<[^<>\s@]+@[^<>\s]+>)", re.IGNORECASE | re.MULTILINE
)
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_CODE = re.compile(r"\b([45])\d\d\b")
_TOKEN = re.compile(r"\bunsubscribe\s+([A-Za-z0-9_-]{24,})", re.IGNORECASE)
_VERP = re.compile(r"\+([A-Za-z0-9_-]{20,})@")
_BOUNCE_FROM = re.compile(r"mailer-daemon|postmaster|mail delivery (sub)?system", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery status notification|delivery (has )?failed|failure notice|"
    r"returned mail|mail delivery failed|delivery failure|non[- ]?delivery|недостав|не доставлен|"
    r"не удалось доставить|ошибка доставки",
    re.IGNORECASE,
)
_VACATION = re.compile(
    r"out of (the )?office|automatic reply|auto[- ]?reply|autoresponse|auto[- ]?response|on vacation|"
    r"on leave|away from (the|my) office|i am away|i'm away|"
    r"автоответ|автоматический ответ|в отпуске|вне офиса|нет на месте|отсутствую|"
    r"автожауап|автоматты жауап|демалыста|кеңседе жоқпын",
    re.IGNORECASE,
)
# In the text only what a person rarely writes in a real reply.
_VACATION_TEXT = re.compile(
    r"\b(i am|i'm) (currently )?(out of (the )?office|on (annual )?leave|on vacation|away)|"
    r"я (сейчас )?(в отпуске|нахожусь в отпуске|отсутствую)|демалыстамын",
    re.IGNORECASE,
)
_UNSUBSCRIBE_WORDS = frozenset(
    {
        "unsubscribe",
        "unsubscribe me",
        "please unsubscribe",
        "remove me",
        "отписаться",
        "отписать",
        "отпишите",
        "отпишите меня",
        "жазылымнан бас тарту",
    }
)
_QUOTE_START = re.compile(
    r"^(on .+wrote:|.+ (пишет|написал|написала|жазды):|-{2,}\s*(original message|исходное сообщение)\s*-{2,}|"
    r"from:|от:|отправлено:|sent:|_{6,})",
    re.IGNORECASE,
)


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
    found = _MSGID.search(str(message.get("Message-ID", "")))
    if found:
        return found.group(0)
    import hashlib

    return "sha256:" + hashlib.sha256(raw).hexdigest()


def parse(raw: bytes) -> Message:
    # compat32: several times faster than policy.default, and all this needs is headers and text.
    return email.message_from_bytes(raw)


def classify(message: Message, raw: bytes) -> Report:
    """Classify one message (``raw`` is its bytes, for the fallbacks that read the text)."""
    sender = _address(str(message.get("From", "")))
    date = _date(message)
    tokens = _tokens(message)
    content_type = message.get_content_type()
    report_type = str(message.get_param("report-type", "") or "").lower()
    if content_type == "multipart/report" and report_type == "delivery-status":
        return _dsn(message, raw, sender, date, tokens)
    if content_type == "multipart/report" and report_type == "feedback-report":
        return _arf(message, raw, sender, date, tokens)
    subject = _header(message, "Subject")
    if _BOUNCE_FROM.search(str(message.get("From", ""))) or (
        _BOUNCE_SUBJECT.search(subject) and not message.get("In-Reply-To")
    ):
        bounce = _fallback_bounce(message, raw, sender, date, tokens)
        if bounce is not None:
            return bounce
    found = _TOKEN.search(subject)
    if found:
        return Report("unsubscribe", tokens=(found.group(1), *tokens), sender=sender, date=date)
    replied_to = tuple(
        _MSGID.findall(str(message.get("In-Reply-To", "")) + str(message.get("References", "")))
    )
    if _auto_reply(message, subject):
        return Report("auto-reply", diagnostic=subject[:200], message_ids=replied_to, tokens=tokens,
                      recipients=(sender,), sender=sender, date=date)  # fmt: skip
    if replied_to:
        text = first_lines(_text(message))
        kind: Kind = "unsubscribe" if _just_unsubscribe(text) else "reply"
        return Report(kind, diagnostic=text, message_ids=replied_to, tokens=tokens, recipients=(sender,),
                      sender=sender, date=date)  # fmt: skip
    return Report("unknown", sender=sender, date=date, tokens=tokens)


# -- bounces --------------------------------------------------------------------------------------


def severity_of(status: str, action: str = "failed") -> Severity:
    """hard, soft or policy from an enhanced status code (and the DSN's Action)."""
    if action.lower() == "delayed" or status.startswith("4"):
        return "soft"
    if status.startswith("5.7"):
        return "policy"
    if status.startswith(("5.1.", "5.4.")) or status == "5.2.1":
        return "hard"
    return "soft" if status.startswith("5") else ""


def _dsn(
    message: Message, raw: bytes, sender: str, date: dt.datetime | None, tokens: tuple[str, ...]
) -> Report:
    blocks: list[Message] = []
    for part in message.walk():
        if part.get_content_type() == "message/delivery-status":
            payload = part.get_payload()
            if isinstance(payload, list):
                blocks.extend(p for p in payload if isinstance(p, Message))
            elif isinstance(payload, str):  # some servers send it base64 or as plain text
                text = part.get_payload(decode=True)
                blocks.extend(
                    _header_blocks(text.decode("utf-8", "replace") if isinstance(text, bytes) else payload)
                )
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
        recipient = _address(
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


def _fallback_bounce(
    message: Message, raw: bytes, sender: str, date: dt.datetime | None, tokens: tuple[str, ...]
) -> Report | None:
    from flufl.bounce import all_failures

    try:
        temporary, permanent = all_failures(message)
    except Exception:
        temporary, permanent = frozenset(), frozenset()
    text = _text(message)
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
        if kind == "message/rfc822" and isinstance(part.get_payload(), list):
            inner = part.get_payload(0)
            if isinstance(inner, Message):
                found += _MSGID.findall(str(inner.get("Message-ID", "")))
        elif kind == "text/rfc822-headers":
            data = part.get_payload(decode=True)
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(part.get_payload())
            found += _MSGID.findall(str(HeaderParser().parsestr(text).get("Message-ID", "")))
    own = str(message.get("Message-ID", "")).strip()
    body = raw.split(b"\n\n", 1)[-1] if b"\n\n" in raw else raw.split(b"\r\n\r\n", 1)[-1]
    for match in _EMBEDDED_ID.finditer(body):
        value = match.group(1).decode("ascii", "replace")
        if value != own:
            found.append(value)
    return tuple(dict.fromkeys(found))


def _arf(
    message: Message, raw: bytes, sender: str, date: dt.datetime | None, tokens: tuple[str, ...]
) -> Report:
    fields: list[Message] = []
    for part in message.walk():
        if part.get_content_type() == "message/feedback-report":
            payload = part.get_payload()
            if isinstance(payload, list):
                fields.extend(p for p in payload if isinstance(p, Message))
            else:
                data = part.get_payload(decode=True)
                fields.extend(
                    _header_blocks(
                        data.decode("utf-8", "replace") if isinstance(data, bytes) else str(payload)
                    )
                )
    kind = next((str(f.get("Feedback-Type", "")).strip() for f in fields if f.get("Feedback-Type")), "abuse")
    recipients = tuple(
        _address(str(f.get(name, "")))
        for f in fields
        for name in ("Original-Rcpt-To", "Removal-Recipient")
        if f.get(name)
    )
    return Report("complaint", "", "", f"feedback-type {kind}", recipients, _returned_ids(message, raw), tokens,
                  sender, date)  # fmt: skip


def _header_blocks(text: str) -> list[Message]:
    return [HeaderParser().parsestr(block) for block in re.split(r"\r?\n\s*\r?\n", text) if block.strip()]


# -- replies --------------------------------------------------------------------------------------


def _auto_reply(message: Message, subject: str) -> bool:
    auto = str(message.get("Auto-Submitted", "")).strip().lower()
    if auto and auto != "no":
        return True
    if message.get("X-Autoreply") or message.get("X-Autorespond") or message.get("X-Autoresponder"):
        return True
    if str(message.get("Precedence", "")).strip().lower() == "auto_reply":
        return True
    return bool(_VACATION.search(subject) or _VACATION_TEXT.search(first_lines(_text(message))))


def _just_unsubscribe(text: str) -> bool:
    words = " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())
    return words in _UNSUBSCRIBE_WORDS


def first_lines(text: str, *, lines: int = 3, limit: int = 300) -> str:
    """The first lines a person wrote: no quoted text, no blank lines, at most ``limit`` characters."""
    kept: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(">") or _QUOTE_START.match(stripped):
            break
        if stripped and stripped != "--":
            kept.append(stripped)
        elif stripped == "--":
            break
        if len(kept) >= lines:
            break
    return " / ".join(kept)[:limit]


def _text(message: Message) -> str:
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


# -- headers --------------------------------------------------------------------------------------


def _header(message: Message, name: str) -> str:
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


_ANGLE = re.compile(r"<([^<>\s]+@[^<>\s]+)>")


def _address(value: str) -> str:
    # A plain regex first: email.utils.parseaddr costs ~0.1 ms, and most values are plain.
    found = _ANGLE.search(value)
    if found:
        return found.group(1).lower()
    value = value.strip()
    if "@" in value and " " not in value and "," not in value:
        return value.strip("<>").lower()
    return email.utils.parseaddr(value)[1].strip().lower()


def _date(message: Message) -> dt.datetime | None:
    try:
        when = email.utils.parsedate_to_datetime(str(message.get("Date", "")))
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _tokens(message: Message) -> tuple[str, ...]:
    """VERP tokens in the addresses a bounce was delivered to (bounces+TOKEN@domain)."""
    found: list[str] = []
    for name in ("To", "Delivered-To", "X-Original-To", "Envelope-To", "Return-Path"):
        for value in message.get_all(name, []):
            found += _VERP.findall(str(value))
    return tuple(dict.fromkeys(found))
