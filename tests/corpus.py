"""A corpus of what comes back to a press office: bounces as Postfix, Exim, Exchange/Office 365,
Gmail, Yandex, Mail.ru and qmail write them, ARF complaints, auto-replies in ru/en/kk, replies
with and without quoting, unsubscribe mails. Each maker takes the original message's headers
(as our send wrote them) and returns the bytes a mailbox would hold; the layouts follow real
reports of those servers (addresses and hosts changed)."""

from __future__ import annotations

from dataclasses import dataclass

CRLF = "\n"


@dataclass(frozen=True)
class Original:
    """What a report quotes of our message."""

    address: str
    message_id: str
    subject: str
    headers: str  # the header block as sent


def _dsn(
    *,
    sender: str,
    subject: str,
    boundary: str,
    human: str,
    reporting: str,
    recipient: str,
    action: str,
    status: str,
    diagnostic: str,
    original: str,
    original_type: str = "message/rfc822",
    msgid: str,
    extra_headers: str = "",
) -> bytes:
    return (
        f"Return-Path: <>\n"
        f"From: {sender}\n"
        f"To: press@ecomuseum.example\n"
        f"Subject: {subject}\n"
        f"Date: Thu, 26 Nov 2026 10:15:00 +0000\n"
        f"Message-ID: {msgid}\n"
        f"Auto-Submitted: auto-replied\n"
        f"{extra_headers}"
        f"MIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\n'
        f"\n"
        f"--{boundary}\n"
        f"Content-Type: text/plain; charset=utf-8\n"
        f"\n"
        f"{human}\n"
        f"\n"
        f"--{boundary}\n"
        f"Content-Type: message/delivery-status\n"
        f"\n"
        f"Reporting-MTA: dns; {reporting}\n"
        f"Arrival-Date: Thu, 26 Nov 2026 10:14:58 +0000\n"
        f"\n"
        f"Final-Recipient: rfc822; {recipient}\n"
        f"Original-Recipient: rfc822;{recipient}\n"
        f"Action: {action}\n"
        f"Status: {status}\n"
        f"Remote-MTA: dns; mx.{recipient.rpartition('@')[2]}\n"
        f"Diagnostic-Code: smtp; {diagnostic}\n"
        f"\n"
        f"--{boundary}\n"
        f"Content-Type: {original_type}\n"
        f"\n"
        f"{original}\n"
        f"--{boundary}--\n"
    ).encode()


def postfix_hard(o: Original) -> bytes:
    return _dsn(
        sender="MAILER-DAEMON@mail.ecomuseum.example (Mail Delivery System)",
        subject="Undelivered Mail Returned to Sender",
        boundary="B1A2C3D4.1732615000/mail.ecomuseum.example",
        human=(
            "This is the mail system at host mail.ecomuseum.example.\n\n"
            "I'm sorry to have to inform you that your message could not\nbe delivered to one or more "
            "recipients.\n\n"
            f"<{o.address}>: host mx.example.org[192.0.2.10] said: 550 5.1.1\n"
            f"    <{o.address}>: Recipient address rejected: User unknown in virtual mailbox table"
        ),
        reporting="mail.ecomuseum.example",
        recipient=o.address,
        action="failed",
        status="5.1.1",
        diagnostic=f"550 5.1.1 <{o.address}>: Recipient address rejected: User unknown",
        original=o.headers,
        original_type="text/rfc822-headers",
        msgid="<20261126101500.B1A2C3D4@mail.ecomuseum.example>",
    )


def exchange_hard(o: Original) -> bytes:
    return _dsn(
        sender="Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@ecomuseum.example>",
        subject=f"Undeliverable: {o.subject}",
        boundary="_000_ndr_exchange",
        human=(
            "Your message to "
            f"{o.address} couldn't be delivered.\n{o.address.split('@')[0]} wasn't found at "
            f"{o.address.split('@')[1]}.\n\nRemote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; "
            "Recipient not found by SMTP address lookup'"
        ),
        reporting="AM9PR01MB1234.eurprd01.prod.exchangelabs.com",
        recipient=o.address,
        action="failed",
        status="5.1.10",
        diagnostic="550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
        original=o.headers,
        original_type="text/rfc822-headers",
        msgid="<a1b2c3d4-0000-4000-8000-ndr@AM9PR01MB1234.eurprd01.prod.exchangelabs.com>",
        extra_headers="X-MS-Exchange-Message-Is-Ndr: \nContent-Language: en-US\n",
    )


def gmail_hard(o: Original) -> bytes:
    return _dsn(
        sender="Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
        subject="Delivery Status Notification (Failure)",
        boundary="000000000000gmailndr",
        human=(
            f"** Address not found **\n\nYour message wasn't delivered to {o.address} because the address "
            "couldn't be found, or is unable to receive mail."
        ),
        reporting="googlemail.com",
        recipient=o.address,
        action="failed",
        status="5.1.1",
        diagnostic=(
            "550-5.1.1 The email account that you tried to reach does not exist. "
            "https://support.google.com/mail/?p=NoSuchUser"
        ),
        original=o.headers + "\nThe body of the release.\n",
        msgid="<0000000000gmail.ndr.1@google.com>",
    )


def yandex_soft(o: Original) -> bytes:
    return _dsn(
        sender="mailer-daemon@yandex.ru",
        subject="Delivery Status Notification (Delay)",
        boundary="yandex-delay-1",
        human="Сообщение пока не доставлено: почтовый ящик переполнен. Попытки доставки продолжаются.",
        reporting="forward100.mail.yandex.net",
        recipient=o.address,
        action="delayed",
        status="4.2.2",
        diagnostic="452 4.2.2 Mailbox size limit exceeded",
        original=o.headers,
        original_type="text/rfc822-headers",
        msgid="<yandex.delay.1@forward100.mail.yandex.net>",
    )


def mailru_policy(o: Original) -> bytes:
    return _dsn(
        sender="Mail Delivery System <MAILER-DAEMON@corp.mail.ru>",
        subject="Mail failure.",
        boundary="mailru-ndr-1",
        human="Письмо не может быть доставлено: отклонено по подозрению в спаме.",
        reporting="corp.mail.ru",
        recipient=o.address,
        action="failed",
        status="5.7.1",
        diagnostic="550 5.7.1 Message rejected under suspicion of SPAM; https://help.mail.ru/notspam-support",
        original=o.headers,
        msgid="<mailru.ndr.1@corp.mail.ru>",
    )


def exim_text(o: Original) -> bytes:
    """Old Exim: no DSN, the failure in prose and the original headers after a marker line."""
    return (
        "Return-path: <>\n"
        "From: Mail Delivery System <Mailer-Daemon@mx.regional-news.example>\n"
        "To: press@ecomuseum.example\n"
        "Subject: Mail delivery failed: returning message to sender\n"
        "Message-Id: <E1tExim-0001Ab-Q1@mx.regional-news.example>\n"
        "Date: Thu, 26 Nov 2026 10:20:00 +0500\n"
        "\n"
        "This message was created automatically by mail delivery software.\n\n"
        "A message that you sent could not be delivered to one or more of its\n"
        "recipients. This is a permanent error. The following address(es) failed:\n\n"
        f"  {o.address}\n"
        f"    SMTP error from remote mail server after RCPT TO:<{o.address}>:\n"
        "    550 5.1.1 No such user here\n\n"
        "------ This is a copy of the message, including all the headers. ------\n\n"
        f"{o.headers}\n"
        "The body of the release.\n"
    ).encode()


def qmail_text(o: Original) -> bytes:
    """qmail: prose, the address in angle brackets, the original after 'Below this line'."""
    return (
        "Return-Path: <>\n"
        "From: MAILER-DAEMON@mail.kz-media.example\n"
        "To: press@ecomuseum.example\n"
        "Subject: failure notice\n"
        "Date: 26 Nov 2026 10:21:00 -0000\n"
        "\n"
        "Hi. This is the qmail-send program at mail.kz-media.example.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        f"<{o.address}>:\n"
        "192.0.2.55 does not like recipient.\n"
        "Remote host said: 550 5.1.1 Mailbox does not exist\n"
        "Giving up on 192.0.2.55.\n\n"
        "--- Below this line is a copy of the message.\n\n"
        f"{o.headers}\n"
        "The body of the release.\n"
    ).encode()


def arf_complaint(o: Original) -> bytes:
    return (
        "From: Mail.ru FBL <fbl@corp.mail.ru>\n"
        "To: abuse@ecomuseum.example\n"
        "Subject: FW: complaint\n"
        "Date: Thu, 26 Nov 2026 12:00:00 +0300\n"
        "Message-ID: <fbl.20261126.1@corp.mail.ru>\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="arf-part"\n'
        "\n"
        "--arf-part\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        "\n"
        "This is an email abuse report for an email message received from IP 192.0.2.25.\n"
        "\n"
        "--arf-part\n"
        "Content-Type: message/feedback-report\n"
        "\n"
        "Feedback-Type: abuse\n"
        "User-Agent: MailRu-FBL/1.0\n"
        "Version: 1\n"
        f"Original-Rcpt-To: {o.address}\n"
        "Source-IP: 192.0.2.25\n"
        "\n"
        "--arf-part\n"
        "Content-Type: message/rfc822\n"
        "\n"
        f"{o.headers}\n"
        "The body of the release.\n"
        "--arf-part--\n"
    ).encode()


def _reply(
    o: Original, *, subject: str, body: str, msgid: str, extra: str = "", references: bool = True
) -> bytes:
    refs = f"In-Reply-To: {o.message_id}\nReferences: {o.message_id}\n" if references else ""
    return (
        f"From: Journalist <{o.address}>\n"
        f"To: press@ecomuseum.example\n"
        f"Subject: {subject}\n"
        f"Date: Fri, 27 Nov 2026 09:00:00 +0500\n"
        f"Message-ID: {msgid}\n"
        f"{refs}{extra}"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n"
        "\n"
        f"{body}\n"
    ).encode()


def auto_reply_en(o: Original) -> bytes:
    return _reply(
        o,
        subject=f"Automatic reply: {o.subject}",
        body="I am out of the office until 7 December with limited access to email.",
        msgid="<oof.en.1@example.org>",
        extra="Auto-Submitted: auto-replied\nX-Auto-Response-Suppress: All\n",
    )


def auto_reply_ru(o: Original) -> bytes:
    """No RFC 3834 header at all: only the subject says it (as many Russian servers send it)."""
    return _reply(
        o,
        subject=f"Автоответ: {o.subject}",
        body="Здравствуйте! Я в отпуске до 10 декабря. По срочным вопросам: редакция, +7 7212 00-00-00.",
        msgid="<autoreply.ru.1@example.net>",
    )


def auto_reply_kk(o: Original) -> bytes:
    return _reply(
        o,
        subject="Автожауап",
        body="Сәлеметсіз бе! Мен 10 желтоқсанға дейін демалыстамын.",
        msgid="<autoreply.kk.1@example.com>",
        extra="X-Autoreply: yes\n",
    )


def reply_quoted(o: Original) -> bytes:
    return _reply(
        o,
        subject=f"Re: {o.subject}",
        body=(
            "Thank you, we will run the story on Monday.\n"
            "Could you send a photo of the signing?\n\n"
            "On Thu, 26 Nov 2026 at 10:00, EcoMuseum <press@ecomuseum.example> wrote:\n"
            "> EU project supports Karaganda region\n> in tackling climate change\n"
        ),
        msgid="<reply.quoted.1@example.org>",
    )


def reply_ru_quoted(o: Original) -> bytes:
    return _reply(
        o,
        subject=f"Re: {o.subject}",
        body=(
            "Добрый день! Опубликуем завтра.\n\n"
            "26.11.2026, 10:00, ЭкоМузей Караганда пишет:\n"
            "> Проект ЕС поддерживает Карагандинскую область\n"
        ),
        msgid="<reply.ru.1@example.net>",
    )


def reply_unquoted(o: Original) -> bytes:
    return _reply(o, subject="Re: релиз", body="Спасибо, получили.", msgid="<reply.plain.1@example.com>")


def reply_unsubscribe(o: Original) -> bytes:
    return _reply(o, subject=f"Re: {o.subject}", body="Отписаться", msgid="<reply.unsub.1@example.com>")


def unsubscribe_mail(o: Original, token: str) -> bytes:
    """What a mail program sends for the mailto link: the token in the subject, nothing else."""
    return (
        f"From: <{o.address}>\nTo: unsubscribe@ecomuseum.example\nSubject: unsubscribe {token}\n"
        f"Date: Fri, 27 Nov 2026 11:00:00 +0000\nMessage-ID: <unsub.mail.1@example.org>\n\n\n"
    ).encode()


def no_original_dsn(address: str) -> bytes:
    """A DSN that returns nothing of the message: only the recipient names it."""
    return _dsn(
        sender="MAILER-DAEMON@mx.example.com",
        subject="Returned mail: see transcript for details",
        boundary="bare",
        human="The original message was received and could not be delivered.",
        reporting="mx.example.com",
        recipient=address,
        action="failed",
        status="5.1.1",
        diagnostic="550 5.1.1 User unknown",
        original="X-Nothing: here\n",
        original_type="text/rfc822-headers",
        msgid="<bare.dsn.1@mx.example.com>",
    )


def stranger_bounce() -> bytes:
    """A bounce for an address we never sent to, of a message that is not ours."""
    o = Original(
        "nobody@elsewhere.example",
        "<other@elsewhere.example>",
        "Hi",
        "From: someone@elsewhere.example\nMessage-ID: <other@elsewhere.example>\nSubject: Hi\n",
    )
    return postfix_hard(o).replace(b"B1A2C3D4", b"STRANGER")


def newsletter() -> bytes:
    return (
        b"From: Weekly digest <news@digest.example>\nTo: press@ecomuseum.example\nSubject: This week\n"
        b"Date: Fri, 27 Nov 2026 08:00:00 +0000\nMessage-ID: <digest.1@digest.example>\n\nNews of the week.\n"
    )
