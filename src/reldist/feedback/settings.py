"""The ``[inbox]`` table of ``reldist.toml``: where ``reldist inbox`` reads the replies.

Like ``[smtp]``: the NAME of a secret (``password_env``, ``password_command``, XOAUTH2
``token_command``), never the secret; ``security = "none"`` only for a server on this machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from ..errors import ConfigError
from ..schema import Schema, check_table

__all__ = ["InboxSettings", "parse_inbox"]

_INBOX: Schema = {
    "host": str,
    "port": int,
    "security": str,
    "username": str,
    "password_env": str,
    "password_command": str,
    "auth": str,
    "token_command": str,
    "ca_file": str,
    "folder": str,
    "processed_folder": str,
    "soft_bounce_limit": int,
    "match_days": int,
    "timeout": float,
}


@dataclass(frozen=True, slots=True)
class InboxSettings:
    """``[inbox]``: the IMAP mailbox that receives bounces, complaints and replies."""

    host: str
    port: int = 993
    security: Literal["tls", "starttls", "none"] = "tls"
    username: str | None = None
    password_env: str | None = None
    password_command: str | None = None
    auth: Literal["auto", "plain", "login", "xoauth2"] = "auto"
    token_command: str | None = None
    ca_file: Path | None = None
    folder: str = "INBOX"
    processed_folder: str = "reldist/processed"
    soft_bounce_limit: int = 3  # soft bounces of one address (any releases) that suppress it
    match_days: int = 60  # a report names only its recipient: deliveries this recent match it
    timeout: float = 30.0


def parse_inbox(table: dict[str, Any], where: str, root: Path) -> InboxSettings:
    check_table(table, _INBOX, where=where, prefix="inbox.", error=ConfigError)
    if not table.get("host"):
        raise ConfigError("missing 'inbox.host'", place=where)
    security = table.get("security", "tls")
    if security not in ("tls", "starttls", "none"):
        raise ConfigError(
            f'\'inbox.security\' must be "tls", "starttls" or "none", not {security!r}', place=where
        )
    auth = table.get("auth", "auto")
    if auth not in ("auto", "plain", "login", "xoauth2"):
        raise ConfigError(f"'inbox.auth' must be auto, plain, login or xoauth2, not {auth!r}", place=where)
    if not table.get("username") or not (
        table.get("password_env") or table.get("password_command") or table.get("token_command")
    ):
        raise ConfigError(
            "[inbox] needs 'username' and one of password_env, password_command, token_command", place=where
        )
    if table.get("soft_bounce_limit", 3) < 1:
        raise ConfigError("'inbox.soft_bounce_limit' must be at least 1", place=where)
    ca_file = table.get("ca_file")
    return InboxSettings(
        host=table["host"],
        port=table.get("port", 993 if security == "tls" else 143),
        security=cast(Literal["tls", "starttls", "none"], security),
        username=table.get("username"),
        password_env=table.get("password_env"),
        password_command=table.get("password_command"),
        auth=cast(Literal["auto", "plain", "login", "xoauth2"], auth),
        token_command=table.get("token_command"),
        ca_file=None if ca_file is None else (root / Path(ca_file).expanduser()),
        folder=table.get("folder", "INBOX"),
        processed_folder=table.get("processed_folder", "reldist/processed"),
        soft_bounce_limit=table.get("soft_bounce_limit", 3),
        match_days=table.get("match_days", 60),
        timeout=float(table.get("timeout", 30.0)),
    )
