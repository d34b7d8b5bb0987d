"""The default transport: each message as a ``.eml`` file in ``outbox/<release-id>/``.

Files are named ``<n>-<address>.eml`` (``n`` is the recipient's ledger row) and written
atomically: to a temporary file in the same folder, then renamed, so a killed run never leaves
half a message under the final name. (No fsync per file: the ledger, not the outbox, is the
record, and it survives a killed process; a power cut may lose the last files written.) Needs no mail server; the ledger records each file as sent.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from ..envelope import Outcome, Outgoing
from ..errors import TransportError

_UNSAFE = re.compile(r"[^\w@.+-]", re.UNICODE)


def eml_name(seq: int, address: str) -> str:
    """``12-ivan@example.org.eml``: the address made safe for any file system."""
    return f"{seq}-{_UNSAFE.sub('_', address)}.eml"


class OutboxTransport:
    """Writes messages into one folder. ``connections`` is 1: the disk needs no pool."""

    name = "outbox"
    connections = 1

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def describe(self) -> str:
        return f"outbox {self.folder}"

    async def connect(self) -> OutboxConnection:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TransportError(
                f"cannot create the outbox folder: {exc.strerror}", place=str(self.folder)
            ) from None
        return OutboxConnection(self.folder)


class OutboxConnection:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def send(self, message: Outgoing) -> Outcome:
        target = self.folder / eml_name(message.seq, message.address)
        try:
            fd, temp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".eml")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(message.data)
                os.replace(temp, target)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            return Outcome("deferred", None, f"could not write {target.name}: {exc.strerror}")
        return Outcome("sent", 250, f"written to {target}")

    async def close(self) -> None:
        return None
