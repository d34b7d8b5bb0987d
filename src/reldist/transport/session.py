"""One SMTP session once it is set up: mail transactions on the bare asyncio transport.

aiosmtplib opens every session (TCP, implicit TLS or STARTTLS, EHLO, AUTH: ``smtp``), then the
connection's transport is handed to a :class:`Session`, whose protocol reads replies in order
however they arrive. aiosmtplib's protocol keeps a single reply waiter and drops data that comes
while none is pending, so it cannot read pipelined replies (RFC 2920). With PIPELINING, MAIL,
RCPT and DATA go out in one write and their three replies are read together: two round trips a
message instead of four, which is most of the client's CPU per message on a fast local relay.
Without PIPELINING the commands go one at a time, stopping at the first refusal.

Errors are aiosmtplib's exceptions, so that the caller classifies them as before:
:class:`SMTPResponseException` for a refusal before the body, :class:`SMTPServerDisconnected` for
a drop, :class:`SMTPReadTimeoutError` for a reply that did not come in time. :attr:`Session.body_sent`
says whether the message had gone out when that happened.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import NamedTuple

from aiosmtplib import SMTPReadTimeoutError, SMTPResponseException, SMTPServerDisconnected

MAX_LINE = 8192  # a reply line longer than this is no SMTP (aiosmtplib uses the same bound)


class Reply(NamedTuple):
    code: int
    text: str


class _Reader(asyncio.Protocol):
    """Collects complete replies (multi-line ones joined) as they arrive."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.lost: BaseException | None = None
        self._buffer = bytearray()
        self._lines: list[str] = []  # the continuation lines of a reply not yet complete
        self._waiter: asyncio.Future[None] | None = None

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            line = bytes(buffer[start : end + 1])
            start = end + 1
            self._line(line)
        del buffer[:start]
        if len(buffer) > MAX_LINE:
            del buffer[:]
            self.replies.append(Reply(-1, "Response too long"))
        self._wake()

    def _line(self, line: bytes) -> None:
        try:
            code = int(line[:3])
        except ValueError:
            text = line.decode("utf-8", "replace").strip()
            self.replies.append(Reply(-1, f"Malformed SMTP response line: {text}"))
            self._lines = []
            return
        if len(line) > MAX_LINE:  # as aiosmtplib: no SMTP server writes such a line
            self.replies.append(Reply(-1, "Response too long"))
            self._lines = []
            return
        self._lines.append(line[4:].strip(b" \t\r\n").decode("utf-8", "surrogateescape"))
        if line[3:4] != b"-":
            self.replies.append(Reply(code, "\n".join(self._lines)))
            self._lines = []

    def eof_received(self) -> bool:
        self._gone(SMTPServerDisconnected("Unexpected EOF received"))
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        error = SMTPServerDisconnected("Connection lost")
        error.__cause__ = exc
        self._gone(error)

    def _gone(self, exc: BaseException) -> None:
        if self.lost is None:
            self.lost = exc
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None


class Lost(Exception):
    """Replies that came before the connection dropped or the time ran out, and why it stopped."""

    def __init__(self, got: list[Reply], cause: Exception) -> None:
        super().__init__(str(cause))
        self.got = got
        self.cause = cause


class Session:
    """An SMTP session taken over from aiosmtplib after EHLO and AUTH."""

    def __init__(self, transport: asyncio.WriteTransport, extensions: set[str], *, timeout: float) -> None:
        self.transport = transport
        self.extensions = extensions  # lower-case EHLO keywords: "pipelining", "size", ...
        self.pipelining = "pipelining" in extensions
        self.timeout = timeout
        self.body_sent = False  # in the last transaction
        self.open = False  # a transaction was started (MAIL accepted) and not ended: RSET it
        self._reader = _Reader()
        transport.set_protocol(self._reader)

    @property
    def is_connected(self) -> bool:
        return self._reader.lost is None and not self.transport.is_closing()

    def supports(self, extension: str) -> bool:
        return extension.lower() in self.extensions

    def abort(self) -> None:
        """Drop the connection now (no QUIT, no TLS close_notify)."""
        self.transport.abort()

    def _write(self, data: bytes) -> None:
        if not self.is_connected:
            raise SMTPServerDisconnected("Connection lost")
        self.transport.write(data)

    async def _read(self, count: int, timeout: float | None = None) -> list[Reply]:
        """The next ``count`` replies; :class:`Lost` (with those that did come) if they do not.
        A 421 ends the batch early: the server is closing and will answer nothing after it."""
        reader = self._reader
        try:
            async with asyncio.timeout(self.timeout if timeout is None else timeout):
                while len(reader.replies) < count and reader.lost is None:
                    if any(reply.code == 421 for reply in reader.replies):
                        break
                    await reader.wait()
        except TimeoutError:
            got = [reader.replies.popleft() for _ in range(len(reader.replies))]
            raise Lost(got, SMTPReadTimeoutError("Timed out waiting for server response")) from None
        got = [reader.replies.popleft() for _ in range(min(count, len(reader.replies)))]
        if len(got) < count:
            reason = str(reader.lost) if reader.lost is not None else "the server is closing the connection"
            raise Lost(got, SMTPServerDisconnected(reason))
        return got

    async def command(self, line: bytes, timeout: float | None = None) -> Reply:
        """One command (CRLF included) and its reply."""
        self._write(line)
        try:
            return (await self._read(1, timeout))[0]
        except Lost as exc:
            raise exc.cause from None

    async def transaction(self, mail: bytes, rcpt: bytes, body: bytes) -> Reply:
        """MAIL, RCPT, DATA and the body (dot-stuffed, ending in ``.`` CRLF); the final reply.

        Raises :class:`SMTPResponseException` for a refusal before the body (the first one),
        :class:`SMTPServerDisconnected` or :class:`SMTPReadTimeoutError` when the connection
        drops or a reply does not come; :attr:`body_sent` tells before from after.
        """
        self.body_sent = self.open = False
        commands = (mail, rcpt, b"DATA\r\n")
        expected = ((250,), (250, 251), (354,))
        replies: list[Reply] = []
        try:
            if self.pipelining:
                self._write(b"".join(commands))
                replies = await self._read(3)
            else:
                for command, codes in zip(commands, expected, strict=True):
                    self._write(command)
                    replies += await self._read(1)
                    if replies[-1].code not in codes:
                        break
        except Lost as exc:
            replies += exc.got
            self.open = bool(replies) and replies[0].code == 250
            for reply, codes in zip(replies, expected, strict=False):
                if reply.code not in codes:  # a refusal came before the drop (a 421, say)
                    raise SMTPResponseException(reply.code, reply.text) from None
            raise exc.cause from None
        self.open = replies[0].code == 250
        for reply, codes in zip(replies, expected, strict=False):
            if reply.code not in codes:
                if replies[-1].code == 354:
                    # DATA accepted though MAIL or RCPT was not (RFC 2920 3.1): end it empty.
                    await self._close_empty_data()
                raise SMTPResponseException(reply.code, reply.text)
        self._write(body)
        self.body_sent = True
        try:
            reply = (await self._read(1))[0]
        except Lost as exc:
            raise exc.cause from None
        self.open = False  # whatever the reply, the transaction is over
        return reply

    async def _close_empty_data(self) -> None:
        try:
            await self.command(b".\r\n")
            self.open = False
        except (SMTPServerDisconnected, SMTPReadTimeoutError):
            self.abort()  # a late reply to "." would be taken for the next command's

    async def quit(self, timeout: float) -> None:
        """QUIT, wait briefly for its reply, and close; errors are ignored."""
        try:
            if self.is_connected:
                await self.command(b"QUIT\r\n", timeout)
        except (SMTPServerDisconnected, SMTPReadTimeoutError, OSError):
            pass
        finally:
            self.abort()
