"""The workspace and its ``reldist.toml``: sender identity, transport, limits, paths.

Owns finding the workspace (the folder holding ``reldist.toml``, searched upwards from a starting
folder) and turning the TOML into a typed :class:`Config`. Every unknown key or wrong type is a
:class:`ConfigError` that names the key. It does not read releases, contacts or templates.

A minimal file::

    [sender]
    name = "ЭкоМузей"
    address = "press@ecomuseum.kz"

An ``[smtp]`` table switches the transport from the outbox to SMTP.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError
from .feedback.settings import InboxSettings, parse_inbox
from .ledgerdb import parse_target
from .schema import Schema, check_table, str_list
from .settings import DispatchSettings, DkimSettings, Rate, RetrySettings, SmtpSettings, parse_rate
from .values import address, optional_address, parse_duration, parse_size

CONFIG_NAME = "reldist.toml"

_TOP: Schema = {
    "sender": dict,
    "unsubscribe": dict,
    "languages": (list, str),
    "timezone": str,
    "ledger": str,
    "outbox": str,
    "list_id": str,
    "smtp": dict,
    "dkim": dict,
    "dispatch": dict,
    "check": dict,
    "inbox": dict,
}
_SENDER: Schema = {
    "name": str,
    "address": str,
    "reply_to": str,
    "organisation": str,
    "bounce": str,
}
_UNSUBSCRIBE: Schema = {"mailto": str, "url": str, "key_file": str, "key_env": str}
_SMTP: Schema = {
    "host": str,
    "port": int,
    "security": str,
    "username": str,
    "password_env": str,
    "password_command": str,
    "auth": str,
    "token_command": str,
    "ca_file": str,
    "allow_insecure_auth": bool,
    "connections": int,
    "messages_per_connection": int,
    "timeout": float,
    "local_hostname": str,
    "rate": (str, list),
    "retries": int,
    "backoff": float,
}
_DKIM: Schema = {"domain": str, "selector": str, "key_file": str}
_DISPATCH: Schema = {"max_late": str, "log_file": str, "embargo_lead": str}
_CHECK: Schema = {"max_attachments": str, "max_html": str}
_TABLES = {
    "sender": _SENDER,
    "unsubscribe": _UNSUBSCRIBE,
    "smtp": _SMTP,
    "dkim": _DKIM,
    "dispatch": _DISPATCH,
    "check": _CHECK,
}
_check = partial(check_table, error=ConfigError, others=_TABLES)


@dataclass(frozen=True, slots=True)
class Sender:
    """Who the releases come from."""

    name: str
    address: str
    reply_to: str | None = None
    organisation: str = ""
    bounce: str | None = None  # envelope sender (MAIL FROM); defaults to ``address``

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]

    @property
    def envelope_sender(self) -> str:
        """MAIL FROM; a VERP form (``bounces+{token}@…``) without its token (test copies)."""
        return (self.bounce or self.address).replace("+{token}", "").replace("{token}", "")

    @property
    def verp(self) -> bool:
        """``bounce`` carries ``{token}``: each message's envelope sender names its delivery."""
        return self.bounce is not None and "{token}" in self.bounce


@dataclass(frozen=True, slots=True)
class Config:
    """A loaded ``reldist.toml`` with paths made absolute."""

    path: Path
    sender: Sender
    languages: tuple[str, ...] = ("ru", "en")
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    ledger_path: Path = Path("reldist.db")  # the SQLite file (unused when ledger_url is set)
    ledger_url: str | None = None  # a PostgreSQL ledger: libpq URL or conninfo (service=…)
    outbox_path: Path = Path("outbox")
    list_id: str = ""
    unsubscribe_mailto: str | None = None
    unsubscribe_url: str | None = None
    unsubscribe_key_file: Path = Path("unsubscribe.key")
    unsubscribe_key_env: str | None = None
    smtp: SmtpSettings | None = None
    rates: tuple[Rate, ...] = ()
    retry: RetrySettings = field(default_factory=RetrySettings)
    dkim: DkimSettings | None = None
    dispatch: DispatchSettings = field(default_factory=DispatchSettings)
    inbox: InboxSettings | None = None  # [inbox]: where 'reldist inbox' reads bounces and replies
    max_attachments: int = 5 * 1024 * 1024
    max_html: int = 102 * 1024

    @property
    def root(self) -> Path:
        """The workspace folder."""
        return self.path.parent

    @property
    def ledger(self) -> Path | str:
        """Where the ledger is: the SQLite file, or the PostgreSQL URL or conninfo."""
        return self.ledger_url if self.ledger_url is not None else self.ledger_path

    @property
    def transport_name(self) -> Literal["smtp", "outbox"]:
        return "smtp" if self.smtp is not None else "outbox"


def find_config(start: Path) -> Path | None:
    """The nearest ``reldist.toml`` in ``start`` or its parents, or None."""
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def load_config(path: Path) -> Config:
    """Read and check ``reldist.toml``; raises :class:`ConfigError` naming the key at fault."""
    path = path.resolve()
    where = path.name
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("no such file", place=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason})", place=where) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{exc}", place=where) from None
    return _parse(data, path)


def _parse(data: dict[str, Any], path: Path) -> Config:
    where = path.name
    root = path.parent
    _check(data, _TOP, where=where)

    sender_table = data.get("sender")
    if sender_table is None:
        raise ConfigError("missing [sender] table with 'name' and 'address'", place=where)
    _check(sender_table, _SENDER, where=where, prefix="sender.")
    for key in ("name", "address"):
        if not str(sender_table.get(key, "")).strip():
            raise ConfigError(f"missing 'sender.{key}'", place=where)
    sender = Sender(
        name=sender_table["name"].strip(),
        address=address(sender_table["address"], where, "sender.address"),
        reply_to=optional_address(sender_table.get("reply_to"), where, "sender.reply_to"),
        organisation=sender_table.get("organisation", "").strip(),
        bounce=_bounce(sender_table.get("bounce"), where),
    )

    languages = str_list(
        data.get("languages", ["ru", "en"]), where=where, name="languages", error=ConfigError
    )
    tz_name = data.get("timezone", "UTC")
    try:
        timezone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"'timezone' {tz_name!r} is not a known time zone (such as Asia/Almaty)", place=where
        ) from None

    unsub = data.get("unsubscribe", {})
    _check(unsub, _UNSUBSCRIBE, where=where, prefix="unsubscribe.")
    mailto = optional_address(unsub.get("mailto"), where, "unsubscribe.mailto")
    url = unsub.get("url")
    if url is not None and not re.match(r"https?://", url):
        raise ConfigError(f"'unsubscribe.url' must start with https:// (got {url!r})", place=where)
    if url is not None and re.search(r"[\x00-\x20\x7f-\x9f]", url):
        raise ConfigError(
            f"'unsubscribe.url' must not contain spaces or control characters (got {url!r})", place=where
        )
    if url is not None:
        _check_token_url(url, where)
    list_id = data.get("list_id") or f"press.{sender.domain}"
    if re.search(r"[\x00-\x20\x7f-\x9f<>]", list_id):
        raise ConfigError(
            f"'list_id' {list_id!r} must not contain spaces, control characters or <> "
            "(it is a name such as press.ecomuseum.kz, RFC 2919)",
            place=where,
        )

    smtp, rates, retry = _smtp(data.get("smtp"), where, root)
    ledger = parse_target(data.get("ledger", "reldist.db"), root, where)

    dkim = None
    if "dkim" in data:
        table = data["dkim"]
        _check(table, _DKIM, where=where, prefix="dkim.")
        for key in _DKIM:
            if key not in table:
                raise ConfigError(f"missing 'dkim.{key}'", place=where)
        dkim = DkimSettings(table["domain"], table["selector"], _path(root, table["key_file"]))

    dispatch_table = data.get("dispatch", {})
    _check(dispatch_table, _DISPATCH, where=where, prefix="dispatch.")
    log_file = dispatch_table.get("log_file", "dispatch.log")  # "" switches the log off
    dispatch = DispatchSettings(
        max_late=parse_duration(dispatch_table.get("max_late", "24h"), f"{where}: 'dispatch.max_late'"),
        log_file=_path(root, log_file) if log_file else None,
        embargo_lead=parse_duration(
            dispatch_table.get("embargo_lead", "1h"), f"{where}: 'dispatch.embargo_lead'"
        ),
    )
    check_table_ = data.get("check", {})
    _check(check_table_, _CHECK, where=where, prefix="check.")

    max_attachments = parse_size(
        check_table_.get("max_attachments", "5MB"), f"{where}: 'check.max_attachments'"
    )
    max_html = parse_size(check_table_.get("max_html", "102KB"), f"{where}: 'check.max_html'")
    numbers: dict[str, float] = {
        "dispatch.max_late": dispatch.max_late,
        "dispatch.embargo_lead": dispatch.embargo_lead,
        "check.max_html": max_html,
        "check.max_attachments": max_attachments,
    }
    if smtp is not None:
        numbers |= {
            "smtp.port": smtp.port,
            "smtp.connections": smtp.connections,
            "smtp.messages_per_connection": smtp.messages_per_connection,
            "smtp.timeout": smtp.timeout,
            "smtp.retries": retry.attempts,
            "smtp.backoff": retry.backoff,
        }
    check_numbers(numbers, where)

    return Config(
        path=path,
        sender=sender,
        languages=languages,
        timezone=timezone,
        ledger_path=ledger if isinstance(ledger, Path) else root / "reldist.db",
        ledger_url=ledger if isinstance(ledger, str) else None,
        outbox_path=_path(root, data.get("outbox", "outbox")),
        list_id=list_id,
        unsubscribe_mailto=mailto,
        unsubscribe_url=url,
        unsubscribe_key_file=_path(root, unsub.get("key_file", "unsubscribe.key")),
        unsubscribe_key_env=unsub.get("key_env") or None,
        smtp=smtp,
        rates=rates,
        retry=retry,
        dkim=dkim,
        dispatch=dispatch,
        inbox=parse_inbox(data["inbox"], where, root) if "inbox" in data else None,
        max_attachments=max_attachments,
        max_html=max_html,
    )


_DAY = 86400.0
#: Every numeric setting: (smallest, largest, unit). Checked in one place (:func:`check_numbers`)
#: so that no value outside what the code was written for (``retries = 0``, ``timeout = inf``,
#: ``port = 0``) gets further than loading the config.
RANGES: dict[str, tuple[float, float, str]] = {
    "smtp.port": (1, 65535, ""),
    "smtp.connections": (1, 64, ""),
    "smtp.messages_per_connection": (1, 1_000_000, ""),
    "smtp.timeout": (1, 3600, " seconds"),
    "smtp.retries": (1, 20, ""),
    "smtp.backoff": (0, 3600, " seconds"),
    "dispatch.max_late": (60, 366 * _DAY, " seconds"),
    "dispatch.embargo_lead": (0, 366 * _DAY, " seconds"),
    "check.max_html": (1024, 1024**3, " bytes"),
    "check.max_attachments": (0, 1024**3, " bytes"),
}


def check_numbers(values: dict[str, float], where: str) -> None:
    """Raise :class:`ConfigError` naming the key and the accepted range for the first value out
    of its range in :data:`RANGES` (NaN and infinity are never in range)."""
    for key, value in values.items():
        low, high, unit = RANGES[key]
        if not low <= value <= high:  # False for NaN too
            shown = int(value) if float(value).is_integer() else value
            raise ConfigError(
                f"'{key}' = {shown}{unit} is out of range: it must be from {low:g} to {high:g}{unit}",
                place=where,
            )


def _bounce(value: str | None, where: str) -> str | None:
    if value is None or "{token}" not in value:
        return optional_address(value, where, "sender.bounce")
    local = value.strip().rpartition("@")[0]
    if "{token}" not in local or local.count("{token}") != 1:
        raise ConfigError(
            f"{where}: 'sender.bounce' takes {{token}} in the part before @, such as bounces+{{token}}@example.org"
        )
    checked = address(value.strip().replace("{token}", "t" * 20), where, "sender.bounce")
    return checked.replace("t" * 20, "{token}", 1)


def _check_token_url(url: str, where: str) -> None:
    # A link with the plain address in it lets anyone unsubscribe anyone (and costs spam score):
    # the link names the recipient by a signed token instead.
    if "{address}" in url or "{release}" in url:
        raise ConfigError(
            "'unsubscribe.url' must not carry the address: use a signed token, such as "
            "url = \"https://press.example.org/unsubscribe/{token}\" (served by 'reldist serve')",
            place=where,
        )
    if "{token}" not in url:
        raise ConfigError(
            "'unsubscribe.url' needs {token} where the recipient's signed token goes, such as "
            'url = "https://press.example.org/unsubscribe/{token}"',
            place=where,
        )


def _smtp(
    table: dict[str, Any] | None, where: str, root: Path
) -> tuple[SmtpSettings | None, tuple[Rate, ...], RetrySettings]:
    if table is None:
        return None, (), RetrySettings()
    _check(table, _SMTP, where=where, prefix="smtp.")
    if "password" in table:  # pragma: no cover - caught by check_table, kept for the message
        raise ConfigError("never put the password in reldist.toml; use smtp.password_env", place=where)
    if not table.get("host"):
        raise ConfigError("missing 'smtp.host'", place=where)
    security = table.get("security", "starttls")
    if security not in ("tls", "starttls", "none"):
        raise ConfigError(
            f'\'smtp.security\' must be "tls", "starttls" or "none", not {security!r}', place=where
        )
    auth = table.get("auth", "auto")
    if auth not in ("auto", "plain", "login", "xoauth2"):
        raise ConfigError(f"'smtp.auth' must be auto, plain, login or xoauth2, not {auth!r}", place=where)
    if auth == "xoauth2" and not table.get("token_command"):
        raise ConfigError("'smtp.auth = \"xoauth2\"' needs 'smtp.token_command'", place=where)
    rates: list[Rate] = []
    for text in str_list(table.get("rate", []), where=where, name="smtp.rate", error=ConfigError):
        try:
            rates.append(parse_rate(text))
        except ValueError as exc:
            raise ConfigError(f"'smtp.rate': {exc}", place=where) from None
    default_port = 465 if security == "tls" else 587
    settings = SmtpSettings(
        host=table["host"],
        port=table.get("port", default_port),
        security=cast(Literal["tls", "starttls", "none"], security),
        username=table.get("username"),
        password_env=table.get("password_env"),
        password_command=table.get("password_command"),
        auth=cast(Literal["auto", "plain", "login", "xoauth2"], auth),
        token_command=table.get("token_command"),
        ca_file=_path(root, table["ca_file"]) if "ca_file" in table else None,
        allow_insecure_auth=table.get("allow_insecure_auth", False),
        connections=table.get("connections", 4),
        messages_per_connection=table.get("messages_per_connection", 100),
        timeout=float(table.get("timeout", 30.0)),
        local_hostname=table.get("local_hostname"),
    )
    retry = RetrySettings(attempts=table.get("retries", 3), backoff=float(table.get("backoff", 2.0)))
    return settings, tuple(rates), retry


def _path(root: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else root / path
