"""The one error family of reldist.

Every error a user can cause is a :class:`ReldistError` that carries its place (a file and line,
a config key) as a field beside the message, so that the CLI can print it as one line and
``check --format json`` can give it apart; :func:`place` writes a file's path the way errors name
it. The subclasses exist so
that the CLI can map them to exit codes; library users may catch :class:`ReldistError` alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def place(path: Path, root: Path) -> str:
    """``path`` as errors name it: relative to the workspace ``root`` with ``/``, else as given."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


class ReldistError(Exception):
    """Base class of every error reldist raises on purpose.

    ``place`` is where the problem is (``contacts/regional.csv:17``, ``reldist.toml``,
    ``templates/release.html.j2:30``), ``message`` what it is; ``str()`` gives both as one line,
    ``place: message``. An error without a place (a recipient's address, say) has ``place == ""``.
    """

    exit_code = 1

    def __init__(self, message: str = "", *, place: str = "") -> None:
        super().__init__(f"{place}: {message}" if place else message)
        self.message = message
        self.place = place


class ConfigError(ReldistError, ValueError):
    """``reldist.toml`` is missing, unreadable or has a wrong key or value."""


class ReleaseError(ReldistError, ValueError):
    """A release folder, its ``release.toml`` or one of its files is broken."""


class ContactsError(ReldistError, ValueError):
    """A media list cannot be read at all (not a single bad row: those are skipped)."""


class TemplateError(ReldistError, ValueError):
    """A Jinja2 template does not compile or fails to render."""


class LedgerError(ReldistError, RuntimeError):
    """The delivery ledger cannot be opened or is of a newer version."""


class LedgerUnreachableError(LedgerError, ConnectionError):
    """A PostgreSQL ledger's server could not be reached, or the connection was lost."""

    exit_code = 4


class TransportError(ReldistError, ConnectionError):
    """The mail server could not be reached or refused us as a whole (not one recipient)."""

    exit_code = 4


class ServerSetupError(TransportError):
    """The server was reached but refuses how we are set up: a wrong password (535), no STARTTLS
    when ``security = "starttls"``, a certificate that does not verify, no usable AUTH. Running
    again will not help until reldist.toml (or the password) is fixed: exit 1, not 4."""

    exit_code = 1


class LockHeldError(ReldistError, BlockingIOError):
    """Another dispatcher holds the workspace lock."""

    exit_code = 75
