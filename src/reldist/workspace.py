"""A workspace on disk: finding it, creating one (``reldist init``) and its lock.

``reldist init`` copies the example workspace: the repository's own ``reldist.toml``,
``templates/``, ``contacts/`` and ``releases/``, which the wheel carries as ``reldist/example/``.
The lock is an exclusive ``flock`` on ``<ledger>.lock`` (POSIX only): held by the live process
only, so a lock left by a dead process never blocks.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .config import CONFIG_NAME, Config, find_config, load_config
from .errors import ConfigError, LockHeldError
from .ledger import Ledger
from .ledgerrows import Clock, utcnow

#: What ``reldist init`` copies: the repository's example workspace, packaged into the wheel
#: under ``reldist/example/`` (pyproject.toml, hatch ``force-include``).
EXAMPLE_PARTS = (CONFIG_NAME, "templates", "contacts", "releases")


def example_source() -> Path:
    """The folder holding the example workspace: ``reldist/example`` in an installed wheel, the
    repository itself in a source checkout (``pip install -e .``), where it is the one copy."""
    packaged = Path(__file__).with_name("example")
    if (packaged / CONFIG_NAME).is_file():
        return packaged
    checkout = Path(__file__).resolve().parents[2]  # src/reldist/workspace.py -> the repository
    if (checkout / CONFIG_NAME).is_file() and (checkout / "templates").is_dir():
        return checkout
    raise ConfigError(  # pragma: no cover - a broken installation
        "the example workspace is missing from this installation of reldist; reinstall it",
        place=str(packaged),
    )


@dataclass(frozen=True, slots=True)
class Workspace:
    """A loaded workspace: its config and where its files are."""

    config: Config

    @property
    def root(self) -> Path:
        return self.config.root

    def open_ledger(self, *, create: bool = True, clock: Clock = utcnow) -> Ledger:
        return Ledger.open(self.config.ledger, create=create, clock=clock)

    def has_ledger(self) -> bool:
        """True when a ledger may exist: the SQLite file does, or the ledger is a PostgreSQL database
        (whether it holds a ledger yet, opening it with ``create=False`` tells)."""
        return self.config.ledger_url is not None or self.config.ledger_path.exists()

    @contextlib.contextmanager
    def lock(self, purpose: str) -> Iterator[None]:
        """Hold the workspace's exclusive lock; :class:`LockHeldError` at once if another process has it.

        With a PostgreSQL ledger there is no workspace lock: several send and dispatch processes,
        on any machines, work through a release together (``reldist.senders``)."""
        if self.config.ledger_url is not None:
            yield
            return
        path = self.config.ledger_path.with_name(self.config.ledger_path.name + ".lock")
        with flocked(path) as (handle, held):
            if not held:
                holder = _holder(handle) or "another process"
                raise LockHeldError(f"the workspace is busy: {holder} holds the lock", place=path.name)
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} ({purpose})\n")
            handle.flush()
            try:
                yield
            finally:
                handle.seek(0)
                handle.truncate()


@contextlib.contextmanager
def flocked(path: Path) -> Iterator[tuple[IO[str], bool]]:
    """Open ``path`` (made if missing) and try its exclusive ``flock`` without waiting: the open
    file and whether this process now holds the lock (released on leaving; the OS releases it
    when the holder dies). The workspace lock and the mailbox reader's lock are both this."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield handle, False
            return
        try:
            yield handle, True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _holder(handle: IO[str]) -> str:
    """Who holds the lock, as its holder wrote it; the holder writes just after taking the lock,
    so an empty file is read again a few times before giving up."""
    for _ in range(20):
        handle.seek(0)
        text = handle.read().strip()
        if text:
            return text
        time.sleep(0.005)
    return ""


def open_workspace(
    *, start: Path | None = None, config: Path | None = None, hint: Path | None = None
) -> Workspace:
    """The workspace to use.

    In order: ``config`` (``--config``); the nearest reldist.toml above ``start`` (``--workspace``);
    above ``hint`` (a release folder named on the command line) when that exists; above the
    current folder.
    """
    if config is None and start is not None:
        config = find_config(start)
    if config is None and hint is not None and hint.exists():
        config = find_config(hint if hint.is_dir() else hint.parent)
    if config is None and start is None:
        config = find_config(Path.cwd())
    if config is None:
        raise ConfigError(
            f"not found in {start or Path.cwd()} or its parents; "
            "run 'reldist init DIR' to create a workspace, or pass --workspace",
            place=CONFIG_NAME,
        )
    return Workspace(load_config(config))


def init_workspace(target: Path, *, force: bool = False) -> list[Path]:
    """Copy the example workspace into ``target``; returns the files written."""
    if (target / CONFIG_NAME).exists() and not force:
        raise ConfigError(
            "a workspace is already here (use --force to overwrite the example files)",
            place=str(target / CONFIG_NAME),
        )
    import shutil  # only init copies files

    source = example_source()
    written: list[Path] = []
    for part in EXAMPLE_PARTS:
        top = source / part
        for path in [top] if top.is_file() else sorted(top.rglob("*")):
            if path.is_dir() or "__pycache__" in path.parts:
                continue
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)
            written.append(destination)
    for folder_name in ("outbox",):
        (target / folder_name).mkdir(exist_ok=True)
    # The key that signs unsubscribe links; kept when a workspace is re-initialised (--force),
    # since a new key would break the links already sent.
    from .tokens import KEY_FILE, add_key  # hmac, secrets: only init makes a key

    if add_key(target / KEY_FILE):
        written.append(target / KEY_FILE)
    return written
