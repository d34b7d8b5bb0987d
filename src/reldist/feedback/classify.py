"""What an incoming message is: a bounce, a complaint, an unsubscribe request, an auto-reply, a
person's reply, or none of these.

Pure: bytes in, a :class:`Report` out (no ledger, no network). In order:

1. ``multipart/report; report-type=delivery-status`` (RFC 3464; ``global-delivery-status``, RFC
   6533): a bounce, hard, soft or policy (``bounces.dsn``).
2. ``multipart/report; report-type=feedback-report`` (RFC 5965 ARF): a complaint (``bounces.arf``).
3. Something that looks like a bounce (from MAILER-DAEMON or postmaster, a bounce subject): the
   failed recipients and the status code found in its text (``bounces.fallback_bounce``).
4. ``unsubscribe <token>`` in the subject (the mailto link of every message): unsubscribe.
5. RFC 3834 ``Auto-Submitted``, ``X-Autoreply``, ``Precedence: auto_reply``, or a vacation
   subject in ru/en/kk: an auto-reply.
6. ``In-Reply-To``/``References``: a reply (its first lines kept; a reply that says just
   "unsubscribe" / «отписаться» is an unsubscribe request).

Each report carries what matching needs: the Message-IDs that may be ours (the returned
message's, In-Reply-To, References), tokens (subject, VERP address) and recipient addresses.

Bounces and complaints (1-3) are read by ``bounces``; the report and the reading of headers and
text are ``incoming``'s; this module decides the order and knows people's replies (4-6).
"""

from __future__ import annotations

import re
from email.message import Message

from .bounces import arf, dsn, fallback_bounce, looks_like_bounce
from .incoming import MESSAGE_ID, Kind, Report, address_of, date_of, header_text, text_of, verp_tokens

__all__ = ["classify", "first_lines"]

_TOKEN = re.compile(r"\bunsubscribe\s+([A-Za-z0-9_-]{24,})", re.IGNORECASE)
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


def classify(message: Message, raw: bytes) -> Report:
    """Classify one message (``raw`` is its bytes, for the fallbacks that read the text)."""
    sender = address_of(str(message.get("From", "")))
    date = date_of(message)
    tokens = verp_tokens(message)
    content_type = message.get_content_type()
    report_type = str(message.get_param("report-type", "") or "").lower()
    if content_type == "multipart/report" and report_type in ("delivery-status", "global-delivery-status"):
        return dsn(message, raw, sender, date, tokens)
    if content_type == "multipart/report" and report_type == "feedback-report":
        return arf(message, raw, sender, date, tokens)
    subject = header_text(message, "Subject")
    if looks_like_bounce(message, subject):
        bounce = fallback_bounce(message, raw, sender, date, tokens)
        if bounce is not None:
            return bounce
    found = _TOKEN.search(subject)
    if found:
        return Report("unsubscribe", tokens=(found.group(1), *tokens), sender=sender, date=date)
    replied_to = tuple(
        MESSAGE_ID.findall(str(message.get("In-Reply-To", "")) + str(message.get("References", "")))
    )
    if _auto_reply(message, subject):
        return Report("auto-reply", diagnostic=subject[:200], message_ids=replied_to, tokens=tokens,
                      recipients=(sender,), sender=sender, date=date)  # fmt: skip
    if replied_to:
        text = first_lines(text_of(message))
        kind: Kind = "unsubscribe" if _just_unsubscribe(text) else "reply"
        return Report(kind, diagnostic=text, message_ids=replied_to, tokens=tokens, recipients=(sender,),
                      sender=sender, date=date)  # fmt: skip
    return Report("unknown", sender=sender, date=date, tokens=tokens)


# -- replies --------------------------------------------------------------------------------------


def _auto_reply(message: Message, subject: str) -> bool:
    auto = str(message.get("Auto-Submitted", "")).strip().lower()
    if auto and auto != "no":
        return True
    if message.get("X-Autoreply") or message.get("X-Autorespond") or message.get("X-Autoresponder"):
        return True
    if str(message.get("Precedence", "")).strip().lower() == "auto_reply":
        return True
    return bool(_VACATION.search(subject) or _VACATION_TEXT.search(first_lines(text_of(message))))


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
