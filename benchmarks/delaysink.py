"""A discard-everything SMTP server that waits before every reply: a relay across a network.

    python benchmarks/delaysink.py --port 0 --delay 0.020 --stats out/sink.json

Each reply (the greeting, EHLO, MAIL, RCPT, DATA's 354, the reply after the final ".", RSET,
NOOP, QUIT) is sent ``--delay`` seconds after its command arrived, as a relay one network round
trip away would answer: a client that does not pipeline pays the delay once per command, i.e.
four times per message (MAIL, RCPT, DATA, end of data) plus three per new connection (greeting,
EHLO, QUIT); one that pipelines MAIL, RCPT and DATA gets their three replies together, one delay
after it wrote them. Every connection is served concurrently (asyncio), so the delay costs the
client latency, not the server's capacity. Announces 8BITMIME, SMTPUTF8 and SIZE, and
PIPELINING with ``--pipelining``.

Prints ``listening on HOST:PORT`` on the first line of standard output. On SIGTERM or SIGINT it
writes ``--stats`` (JSON: messages, bytes, first/last message times, connections) and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from pathlib import Path


class Sink:
    def __init__(self, delay: float, pipelining: bool = False) -> None:
        self.delay = delay
        self.pipelining = pipelining
        self.messages = 0
        self.bytes = 0
        self.connections = 0
        self.first: float | None = None  # monotonic time of the first MAIL
        self.last: float | None = None  # monotonic time of the last accepted message
        self.started = time.monotonic()

    async def reply(self, writer: asyncio.StreamWriter, text: bytes, arrived: float) -> None:
        """Send ``text`` ``delay`` seconds after its command arrived (one round trip)."""
        wait = arrived + self.delay - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        writer.write(text)
        await writer.drain()

    async def read(self, reader: asyncio.StreamReader, queue: asyncio.Queue[tuple[float, bytes]]) -> None:
        """Stamp every command (and every message body) with the time it arrived."""
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                await queue.put((time.monotonic(), line))
                if line[:4].upper() == b"DATA":
                    first = await reader.readline()
                    body = first if first == b".\r\n" else first + await reader.readuntil(b"\r\n.\r\n")
                    await queue.put((time.monotonic(), b"\0BODY " + str(len(body)).encode()))
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        await queue.put((time.monotonic(), b""))

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        reading = asyncio.create_task(self.read(reader, queue))
        try:
            await self.reply(writer, b"220 delaysink ESMTP\r\n", time.monotonic())
            while True:
                arrived, line = await queue.get()
                if not line:
                    return
                verb = line[:4].upper()
                if verb == b"EHLO":
                    await self.reply(
                        writer,
                        b"250-delaysink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-SIZE 104857600\r\n"
                        + (b"250-PIPELINING\r\n" if self.pipelining else b"")
                        + b"250 ENHANCEDSTATUSCODES\r\n",
                        arrived,
                    )
                elif verb == b"HELO":
                    await self.reply(writer, b"250 delaysink\r\n", arrived)
                elif verb == b"MAIL":
                    if self.first is None:
                        self.first = time.monotonic()
                    await self.reply(writer, b"250 2.1.0 Ok\r\n", arrived)
                elif verb == b"RCPT":
                    await self.reply(writer, b"250 2.1.5 Ok\r\n", arrived)
                elif verb == b"DATA":
                    await self.reply(writer, b"354 End data with <CR><LF>.<CR><LF>\r\n", arrived)
                elif verb == b"\0BOD":
                    self.messages += 1
                    self.bytes += int(line.split()[1])
                    self.last = time.monotonic()
                    await self.reply(writer, f"250 2.0.0 Ok: queued as {self.messages}\r\n".encode(), arrived)
                elif verb in (b"RSET", b"NOOP"):
                    await self.reply(writer, b"250 2.0.0 Ok\r\n", arrived)
                elif verb == b"QUIT":
                    await self.reply(writer, b"221 2.0.0 Bye\r\n", arrived)
                    return
                else:
                    await self.reply(writer, b"502 5.5.2 Error: command not recognized\r\n", arrived)
        except ConnectionError:
            return
        finally:
            reading.cancel()
            writer.close()

    def stats(self) -> dict[str, object]:
        span = (self.last - self.first) if self.first is not None and self.last is not None else 0.0
        return {
            "delay": self.delay,
            "messages": self.messages,
            "bytes": self.bytes,
            "connections": self.connections,
            "first_to_last_seconds": span,
            "messages_per_second": (self.messages - 1) / span if span > 0 else None,
        }


async def serve(host: str, port: int, delay: float, stats: Path | None, pipelining: bool) -> None:
    sink = Sink(delay, pipelining)
    server = await asyncio.start_server(sink.handle, host, port, limit=64 * 2**20, backlog=256)
    bound = server.sockets[0].getsockname()
    print(f"listening on {bound[0]}:{bound[1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    if stats is not None:
        stats.write_text(json.dumps(sink.stats(), indent=2) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description="SMTP sink that waits before each reply")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.020, help="seconds before each reply (0.020)")
    parser.add_argument("--stats", type=Path, help="write counts here (JSON) on exit")
    parser.add_argument("--pipelining", action="store_true", help="announce PIPELINING (RFC 2920)")
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.delay, args.stats, args.pipelining))


if __name__ == "__main__":
    main()
